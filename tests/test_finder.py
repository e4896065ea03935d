"""FaceFinder: whole-frame scans, re-detection around a box (small faces enlarged, large
ones reduced) mapped back to frame pixels, chips only for what is embedded."""

from __future__ import annotations

import numpy as np
import pytest
from live_fakes import FakeEngine, MinimalEngine, draw_face, scene

from desktop.face.finder import FaceFinder


@pytest.mark.parametrize("size", [40, 64, 200])
@pytest.mark.parametrize("engine_cls", [FakeEngine, MinimalEngine])
def test_around_finds_the_face_and_maps_it_back_to_frame_pixels(size, engine_cls):
    image = scene([], width=640, height=400)
    draw_face(image, "ann", 300, 120, size=size)
    draw_face(image, "bob", 40, 40)  # another face, outside the region
    finder = FaceFinder(engine_cls())
    last_seen = np.array([300 + size * 0.05, 120 - size * 0.05, size, size])  # drifted a bit
    face = finder.around(image, last_seen, face_px=90, grow=1.8)
    assert face is not None
    x, y, w, h = face.box
    tol = max(2, size // 20)
    assert abs(x - 300) <= tol and abs(y - 120) <= tol
    assert abs(w - size) <= tol and abs(h - size) <= tol


def test_around_returns_none_where_the_face_has_gone():
    finder = FaceFinder(FakeEngine())
    assert finder.around(scene([]), np.array([100, 100, 64, 64])) is None
    assert finder.around(scene([]), np.array([-500, -500, 64, 64])) is None  # off the frame


def test_scan_gives_boxes_and_complete_cuts_chips_from_the_full_frame():
    engine = FakeEngine()
    finder = FaceFinder(engine)
    image = scene([("ann", 20, 30), ("bob", 200, 100)])
    faces = finder.scan(image)
    assert sorted(f.box for f in faces) == [(20, 30, 64, 64), (200, 100, 64, 64)]
    assert all(f.chip is None for f in faces)  # no landmarks or chips yet
    finder.complete(image, faces[:1])
    assert engine.landmarks.calls == 1
    assert faces[0].chip.shape == (150, 150, 3) and faces[0].landmarks.shape == (5, 2)
    assert faces[1].chip is None
    # The chip is the aligned face: its centre carries the face's code, not the background.
    who = "ann" if faces[0].box[0] == 20 else "bob"
    expected = {"ann": 230, "bob": 160}[who]
    assert abs(float(np.median(faces[0].chip[50:100, 50:100, 2])) - expected) < 3


def test_a_minimal_engine_keeps_its_own_chips():
    finder = FaceFinder(MinimalEngine())
    faces = finder.scan(scene([("ann", 20, 30)]))
    assert faces[0].chip is not None
    finder.complete(scene([]), faces)  # nothing to do
