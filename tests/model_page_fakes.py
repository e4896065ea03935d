"""A tiny gallery, a tiny encoder and a fake live engine for the Model page tests.

The "built-in" encoder of these tests is :class:`ChipEncoder`, a small untrained CNN with
the dlib encoder's conventions (150 x 150 RGB chips in, 128 numbers out, ``level0`` and
``fc`` parts), so that a fine-tune from the page takes seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desktop.face.encoder_versions import EncoderRegistry
from desktop.face.training.synthetic import synthetic_faces
from desktop.store import Gallery, NewTemplate
from desktop.ui.checkin.model.service import ModelService

FAST = {"device": "cpu", "precision": "fp32", "batch_p": 6, "batch_k": 3,
        "heldout_fraction": 0.3, "eval_batch": 64}


class ChipEncoder(nn.Module):
    """150 x 150 chips, pooled to 25 x 25 first, then two small conv levels and ``fc``."""

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.level0 = nn.Sequential(nn.Conv2d(12, 24, 3, padding=1), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(4))
        self.fc = nn.Linear(24 * 16, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d((x - 128.0) / 64.0, 6)
        return self.fc(self.level0(self.stem(x)).flatten(1)) * 0.5


def make_registry(root: Path) -> EncoderRegistry:
    return EncoderRegistry(root, pretrained=lambda: ChipEncoder(seed=0),
                           architecture=lambda: ChipEncoder(seed=None))


class VersionEngine:
    """The live engine after a switch: the active version's embedder; finds no faces."""

    def __init__(self, registry: EncoderRegistry) -> None:
        self._embedder = registry.embedder(device="cpu")
        self.model_id = self._embedder.model_id

    def detect(self, image: np.ndarray) -> list:
        return []

    def embed(self, chips: np.ndarray) -> np.ndarray:
        return self._embedder.embed(chips)


def fill_gallery(gallery: Gallery, registry: EncoderRegistry, people: int = 10,
                 photos: int = 4, seed: int = 0) -> None:
    """Enrol ``people`` generated faces with ``photos`` chips each, embedded by the
    active version."""
    data = synthetic_faces(people, photos, size=150, seed=seed)
    embedder = registry.embedder(device="cpu")
    emb = embedder.embed(data.chips)
    for k, name in enumerate(data.names):
        rows = np.flatnonzero(data.labels == k)
        gallery.enrol(f"Person {name[2:]}", [
            NewTemplate(data.chips[i], emb[i], embedder.model_id, "", "file") for i in rows])


def make_service(registry: EncoderRegistry) -> ModelService:
    return ModelService(registry, engine_factory=lambda: VersionEngine(registry),
                        device="cpu", train_overrides=FAST)
