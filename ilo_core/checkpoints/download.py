"""Fetching the official public StyleGAN-2 checkpoints by name, resumably and atomically.

    python -m ilo_core download ffhq-1024          # then: python app.py --generator ffhq-1024

A transfer goes to `NAME.<ext>.partial` in the cache folder (`$ILO_CACHE/checkpoints`,
default `~/.cache/ilo_studio/checkpoints`); an interrupted one is resumed with an HTTP
Range request. A file gets its final name (atomically) only when it is whole and is a
checkpoint, checked by content, not by the server's word:
- its size: the published size where there is one, else the size the server announced
  (Content-Length, or Content-Range's total on a resume, whose start must be where the
  partial file ends); a transfer whose size nobody announced is checked by content alone;
- its sha256, where the publisher gives one;
- its content: an NVlabs pickle starts with a pickle protocol mark and ends with the
  pickle's STOP, a zip-format torch file has its central directory; a web page served in
  its place (an error page with status 200) is refused on its first bytes.
A broken or foreign file is deleted with one line that says why; the next run starts over.
A file already in the cache is checked the same way before it is trusted. One lock file per
name keeps two processes from writing one file: the second waits for the first and then
uses its file. The free disk space is checked against the announced size before writing.
The files are NVlabs network pickles; they are read without running their code
(`ilo_core.checkpoints.safe_pickle`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CHUNK = 1 << 20
SPARE_BYTES = 64 << 20  # disk space left free beyond the file itself
NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files"
ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"


@dataclass(frozen=True)
class Checkpoint:
    """A downloadable checkpoint: where it is and what is published about it."""

    name: str
    url: str
    resolution: int
    about: str
    sha256: str | None = None   # only where the publisher gives one
    size: int | None = None     # bytes, likewise

    @property
    def filename(self) -> str:
        return f"{self.name}.pkl"


KNOWN: dict[str, Checkpoint] = {c.name: c for c in (
    Checkpoint("ffhq-1024", f"{NGC}/stylegan2-ffhq-1024x1024.pkl", 1024, "NVlabs StyleGAN-2 config-f, FFHQ faces"),
    Checkpoint("ffhq-512", f"{NGC}/stylegan2-ffhq-512x512.pkl", 512, "NVlabs StyleGAN-2, FFHQ faces at 512 px"),
    Checkpoint("ffhq-256", f"{NGC}/stylegan2-ffhq-256x256.pkl", 256, "NVlabs StyleGAN-2, FFHQ faces at 256 px"),
    Checkpoint("ffhq-ada-1024", f"{ADA}/ffhq.pkl", 1024, "NVlabs StyleGAN2-ADA, FFHQ faces"),
    Checkpoint("metfaces-1024", f"{ADA}/metfaces.pkl", 1024, "NVlabs StyleGAN2-ADA, MetFaces (portrait art)"),
    Checkpoint("afhqcat-512", f"{ADA}/afhqcat.pkl", 512, "NVlabs StyleGAN2-ADA, AFHQ cats (the paper's Figure 7)"),
    Checkpoint("afhqdog-512", f"{ADA}/afhqdog.pkl", 512, "NVlabs StyleGAN2-ADA, AFHQ dogs"),
    Checkpoint("afhqwild-512", f"{ADA}/afhqwild.pkl", 512, "NVlabs StyleGAN2-ADA, AFHQ wild animals"),
)}


class DownloadError(RuntimeError):
    """A download failed; the message says why in one line. The cache holds no broken file."""


def cache_root() -> Path:
    """The engine's cache folder: $ILO_CACHE, else ~/.cache/ilo_studio."""
    return Path(os.environ.get("ILO_CACHE", Path.home() / ".cache" / "ilo_studio"))


def cache_dir() -> Path:
    """Where downloaded checkpoints go: <cache_root>/checkpoints."""
    return cache_root() / "checkpoints"


def cached_path(name: str, folder: Path | None = None, known: dict[str, Checkpoint] = KNOWN) -> Path:
    return (folder or cache_dir()) / known[name].filename


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, folder: Path | None = None, known: dict[str, Checkpoint] = KNOWN,
             progress: Callable[[int, int | None], None] | None = None, timeout: float = 60.0,
             on_wait: Callable[[str], None] | None = None) -> Path:
    """Fetch checkpoint `name` into `folder` (default `cache_dir()`); returns its path.

    `progress(done_bytes, total_bytes_or_None)` is called as data arrives. A whole file
    already in the cache is returned at once; a `.partial` file is resumed. When another
    process is downloading the same name, `on_wait(message)` is called and this one waits
    for it, then uses its file. Raises DownloadError in one line; the cache never keeps a
    broken file under the final name.
    """
    if name not in known:
        raise DownloadError(f"unknown checkpoint {name!r}; known: {', '.join(sorted(known))}")
    spec = known[name]
    folder = folder or cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the cache folder {folder}: {err.strerror or err}") from None
    target = folder / spec.filename
    with _name_lock(folder / f"{spec.filename}.lock", spec.name, on_wait):
        if target.is_file():
            problem = checkpoint_problem(target, spec)
            if problem is None:
                return target
            target.unlink(missing_ok=True)  # a broken file left by an older version: fetch it again
        partial = target.with_name(target.name + ".partial")
        for _ in range(2):
            try:
                return _fetch(spec, partial, target, progress, timeout)
            except _StartOver:
                partial.unlink(missing_ok=True)
        raise DownloadError(f"{spec.url}: the server does not resume transfers consistently; try again later")


class _StartOver(Exception):
    """The partial file cannot be resumed: delete it and fetch the whole file."""


