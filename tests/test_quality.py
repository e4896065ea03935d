"""Enrolment quality checks: face count, size, framing, sharpness, pose, exposure."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.face.align import extract_chips, template_points
from desktop.face.quality import (
    QualityThresholds,
    assess,
    brightness,
    face_size_px,
    head_pose,
    in_frame_fraction,
    sharpness,
)
from desktop.face.types import Face

THRESHOLDS = QualityThresholds()


def _landmarks(side: float, centre=(320.0, 240.0), roll_deg: float = 0.0) -> np.ndarray:
    """Frontal landmarks (the chip template) for a face chip ``side`` image pixels wide."""
    a = math.radians(roll_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (template_points() - 75) * (side / 150) @ rot.T + np.asarray(centre)


def _projected_landmarks(yaw_deg: float, pitch_deg: float = 0.0, eye_px: float = 60.0):
    """5 landmarks of a simple 3-D head (eyes in a plane, nose base 0.32 eye distances in
    front and 0.77 below), turned by ``yaw_deg`` and tipped by ``pitch_deg``, seen from
    the front in an orthographic camera."""
    e = eye_px
    head = np.array([  # x right, y down, z towards the camera; dlib's 5-point order
        [0.70 * e, 0, 0], [0.30 * e, 0, 0], [-0.70 * e, 0, 0], [-0.30 * e, 0, 0],
        [0, 0.77 * e, 0.32 * e],
    ])
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    turn = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    tip = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    return (head @ turn.T @ tip.T)[:, :2] + [320, 240]


def _textured_image(rng: np.random.Generator, h=480, w=640, sigma=1.0) -> np.ndarray:
    noise = rng.integers(40, 216, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), sigma)


def _face(landmarks: np.ndarray, box_side: float | None = None) -> Face:
    side = box_side if box_side is not None else 1.0 * np.ptp(landmarks[:, 0]) / 0.5
    x, y = landmarks[:, 0].mean() - side / 2, landmarks[:, 1].mean() - side / 2
    return Face(box=(int(x), int(y), int(side), int(side)), score=1.0,
                landmarks=landmarks.astype(np.float32))


# -- pose ------------------------------------------------------------------------------
def test_frontal_template_pose() -> None:
    pose = head_pose(_landmarks(200))
    assert pose.roll_deg == pytest.approx(0, abs=0.1)
    assert pose.yaw == pytest.approx(0, abs=0.01)
    assert 0.7 < pose.pitch < 0.85


def test_pose_is_independent_of_scale_position_and_roll() -> None:
    base = head_pose(_landmarks(200))
    moved = head_pose(_landmarks(90, centre=(50, 400), roll_deg=30))
    assert moved.roll_deg - base.roll_deg == pytest.approx(30, abs=1e-9)
    assert moved.yaw == pytest.approx(base.yaw, abs=1e-9)
    assert moved.pitch == pytest.approx(base.pitch, abs=1e-9)


def test_yaw_grows_with_head_turn_and_has_a_sign() -> None:
    yaws = [head_pose(_projected_landmarks(deg)).yaw for deg in (-60, -30, -10, 0, 10, 30, 60)]
    assert yaws == sorted(yaws) and yaws[3] == pytest.approx(0, abs=1e-9)
    assert abs(head_pose(_projected_landmarks(15)).yaw) < THRESHOLDS.max_yaw
    assert abs(head_pose(_projected_landmarks(50)).yaw) > THRESHOLDS.max_yaw


def test_chin_raised_lowers_pitch() -> None:
    level = head_pose(_projected_landmarks(0, 0)).pitch
    raised = head_pose(_projected_landmarks(0, -50)).pitch
    assert raised < THRESHOLDS.min_pitch < level < THRESHOLDS.max_pitch


# -- image measures ------------------------------------------------------------------
def test_sharpness_drops_with_blur_and_brightness_is_the_mean() -> None:
    rng = np.random.default_rng(0)
    chip = _textured_image(rng, 150, 150, sigma=1.0)
    blurred = cv2.GaussianBlur(chip, (0, 0), 3)
    assert sharpness(chip) > THRESHOLDS.min_sharpness > sharpness(blurred)
    flat = np.full((150, 150, 3), 77, np.uint8)
    assert sharpness(flat) == 0 and brightness(flat) == pytest.approx(77)


def test_in_frame_fraction() -> None:
    assert in_frame_fraction((480, 640), _landmarks(200)) == 1.0
    half = in_frame_fraction((480, 640), _landmarks(200, centre=(0, 240)))
    assert 0.4 < half < 0.6
    assert in_frame_fraction((480, 640), _landmarks(200, centre=(-900, 240))) == 0.0


def test_face_size_uses_the_box_or_the_landmarks() -> None:
    lm = _landmarks(150)
    assert face_size_px(Face(box=(0, 0, 120, 130), score=1, landmarks=lm)) == 130
    from_landmarks = face_size_px(Face(box=(0, 0, 0, 0), score=1, landmarks=lm))
    assert 120 < from_landmarks < 140  # a 150 px chip holds a ~100 px face square


# -- verdicts --------------------------------------------------------------------------
def test_a_good_frame_passes() -> None:
    image = _textured_image(np.random.default_rng(1))
    verdict = assess(image, [_face(_landmarks(200))])
    assert verdict.ok, verdict.reasons
    assert verdict.reasons == [] and verdict.face_index == 0
    assert set(verdict.metrics) >= {"faces", "face_px", "sharpness", "yaw", "roll_deg"}


def test_no_face_and_several_faces() -> None:
    image = _textured_image(np.random.default_rng(2))
    none = assess(image, [])
    assert not none.ok and none.codes == ["no_face"] and "No face" in none.reasons[0]
    small, big = _face(_landmarks(150, centre=(150, 200))), _face(_landmarks(220, (450, 240)))
    two = assess(image, [small, big])
    assert not two.ok and two.codes == ["several_faces"]
    assert two.reasons[0].startswith("Two faces")
    assert two.face_index == 1  # the larger face is the one measured


def test_each_problem_is_reported_with_its_reason() -> None:
    rng = np.random.default_rng(3)
    image = _textured_image(rng)
    cases = {
        "too_small": (image, _face(_landmarks(60), box_side=60)),
        "cut_off": (image, _face(_landmarks(200, centre=(20, 240)))),
        "too_blurry": (cv2.GaussianBlur(image, (0, 0), 4), _face(_landmarks(200))),
        "turned": (image, _face(_projected_landmarks(55, eye_px=90), box_side=200)),
        "tilted": (image, _face(_landmarks(200, roll_deg=40))),
        "chin": (image, _face(_projected_landmarks(0, -55, eye_px=90), box_side=200)),
        "too_dark": ((image * 0.15).astype(np.uint8), _face(_landmarks(200))),
    }
    for code, (img, face) in cases.items():
        verdict = assess(img, [face])
        assert not verdict.ok and code in verdict.codes, (code, verdict.codes)
        assert len(verdict.reasons) == len(verdict.codes)
    words = assess(image, [_face(_landmarks(60), box_side=60)]).reasons
    assert words[0] == "Face too small. Come closer."
    photo = assess(image, [_face(_landmarks(60), box_side=60)], source="photo").reasons
    assert photo[0] == "The face is too small in this photo."


def test_thresholds_can_be_relaxed() -> None:
    image = _textured_image(np.random.default_rng(4))
    face = _face(_landmarks(200, roll_deg=40))
    assert not assess(image, [face]).ok
    assert assess(image, [face], QualityThresholds(max_roll_deg=45)).ok


def test_uses_the_faces_chip_when_present() -> None:
    image = _textured_image(np.random.default_rng(5))
    face = _face(_landmarks(200))
    face.chip = np.full((150, 150, 3), 128, np.uint8)  # featureless: cannot be sharp
    assert "too_blurry" in assess(image, [face]).codes
    face.chip = extract_chips(image, face.landmarks)[0]
    assert assess(image, [face]).ok


# -- the real photos -----------------------------------------------------------------
def _around_face(image: np.ndarray, box, landmarks: np.ndarray):
    """The photo cropped to the face box grown by a box on each side (keeps tests fast),
    with the box and landmarks moved to match."""
    x, y, w, h = box
    left, top = max(0, x - w), max(0, y - h)
    crop = np.ascontiguousarray(image[top : y + 2 * h, left : x + 2 * w])
    return crop, (x - left, y - top, w, h), (landmarks - [left, top]).astype(np.float32)


@pytest.mark.shared_data
def test_faces_dev_photos(shared_data: Path) -> None:
    """Single-face portraits pass; blurred copies fail as too blurry; group photos fail
    with the face count; a strongly rotated copy fails as tilted."""
    pytest.importorskip("dlib")
    from faces_dev_reference import reference_faces

    by_photo = defaultdict(list)
    for ref in reference_faces(shared_data):
        by_photo[ref.photo].append(ref)
    portraits = [p for p in by_photo if p.startswith("knn/train/")]
    assert len(portraits) >= 8
    for photo in portraits:
        (ref,) = by_photo[photo]
        image, box, landmarks = _around_face(ref.image, ref.box, ref.landmarks)
        face = Face(box=box, score=1.0, landmarks=landmarks)
        verdict = assess(image, [face])
        assert verdict.ok, (photo, verdict.reasons, verdict.metrics)
        chip_scale = box[2] / 150  # roughly image pixels per chip pixel
        blurred = cv2.GaussianBlur(image, (0, 0), 2.5 * chip_scale)
        assert assess(blurred, [face]).codes == ["too_blurry"], photo
        # Turn the picture by 40 degrees: the landmarks turn with it.
        h, w = image.shape[:2]
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), 40, 1.0)
        rotated = cv2.warpAffine(image, turn, (w, h))
        lm = landmarks @ turn[:, :2].T + turn[:, 2]
        tilted = assess(rotated, [Face(box=box, score=1.0, landmarks=lm)])
        assert "tilted" in tilted.codes, (photo, tilted.codes)
    group = by_photo["knn/test/obama_and_biden.jpg"]
    faces = [Face(box=r.box, score=1.0, landmarks=r.landmarks) for r in group]
    verdict = assess(group[0].image, faces)
    assert "several_faces" in verdict.codes and verdict.reasons[0].startswith("Three faces")
