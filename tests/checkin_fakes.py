"""Clips, captures and engines for the Check-in tab tests (no shared data, no models).

Faces follow ``live_fakes``' convention (a textured square whose blue channel carries the
person's code, found by ``live_fakes.FakeEngine``), drawn large (120 px) with a fine
texture so that they pass the enrolment checks (one face, >= 100 px, sharp, frontal).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from live_fakes import CODES, FakeEngine, background, embedding_of, fake_landmarks

from desktop.store import Gallery, NewTemplate

W, H = 640, 360
FACE_PX = 120


def face_patch(who: str, size: int = FACE_PX) -> np.ndarray:
    rng = np.random.default_rng(CODES[who])
    coarse = rng.integers(30, 225, size=(size // 2, size // 2, 2)).astype(np.uint8)
    patch = np.empty((size, size, 3), np.uint8)
    patch[..., :2] = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_NEAREST)
    patch[..., 2] = CODES[who]
    return patch


def frame_with(people: Sequence[tuple[str, int, int]], seed: int = 0) -> np.ndarray:
    """A 640x360 RGB frame with each (who, x, y) face pasted at its top-left corner."""
    img = background(W, H, seed)
    for who, x, y in people:
        p = face_patch(who)
        img[y:y + FACE_PX, x:x + FACE_PX] = p[:H - y, :W - x]
    return img


def walking(who: str, n: int, x0: int = 60, step: int = 4) -> list[np.ndarray]:
    """``n`` frames of ``who`` crossing the frame, ``step`` px per frame."""
    return [frame_with([(who, x0 + step * i, 110 + (i % 5))]) for i in range(n)]


def write_clip(path: Path, frames: Sequence[np.ndarray], fps: float = 20.0) -> Path:
    """RGB frames to an MJPG .avi (a video file stands in for a camera)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened(), "cv2.VideoWriter cannot write MJPG here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def enrol_fake(gallery: Gallery, who: str, name: str | None = None,
               model_id: str = FakeEngine.model_id) -> int:
    """Enrol ``who`` (as ``name``) with the fake engine's descriptor of their face."""
    engine = FakeEngine()
    chip = cv2.resize(face_patch(who), (150, 150))
    emb = engine.embed(chip[None])[0] if model_id == FakeEngine.model_id else embedding_of(who)
    person = gallery.enrol(name or who.title(), [NewTemplate(chip, emb, model_id, "", "file")])
    return person.id


#: dlib's 5 points for a frontal face in a box (the live fakes' own landmarks).
frontal_landmarks = fake_landmarks

#: The live fakes' engine serves the Check-in UI tests as it is.
CheckinEngine = FakeEngine


class FrameCapture:
    """A cv2.VideoCapture stand-in for a camera: serves ``frames`` in a loop (as BGR), at
    about ``fps``, and fails (read -> False) after ``fail_after`` reads."""

    def __init__(self, frames: Sequence[np.ndarray], fail_after: int | None = None,
                 fps: float = 30.0) -> None:
        self.frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
        self.fail_after = fail_after
        self.period = 1.0 / fps
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return True

    def read(self):
        time.sleep(self.period)
        if self.fail_after is not None and self.reads >= self.fail_after:
            return False, None
        frame = self.frames[self.reads % len(self.frames)]
        self.reads += 1
        return True, frame.copy()

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


class CaptureSequence:
    """A capture factory handing out the given captures in turn (the last one forever)."""

    def __init__(self, *captures: FrameCapture) -> None:
        self.captures = list(captures)
        self.opened = 0

    def __call__(self, source):
        cap = self.captures[min(self.opened, len(self.captures) - 1)]
        self.opened += 1
        return cap


class BusyEngine(CheckinEngine):
    """The fake engine plus real CPU work per call, like a model: a torch matrix product
    (which releases the GIL, as a real network does) and a little numpy."""

    def __init__(self, torch_ms: float = 25.0) -> None:
        super().__init__()
        self.torch_ms = torch_ms
        self.a = torch.randn(384, 384)

    def _work(self) -> None:
        end = time.perf_counter() + self.torch_ms / 1000
        with torch.no_grad():
            while time.perf_counter() < end:
                self.a = torch.tanh(self.a @ self.a * 0.01)

    def detect(self, image):
        self._work()
        return super().detect(image)

    def embed(self, chips):
        self._work()
        return super().embed(chips)


def unlock(qtbot, dialog, pin: str, again: str | None = None) -> None:
    """Type ``pin`` (twice when setting it) and submit; waits until the check is done."""
    dialog.pin_edit.setText(pin)
    if dialog.create:
        dialog.confirm_edit.setText(pin if again is None else again)
    dialog.submit()
    qtbot.waitUntil(lambda: dialog._worker is None, timeout=10_000)
