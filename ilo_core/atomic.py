"""Files are written whole or not at all; a path is read only when it is a regular file (`regular_file`).

`atomic_write(path)` yields a binary file. On Linux it is an unnamed file in the target's
folder (O_TMPFILE): until the body succeeds it has no name, so an error, an exception or
even `kill -9` leaves nothing behind. On success it is linked under a temporary name and
renamed over the target (atomic on POSIX). Elsewhere a named temporary beside the target
is removed on any error. Either way the file gets mode 0666 less the umask, like any file
the user's programs create.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

_PROC_FD = Path("/proc/self/fd")


def _unnamed_file(folder: Path) -> int | None:
    """A writable file descriptor of an unnamed file in `folder`, or None where unsupported."""
    if not hasattr(os, "O_TMPFILE") or not _PROC_FD.is_dir():
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:  # a file system without O_TMPFILE support
        return None


def _link_unnamed(fd: int, name: Path) -> None:
    """Give the unnamed file `fd` the name `name` (linkat with AT_SYMLINK_FOLLOW through /proc;
    a plain link() would try to link the /proc symlink itself)."""
    proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file object; it becomes `path` when the body finishes without error."""
    path = Path(path)
    folder = path.resolve().parent
    temp = folder / f".{path.name}.{secrets.token_hex(4)}.partial"
    fd = _unnamed_file(folder)
    named = fd is None
    if named:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if not named:
                _link_unnamed(f.fileno(), temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_write(path) as f:
        f.write(data)


def write_json(data: object, path: str | Path) -> None:
    """JSON, whole or not at all."""
    write_bytes(json.dumps(data, indent=1).encode(), path)


def write_text(text: str, path: str | Path) -> None:
    write_bytes(text.encode(), path)


def regular_file(path: Path, what: str, error: type[ValueError] = ValueError) -> None:
    """`error` (a ValueError) unless `path` is an existing regular file (a FIFO, a device such as /dev/zero
    or a folder is named as such: it is never read)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"no such {what}: {path}") from None
    except OSError as err:
        raise error(f"cannot read {path}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise error(f"{path} is not a regular file but a device, pipe or socket: it was not read")
