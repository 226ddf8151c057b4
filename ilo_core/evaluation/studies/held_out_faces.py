"""Real faces nobody tuned on, for checking figures: 11 photos fetched from PyPI archives.

    python -m ilo_core.evaluation.studies held_out_faces --out DIR [--archives DIR]

The example faces in assets/ chose every default; figures on them flatter the method. This
writes into DIR 11 real face photos the project has never used for a choice:

- 4 portraits from face_recognition 1.3.0's test images (biden, obama, obama2, obama3; the
  "4 unseen faces" of docs/evaluation/findings.md);
- 7 from insightface 2.1's sample images: Tom_Hanks_54745.png, and the six faces of the group
  photo t1.jpg, each cut out as its own square around dlib's face detection (friends0-5, left
  to right): turned heads and tilted faces, harder than the portraits.

The photos are not in this repository (neither is their licence ours to give): the script runs
`pip download` for the two source archives (the package registry is the one network this
project's machines reach), checks their SHA-256 and reads only the named files. `--archives
DIR` takes archives already downloaded there instead. Then, for example:

    python -m ilo_core.evaluation.studies random_pixels --images DIR
    python -m ilo_core.evaluation.evaluate --images DIR --samples 0 --out RESULTS
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ilo_core.atomic import write_bytes


@dataclass(frozen=True)
class Source:
    """One sdist on PyPI and the files to take from it (archive member -> file name in DIR;
    a name ending in "*" is a group photo, split into one file per face)."""

    package: str
    version: str
    sha256: str
    files: dict[str, str]

    @property
    def archive(self) -> str:
        return f"{self.package}-{self.version}.tar.gz"


SOURCES = (
    Source("face_recognition", "1.3.0", "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
           {f"face_recognition-1.3.0/tests/test_images/{name}.jpg": f"{name}.jpg"
            for name in ("biden", "obama", "obama2", "obama3")}),
    Source("insightface", "2.1", "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01",
           {"insightface-2.1/insightface/data/images/Tom_Hanks_54745.png": "hanks.png",
            "insightface-2.1/insightface/data/images/t1.jpg": "friends*"}),
)
CROP_SIDE = 1.6      # a face's square: this many times the side of dlib's detection box
CROP_LIFT = 0.1      # its centre sits this fraction of the box's height above the box's centre


def face_squares(photo: Image.Image) -> list[tuple[int, int, int, int]]:
    """Square boxes (left, top, right, bottom) around every frontal face dlib finds in `photo`,
    left to right, each shifted to lie inside the photo (and shrunk if it cannot)."""
    import dlib

    detections = dlib.get_frontal_face_detector()(np.asarray(photo.convert("RGB")), 1)
    boxes = []
    for d in sorted(detections, key=lambda d: d.left()):
        side = min(int(CROP_SIDE * max(d.width(), d.height())), *photo.size)
        cx, cy = (d.left() + d.right()) / 2, (d.top() + d.bottom()) / 2 - CROP_LIFT * d.height()
        left = int(min(max(cx - side / 2, 0), photo.width - side))
        top = int(min(max(cy - side / 2, 0), photo.height - side))
        boxes.append((left, top, left + side, top + side))
    return boxes


def fetch(source: Source, archives: Path | None, scratch: Path) -> bytes:
    """The source's archive, from `archives` or downloaded into `scratch`, SHA-256 checked."""
    path = archives / source.archive if archives is not None else scratch / source.archive
    if archives is None:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                               ":all:", f"{source.package}=={source.version}", "--dest", str(scratch)])
        if done.returncode != 0:
            raise SystemExit(f"pip download of {source.archive} failed (is the package index reachable?); "
                             "download it elsewhere and give its folder with --archives")
    if not path.is_file():
        raise SystemExit(f"{path} is missing: download it with pip download --no-deps --no-binary :all: "
                         f"{source.package}=={source.version}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise SystemExit(f"{path.name}: SHA-256 differs from the one these figures were measured with")
    return data


def write_faces(source: Source, archive: bytes, out: Path) -> list[str]:
    """Write the source's files (group photos split per face) into `out`; their names."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member, name in source.files.items():
            data = tar.extractfile(member).read()  # only these regular files are read, nothing is extracted
            if not name.endswith("*"):
                write_bytes(data, out / name)
                written.append(name)
                continue
            photo = Image.open(io.BytesIO(data)).convert("RGB")
            for i, box in enumerate(face_squares(photo)):
                buffer = io.BytesIO()
                photo.crop(box).save(buffer, format="PNG")
                write_bytes(buffer.getvalue(), out / f"{name[:-1]}{i}.png")
                written.append(f"{name[:-1]}{i}.png")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the faces (created)")
    parser.add_argument("--archives", default=None, help="folder holding the sdists already downloaded")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    archives = None if args.archives is None else Path(args.archives)
    with tempfile.TemporaryDirectory() as scratch:
        for source in SOURCES:
            names = write_faces(source, fetch(source, archives, Path(scratch)), out)
            print(f"{source.package} {source.version}: {', '.join(names)}")


if __name__ == "__main__":
    main()
