"""Fetching the official public StyleGAN-2 checkpoints by name, resumably and atomically.

    python -m ilo_core download ffhq-1024          # then: python app.py --generator ffhq-1024

A transfer goes to `NAME.<ext>.partial` in the cache folder (`$ILO_CACHE/checkpoints`,
default `~/.cache/ilo_studio/checkpoints`); an interrupted one is resumed with an HTTP
Range request. Only a complete file, of the size the server announced and with the
published sha256 where there is one, is renamed to its final name (atomic), so a
checkpoint in the cache is always whole. A wrong checksum deletes the partial file.
The files are NVlabs network pickles; they are read without running their code
(`ilo_core.generators.safe_pickle`).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CHUNK = 1 << 20
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
             progress: Callable[[int, int | None], None] | None = None, timeout: float = 60.0) -> Path:
    """Fetch checkpoint `name` into `folder` (default `cache_dir()`); returns its path.

    `progress(done_bytes, total_bytes_or_None)` is called as data arrives. Already complete
    files are returned at once; a `.partial` file is resumed.
    """
    if name not in known:
        raise DownloadError(f"unknown checkpoint {name!r}; known: {', '.join(sorted(known))}")
    spec = known[name]
    folder = folder or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    if target.is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    offset = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(spec.url, headers={"User-Agent": "ilo-studio",
                                                        **({"Range": f"bytes={offset}-"} if offset else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (https or a test's 127.0.0.1)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the partial file may be whole
            return _finish(partial, target, spec, offset, offset)
        raise DownloadError(f"{spec.url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"{spec.url}: {getattr(err, 'reason', err)}") from None
    with response:
        resumed = response.status == 206
        if not resumed:
            offset = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else spec.size
        done = offset
        try:
            with open(partial, "ab" if resumed else "wb") as f:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except (OSError, urllib.error.URLError) as err:
            raise DownloadError(f"{spec.name}: the transfer stopped at {done} bytes ({err}); "
                                f"run the same command again to resume") from None
    return _finish(partial, target, spec, done, total)


def _finish(partial: Path, target: Path, spec: Checkpoint, done: int, total: int | None) -> Path:
    """Check size and checksum of the partial file, then rename it to `target`."""
    if total is not None and done < total:
        raise DownloadError(f"{spec.name}: the transfer stopped at {done} of {total} bytes; "
                            f"run the same command again to resume")
    expected_size = spec.size if spec.size is not None else total
    if expected_size is not None and partial.stat().st_size != expected_size:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{spec.name}: got {done} bytes, expected {expected_size}; the partial file was deleted")
    if spec.sha256 is not None:
        digest = sha256_of(partial)
        if digest != spec.sha256:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{spec.name}: sha256 {digest[:16]}… is not the published {spec.sha256[:16]}…; "
                                f"the file was deleted")
    os.replace(partial, target)
    return target
