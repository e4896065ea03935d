"""Is this frame a good enrolment shot? One face, large, sharp and facing the camera.

:func:`check_shot` gives a verdict with a short reason written for the person in front of
the camera ("two faces", "too blurry", "turn towards the camera"), so the enrolment dialog
can say why a shot was not taken.

The measures:

* **size**: the face box's shorter side, in pixels of the frame (>= ``min_face_px``);
* **sharpness**: the variance of the Laplacian of the face, in grey levels squared,
  measured on the face resized to :data:`SHARPNESS_SIDE` px so that it does not depend on
  the face's size (a blurred or moving face has little high-frequency energy);
* **pose**, from the 5 landmarks (dlib order: right eye outer and inner corners, left eye
  outer and inner corners, bottom of the nose):

  - *yaw*: how far the nose sits from the middle of the eyes, along the eye line, in eye
    distances (0 facing the camera; about 0.5 in profile);
  - *eye ratio*: the wider eye's width over the narrower's (1 facing the camera; the far
    eye shrinks when the head turns);
  - *roll*: the eye line's angle to the horizontal, in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from desktop.face.types import Face

MIN_FACE_PX = 100
SHARPNESS_SIDE = 128
#: Least variance of the Laplacian (grey levels^2 at 128 px) for a sharp face.
MIN_SHARPNESS = 40.0
MAX_YAW = 0.18  # eye distances
MAX_EYE_RATIO = 1.6
MAX_ROLL_DEG = 20.0

_NUMBERS = {2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class ShotCheck:
    """A verdict on one frame: ``ok``, or ``reason`` (short, for the person)."""

    ok: bool
    reason: str
    face: Face | None = None
    n_faces: int = 0
    size_px: int = 0
    sharpness: float | None = None
    yaw: float | None = None
    roll_deg: float | None = None


def sharpness(image: np.ndarray, box: Sequence[int]) -> float:
    """Variance of the Laplacian of the face in ``box`` (x, y, w, h), resized to
    :data:`SHARPNESS_SIDE` px square, in grey levels squared."""
    x, y, w, h = (int(v) for v in box)
    H, W = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    interp = cv2.INTER_AREA if grey.shape[1] > SHARPNESS_SIDE else cv2.INTER_LINEAR
    grey = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=interp)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass(frozen=True)
class Pose:
    yaw: float  # nose offset along the eye line, in eye distances (signed)
    eye_ratio: float  # wider eye width / narrower (>= 1)
    roll_deg: float  # eye line angle to the horizontal (signed)


def pose(landmarks: np.ndarray) -> Pose:
    """Head pose measures from dlib's 5 landmarks ((5, 2) pixels)."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right, left = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2
    axis = left - right
    dist = float(np.hypot(*axis)) or 1e-6
    u = axis / dist
    yaw = float(np.dot(p[4] - (right + left) / 2, u) / dist)
    widths = sorted([float(np.hypot(*(p[0] - p[1]))), float(np.hypot(*(p[2] - p[3])))])
    ratio = widths[1] / max(widths[0], 1e-6)
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    if roll > 90:
        roll -= 180
    elif roll < -90:
        roll += 180
    return Pose(yaw, ratio, roll)


def check_shot(image: np.ndarray, faces: Sequence[Face], *,
               min_face_px: int = MIN_FACE_PX, min_sharpness: float = MIN_SHARPNESS,
               max_yaw: float = MAX_YAW) -> ShotCheck:
    """The verdict on one RGB frame and the faces the engine found in it."""
    n = len(faces)
    if n == 0:
        return ShotCheck(False, "no face found", n_faces=0)
    if n > 1:
        return ShotCheck(False, f"{_NUMBERS.get(n, str(n))} faces: only the person to enrol "
                         "should be in view", n_faces=n)
    face = faces[0]
    size = int(min(face.box[2], face.box[3]))
    if size < min_face_px:
        return ShotCheck(False, f"come closer (face {size} px, needs {min_face_px})", face, 1,
                         size)
    sharp = sharpness(image, face.box)
    if sharp < min_sharpness:
        return ShotCheck(False, "too blurry: hold still", face, 1, size, sharp)
    yaw = roll = None
    if face.landmarks is not None:
        pz = pose(face.landmarks)
        yaw, roll = pz.yaw, pz.roll_deg
        if abs(pz.yaw) > max_yaw or pz.eye_ratio > MAX_EYE_RATIO:
            return ShotCheck(False, "turn towards the camera", face, 1, size, sharp, yaw, roll)
        if abs(pz.roll_deg) > MAX_ROLL_DEG:
            return ShotCheck(False, "keep your head level", face, 1, size, sharp, yaw, roll)
    if face.chip is None:
        return ShotCheck(False, "the face could not be aligned", face, 1, size, sharp, yaw, roll)
    return ShotCheck(True, "good shot", face, 1, size, sharp, yaw, roll)
