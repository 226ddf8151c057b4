"""Files are written whole or not at all, with the mode the user's umask gives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from ilo_core.atomic import atomic_write, write_text


def test_a_written_file_has_mode_0666_less_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text("x", tmp_path / "a.txt")
        os.umask(0o002)
        write_text("x", tmp_path / "b.txt")
    finally:
        os.umask(old)
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "b.txt").stat().st_mode & 0o777) == oct(0o664)


def test_an_error_while_writing_leaves_neither_the_file_nor_a_temporary(tmp_path):
    (tmp_path / "keep.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "keep.png") as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]
    assert (tmp_path / "keep.png").read_bytes() == b"old"


def test_kill_9_in_the_middle_of_a_write_leaves_nothing_behind(tmp_path):
    code = ("import os, signal, sys; from ilo_core.atomic import atomic_write\n"
            "with atomic_write(sys.argv[1]) as f:\n"
            "    f.write(b'x' * 100000); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.gif")], cwd=ROOT, timeout=60)
    assert out.returncode == -9
    assert list(tmp_path.iterdir()) == []
