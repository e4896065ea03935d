"""Small folders of generated images, and in-memory sources, for the Explore tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from desktop.explore.sources import ImageSource, SourceItem


def textured_image(seed: int, height: int, width: int) -> np.ndarray:
    """An RGB uint8 image with edges, blobs and colour (not just noise), reproducible."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        fx, fy = rng.uniform(0.02, 0.4, 2).tolist()
        phase = rng.uniform(0, 6.3)
        image[:, :, channel] = 127 + 100 * np.sin(fx * xx + fy * yy + phase)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(3, 12)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_folder(root: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    """PNG files of :func:`textured_image` s in ``root`` (one in a sub-folder)."""
    paths = []
    for n, (h, w) in enumerate(sizes):
        folder = root / "sub" if n == 1 else root
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img{n:02d}.png"
        Image.fromarray(textured_image(seed + n, h, w)).save(path)
        paths.append(path)
    return paths


class ArraySource(ImageSource):
    """Images held in memory (e.g. face chips made in a test)."""

    def __init__(self, images: list[np.ndarray], chips: bool = False) -> None:
        super().__init__("arrays", "test images")
        self._images = images
        self._chips = chips

    def chip_faces(self) -> bool:
        return self._chips

    def scan(self, progress=None, cancel=None) -> None:
        self.items = [SourceItem(f"a{i}", f"array {i}") for i in range(len(self._images))]

    def fingerprint(self) -> str:
        return "arrays-" + str(sum(int(img.sum()) for img in self._images))

    def load(self, item: SourceItem) -> np.ndarray:
        return self._images[int(item.key[1:])]
