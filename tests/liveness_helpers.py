"""Synthetic 68-point landmark tracks (open eyes, blinks) and helpers shared by the
liveness tests."""

from __future__ import annotations

import numpy as np


def face68(scale: float = 100.0) -> np.ndarray:
    """A plausible frontal 68-point layout (iBUG order) of a ``scale``-pixel-wide face."""
    lm = np.zeros((68, 2))
    jaw = np.linspace(-1, 1, 17)
    lm[0:17] = np.c_[0.5 * jaw, 0.1 + 0.45 * (1 - jaw**2) ** 0.5 * 0.9]
    lm[17:22] = np.c_[np.linspace(-0.4, -0.1, 5), np.full(5, -0.25)]
    lm[22:27] = np.c_[np.linspace(0.1, 0.4, 5), np.full(5, -0.25)]
    lm[27:31] = np.c_[np.zeros(4), np.linspace(-0.15, 0.12, 4)]
    lm[31:36] = np.c_[np.linspace(-0.08, 0.08, 5), np.full(5, 0.16)]
    for start, cx in ((36, -0.22), (42, 0.22)):  # p1..p6: corner, upper lid, corner, lower lid
        lm[start:start + 6] = np.c_[cx + np.array([-0.09, -0.03, 0.03, 0.09, 0.03, -0.03]),
                                    -0.12 + np.array([0, -0.03, -0.03, 0, 0.03, 0.03])]
    mouth = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lm[48:68] = np.c_[0.18 * np.cos(mouth), 0.33 + 0.06 * np.sin(mouth)]
    return lm * scale + 200.0


def close_eyes(lm: np.ndarray, amount: float) -> np.ndarray:
    """The eyelid points (upper 37, 38, 43, 44; lower 40, 41, 46, 47) moved by ``amount``
    (0 open, 1 shut) towards the line through each eye's corners (36-39, 42-45), as the
    lids of a real eye close; every other point stays where it is."""
    out = np.asarray(lm, np.float64).copy()
    for start in (36, 42):
        a, b = out[start], out[start + 3]
        axis = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
        for k in (1, 2, 4, 5):
            p = out[start + k]
            foot = a + axis * float((p - a) @ axis)
            out[start + k] = p + amount * (foot - p)
    return out


def blink_track(open_face: np.ndarray, fps: float = 30.0, closes: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    amounts = [0.0] * 20 + ([0.4, 0.8, 1.0, 0.9, 0.5, 0.1] if closes else [0.0] * 6) + [0.0] * 15
    return [(i / fps, close_eyes(open_face, a) + rng.normal(0, 0.3, open_face.shape))
            for i, a in enumerate(amounts)]