class _name_lock:
    """An exclusive lock on `path` (flock), held while one process downloads a name."""

    def __init__(self, path: Path, name: str, on_wait: Callable[[str], None] | None) -> None:
        self.path, self.name, self.on_wait, self.fd = path, name, on_wait, -1

    def __enter__(self) -> "_name_lock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if self.on_wait is not None:
                self.on_wait(f"another process is downloading {self.name}: waiting for it to finish")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _fetch(spec: Checkpoint, partial: Path, target: Path, progress: Callable[[int, int | None], None] | None,
           timeout: float) -> Path:
    """One request: resume (or start) `partial`, check it, and give it the final name."""
    offset = partial.stat().st_size if partial.is_file() else 0
    if spec.size is not None and offset > spec.size:
        raise _StartOver  # longer than the published file: not a part of it
    request = urllib.request.Request(spec.url, headers={"User-Agent": "ilo-studio",
                                                        **({"Range": f"bytes={offset}-"} if offset else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (https or a test's 127.0.0.1)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # "nothing past there": whole only if the server's total says so
            total = _range_total(err.headers.get("Content-Range"))
            if total is not None and total == offset and (spec.size is None or spec.size == total):
                return _finish(partial, target, spec, offset, total)
            raise _StartOver from None
        raise DownloadError(f"{spec.url}: HTTP {err.code} {_reason(err)}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"{spec.url}: {getattr(err, 'reason', err)}") from None
    with response:
        kind = (response.headers.get("Content-Type") or "").lower()
        if "text/html" in kind:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{spec.url}: the server sent a web page, not the checkpoint (HTTP "
                                f"{response.status}, {kind.split(';')[0]}); nothing was kept")
        length = _int_header(response.headers.get("Content-Length"))
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start is None or start != offset:
                raise _StartOver  # a range other than the one asked for (or none): start afresh
        else:
            offset = 0  # the whole file: start over
            total = length
        if total is None and length is not None:
            total = offset + length
        if spec.size is not None and total is not None and total != spec.size:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{spec.url}: the server announces {total} bytes but {spec.name} is published "
                                f"as {spec.size} bytes; nothing was kept")
        total = total if total is not None else spec.size
        _check_free_space(partial.parent, (total - offset) if total is not None else None, spec.name)
        done = offset
        try:
            with open(partial, "ab" if offset else "wb") as f:
                if not offset:
                    f.truncate(0)
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    if total is not None and done + len(block) > total:
                        raise _StartOver  # more than announced: the pieces do not belong together
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except (OSError, urllib.error.URLError) as err:
            raise DownloadError(f"{spec.name}: the transfer stopped at {done} bytes ({_reason(err)}); "
                                f"run the same command again to resume") from None
    return _finish(partial, target, spec, done, total)


def _reason(err: BaseException) -> str:
    text = str(getattr(err, "reason", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _int_header(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) of 'bytes START-END/TOTAL' (total None for '*'); (None, None) if malformed."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    return int(match.group(1)), None if match.group(3) == "*" else int(match.group(3))


def _range_total(value: str | None) -> int | None:
    """The total of a 416 answer's 'bytes */TOTAL'."""
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", value or "")
    return int(match.group(1)) if match else None


def _check_free_space(folder: Path, needed: int | None, name: str) -> None:
    if needed is None:
        return
    free = shutil.disk_usage(folder).free
    if free < needed + SPARE_BYTES:
        raise DownloadError(f"{name} needs {needed / 1e6:.0f} MB but {folder} has {free / 1e6:.0f} MB free; "
                            f"free some space or set ILO_CACHE to another disk")


def content_problem(path: Path) -> str | None:
    """Why the file at `path` is not a whole checkpoint by its content (None when it looks whole):
    a pickle (protocol 2-5) whose opcodes run to its STOP at the file's last byte
    (`safe_pickle.pickle_problem`, which builds nothing), or a zip (a torch.save file) whose
    central directory opens."""
    with open(path, "rb") as f:
        head = f.read(64)
        if not head:
            return "the file is empty"
        if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
            from ilo_core.checkpoints.safe_pickle import pickle_problem  # torch only when a pickle is checked

            f.seek(0)
            return pickle_problem(f)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path):
                return None
        except (zipfile.BadZipFile, OSError, ValueError):
            return "the zip file is cut short or damaged (no central directory)"
    if head.lstrip()[:1] in (b"<", b"{"):
        return f"it is a text or web page ({head[:24].decode('latin-1').strip()!r}…), not a checkpoint"
    return "it is not a checkpoint (neither a pickle nor a zip file)"


def checkpoint_problem(path: Path, spec: Checkpoint, size: int | None = None) -> str | None:
    """Why `path` is not a whole copy of `spec` (None when it is): the size (published, else
    `size`), then the content (`content_problem`), then the published sha256."""
    expected = spec.size if spec.size is not None else size
    actual = path.stat().st_size
    if expected is not None and actual != expected:
        return f"it has {actual} bytes, not {expected}"
    problem = content_problem(path)
    if problem is not None:
        return problem
    if spec.sha256 is not None:
        digest = sha256_of(path)
        if digest != spec.sha256:
            return f"its sha256 {digest[:16]}… is not the published {spec.sha256[:16]}…"
    return None


def _finish(partial: Path, target: Path, spec: Checkpoint, done: int, total: int | None) -> Path:
    """Check the whole partial file (size, content, checksum), then rename it to `target`."""
    if total is not None and done < total:
        raise DownloadError(f"{spec.name}: the transfer stopped at {done} of {total} bytes; "
                            f"run the same command again to resume")
    problem = checkpoint_problem(partial, spec, total)
    if problem is not None:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{spec.name}: the download is not usable ({problem}); it was deleted, "
                            f"run the same command again to start over")
    os.replace(partial, target)
    return target
