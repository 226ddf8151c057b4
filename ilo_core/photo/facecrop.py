"""Square face crop: OpenCV's Haar cascade (shipped in opencv-python-headless) when
installed, else the centre square. Boxes are (left, top, right, bottom) in pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ilo_core.photo.images import center_box


def face_box(image: Image.Image, enlarge: float = 1.5) -> tuple[tuple[int, int, int, int], str]:
    """The crop box for the largest frontal face, enlarged and squared, and how it was found
    ("face detector" or "centre crop")."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        gray = np.asarray(image.convert("L"))
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         minSize=(max(24, min(gray.shape) // 8),) * 2)
        if len(faces):
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
            side = min(int(max(w, h) * enlarge), min(image.size))
            cx, cy = x + w / 2, y + h / 2
            left = int(min(max(cx - side / 2, 0), image.width - side))
            top = int(min(max(cy - side / 2, 0), image.height - side))
            return (left, top, left + side, top + side), "face detector"
    return center_box(image), "centre crop"


def face_crop(photo: Image.Image, size: int) -> tuple[Image.Image, tuple[int, int, int, int], str]:
    """The face (or centre) square of `photo` resized to `size` (LANCZOS), its box, and how it was found."""
    box, how = face_box(photo)
    return photo.crop(box).resize((size, size), Image.LANCZOS), box, how
