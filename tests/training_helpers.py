"""Helpers shared by the training tests: a tiny encoder and a fake face engine."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desktop.face.types import Face


class TinyEncoder(nn.Module):
    """A small CNN with the encoder's conventions: float RGB 0..255 in, (N, dim) out, and
    ``stem`` / ``level0`` / ``fc`` parts so every training mode applies."""

    def __init__(self, dim: int = 16, seed: int | None = 0, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        if seed is not None:
            torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.level0 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(4))
        self.fc = nn.Linear(32 * 16, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(self.level0(self.stem((x - 128.0) / 64.0)).flatten(1))
        return F.normalize(z, dim=1) if self.normalize else z


def code_image(code: int, size: int = 24) -> np.ndarray:
    """An RGB image whose every pixel is ``code`` (so a fake engine can read it back)."""
    return np.full((size, size, 3), code, np.uint8)


class CodeEngine:
    """A face engine for tests: a photo whose pixels are all ``c`` holds one face whose
    descriptor is ``table[c]``; a photo of code 0 has no face."""

    model_id = "code-engine"

    def __init__(self, table: dict[int, np.ndarray]) -> None:
        self.table = table
        self.detect_calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.detect_calls += 1
        code = int(image[0, 0, 0])
        if code == 0:
            return []
        chip = np.full((150, 150, 3), code, np.uint8)
        return [Face(box=(0, 0, image.shape[1], image.shape[0]), score=1.0, chip=chip)]

    def embed(self, chips: np.ndarray) -> np.ndarray:
        return np.stack([self.table[int(c[0, 0, 0])] for c in chips]).astype(np.float32)
