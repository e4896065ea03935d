"""dlib's own answers on the faces-dev photos, computed once per test session.

Shared by the landmark, alignment and quality tests: every face dlib's HOG detector finds
(no upsampling, on a copy at most 1000 px on a side: that finds the same 30 faces as
upsampling the full photos once, many times faster), with dlib's 5-point landmarks for it
on the full photo. Needs dlib-bin (the test extra) and ../shared/data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
DETECT_MAX_SIDE = 1000


@dataclass(frozen=True)
class ReferenceFace:
    photo: str  # path relative to faces-dev
    image: np.ndarray  # (H, W, 3) RGB uint8, shared by the faces of one photo
    box: tuple[int, int, int, int]  # x, y, w, h of dlib's HOG detection
    landmarks: np.ndarray  # (5, 2) int dlib shape_predictor parts
    shape: object  # the dlib.full_object_detection itself


def faces_dev_photos(shared_data: Path) -> list[Path]:
    root = shared_data / "faces-dev"
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


@lru_cache(maxsize=2)
def reference_faces(shared_data: Path) -> tuple[ReferenceFace, ...]:
    import dlib

    from desktop.imageio import downscale_to, load_rgb
    from desktop.model_files import FACE_LANDMARKS, require

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(require(FACE_LANDMARKS)))
    faces = []
    for path in faces_dev_photos(shared_data):
        image = load_rgb(path)
        small, scale = downscale_to(image, DETECT_MAX_SIDE)
        for found in detector(small, 0):
            l, t, r, b = (round(v / scale) for v in
                          (found.left(), found.top(), found.right(), found.bottom()))
            rect = dlib.rectangle(l, t, r, b)
            shape = predictor(image, rect)
            faces.append(ReferenceFace(
                photo=str(path.relative_to(shared_data / "faces-dev")),
                image=image,
                box=(rect.left(), rect.top(), rect.width(), rect.height()),
                landmarks=np.array([[p.x, p.y] for p in shape.parts()]),
                shape=shape,
            ))
    return tuple(faces)
