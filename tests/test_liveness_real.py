"""Liveness with the real models: blinks on the 68-point landmarks of real faces (the
model's mean face, and a faces-dev photo) with the eyelid points moved, and the clip's
Lin-Manuel Miranda close-up judged live by ``facestyle liveness`` within a second."""

from __future__ import annotations

import json

import numpy as np
import pytest
from liveness_helpers import blink_track, close_eyes

from desktop import cli
from desktop.face.liveness.blink import BlinkDetector, eye_aspect_ratio, mean_eye_aspect_ratio
from desktop.face.liveness.challenge import landmark_yaw

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model68():
    from desktop.face.landmarks import ShapePredictor

    return ShapePredictor.load_68(use_cache=False)  # each test has its own cache folder


def fires(open_face: np.ndarray, closes: bool) -> int:
    detector = BlinkDetector()
    return sum(detector.update(t, lm) for t, lm in blink_track(open_face, closes=closes))


def check_real_face(lm: np.ndarray) -> None:
    assert lm.shape == (68, 2)
    assert 0.18 < mean_eye_aspect_ratio(lm) < 0.45  # open eyes
    assert abs(landmark_yaw(lm)) < 0.4  # roughly facing the camera (-1..1)
    assert eye_aspect_ratio(close_eyes(lm, 1.0)[36:42]) < 0.02
    assert fires(lm, closes=True) == 1
    assert fires(lm, closes=False) == 0


def test_a_blink_on_the_68_point_models_mean_face(model68):
    """The model's mean shape (unit box) in a 200-pixel box: an average real face."""
    lm = np.asarray(model68.initial_shape, np.float64) * 200.0 + 100.0
    check_real_face(lm)


@pytest.mark.shared_data
def test_a_blink_on_the_landmarks_of_a_faces_dev_photo(shared_data, model68):
    from desktop.face.api import FaceEngine
    from desktop.imageio import load_rgb

    image = load_rgb(shared_data / "faces-dev" / "knn" / "train" / "biden" / "biden.jpg")
    box = FaceEngine().detect_boxes(image)[0].box
    [lm] = model68.predict(image, np.array([box], np.float64), round_to_pixels=False)
    x, y, w, h = box
    inside = (lm[:, 0] >= x - 0.1 * w) & (lm[:, 0] <= x + 1.1 * w) & (lm[:, 1] >= y - 0.3 * h)
    assert inside.all()  # the points are on the face
    check_real_face(np.asarray(lm, np.float64))


@pytest.mark.shared_data
def test_the_clips_lin_manuel_close_up_is_judged_live_within_a_second(shared_data, tmp_path,
                                                                     capsys):
    clip = shared_data / "faces-dev" / "video" / "short_hamilton_clip.mp4"
    out = tmp_path / "tracks.jsonl"
    assert cli.main(["liveness", str(clip), "--mode", "passive", "--max-frames", "211",
                     "--jsonl", str(out)]) == 0
    tracks = [json.loads(line) for line in out.read_text().splitlines()]
    close_up = [t for t in tracks if t["first_frame"] >= 80 and t["frames"] >= 60]
    assert close_up, tracks
    for t in close_up:
        assert t["verdict"] == "live" and t["how"] == "moves_in_3d", t
        assert t["decided_frames"] <= 30  # 1 s at the clip's 30 frames/s
        assert t["scores"]["votes"].get("moves_in_3d", 0) >= 2
    assert not [t for t in tracks if t["verdict"] == "spoof"]
    printed = capsys.readouterr().out
    assert "live (moves_in_3d) after" in printed and "face tracks" in printed
