"""Shared pieces for the Style tab tests: tiny images and a tab set up for tiny jobs."""

from __future__ import annotations

import numpy as np


def content_image(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth colour gradient with a dark square: something with content to keep."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                    np.full_like(x, 120)], axis=-1).astype(np.uint8)
    img[h // 4: h // 2, w // 4: w // 2] = 20
    return img


def style_image(side: int = 64, seed: int = 1) -> np.ndarray:
    """Diagonal colour stripes with noise: a texture with a clear style."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    stripes = ((x + y) // 6) % 2
    img = np.stack([stripes * 220 + 20, (1 - stripes) * 180 + 30, np.full_like(x, 200)], -1)
    img = img + rng.integers(-20, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_tiny(tab, iterations: int = 5, size: int = 64, **changes) -> None:
    settings = tab.settings()
    settings.size, settings.iterations = size, iterations
    for key, value in changes.items():
        setattr(settings, key, value)
    tab.set_settings(settings)


def load_pair(tab) -> None:
    tab.side.content.set_image(content_image(), "content.png")
    tab.side.styles.slots[0].set_image(style_image(), "style.png")
