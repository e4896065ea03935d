"""Synthetic scenes, a fake face engine and matcher, and fake captures for the live
pipeline tests. Nothing here needs shared data or model files.

A scene is a textured grey background with square "faces": textured patches whose blue
channel carries the person's code (ann 230, bob 160, a stranger 195). The fake engine
finds them by thresholding blue, cuts a chip from the box, and embeds a chip as a one-hot
vector of the nearest code (plus a small offset, so d is small but not zero).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from desktop.face.pipeline import Identity
from desktop.face.types import Face

CODES = {"ann": 230, "bob": 160, "stranger": 195}
FACE = 64  # side of a synthetic face, px


def _texture(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 215, size=(size // 4, size // 4, 2)).astype(np.uint8)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)


def background(width: int = 320, height: int = 240, seed: int = 0, level: int = 100) -> np.ndarray:
    """Textured grey-green around ``level`` (another seed and level: another shot)."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    coarse = rng.integers(level - 40, level + 40, size=(height // 8, width // 8, 2))
    coarse = coarse.astype(np.uint8)
    img[..., :2] = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    img[..., 2] = 90
    return img


def draw_face(img: np.ndarray, who: str, x: int, y: int, size: int = FACE) -> None:
    """Paste ``who``'s face with its top-left corner at (x, y) (clipped to the image)."""
    patch = np.empty((size, size, 3), np.uint8)
    patch[..., :2] = _texture(CODES[who], size)
    patch[..., 2] = CODES[who]
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + size), min(h, y + size)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def scene(people: Sequence[tuple[str, int, int]], width: int = 320, height: int = 240,
          bg_seed: int = 0, bg_level: int = 100) -> np.ndarray:
    img = background(width, height, bg_seed, bg_level)
    for who, x, y in people:
        draw_face(img, who, x, y)
    return img


def walk(who: str, n: int, start=(20, 60), step=(3, 1)) -> list[list[tuple[str, int, int]]]:
    """``n`` frames of one person moving ``step`` px per frame."""
    return [[(who, start[0] + step[0] * i, start[1] + step[1] * i)] for i in range(n)]


def fake_landmarks(box) -> np.ndarray:
    """Five points placed in a box as dlib's 5-point model would on a frontal face: points
    0-1 are the eye on the image's right (outer, inner corner), 2-3 the eye on its left,
    4 the bottom of the nose."""
    x, y, w, h = box
    rel = [(0.8, 0.4), (0.6, 0.4), (0.2, 0.4), (0.4, 0.4), (0.5, 0.7)]
    return np.array([[x + w * a, y + h * b] for a, b in rel], np.float32)


class MinimalEngine:
    """A FaceEngineLike with only ``detect`` and ``embed``, for synthetic scenes; counts
    its calls. Its chips are plain crops of the box."""

    model_id = "fake-v1"

    def __init__(self) -> None:
        self.detect_calls = 0
        self.embed_calls = 0
        self.faces_embedded = 0
        self.lock = threading.Lock()

    def _boxes(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        with self.lock:
            self.detect_calls += 1
        mask = (image[..., 2] > 140).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [tuple(int(v) for v in stats[i][:4]) for i in range(1, n) if stats[i][4] >= 400]

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = []
        for x, y, w, h in self._boxes(image):
            chip = cv2.resize(np.ascontiguousarray(image[y:y + h, x:x + w]), (150, 150))
            faces.append(Face((x, y, w, h), 1.0, fake_landmarks((x, y, w, h)), chip))
        return faces

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """One-hot of the nearest code to the chip centre's blue, plus a small offset."""
        with self.lock:
            self.embed_calls += 1
            self.faces_embedded += len(chips)
        out = np.zeros((len(chips), 128), np.float32)
        codes = np.array(list(CODES.values()), np.float32)
        for i, chip in enumerate(chips):
            blue = float(np.median(chip[50:100, 50:100, 2]))
            k = int(np.argmin(np.abs(codes - blue)))
            out[i, k] = 1.0
            out[i, 127] = 0.1 + abs(blue - codes[k]) / 255.0
        return out


class FakeLandmarks:
    def __init__(self) -> None:
        self.calls = 0

    def predict(self, image: np.ndarray, boxes) -> np.ndarray:
        self.calls += 1
        return np.stack([fake_landmarks(b) for b in np.asarray(boxes).reshape(-1, 4)])


class FakeEngine(MinimalEngine):
    """Like :class:`desktop.face.api.FaceEngine`: also ``detect_boxes`` (boxes only) and
    ``landmarks.predict``, so the pipeline cuts aligned chips from the full frame itself."""

    def __init__(self) -> None:
        super().__init__()
        self.landmarks = FakeLandmarks()

    def detect_boxes(self, image: np.ndarray) -> list[Face]:
        return [Face(box, 1.0) for box in self._boxes(image)]


def embedding_of(who: str) -> np.ndarray:
    e = np.zeros(128, np.float32)
    e[list(CODES).index(who)] = 1.0
    return e


class FakeMatcher:
    """Nearest enrolled person under tau (squared L2), else Unknown."""

    def __init__(self, people: Sequence[str] = ("ann", "bob"), tau: float = 0.36) -> None:
        self.names = list(people)
        self.gallery = np.stack([embedding_of(p) for p in people]) if people else None
        self.tau = tau
        self.calls = 0

    def identify(self, embeddings: np.ndarray) -> list[Identity]:
        self.calls += 1
        out = []
        for e in embeddings:
            if self.gallery is None:
                out.append(Identity(None, float("inf")))
                continue
            d = ((self.gallery - e) ** 2).sum(1)
            k = int(np.argmin(d))
            name = self.names[k] if d[k] <= self.tau else None
            out.append(Identity(name, float(d[k]), k + 1 if name else None))
        return out


class FakeCheckinLog:
    """A check-in log in memory: ``last`` maps names to times (time.time() seconds)."""

    def __init__(self, last: dict[str, float] | None = None) -> None:
        self.last = dict(last or {})
        self.recorded = []
        self.reads = []

    def last_checkin_time(self, person: str, person_id: int | None) -> float | None:
        self.reads.append(person)
        return self.last.get(person)

    def record_checkin(self, event, cooldown_s: float) -> bool:
        last = self.last.get(event.person)
        if last is not None and event.time - last < cooldown_s:
            return False
        self.recorded.append(event)
        self.last[event.person] = event.time
        return True


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 20.0) -> Path:
    """Write RGB frames to an MJPG .avi with cv2.VideoWriter."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "cv2.VideoWriter cannot write MJPG here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class FakeCapture:
    """A capture that returns numbered frames (pixel value = count % 256), then fails
    after ``fail_after`` reads; ``block`` makes read() hang until released."""

    def __init__(self, fail_after: int | None = None, opened: bool = True,
                 block: threading.Event | None = None, size=(32, 24)) -> None:
        self.fail_after = fail_after
        self.opened = opened
        self.block = block
        self.size = size
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        if self.block is not None:
            self.block.wait()
            return False, None
        if self.fail_after is not None and self.reads >= self.fail_after:
            return False, None
        self.reads += 1
        w, h = self.size
        return True, np.full((h, w, 3), self.reads % 256, np.uint8)

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True
