"""Blinks from dlib's 68 face landmarks: the eye aspect ratio (Soukupová and Čech, 2016).

Landmarks are (68, 2) pixel arrays in the iBUG 300-W order that
``shape_predictor_68_face_landmarks.dat`` gives: 36-41 the eye on the image's left
(the person's right), 42-47 the other, each starting at the outer corner and going round
over the upper lid. For one eye with points p1..p6::

    EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)

about 0.25-0.35 for an open eye, falling towards 0.05 as the lids close, and nearly
independent of the face's size and of turning the head. :class:`BlinkDetector` follows
the mean EAR of both eyes over time and fires on a *blink*: a fall below
``closed_ratio`` (0.7) of the person's own open-eye EAR (the median of recent open
frames) that comes back above ``open_ratio`` (0.85) of it within ``max_closed_s``
(0.5 s). A photo tipped back shrinks the EAR too, but it shrinks the rest of the face
with it: a dip during which the face's own proportions (eye-to-mouth height over the eye
distance) change by more than ``max_aspect_change`` (12 %) is not a blink.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

RIGHT_EYE = slice(36, 42)  # the eye on the image's left
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
NUM_LANDMARKS = 68


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of one eye's six points (6, 2) p1..p6 (see the module doc)."""
    p = np.asarray(eye, np.float64).reshape(6, 2)
    width = float(np.linalg.norm(p[0] - p[3]))
    if width < 1e-6:
        return 0.0
    lids = float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4]))
    return lids / (2.0 * width)


def mean_eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """The mean EAR of both eyes of a (68, 2) landmark set."""
    lm = _check(landmarks)
    return 0.5 * (eye_aspect_ratio(lm[RIGHT_EYE]) + eye_aspect_ratio(lm[LEFT_EYE]))


def face_aspect(landmarks: np.ndarray) -> float:
    """The face's own height over width, without the eyelids: the distance from the eyes'
    midpoint to the mouth's centre over the distance between the eye centres."""
    lm = _check(landmarks)
    right, left = lm[RIGHT_EYE].mean(axis=0), lm[LEFT_EYE].mean(axis=0)
    span = float(np.linalg.norm(left - right))
    if span < 1e-6:
        return 0.0
    return float(np.linalg.norm(lm[MOUTH].mean(axis=0) - (left + right) / 2)) / span


def _check(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"68 landmarks (68, 2) are needed; got an array of shape {lm.shape}")
    return lm


@dataclass(frozen=True)
class BlinkSettings:
    """When a dip of the eye aspect ratio counts as a blink (module doc)."""

    closed_ratio: float = 0.7
    open_ratio: float = 0.85
    max_closed_s: float = 0.5
    min_open_samples: int = 5  # open-eye frames needed before a blink can count
    baseline_samples: int = 30  # recent open-eye frames the baseline is the median of
    max_aspect_change: float = 0.12


class BlinkDetector:
    """Streaming blink detection for one face (module doc). Feed every frame's landmarks
    with its time in seconds; :meth:`update` returns True on the frame a blink ends."""

    def __init__(self, settings: BlinkSettings | None = None) -> None:
        self.settings = settings or BlinkSettings()
        self._open: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=self.settings.baseline_samples)
        self._closed_at: float | None = None
        self._aspect_change = 0.0
        self.blinks = 0
        self.last_ear: float | None = None

    @property
    def baseline(self) -> float | None:
        """The open-eye EAR (median of recent open frames), or None while too few."""
        if len(self._open) < self.settings.min_open_samples:
            return None
        return float(np.median([e for e, _ in self._open]))

    def update(self, time_s: float, landmarks: np.ndarray) -> bool:
        ear = mean_eye_aspect_ratio(landmarks)
        aspect = face_aspect(landmarks)
        self.last_ear = ear
        s = self.settings
        base = self.baseline
        if base is None:
            self._open.append((ear, aspect))
            return False
        base_aspect = float(np.median([a for _, a in self._open])) or 1.0
        change = abs(aspect / base_aspect - 1.0)
        if self._closed_at is None:
            if ear < s.closed_ratio * base:
                self._closed_at = time_s
                self._aspect_change = change
            else:
                self._open.append((ear, aspect))
            return False
        self._aspect_change = max(self._aspect_change, change)
        if ear <= s.open_ratio * base:
            return False  # still closed (or a long dip: judged when the eyes open)
        closed_for = time_s - self._closed_at
        self._closed_at = None
        self._open.append((ear, aspect))
        if closed_for <= s.max_closed_s and self._aspect_change <= s.max_aspect_change:
            self.blinks += 1
            return True
        return False
