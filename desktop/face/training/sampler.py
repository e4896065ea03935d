"""P x K batches: P people, K images of each, so every batch holds triplets to mine.

Identities are taken from a shuffled queue, P at a time, refilled when it runs out, so over
an epoch every identity appears about equally often and no batch names one twice. Within
an identity the K images are drawn without replacement; an identity with fewer than K
images repeats some of them (augmentation makes the repeats differ).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from desktop.errors import FacestyleError


def parse_batch_shape(text: str) -> tuple[int, int]:
    """``"8x4"`` to ``(8, 4)`` (P people x K images); raises a FacestyleError when malformed."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        p, k = (int(v) for v in parts)
    except ValueError:
        p = k = 0
    if len(parts) != 2 or p < 2 or k < 2:
        raise FacestyleError(
            f"Batch shape {text!r} is not P x K with P >= 2 people and K >= 2 images.",
            "Write it like 8x4 (8 people, 4 images each).",
        )
    return p, k


@dataclass
class PKSampler:
    """Yields index arrays of P*K images: P distinct identities, K images each.

    ``labels`` is the (N,) identity of each image. P is capped at the number of identities
    present (a batch never repeats an identity). ``batches_per_epoch`` is chosen so an epoch
    sees about as many images as the dataset holds.
    """

    labels: np.ndarray
    p: int
    k: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        self.identities = np.unique(self.labels)
        if len(self.identities) < 2:
            raise FacestyleError("A P x K batch needs at least 2 identities.")
        self.p = min(self.p, len(self.identities))
        self._by_identity = {int(i): np.flatnonzero(self.labels == i) for i in self.identities}
        self._rng = np.random.default_rng(self.seed)
        self._queue: list[int] = []

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    @property
    def batches_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.labels) / self.batch_size))

    def _next_identities(self) -> list[int]:
        chosen: list[int] = []
        while len(chosen) < self.p:
            if not self._queue:
                self._queue = [int(i) for i in self._rng.permutation(self.identities)]
            candidate = self._queue.pop()
            if candidate in chosen:  # only possible right after a refill; defer it
                self._queue.insert(0, candidate)
                continue
            chosen.append(candidate)
        return chosen

    def _images_of(self, identity: int) -> np.ndarray:
        pool = self._by_identity[identity]
        if len(pool) >= self.k:
            return self._rng.choice(pool, size=self.k, replace=False)
        extra = self._rng.choice(pool, size=self.k - len(pool), replace=True)
        return np.concatenate([self._rng.permutation(pool), extra])

    def batch(self) -> np.ndarray:
        """One batch: (P*K,) indices, grouped by identity (K consecutive per person)."""
        return np.concatenate([self._images_of(i) for i in self._next_identities()])

    def epoch(self) -> Iterator[np.ndarray]:
        for _ in range(self.batches_per_epoch):
            yield self.batch()
