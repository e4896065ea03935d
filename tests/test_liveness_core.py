"""Liveness core without data or models: the planar and non-planar motion models, the
passive votes, the eye aspect ratio and yaw detectors on synthetic landmark tracks, and the
monitor's states (challenge, timeout) with a fake 68-point model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from liveness_helpers import blink_track, close_eyes, face68

from desktop.face.liveness import (
    CHALLENGE,
    CHECKING,
    FAILED,
    LIVE,
    LandmarkModel,
    LivenessMonitor,
    LivenessSettings,
    geometry,
)
from desktop.face.liveness.blink import BlinkDetector, eye_aspect_ratio
from desktop.face.liveness.challenge import PROMPT_BLINK, TurnDetector, landmark_yaw
from desktop.face.liveness.passive import PassiveJudge, PassiveThresholds, vote
from desktop.face.liveness.volume import WindowEvidence


# -- geometry ---------------------------------------------------------------------------
def project(points3d: np.ndarray, rotation: np.ndarray, t: np.ndarray, f: float = 500.0):
    cam = points3d @ rotation.T + t
    return f * cam[:, :2] / cam[:, 2:3] + 320.0


def rot_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


@pytest.fixture
def cloud():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-0.08, 0.08, (40, 2))
    return xy


def test_a_tilted_plane_fits_a_homography_exactly_and_shows_foreshortening(cloud):
    flat = np.c_[cloud, np.zeros(len(cloud))]
    a = project(flat, np.eye(3), np.array([0, 0, 0.5]))
    b = project(flat, rot_y(20), np.array([0.01, 0, 0.5]))
    h = geometry.fit_homography(a, b)
    assert h is not None
    assert geometry.transfer_errors(h, a, b).max() < 1e-3  # pixels
    assert geometry.non_similarity(h, a) > 0.5  # pixels: a tilt is not a similarity
    shift = geometry.fit_homography(a, a + 3.0)
    assert geometry.non_similarity(shift, a) < 1e-3


def test_a_turning_3d_head_leaves_parallax_the_plane_cannot_explain(cloud):
    depth = 0.04 * np.cos(cloud[:, 0] / 0.08 * 1.5)  # a nose-and-cheeks bump, metres
    head = np.c_[cloud, -depth]
    a = project(head, np.eye(3), np.array([0, 0, 0.5]))
    b = project(head, rot_y(8), np.array([0, 0, 0.5]))
    h = geometry.fit_homography(a, b, tolerance=0.1)
    if h is None:  # RANSAC found no plane among the points: a 3-D object anyway
        return
    errors = geometry.transfer_errors(h, a, b)
    assert np.median(errors) > 1.0
    residual = b - geometry.transfer(h, a)
    assert geometry.parallax_share(a, residual) > 0.9  # rigid 3-D: along the epipolar lines
    noise = np.random.default_rng(0).normal(0, 1, residual.shape)
    assert geometry.parallax_share(a, noise) < 0.75


def test_too_few_points_or_flat_patches_give_no_answer():
    pts = np.zeros((4, 2))
    assert geometry.fit_homography(pts, pts) is None
    assert geometry.ncc(np.ones((5, 5)), np.ones((5, 5))) is None
    a = np.arange(25.0).reshape(5, 5)
    assert geometry.ncc(a, 2 * a + 1) == pytest.approx(1.0)


# -- passive votes ------------------------------------------------------------------------
def evidence(**kw) -> WindowEvidence:
    base = dict(start_frame=0, end_frame=15, points=30, planar_residual=0.002,
                parallax_share=0.5, deformation=0.0, motion=0.05, surround_sides=4,
                surround_moving=0, camera_moved=False, speed=0.01, face_ncc=0.95)
    base.update(kw)
    return WindowEvidence(**base)


def test_each_vote_and_the_verdict_margins():
    t = PassiveThresholds()
    assert vote(evidence(planar_residual=0.03, face_ncc=0.5), t) == "moves_in_3d"
    # too fast: motion blur and tracking errors make a waved picture look 3-D too
    assert vote(evidence(planar_residual=0.03, face_ncc=0.5, speed=0.2), t) is None
    assert vote(evidence(deformation=0.02, planar_residual=0.002), t) == "flat_motion"
    assert vote(evidence(deformation=0.004), t) is None  # no foreshortening: no evidence
    assert vote(evidence(surround_moving=3), t) == "moving_surround"
    assert vote(evidence(surround_moving=3, camera_moved=True), t) is None

    live = PassiveJudge()
    assert live.add(evidence(planar_residual=0.03, face_ncc=0.5)) == "undecided"
    assert live.add(evidence(planar_residual=0.05, face_ncc=0.4)) == "live"
    assert (live.reason, live.decided_window) == ("moves_in_3d", 2)
    spoof = PassiveJudge()
    for _ in range(2):
        assert spoof.add(evidence(deformation=0.02)) == "undecided"
    spoof.add(evidence(planar_residual=0.03, face_ncc=0.5))  # one live vote delays it
    verdicts = [spoof.add(evidence(deformation=0.02)) for _ in range(2)]
    assert verdicts == ["undecided", "spoof"] and spoof.reason == "flat_motion"
    assert spoof.add(evidence(planar_residual=0.09, face_ncc=0.1)) == "spoof"  # final


# -- eye aspect ratio, blink and yaw on synthetic landmark tracks ----------------------------
def test_eye_aspect_ratio_of_open_and_closed_eyes():
    lm = face68()
    assert 0.25 < eye_aspect_ratio(lm[36:42]) < 0.4
    assert eye_aspect_ratio(close_eyes(lm, 0.9)[36:42]) < 0.05
    with pytest.raises(ValueError, match="68 landmarks"):
        BlinkDetector().update(0.0, lm[:5])


def test_the_blink_detector_fires_once_on_a_blink_and_never_on_open_eyes():
    blink = BlinkDetector()
    fired = [t for t, lm in blink_track(face68()) if blink.update(t, lm)]
    assert len(fired) == 1 and blink.blinks == 1
    still = BlinkDetector()
    assert not any(still.update(t, lm) for t, lm in blink_track(face68(), closes=False, seed=1))


def test_a_photo_tipped_back_is_not_a_blink():
    """Tipping a picture squashes the eyes and the whole face alike: not a blink."""
    detector = BlinkDetector()
    lm0 = face68()
    centre = lm0.mean(axis=0)
    squash = [1.0] * 20 + [0.8, 0.6, 0.55, 0.6, 0.8] + [1.0] * 10
    fired = []
    for i, k in enumerate(squash):
        lm = centre + (lm0 - centre) * np.array([1.0, k])
        fired.append(detector.update(i / 30.0, lm))
    assert not any(fired)


def test_yaw_follows_the_nose_between_the_jaw_ends_and_a_turn_fires():
    lm = face68()
    assert abs(landmark_yaw(lm)) < 1e-6
    turned = lm.copy()
    turned[27:36, 0] += 20.0  # nose towards one jaw end: 20 px of a 100 px jaw span
    assert landmark_yaw(turned) == pytest.approx(0.4, abs=0.01)
    turn = TurnDetector(turn_yaw=0.25, turn_frames=2)
    sequence = [lm] * 5 + [turned] * 3
    assert [turn.update(x) for x in sequence][-3:] == [False, True, True]


# -- the monitor's states, with a fake 68-point model ------------------------------------
class ScriptedLandmarks:
    """A stand-in for the 68-point model: answers from a list of landmark sets in turn."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def predict(self, grey, boxes, round_to_pixels=True):
        lm = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return np.repeat(lm[None], len(boxes), axis=0)


