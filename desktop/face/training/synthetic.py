"""Procedurally drawn faces: many identities, each with variations, for tests and benchmarks.

An identity is a set of drawing parameters (face shape, skin and hair colour, eye spacing
and size, brows, nose, mouth); each image of it varies pose (shift, scale, rotation),
lighting, expression, background and noise. No photo is involved, so the data can be
generated anywhere in any amount. This is not a face model; it is a task with the same
structure (identity vs. nuisance variation) that a small encoder can learn in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from desktop.face.training.data import ChipDataset

_CANVAS = 150


@dataclass(frozen=True)
class _Identity:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    eyes: tuple[int, int, int]
    face_w: float
    face_h: float
    eye_gap: float
    eye_y: float
    eye_r: float
    brow_tilt: float
    nose_len: float
    mouth_w: float
    mouth_y: float
    hairline: float


def _identity(rng: np.random.Generator) -> _Identity:
    def colour(lo: int, hi: int) -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]

    return _Identity(
        skin=colour(90, 240), hair=colour(0, 160), eyes=colour(0, 120),
        face_w=rng.uniform(36, 52), face_h=rng.uniform(48, 64),
        eye_gap=rng.uniform(12, 24), eye_y=rng.uniform(-16, -4), eye_r=rng.uniform(3, 8),
        brow_tilt=rng.uniform(-6, 6), nose_len=rng.uniform(6, 18),
        mouth_w=rng.uniform(8, 22), mouth_y=rng.uniform(16, 30), hairline=rng.uniform(0.2, 0.7),
    )


def _draw(ident: _Identity, rng: np.random.Generator) -> np.ndarray:
    c = _CANVAS
    bg = rng.integers(0, 256, 3)
    img = np.empty((c, c, 3), np.uint8)
    img[:] = bg
    cx, cy = c / 2, c / 2 + 4
    fw, fh = ident.face_w, ident.face_h

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(cx + x), round(cy + y)

    cv2.ellipse(img, pt(0, -fh * ident.hairline * 0.6), (int(fw + 4), int(fh * 0.8)), 0, 180,
                360, ident.hair, -1, cv2.LINE_AA)
    cv2.ellipse(img, pt(0, 0), (int(fw), int(fh)), 0, 0, 360, ident.skin, -1, cv2.LINE_AA)
    smile = rng.uniform(-3, 5)  # expression
    for side in (-1, 1):
        ex = side * ident.eye_gap
        cv2.circle(img, pt(ex, ident.eye_y), int(ident.eye_r + 2), (245, 245, 245), -1,
                   cv2.LINE_AA)
        cv2.circle(img, pt(ex + rng.uniform(-1.5, 1.5), ident.eye_y), int(ident.eye_r),
                   ident.eyes, -1, cv2.LINE_AA)
        by = ident.eye_y - ident.eye_r - 6
        cv2.line(img, pt(ex - 8, by + side * ident.brow_tilt / 2),
                 pt(ex + 8, by - side * ident.brow_tilt / 2), ident.hair, 3, cv2.LINE_AA)
    shade = tuple(int(v * 0.7) for v in ident.skin)
    cv2.line(img, pt(0, ident.eye_y + 4), pt(3, ident.eye_y + 4 + ident.nose_len), shade, 2,
             cv2.LINE_AA)
    mouth = [pt(x, ident.mouth_y + smile * (1 - (x / ident.mouth_w) ** 2))
             for x in np.linspace(-ident.mouth_w, ident.mouth_w, 9)]
    cv2.polylines(img, [np.array(mouth, np.int32)], False, (150, 40, 50), 3, cv2.LINE_AA)
    return img


def _vary(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    c = _CANVAS
    angle = rng.uniform(-8, 8)
    scale = rng.uniform(0.92, 1.08)
    m = cv2.getRotationMatrix2D((c / 2, c / 2), angle, scale)
    m[:, 2] += rng.uniform(-5, 5, 2)
    out = cv2.warpAffine(img, m, (c, c), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    out = out * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)
    out += rng.normal(0, 6, out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if size != c:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return out


def synthetic_faces(identities: int, images_per_identity: int, size: int = 150,
                    seed: int = 0) -> ChipDataset:
    """``identities`` x ``images_per_identity`` drawn chips of ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[np.ndarray]] = {}
    for i in range(identities):
        ident = _identity(rng)
        groups[f"id{i:04d}"] = [_vary(_draw(ident, rng), rng, size)
                                for _ in range(images_per_identity)]
    return ChipDataset.from_identities(groups, origin=f"synthetic:{identities}x"
                                       f"{images_per_identity}@{size}px,seed={seed}")
