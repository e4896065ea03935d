"""Is this frame good enough to enrol from? Plain checks with reasons a person can act on.

The enrolment dialog (camera or imported photo) accepts a shot only when :func:`assess`
says ``ok``; otherwise it shows the verdict's ``reasons``, written for the person in front
of the camera ("Two faces in view...", "Too blurry. Hold still.", "Turn towards the
camera."). Each check is also a plain function, so the UI can show the figures live:

* **one face**: exactly one face in the frame.
* **size**: the face box's larger side in image pixels (from the landmarks when no box).
* **in frame**: the share of the face square (the chip's template face, padding
  excluded) that lies inside the image; faces cut by the frame edge fail.
* **sharpness**: the variance of the Laplacian of the grey aligned chip's face square
  (chip pixels, so it does not grow with face size). On the faces-dev photos sharp faces
  score 90 to 1600; the same faces blurred by a Gaussian of 1.5 chip pixels score at most
  44 (by 2 chip pixels: 24, and dlib's descriptor has then moved by d = 0.03 to 0.13, a
  sizeable part of tau = 0.36). The default threshold 60 sits between.
* **pose**, from the 5 landmarks (no 3-D model): *roll* is the eye line's angle in
  degrees; *yaw* is where the nose projects along the eye line, -1 at the eye on the
  image's left, +1 at the other, 0 midway (about 0.6 * tan(yaw angle) for a typical
  nose, so 0.35 is roughly 30 degrees); *pitch* is the nose's distance below the eye line
  over the eye distance (about 0.56 to 0.97 in frontal photos; it shrinks as the chin goes
  up).
* **exposure**: the mean grey level of the face square (0-255).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from desktop.face.align import (
    DEFAULT_PADDING,
    DEFAULT_SIZE,
    extract_image_chip,
    get_face_chip_details,
)
from desktop.face.types import Face

Source = Literal["camera", "photo"]


@dataclass(frozen=True)
class QualityThresholds:
    """Limits for an acceptable enrolment shot (units in each field's comment)."""

    min_face_px: float = 100.0  # face box side, image pixels
    min_in_frame: float = 0.9  # share of the face square inside the image, 0-1
    min_sharpness: float = 60.0  # variance of the Laplacian on the chip, grey levels^2
    max_roll_deg: float = 25.0  # eye-line angle, degrees
    max_yaw: float = 0.35  # nose offset along the eye line, -1..1 (about 30 degrees)
    min_pitch: float = 0.45  # nose drop below the eyes / eye distance (chin raised below)
    max_pitch: float = 1.25  # (chin lowered far, or landmarks gone astray, above)
    min_brightness: float = 40.0  # mean grey of the face, 0-255
    max_brightness: float = 225.0


@dataclass(frozen=True)
class QualityVerdict:
    """The outcome of :func:`assess`.

    Attributes:
        ok: the shot can be enrolled.
        reasons: what to change, in the words shown to the person (empty when ok).
        codes: the same problems as stable identifiers (``"no_face"``, ``"several_faces"``,
            ``"too_small"``, ``"cut_off"``, ``"too_blurry"``, ``"turned"``, ``"tilted"``,
            ``"chin"``, ``"too_dark"``, ``"too_bright"``).
        metrics: the figures behind the verdict (``faces``, ``face_px``, ``in_frame``,
            ``sharpness``, ``roll_deg``, ``yaw``, ``pitch``, ``brightness``).
        face_index: which face was measured (the largest), or None without faces.
    """

    ok: bool
    reasons: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    face_index: int | None = None


_MESSAGES: dict[str, tuple[str, str]] = {  # code: (camera wording, photo wording)
    "no_face": ("No face found. Look at the camera.", "No face found in this photo."),
    "several_faces": (
        "{n} faces in view. Only the person enrolling should be in the picture.",
        "{n} faces in this photo. Choose a photo of the person alone.",
    ),
    "too_small": ("Face too small. Come closer.", "The face is too small in this photo."),
    "cut_off": (
        "Face partly out of the picture. Move to the middle.",
        "The face is cut off at the edge of this photo.",
    ),
    "too_blurry": ("Too blurry. Hold still.", "This photo is too blurry."),
    "turned": ("Turn towards the camera.", "The face is turned away in this photo."),
    "tilted": ("Keep your head level.", "The head is tilted too far in this photo."),
    "chin": ("Look straight at the camera.", "The head is tipped too far in this photo."),
    "too_dark": ("Too dark. Find more light.", "The face is too dark in this photo."),
    "too_bright": ("Too bright. Avoid strong light.", "The face is overexposed in this photo."),
}

_COUNT_WORDS = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}


def message(code: str, source: Source = "camera", **values: object) -> str:
    """The sentence shown for a problem ``code`` (see :class:`QualityVerdict`)."""
    camera, photo = _MESSAGES[code]
    return (camera if source == "camera" else photo).format(**values)


# -- the checks -----------------------------------------------------------------------
def face_size_px(face: Face) -> float:
    """The face's size in image pixels: the larger side of its box.

    Without a box, the side of the face square implied by the landmarks (the chip's
    template face, which is about 0.75 of a detector box).
    """
    if face.box is not None and max(face.box[2], face.box[3]) > 0:
        return float(max(face.box[2], face.box[3]))
    return _face_square_side(np.asarray(face.landmarks)) / 0.75