def still_frames(n: int):
    rng = np.random.default_rng(5)
    import cv2

    base = cv2.GaussianBlur(rng.uniform(0, 255, (240, 320)).astype(np.float32), (0, 0), 2)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    for _ in range(n):
        yield np.clip(base + rng.normal(0, 1.0, base.shape), 0, 255).astype(np.uint8)


def run_monitor(monitor: LivenessMonitor, frames: int, fps: float = 30.0):
    box = (110, 70, 100, 100)
    states = []
    for i, grey in enumerate(still_frames(frames)):
        monitor.observe(grey, i, i / fps, [(7, box)])
        states.append(monitor.status(7))
    return states


def test_a_still_face_is_challenged_and_passes_with_a_blink():
    open_face = face68()
    script = [lm for _, lm in blink_track(open_face)]
    model = ScriptedLandmarks([open_face] * 0 + script)
    monitor = LivenessMonitor(LivenessSettings(mode="challenge"), LandmarkModel.ready(model))
    states = run_monitor(monitor, 30 + len(script) + 5)
    assert states[0].state == CHECKING and states[0].prompt is None
    asked = [s for s in states if s.state == CHALLENGE]
    assert asked and asked[0].prompt == PROMPT_BLINK and asked[0].seconds_left <= 6.0
    final = states[-1]
    assert final.state == LIVE and final.how == "blink" and final.passed
    assert final.to_json()["verdict"] == "live"


