"""Liveness for every face track of a live view: passive checks on all of them, a
challenge for those the passive checks cannot decide.

:class:`LivenessMonitor` is fed each processed frame with the visible tracks' boxes
(:meth:`~LivenessMonitor.observe`; the check-in pipeline does this from its worker
thread) and answers a :class:`LivenessStatus` per track. A track's state:

* ``checking``: passive evidence is being gathered (every track starts here);
* ``challenge``: undecided after ``challenge_after_s`` (1 s) in challenge mode, and
  challengeable (the check-in challenges only faces it has recognised): the label asks
  "Blink, please"; 68-point landmarks are computed for it on every frame (at most
  ``max_challenged`` faces per frame, longest waiting first);
* ``live``: the passive checks saw a face moving in 3-D, or the person blinked or turned
  (``how`` says which). Only a live track may check in;
* ``spoof``: the passive checks saw a flat picture (``reason``: "photo suspected", or
  "photo or screen suspected"). Final for the track;
* ``failed``: the challenge timed out ("no blink or head turn seen"). The face shows as
  Unknown; it still becomes ``live`` if the person blinks, turns or moves later.

Passive mode never challenges: an undecided track stays ``checking`` until its face moves
enough. Cost per frame: one optical-flow call for all faces, and per face a patch warp and
a few homographies every third frame; ``bench/liveness.py`` measured 5.5 ms per frame on
the faces-dev clip (one to four faces) on the 2-core development machine. A challenged
face adds one 68-point landmark prediction per frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from desktop.face.liveness.challenge import Challenge, ChallengeSettings
from desktop.face.liveness.landmarks68 import LandmarkModel
from desktop.face.liveness.passive import LIVE as PASSIVE_LIVE
from desktop.face.liveness.passive import REASONS as PASSIVE_REASONS
from desktop.face.liveness.passive import SPOOF as PASSIVE_SPOOF
from desktop.face.liveness.passive import PassiveJudge, PassiveThresholds
from desktop.face.liveness.volume import CHAIN_LK, FaceVolume, VolumeSettings, thumbnail

MODES = ("off", "passive", "challenge")
CHECKING, CHALLENGE, LIVE, SPOOF, FAILED = "checking", "challenge", "live", "spoof", "failed"

#: Reasons a check-in is withheld, in the words the label and the log show.
REASONS = {**PASSIVE_REASONS, "no_response": "no blink or head turn seen"}


@dataclass(frozen=True)
class LivenessSettings:
    """Liveness for the check-in: ``mode`` is ``"off"`` (today's behaviour), ``"passive"``
    or ``"challenge"`` (passive, and a challenge when passive evidence is weak). Times
    in seconds of scene time."""

    mode: str = "off"
    challenge_after_s: float = 1.0
    max_challenged: int = 2
    challenge: ChallengeSettings = field(default_factory=ChallengeSettings)
    passive: PassiveThresholds = field(default_factory=PassiveThresholds)
    volume: VolumeSettings = field(default_factory=VolumeSettings)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"liveness mode must be one of {', '.join(MODES)}; "
                             f"got {self.mode!r}")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @classmethod
    def of(cls, mode: str) -> LivenessSettings:
        return cls(mode=str(mode))


@dataclass(frozen=True)
class LivenessStatus:
    """One track's liveness (see the module doc for the states)."""

    state: str
    prompt: str | None = None  # shown on the label during a challenge
    reason_code: str | None = None  # why refused: a key of REASONS
    how: str | None = None  # why live: "moves_in_3d", "blink" or "turn"
    frames: int = 0  # frames observed
    decided_frames: int | None = None  # frames observed until the verdict
    seconds_left: float | None = None  # of the challenge
    scores: dict = field(default_factory=dict, compare=False)

    @property
    def passed(self) -> bool:
        return self.state == LIVE

    @property
    def refused(self) -> bool:
        return self.state in (SPOOF, FAILED)

    @property
    def reason(self) -> str | None:
        """The refusal in plain words ("photo suspected"), or None."""
        return REASONS.get(self.reason_code) if self.reason_code else None

    @property
    def verdict(self) -> str:
        """``live``, ``spoof`` (refused, by the passive checks or the challenge) or
        ``undecided``."""
        return "live" if self.passed else "spoof" if self.refused else "undecided"

    def to_json(self) -> dict:
        out: dict[str, Any] = {"state": self.state, "verdict": self.verdict,
                               "frames": self.frames}
        if self.decided_frames is not None:
            out["decided_frames"] = self.decided_frames
        if self.how:
            out["how"] = self.how
        if self.reason_code:
            out["reason"] = self.reason
        if self.prompt:
            out["prompt"] = self.prompt
        return out


CHECKING_STATUS = LivenessStatus(CHECKING)


@dataclass
class _Track:
    volume: FaceVolume
    judge: PassiveJudge
    first_time: float
    state: str = CHECKING
    frames: int = 0
    decided_frames: int | None = None
    how: str | None = None
    reason_code: str | None = None
    challenge: Challenge | None = None
    scores: dict = field(default_factory=dict)
    scores_version: tuple[int, int] | None = None


class LivenessMonitor:
    """Per-track liveness from frames and boxes (see the module doc).

    Args:
        settings: :class:`LivenessSettings`.
        landmarks: the 68-point model for challenges (loaded in the background on first
            need); None makes one for the model ``face_recognition_models`` ships.

    One thread at a time calls :meth:`observe`; :meth:`status` may be called from others.
    """

    def __init__(self, settings: LivenessSettings | None = None,
                 landmarks: LandmarkModel | None = None) -> None:
        self.settings = settings or LivenessSettings()
        self.landmarks = landmarks if landmarks is not None else LandmarkModel()
        self._tracks: dict[int, _Track] = {}
        self._statuses: dict[int, LivenessStatus] = {}
        self._prev: np.ndarray | None = None
        if self.settings.mode == "challenge":
            self.landmarks.request()

    # -- control ---------------------------------------------------------------------------
    def configure(self, settings: LivenessSettings) -> None:
        """New settings from the next frame on (tracks keep what they have seen)."""
        self.settings = settings
        if settings.mode == "challenge":
            self.landmarks.request()

    def reset(self) -> None:
        """Forget every track and the previous frame (a cut, another camera)."""
        self._tracks.clear()
        self._statuses = {}
        self._prev = None

    def restart(self, track_id: int) -> None:
        """Judge a track again from scratch (e.g. it now shows someone else)."""
        self._tracks.pop(track_id, None)
        self._statuses = {k: v for k, v in self._statuses.items() if k != track_id}

    def forget(self, alive: Iterable[int]) -> None:
        """Drop the tracks not in ``alive`` (the tracker ended them)."""
        keep = set(alive)
        for tid in [t for t in self._tracks if t not in keep]:
            del self._tracks[tid]
        self._statuses = {k: v for k, v in self._statuses.items() if k in keep}

    # -- answers (any thread) ------------------------------------------------------------
    def status(self, track_id: int) -> LivenessStatus:
        return self._statuses.get(track_id, CHECKING_STATUS)

    def statuses(self) -> dict[int, LivenessStatus]:
        return dict(self._statuses)

    # -- one frame ----------------------------------------------------------------------------
    def observe(self, image: np.ndarray, frame_index: int, scene_time: float,
                tracks: Sequence[tuple[int, Any]],
                challengeable: Iterable[int] | None = None) -> None:
        """Take one frame (RGB (H, W, 3) or grey (H, W) uint8) and the boxes (x, y, w, h)
        of the tracks visible on it. ``challengeable``: the track ids a challenge may be
        started for (the check-in passes those it has recognised: nobody asks a stranger
        to blink); None: any."""
        allowed = None if challengeable is None else {int(t) for t in challengeable}
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        seen = {int(tid) for tid, _ in tracks}
        for tid, track in self._tracks.items():
            if tid not in seen:
                track.volume.interrupt()
        for tid, _ in tracks:
            if int(tid) not in self._tracks:
                self._tracks[int(tid)] = _Track(FaceVolume(self.settings.volume),
                                                PassiveJudge(self.settings.passive),
                                                float(scene_time))
        self._follow(grey, [self._tracks[int(tid)] for tid, _ in tracks])
        thumb = thumbnail(grey)
        for tid, box in tracks:
            track = self._tracks[int(tid)]
            track.frames += 1
            for evidence in track.volume.step(grey, tuple(float(v) for v in box),
                                              frame_index, thumb):
                track.judge.add(evidence)
            self._advance(track, scene_time, allowed is None or int(tid) in allowed)
        self._challenge(grey, scene_time, tracks)
        self._prev = grey
        self._statuses = {tid: self._status(t, scene_time) for tid, t in self._tracks.items()}

    def _follow(self, grey: np.ndarray, tracks: list[_Track]) -> None:
        """One optical-flow call for every seed corner of every visible track."""
        if self._prev is None or self._prev.shape != grey.shape:
            for track in tracks:
                track.volume.interrupt()
            return
        points = [t.volume.followed_points() for t in tracks]
        counts = [len(p) for p in points]
        if not sum(counts):
            return
        p0 = np.concatenate(points).reshape(-1, 1, 2)
        p1, found, _ = cv2.calcOpticalFlowPyrLK(self._prev, grey, p0, None, **CHAIN_LK)
        p1, found = p1.reshape(-1, 2), found.ravel() == 1
        k = 0
        for track, n in zip(tracks, counts, strict=True):
            track.volume.follow(p1[k:k + n], found[k:k + n])
            k += n

    def _advance(self, track: _Track, now: float, challengeable: bool = True) -> None:
        """Move a track between states after its passive evidence changed."""
        if track.state in (LIVE, SPOOF):
            return
        verdict = track.judge.verdict
        if verdict == PASSIVE_SPOOF:
            self._decide(track, SPOOF, reason=track.judge.reason)
        elif verdict == PASSIVE_LIVE:
            self._decide(track, LIVE, how=track.judge.reason)
        elif self.settings.mode != "challenge":
            if track.state != CHECKING:  # the mode changed: no more challenge
                track.state, track.challenge = CHECKING, None
        elif track.state == CHECKING:
            if (challengeable and now - track.first_time >= self.settings.challenge_after_s
                    and self.landmarks.get() is not None):
                track.state = CHALLENGE
                track.challenge = Challenge(now, self.settings.challenge)
        elif (track.state == CHALLENGE and track.challenge is not None
              and track.challenge.timed_out(now)):
            track.state, track.reason_code = FAILED, "no_response"
            track.decided_frames = track.frames

    def _decide(self, track: _Track, state: str, *, how: str | None = None,
                reason: str | None = None) -> None:
        track.state, track.how, track.reason_code = state, how, reason
        track.decided_frames = track.frames

    def _challenge(self, grey: np.ndarray, now: float,
                   tracks: Sequence[tuple[int, Any]]) -> None:
        """68-point landmarks for the challenged faces, longest waiting first."""
        if self.settings.mode != "challenge":
            return
        waiting = [(self._tracks[int(tid)], box) for tid, box in tracks
                   if self._tracks[int(tid)].state in (CHALLENGE, FAILED)
                   and self._tracks[int(tid)].challenge is not None]
        model = self.landmarks.get()
        if not waiting or model is None:
            return
        waiting.sort(key=lambda tb: tb[0].challenge.started)  # type: ignore[union-attr]
        waiting = waiting[:max(1, self.settings.max_challenged)]
        boxes = np.array([[float(v) for v in box] for _, box in waiting])
        marks = model.predict(grey, boxes, round_to_pixels=False)
        for (track, _), lm in zip(waiting, marks, strict=True):
            assert track.challenge is not None
            last = track.judge.last
            moved_3d = (last is not None and last.planar_residual
                        >= self.settings.challenge.turn_min_residual)
            passed = track.challenge.update(now, lm, turn_allowed=moved_3d)
            if passed is not None:
                self._decide(track, LIVE, how=passed)

    def _status(self, track: _Track, now: float) -> LivenessStatus:
        # The figures change only when a window is judged or a challenge frame is read.
        version = (track.judge.windows, track.challenge.samples if track.challenge else -1)
        if track.scores_version != version:
            track.scores = track.judge.scores()
            if track.challenge is not None:
                track.scores["challenge"] = track.challenge.scores()
            track.scores_version = version
        prompt = seconds_left = None
        if track.state == CHALLENGE and track.challenge is not None:
            prompt = track.challenge.prompt(now)
            seconds_left = round(track.challenge.remaining(now), 1)
        return LivenessStatus(track.state, prompt, track.reason_code, track.how, track.frames,
                              track.decided_frames, seconds_left, track.scores)

