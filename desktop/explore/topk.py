"""A running top-k per unit: the k strongest (image, position) pairs seen so far.

Indexing a folder never keeps its activations: each batch's maps ``(N, C, n_H, n_W)`` are
reduced at once to at most ``per_image`` candidates per image and unit (that image's
strongest positions), merged with the k kept per unit, and dropped. Memory is
``C x k`` entries whatever the folder's size.

The result equals sorting every (image, position) pair of the folder by activation and
keeping, per unit, the first k that take at most ``per_image`` positions from any one
image. Ties keep the earlier image (and, within an image, the earlier position in
row-major order) first, so results do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TopK:
    """Per unit, the k strongest entries, strongest first. Arrays are (C, k); where fewer
    than k entries exist, ``value`` is -inf and ``item`` is -1."""

    value: np.ndarray  # float32 activation
    item: np.ndarray  # int32 item index
    row: np.ndarray  # int32 position in the feature map
    col: np.ndarray  # int32

    @property
    def channels(self) -> int:
        return int(self.value.shape[0])

    @property
    def k(self) -> int:
        return int(self.value.shape[1])


class RunningTopK:
    """Keeps the top ``k`` (image, position) pairs per unit over batches of feature maps.

    Args:
        channels: the layer's number of units C.
        k: entries kept per unit.
        per_image: at most this many entries per unit come from one image (1: the
            strongest position of each image).
    """

    def __init__(self, channels: int, k: int = 9, per_image: int = 1) -> None:
        if k < 1 or per_image < 1:
            raise ValueError("k and per_image must be at least 1")
        self.channels, self.k, self.per_image = int(channels), int(k), int(per_image)
        self._value = torch.full((channels, 0), float("-inf"))
        self._item = torch.zeros((channels, 0), dtype=torch.int64)
        self._pos = torch.zeros((channels, 0), dtype=torch.int64)
        self.seen = 0

    def update(self, maps: torch.Tensor, items: Sequence[int]) -> None:
        """Merge a batch: ``maps`` (N, C, n_H, n_W) float for the items ``items`` (N)."""
        n, c, h, w = maps.shape
        if c != self.channels or n != len(items):
            raise ValueError(f"maps {tuple(maps.shape)} do not fit {self.channels} units "
                             f"and {len(items)} items")
        flat = maps.detach().float().reshape(n, c, h * w)
        flat = torch.nan_to_num(flat, nan=float("-inf"))
        m = min(self.per_image, h * w)
        if m == 1:
            value, pos = flat.max(dim=2, keepdim=True)  # first maximum: the earliest position
        else:
            value, pos = _stable_top(flat, m)
        # (N, C, m) -> (C, N * m), image-major so earlier images come first
        value = value.permute(1, 0, 2).reshape(c, n * m)
        pos = pos.permute(1, 0, 2).reshape(c, n * m)
        item = torch.as_tensor(list(items), dtype=torch.int64).repeat_interleave(m)
        item = item.view(1, -1).expand(c, -1)
        pos = self._encode(pos, w)
        all_value = torch.cat([self._value, value], dim=1)
        order = torch.sort(all_value, dim=1, descending=True, stable=True).indices[:, : self.k]
        self._value = all_value.gather(1, order)
        self._item = torch.cat([self._item, item], dim=1).gather(1, order)
        self._pos = torch.cat([self._pos, pos], dim=1).gather(1, order)
        self.seen += n

    # Positions are kept as (row, col) packed in one int64: row * 2^32 + col, so maps of
    # different widths (images of different sizes) share one array.
    @staticmethod
    def _encode(pos: torch.Tensor, width: int) -> torch.Tensor:
        return (pos // width) * (1 << 32) + pos % width

    def result(self) -> TopK:
        """The entries so far, padded to k per unit."""
        c, have = self._value.shape
        value = np.full((c, self.k), -np.inf, np.float32)
        item = np.full((c, self.k), -1, np.int32)
        row = np.zeros((c, self.k), np.int32)
        col = np.zeros((c, self.k), np.int32)
        value[:, :have] = self._value.numpy()
        item[:, :have] = self._item.numpy()
        row[:, :have] = (self._pos >> 32).numpy()
        col[:, :have] = (self._pos & 0xFFFFFFFF).numpy()
        return TopK(value, item, row, col)


def _stable_top(flat: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``m`` largest values along the last axis and their indices, strongest first;
    among equal values the earlier index wins, also at the cut (``torch.topk`` picks
    among values tied with the m-th in no set order)."""
    threshold = flat.topk(m, dim=2).values[..., -1:]
    above = flat > threshold
    tied = flat == threshold
    needed = m - above.sum(dim=2, keepdim=True)
    chosen = above | (tied & (tied.cumsum(dim=2) <= needed))  # exactly m per row
    index = chosen.nonzero()[:, 2].view(*flat.shape[:2], m)  # ascending within a row
    value = flat.gather(2, index)
    order = torch.sort(value, dim=2, descending=True, stable=True).indices
    return value.gather(2, order), index.gather(2, order)
