"""ilo_core/evaluation/studies/held_out_faces.py: a group photo becomes one square per face, and an archive that is
not the one the figures were measured with is refused (no network: the archives are built here)."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from ilo_core.evaluation.studies.held_out_faces import Source, face_squares, fetch, write_faces

FACES = Path(__file__).resolve().parents[2] / "assets" / "faces"
needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None,
                                reason="dlib-bin (requirements.txt) finds the faces")


def group_photo() -> Image.Image:
    """The two example faces side by side on a grey canvas wider than both."""
    faces = [Image.open(FACES / name).convert("RGB").resize((200, 200)) for name in
             ("astronaut_face.png", "grace_hopper_face.png")]
    canvas = Image.new("RGB", (520, 240), (128, 128, 128))
    canvas.paste(faces[0], (20, 20))
    canvas.paste(faces[1], (300, 20))
    return canvas


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@needs_dlib
def test_group_photo_gives_one_square_per_face_left_to_right_inside_the_photo() -> None:
    photo = group_photo()
    boxes = face_squares(photo)
    assert len(boxes) == 2
    for (left, top, right, bottom), face_left in zip(boxes, (20, 300)):
        assert right - left == bottom - top > 60          # square, larger than a tiny false hit
        assert 0 <= left and 0 <= top and right <= photo.width and bottom <= photo.height
        assert left < face_left + 100 < right            # the face's centre column is inside its square
    assert boxes[0][0] < boxes[1][0]


@needs_dlib
def test_write_faces_copies_files_and_splits_the_group(tmp_path: Path) -> None:
    single = png(Image.open(FACES / "astronaut_face.png"))
    source = Source("pkg", "1", "unused", {"pkg-1/one.png": "one.png", "pkg-1/group.png": "group*"})
    names = write_faces(source, archive({"pkg-1/one.png": single, "pkg-1/group.png": png(group_photo())}), tmp_path)
    assert names == ["one.png", "group0.png", "group1.png"]
    assert (tmp_path / "one.png").read_bytes() == single
    assert Image.open(tmp_path / "group1.png").size[0] == Image.open(tmp_path / "group1.png").size[1]


def test_an_archive_with_another_hash_is_refused(tmp_path: Path) -> None:
    source = Source("pkg", "1", "0" * 64, {})
    (tmp_path / source.archive).write_bytes(archive({"pkg-1/x": b"x"}))
    with pytest.raises(SystemExit, match="SHA-256 differs"):
        fetch(source, tmp_path, tmp_path)
    with pytest.raises(SystemExit, match="missing"):
        fetch(Source("other", "2", "0" * 64, {}), tmp_path, tmp_path)
