"""Where a generator's faces sit in its images: the measurement behind `SplitGenerator.face_frame`.

    python -m ilo_core.evaluation.studies face_frame [--generator default] [--samples 256] [--seed 0]

Renders `--samples` random samples, finds dlib's 5 landmarks on each (enlarged, with a
border) and prints the median of FFHQ's landmark square in them, as fractions of the image
side: its side (1 for an FFHQ-trained generator; larger when its faces fill more of the
frame) and its centre. The page and the CLI cut a photo's face to this frame.
"""

from __future__ import annotations

import argparse

import torch

from ilo_core.checkpoints import load_generator
from ilo_core.photo.alignment import measure_face_frame
from ilo_core.photo.images import tensor_to_uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="default")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generator = load_generator(args.generator, "cpu")
    images = []
    with torch.no_grad():
        for start in range(0, args.samples, 32):
            rng = torch.Generator().manual_seed(args.seed * 1_000_003 + start)
            batch = generator.render(generator.sample_variables(min(32, args.samples - start), rng))
            images.extend(tensor_to_uint8(image) for image in batch)
    frame, found = measure_face_frame(images)
    print(f"{args.generator}: dlib found a face in {found} of {args.samples} samples; "
          f"FaceFrame(side={frame.side}, x={frame.x}, y={frame.y}) (stored: {generator.face_frame})")


if __name__ == "__main__":
    main()