def test_no_answer_to_the_challenge_times_out_to_refused():
    model = ScriptedLandmarks([face68()])
    settings = LivenessSettings(mode="challenge")
    monitor = LivenessMonitor(settings, LandmarkModel.ready(model))
    states = run_monitor(monitor, round(30 * (1.0 + settings.challenge.timeout_s)) + 3)
    final = states[-1]
    assert final.state == FAILED and final.refused
    assert final.reason == "no blink or head turn seen"
    assert final.to_json()["verdict"] == "spoof"


def test_passive_mode_never_challenges_and_never_loads_the_68_point_model():
    loads = []
    landmarks = LandmarkModel(lambda: loads.append(1))
    monitor = LivenessMonitor(LivenessSettings(mode="passive"), landmarks)
    states = run_monitor(monitor, 90)
    assert {s.state for s in states} == {CHECKING}
    assert not loads and not landmarks.loading


def test_forgotten_and_restarted_tracks_start_over():
    model = ScriptedLandmarks([face68()])
    monitor = LivenessMonitor(LivenessSettings(mode="challenge"), LandmarkModel.ready(model))
    run_monitor(monitor, 40)
    assert monitor.status(7).state == CHALLENGE
    monitor.restart(7)
    assert monitor.status(7).state == CHECKING
    monitor.forget([])
    assert monitor.statuses() == {}
    with pytest.raises(ValueError, match="liveness mode"):
        LivenessSettings(mode="sometimes")


def test_a_turn_counts_only_when_the_face_also_moved_out_of_its_plane():
    from desktop.face.liveness.challenge import Challenge

    lm = face68()
    turned = lm.copy()
    turned[27:36, 0] += 30.0
    flat, solid = Challenge(0.0), Challenge(0.0)
    for i, x in enumerate([lm] * 5 + [turned] * 4):
        flat.update(i / 30, x, turn_allowed=False)
        solid.update(i / 30, x, turn_allowed=True)
    assert flat.passed is None and solid.passed == "turn"


def test_every_default_landmark_model_shares_one_parse_of_the_file(monkeypatch):
    """Two pipelines asking at once get the same 68-point model from one parse (the second
    loader waits for the first instead of parsing the 100 MB file beside it)."""
    import threading
    import time

    from desktop.face.landmarks import ShapePredictor
    from desktop.face.liveness import landmarks68

    parses = []
    release = threading.Event()

    def parse(cls, **kwargs):
        parses.append(threading.get_ident())
        release.wait(5)
        return object()

    monkeypatch.setattr(landmarks68, "_shared", None)
    monkeypatch.setattr(ShapePredictor, "load_68", classmethod(parse))
    first, second = LandmarkModel(), LandmarkModel()
    first.request()
    second.request()
    time.sleep(0.05)  # both loader threads are in: one parsing, one waiting
    assert first.get() is None and second.get() is None and len(parses) == 1
    release.set()
    assert first.wait(5) is second.wait(5) is not None
    assert len(parses) == 1
    assert LandmarkModel().wait(5) is first.get()  # a later one too, at once
