"""The active challenge: when passive evidence stays weak, ask the person to blink (and,
after a while, to turn their head a little), and watch for it with the 68 landmarks.

* A **blink** is :class:`~desktop.face.liveness.blink.BlinkDetector`'s.
* A **turn** is a change of yaw by at least ``turn_yaw`` (0.25) from where the face
  started, held for ``turn_frames`` (2) frames. Yaw is read from the landmarks without a
  3-D model: where the nose tip (point 30) falls between the two ends of the jaw line
  (points 0 and 16), -1 at one end, +1 at the other, 0 midway; 0.25 is roughly 15
  degrees. The landmarks alone are not enough: on a print held still, the 68-point
  model's points drift enough to fake a turn (measured: 0.28 in 2.5 s on a faces-dev
  photo), so a turn counts only while the passive checks also see the face move out of
  its plane (``turn_allowed`` from the monitor: the last judged window left a planar
  residual of at least ``turn_min_residual``, 0.006 face widths, half of what votes
  live). A flat picture turned about its vertical axis keeps its nose where it was
  between its jaw ends (apart from a little perspective), so it barely moves this figure,
  and the passive check sees such a picture as flat meanwhile.

The prompt starts as "Blink, please" and becomes "Blink or turn your head a little"
after ``turn_prompt_after_s`` (2.5 s); either answer passes at any time. After
``timeout_s`` (6 s) the challenge has failed.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np

from desktop.face.liveness.blink import BlinkDetector, BlinkSettings

PROMPT_BLINK = "Blink, please"
PROMPT_TURN = "Blink or turn your head a little"


def landmark_yaw(landmarks: np.ndarray) -> float:
    """Yaw from 68 landmarks: the nose tip's position between the jaw line's ends, -1..1
    (0 facing the camera; see the module doc)."""
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    a, b, nose = lm[0], lm[16], lm[30]
    axis = b - a
    span2 = float(axis @ axis)
    if span2 < 1e-9:
        return 0.0
    return 2.0 * float((nose - a) @ axis) / span2 - 1.0


@dataclass(frozen=True)
class ChallengeSettings:
    """Timing of the challenge (seconds of scene time) and what counts as a turn."""

    timeout_s: float = 6.0
    turn_prompt_after_s: float = 2.5
    turn_yaw: float = 0.25
    turn_frames: int = 2
    turn_min_residual: float = 0.006  # face widths the plane must leave for a turn to count
    blink: BlinkSettings = field(default_factory=BlinkSettings)


class TurnDetector:
    """Fires when the yaw has moved ``turn_yaw`` from its start for ``turn_frames`` frames."""

    def __init__(self, turn_yaw: float = 0.25, turn_frames: int = 2, start_frames: int = 3
                 ) -> None:
        self.turn_yaw = float(turn_yaw)
        self.turn_frames = int(turn_frames)
        self._start: collections.deque[float] = collections.deque(maxlen=start_frames)
        self._start_frames = int(start_frames)
        self._held = 0
        self.last_yaw: float | None = None

    @property
    def start_yaw(self) -> float | None:
        if len(self._start) < self._start_frames:
            return None
        return float(np.median(self._start))

    def update(self, landmarks: np.ndarray) -> bool:
        yaw = landmark_yaw(landmarks)
        self.last_yaw = yaw
        start = self.start_yaw
        if start is None:
            self._start.append(yaw)
            return False
        self._held = self._held + 1 if abs(yaw - start) >= self.turn_yaw else 0
        return self._held >= self.turn_frames


class Challenge:
    """One face's challenge, started at scene time ``started`` (seconds)."""

    def __init__(self, started: float, settings: ChallengeSettings | None = None) -> None:
        self.settings = settings or ChallengeSettings()
        self.started = float(started)
        self.blink = BlinkDetector(self.settings.blink)
        self.turn = TurnDetector(self.settings.turn_yaw, self.settings.turn_frames)
        self.passed: str | None = None  # "blink" or "turn"
        self.samples = 0  # frames with landmarks

    def prompt(self, now: float) -> str:
        if now - self.started >= self.settings.turn_prompt_after_s:
            return PROMPT_TURN
        return PROMPT_BLINK

    def remaining(self, now: float) -> float:
        """Seconds left before the challenge fails (0 once over)."""
        return max(0.0, self.settings.timeout_s - (now - self.started))

    def timed_out(self, now: float) -> bool:
        return self.passed is None and now - self.started >= self.settings.timeout_s

    def update(self, now: float, landmarks: np.ndarray, turn_allowed: bool = True
               ) -> str | None:
        """One frame's 68 landmarks; returns ``"blink"`` or ``"turn"`` once passed. A turn
        counts only when ``turn_allowed`` (the face also moved out of its plane)."""
        if self.passed is not None:
            return self.passed
        self.samples += 1
        blinked = self.blink.update(now, landmarks)
        turned = self.turn.update(landmarks)
        if blinked:
            self.passed = "blink"
        elif turned and turn_allowed:
            self.passed = "turn"
        return self.passed

    def scores(self) -> dict:
        out: dict = {"frames": self.samples, "blinks": self.blink.blinks}
        if self.blink.baseline is not None:
            out["open_ear"] = round(self.blink.baseline, 3)
        if self.blink.last_ear is not None:
            out["ear"] = round(self.blink.last_ear, 3)
        if self.turn.start_yaw is not None and self.turn.last_yaw is not None:
            out["yaw_change"] = round(self.turn.last_yaw - self.turn.start_yaw, 3)
        return out
