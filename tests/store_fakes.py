"""A deterministic fake face engine and synthetic photos for the store tests.

Photo convention (see :func:`make_photo`): pixel (0, 0)'s red value encodes the number of
faces (``red // 50``), pixel (1, 1)'s green value the identity (``green // 16``), and the
photo's size the face size. The fake engine's chips are uniform squares of pixel (1, 1)'s
colour, so their identity survives a JPEG round trip; its embeddings are a per-model
random basis vector per identity (norm about 1.4, like dlib's), plus a tiny term from the
chip's blue channel so that every chip has its own descriptor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from desktop.face.types import CHIP_SIZE, EMBEDDING_DIM, Face


class FakeEngine:
    """Implements desktop.face.types.FaceEngineLike without any model."""

    def __init__(self, model_id: str = "fake-v1") -> None:
        self._model_id = model_id
        seed = int.from_bytes(hashlib.sha256(model_id.encode()).digest()[:4], "little")
        rng = np.random.default_rng(seed)
        basis = rng.normal(size=(16, EMBEDDING_DIM))
        self.basis = (basis / np.linalg.norm(basis, axis=1, keepdims=True) * 1.4).astype(
            np.float32)
        self.embed_calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    def detect(self, image: np.ndarray) -> list[Face]:
        n = int(image[0, 0, 0]) // 50
        size = min(image.shape[0], image.shape[1]) // 2
        chip = np.empty((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        chip[...] = image[1, 1]
        return [Face(box=(i * size // 2, 0, size, size), score=1.0,
                     landmarks=np.zeros((5, 2), np.float32), chip=chip.copy())
                for i in range(n)]

    def expected(self, chip: np.ndarray) -> np.ndarray:
        ident = int(chip[75, 75, 1]) // 16
        v = self.basis[ident].copy()
        v[0] += float(chip[75, 75, 2]) / 255.0 * 0.02
        return v

    def embed(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        assert chips.ndim == 4 and chips.shape[1:] == (CHIP_SIZE, CHIP_SIZE, 3)
        assert chips.dtype == np.uint8
        self.embed_calls += 1
        return np.stack([self.expected(c) for c in chips]).astype(np.float32)


def photo_array(identity: int, faces: int = 1, size: int = 200, variant: int = 0) -> np.ndarray:
    """A synthetic RGB photo following the module's convention."""
    img = np.full((size, size, 3), 128, np.uint8)
    img[0, 0, 0] = 50 * faces + 10
    img[1, 1] = (90, 16 * identity + 8, (37 * variant) % 256)
    return img


def make_photo(folder: Path, name: str, identity: int, faces: int = 1, size: int = 200,
               variant: int = 0) -> Path:
    path = Path(folder) / name
    Image.fromarray(photo_array(identity, faces, size, variant)).save(path)
    return path


def chip_for(identity: int, variant: int = 0) -> np.ndarray:
    chip = np.empty((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    chip[...] = (90, 16 * identity + 8, (37 * variant) % 256)
    return chip