def in_frame_fraction(image_shape: Sequence[int], landmarks: np.ndarray) -> float:
    """Share (0-1) of the face square that lies inside an image of shape (H, W, ...)."""
    h, w = image_shape[:2]
    details = get_face_chip_details(landmarks, DEFAULT_SIZE, DEFAULT_PADDING)
    lo, hi = _face_square_in_chip()
    grid = np.linspace(lo, hi, 12)
    xs, ys = np.meshgrid(grid, grid)
    pts = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=1) @ details.chip_to_image().T
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    return float(inside.mean())


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian over the face square of an aligned RGB chip.

    Args:
        chip: (S, S, 3) uint8 chip cut with padding 0.25 (the encoder's chips).

    Returns:
        grey levels squared; higher is sharper (see the module notes for the scale).
    """
    return float(cv2.Laplacian(_face_square_grey(chip), cv2.CV_64F).var())


def brightness(chip: np.ndarray) -> float:
    """Mean grey level (0-255) of the face square of an aligned RGB chip."""
    return float(_face_square_grey(chip).mean())


@dataclass(frozen=True)
class Pose:
    """Head pose read from 5 landmarks (see the module notes for the units)."""

    roll_deg: float
    yaw: float
    pitch: float


def head_pose(landmarks: np.ndarray) -> Pose:
    """Roll (degrees), yaw (-1..1 nose offset) and pitch (nose drop / eye distance).

    Args:
        landmarks: (5, 2) pixels in dlib's 5-point order (points 0-1 the eye on the
            image's right, 2-3 the eye on its left, 4 the bottom of the nose).
    """
    lm = np.asarray(landmarks, np.float64)
    eye_right, eye_left, nose = lm[0:2].mean(0), lm[2:4].mean(0), lm[4]
    axis = eye_right - eye_left
    span2 = float(axis @ axis)
    if span2 == 0:
        return Pose(0.0, 0.0, 0.0)
    rel = nose - eye_left
    along = float(rel @ axis) / span2  # 0 at the left eye, 1 at the right eye
    below = float(axis[0] * rel[1] - axis[1] * rel[0]) / span2  # down the face, eye units
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    return Pose(roll_deg=roll, yaw=2 * along - 1, pitch=below)


# -- the verdict ----------------------------------------------------------------------
def assess(
    image: np.ndarray,
    faces: Sequence[Face],
    thresholds: QualityThresholds | None = None,
    *,
    source: Source = "camera",
) -> QualityVerdict:
    """Check one frame or photo for enrolment.

    Args:
        image: (H, W, 3) RGB uint8, the frame the faces were found in.
        faces: the detector's faces, with landmarks (chips are used when present, and cut
            here otherwise).
        thresholds: the limits; :class:`QualityThresholds` defaults when None.
        source: ``"camera"`` words the reasons for the person in front of the camera,
            ``"photo"`` for an imported file.

    Returns:
        A :class:`QualityVerdict`. With several faces the largest is measured too, so every
        problem can be shown at once.
    """
    t = thresholds or QualityThresholds()
    codes: list[str] = []
    metrics: dict[str, float] = {"faces": float(len(faces))}
    if not faces:
        return _verdict(["no_face"], metrics, None, source, len(faces))
    if len(faces) > 1:
        codes.append("several_faces")
    index = max(range(len(faces)), key=lambda i: face_size_px(faces[i]))
    face = faces[index]
    if face.landmarks is None:
        raise ValueError("assess() needs faces with landmarks")
    landmarks = np.asarray(face.landmarks, np.float64)
    chip = face.chip
    if chip is None:
        chip = extract_image_chip(image, get_face_chip_details(landmarks))
    pose = head_pose(landmarks)
    metrics.update(
        face_px=face_size_px(face),
        in_frame=in_frame_fraction(image.shape, landmarks),
        sharpness=sharpness(chip),
        roll_deg=pose.roll_deg,
        yaw=pose.yaw,
        pitch=pose.pitch,
        brightness=brightness(chip),
    )
    checks = [
        ("too_small", metrics["face_px"] < t.min_face_px),
        ("cut_off", metrics["in_frame"] < t.min_in_frame),
        ("too_blurry", metrics["sharpness"] < t.min_sharpness),
        ("turned", abs(pose.yaw) > t.max_yaw),
        ("tilted", abs(pose.roll_deg) > t.max_roll_deg),
        ("chin", not t.min_pitch <= pose.pitch <= t.max_pitch),
        ("too_dark", metrics["brightness"] < t.min_brightness),
        ("too_bright", metrics["brightness"] > t.max_brightness),
    ]
    codes += [code for code, failed in checks if failed]
    return _verdict(codes, metrics, index, source, len(faces))


def _verdict(codes, metrics, index, source, count) -> QualityVerdict:
    words = _COUNT_WORDS.get(count, str(count))
    reasons = [message(code, source, n=words) for code in codes]
    return QualityVerdict(not codes, reasons, list(codes), metrics, index)


# -- helpers --------------------------------------------------------------------------
def _face_square_in_chip(size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING):
    """The template face's square inside a chip: (low, high) chip pixel coordinates."""
    return size * padding / (1 + 2 * padding), size * (1 + padding) / (1 + 2 * padding)


def _face_square_grey(chip: np.ndarray) -> np.ndarray:
    lo, hi = (round(v * chip.shape[0] / DEFAULT_SIZE) for v in _face_square_in_chip())
    grey = cv2.cvtColor(np.ascontiguousarray(chip), cv2.COLOR_RGB2GRAY)
    return grey[lo:hi, lo:hi]


def _face_square_side(landmarks: np.ndarray) -> float:
    """Side of the face square in image pixels (the template face, padding excluded)."""
    details = get_face_chip_details(landmarks, DEFAULT_SIZE, DEFAULT_PADDING)
    left, _, right, _ = details.rect
    return (right - left + 1) / (1 + 2 * DEFAULT_PADDING)
