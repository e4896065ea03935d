"""Liveness (anti-spoofing) for the check-in: a printed photo or a phone screen held up to
the camera must not check anyone in. No Qt, no model download: passive checks from the
motion of each face track over time, and, when those stay undecided, a challenge (a blink
or a small head turn) read with dlib's 68-point landmarks.

    monitor = LivenessMonitor(LivenessSettings(mode="challenge"))
    monitor.observe(frame_rgb, frame_index, scene_time_s, [(track_id, (x, y, w, h))])
    status = monitor.status(track_id)     # .state: checking/challenge/live/spoof/failed
    status.prompt                         # "Blink, please" during a challenge
    status.reason                         # "photo suspected" when refused

Modules, each small: :mod:`~desktop.face.liveness.geometry` (the planar and non-planar
motion models), :mod:`~desktop.face.liveness.volume` (a track's space-time volume and
what each window of it shows), :mod:`~desktop.face.liveness.passive` (the passive votes
and verdict: what each check catches and misses), :mod:`~desktop.face.liveness.blink`
(eye aspect ratio), :mod:`~desktop.face.liveness.challenge` (blink or turn, with yaw from
the landmarks), :mod:`~desktop.face.liveness.landmarks68` (the 68-point model, loaded in
the background), :mod:`~desktop.face.liveness.monitor` (all tracks of a live view) and
:mod:`~desktop.face.liveness.attacks` (synthetic photo and phone attacks for tests and
the benchmark).
"""

from desktop.face.liveness.landmarks68 import LandmarkModel
from desktop.face.liveness.monitor import (
    CHALLENGE,
    CHECKING,
    FAILED,
    LIVE,
    MODES,
    REASONS,
    SPOOF,
    LivenessMonitor,
    LivenessSettings,
    LivenessStatus,
)

__all__ = ["CHALLENGE", "CHECKING", "FAILED", "LIVE", "MODES", "REASONS", "SPOOF",
           "LandmarkModel", "LivenessMonitor", "LivenessSettings", "LivenessStatus"]
