"""Generated presentation attacks (simulated: a still picture warped by a moving
homography, with print or phone looks, motion blur, glare, noise and JPEG; no video file
is written) through the liveness monitor, with the picture's true face box on each frame.

Without shared data the picture is a textured card (the passive checks need texture, not
a face); with it, faces-dev's enrolment photos. No attack may ever be judged live; the
ones that tilt or wave the picture must be refused by the passive checks alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from desktop.face.liveness import LandmarkModel, LivenessMonitor, LivenessSettings, attacks

NO_LANDMARKS = LandmarkModel.ready(None)  # passive mode never needs them


def textured_card(width: int = 200, height: int = 260, seed: int = 0) -> np.ndarray:
    """A picture with a face-sized textured oval in it (RGB uint8)."""
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (height // 6, width // 6, 3)).astype(np.float32)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.ellipse(img, (width // 2, height // 2), (width // 4, height // 3), 0, 0, 360,
                (200, 160, 140), 3)
    return img


def judge_attack(picture: np.ndarray, face: tuple[float, float, float, float],
                 motion: str, scene: attacks.Scene, seconds: float = 2.5):
    """The monitor's statuses, frame by frame, for one attack clip (passive mode)."""
    monitor = LivenessMonitor(LivenessSettings(mode="passive"), NO_LANDMARKS)
    size = (picture.shape[1], picture.shape[0])
    boxes = attacks.picture_boxes(size, face, motion, scene, seconds=seconds)
    statuses = []
    for i, (frame, box) in enumerate(zip(attacks.attack_frames(picture, motion, scene,
                                                               seconds=seconds), boxes,
                                         strict=True)):
        monitor.observe(frame, i, i / scene.fps, [(1, box)])
        statuses.append(monitor.status(1))
    return statuses


def on_card(kind: str, seed: int = 0):
    """(picture, face box in picture pixels, scene) for a print or a phone of the card."""
    card = textured_card(seed=seed)
    h, w = card.shape[:2]
    face = (w * 0.25, h * 0.18, w * 0.5, h * 0.55)
    if kind == "print":
        picture = attacks.printed(card, seed=seed)
        pad = (picture.shape[1] - w) // 2
        return picture, (face[0] + pad, face[1] + pad, face[2], face[3]), attacks.Scene(seed=seed)
    picture = attacks.on_phone(card, seed=seed)
    side = (picture.shape[1] - w) // 2
    cap = (picture.shape[0] - h) // 2
    scene = attacks.Scene(seed=seed, picture_width_m=0.07, distance_m=0.22)
    return picture, (face[0] + side, face[1] + cap, face[2], face[3]), scene


def test_the_generated_frames_are_seeded_and_the_boxes_follow_the_picture():
    picture, face, scene = on_card("print")
    a = list(attacks.attack_frames(picture, "wave", scene, seconds=0.2))
    b = list(attacks.attack_frames(picture, "wave", scene, seconds=0.2))
    assert len(a) == 6 and a[0].shape == (360, 640, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    boxes = attacks.picture_boxes((picture.shape[1], picture.shape[0]), face, "wave", scene,
                                  seconds=0.2)
    x, y, w, h = (int(v) for v in boxes[0])
    inside = a[0][y + h // 4:y + 3 * h // 4, x + w // 4:x + 3 * w // 4].astype(float)
    assert inside.std() > 20  # the card's texture is where the box says


@pytest.mark.parametrize("kind", ["print", "phone"])
@pytest.mark.parametrize("motion", ["tilt", "wave"])
def test_a_tilted_or_waved_picture_is_refused_and_never_judged_live(kind, motion):
    picture, face, scene = on_card(kind, seed=3)
    statuses = judge_attack(picture, face, motion, scene)
    assert not any(s.passed for s in statuses)
    final = statuses[-1]
    assert final.state == "spoof", final.scores
    assert final.reason in ("photo suspected", "photo or screen suspected")
    assert final.decided_frames is not None and final.decided_frames <= 75


@pytest.mark.parametrize("motion", ["still", "sway", "approach"])
def test_a_picture_held_still_slid_or_brought_closer_is_never_judged_live(motion):
    picture, face, scene = on_card("print", seed=4)
    statuses = judge_attack(picture, face, motion, scene)
    assert not any(s.passed for s in statuses)


@pytest.fixture(scope="module")
def face_engine():
    api = pytest.importorskip("desktop.face.api")
    return api.FaceEngine()


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_faces_dev_photo_as_print_and_phone_is_never_judged_live(shared_data, face_engine):
    """Every motion, print and phone (bench/liveness.py runs all ten enrolment photos)."""
    rel = "knn/train/rose_leslie/img1.jpg"
    from desktop.imageio import load_rgb

    photo = load_rgb(shared_data / "faces-dev" / rel)
    box = face_engine.detect_boxes(photo)[0].box
    x0, y0, _, _ = attacks.head_crop_box(photo.shape, box)
    crop = attacks.head_crop(photo, box)
    k = min(1.0, 300 / crop.shape[1])  # small enough for attack_frames to use as it is
    crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    x, y, w, h = box
    face = ((x - x0) * k, (y - y0) * k, w * k, h * k)
    refused = 0
    for kind in ("print", "phone"):
        if kind == "print":
            picture, scene = attacks.printed(crop, seed=1), attacks.Scene()
        else:
            picture = attacks.on_phone(crop, seed=1)
            scene = attacks.Scene(picture_width_m=0.07, distance_m=0.22)
        dx = (picture.shape[1] - crop.shape[1]) // 2
        dy = (picture.shape[0] - crop.shape[0]) // 2
        where = (face[0] + dx, face[1] + dy, face[2], face[3])
        for motion in attacks.MOTIONS:
            statuses = judge_attack(picture, where, motion, scene)
            assert not any(s.passed for s in statuses), (kind, motion)
            refused += statuses[-1].refused
    assert refused >= 4  # at least tilt and wave, print and phone
