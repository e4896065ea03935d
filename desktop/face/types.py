"""Plain data types shared by the face engine, the check-in pipeline and training.

Conventions used everywhere in ``desktop.face``:

* images are RGB ``uint8`` arrays of shape (H, W, 3);
* boxes are ``(x, y, w, h)`` in pixels of the original image (x, y: top-left corner);
* landmarks are float32 (5, 2) arrays of (x, y) pixels of the original image, in dlib's
  5-point order: right eye outer corner, right eye inner corner, left eye outer corner,
  left eye inner corner, bottom of the nose (as ``shape_predictor_5_face_landmarks``);
* a chip is the aligned (150, 150, 3) RGB uint8 crop dlib's encoder expects;
* a descriptor (embedding) is a float32 (128,) vector, f(x); its norm is about 1.4;
* d is the *squared* L2 distance ||f(x1) - f(x2)||^2 (dimensionless). dlib's decision
  threshold is 0.6 in plain L2, i.e. tau = 0.36 in d.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

#: dlib's trained decision threshold in plain L2 distance, and the same in squared d.
DLIB_L2_THRESHOLD = 0.6
DEFAULT_TAU = DLIB_L2_THRESHOLD**2  # 0.36, in units of squared L2
CHIP_SIZE = 150
EMBEDDING_DIM = 128
#: Check-in default: faces narrower than this (pixels of the frame) are not looked for.
#: A face at a front desk, 0.5-1.2 m from a 640x360 webcam (60 degree field), is about
#: 75-180 px wide; 80 px is dlib's own window, so no level is skipped or upsampled.
DEFAULT_MIN_FACE_SIZE = 80
#: Images with a longer side than this are shrunk for detection only (chips are cut from
#: the full-resolution image). Faces smaller than 80 px at this size are not found.
DETECT_MAX_SIDE = 1280


@dataclass
class Face:
    """One detected face."""

    box: tuple[int, int, int, int]  # (x, y, w, h), original image pixels
    score: float  # detector confidence (MMOD score; higher is surer)
    landmarks: np.ndarray | None = None  # (5, 2) float32, original image pixels
    chip: np.ndarray | None = None  # (150, 150, 3) uint8 RGB aligned chip
    descriptor: np.ndarray | None = field(default=None, repr=False)  # (128,) float32

    def to_json(self, descriptors: bool = False) -> dict:
        out: dict = {"box": [int(v) for v in self.box], "score": round(float(self.score), 4)}
        if self.landmarks is not None:
            out["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]
        if descriptors and self.descriptor is not None:
            out["descriptor"] = [float(v) for v in self.descriptor]
        return out


class FaceEngineLike(Protocol):
    """What the check-in pipeline and training need from a face engine.

    ``desktop.face.api.FaceEngine`` implements it; tests may pass a fake.
    """

    @property
    def model_id(self) -> str:
        """Identifies the encoder weights (e.g. ``dlib-resnet-v1`` or a fine-tuned
        version's name); embeddings from different model ids never mix."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, with landmarks and chips filled in."""

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 chips to (N, 128) float32 descriptors."""


#: Builds the face engine (slow: loads the models), called off the UI thread.
EngineFactory = Callable[[], FaceEngineLike]


def squared_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """d = ||a - b||^2 along the last axis (broadcasts); squared L2, dimensionless."""
    diff = np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)
    d = np.einsum("...i,...i->...", diff, diff)
    return float(d) if np.ndim(d) == 0 else d
