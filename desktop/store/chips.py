"""Aligned face chips stored as JPEG, and embeddings stored as bytes.

A chip is kept at its full 150x150 so that a new or fine-tuned encoder can re-embed it.
JPEG quality 95 without chroma subsampling (4:4:4) keeps it close to the original pixels:
``bench/chip_roundtrip.py`` measured about 11 KB per chip, and a d between a chip's
descriptor and its JPEG round trip's of 0.0002 (median; max 0.002) on faces-dev, far
below the open-set margin (0.03) and tau (0.36).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from desktop.face.types import CHIP_SIZE, EMBEDDING_DIM

JPEG_QUALITY = 95
_EMB_DTYPE = np.dtype("<f4")


def check_chip(chip: np.ndarray) -> np.ndarray:
    """Return ``chip`` as a C-contiguous (150, 150, 3) uint8 array, or raise ValueError."""
    arr = np.asarray(chip)
    if arr.shape != (CHIP_SIZE, CHIP_SIZE, 3) or arr.dtype != np.uint8:
        raise ValueError(f"a chip must be ({CHIP_SIZE}, {CHIP_SIZE}, 3) uint8, "
                         f"got {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def encode_chip(chip: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """(150, 150, 3) uint8 RGB chip -> JPEG bytes (4:4:4, ``quality``)."""
    buf = io.BytesIO()
    Image.fromarray(check_chip(chip), "RGB").save(buf, format="JPEG", quality=quality,
                                                  subsampling=0, optimize=True)
    return buf.getvalue()


def decode_chip(data: bytes) -> np.ndarray:
    """JPEG bytes -> (150, 150, 3) uint8 RGB chip. Raises ValueError if it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGB"))
    except Exception as exc:  # PIL raises several types for bad data
        raise ValueError(f"stored chip cannot be decoded: {exc}") from exc
    return check_chip(arr)


def check_embedding(embedding: np.ndarray) -> np.ndarray:
    """Return a finite (128,) float32 copy, or raise ValueError."""
    arr = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if arr.shape != (EMBEDDING_DIM,):
        raise ValueError(f"an embedding must have {EMBEDDING_DIM} values, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("the embedding contains NaN or infinity")
    return arr


def embedding_to_blob(embedding: np.ndarray) -> bytes:
    """(128,) floats -> 512 bytes of little-endian float32."""
    return check_embedding(embedding).astype(_EMB_DTYPE).tobytes()


def blob_to_embedding(blob: bytes) -> np.ndarray:
    """512 bytes -> (128,) float32 (native byte order)."""
    return np.frombuffer(blob, dtype=_EMB_DTYPE).astype(np.float32)


def blobs_to_matrix(blobs: list[bytes]) -> np.ndarray:
    """Many 512-byte blobs -> (N, 128) float32, in one copy."""
    if not blobs:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype=_EMB_DTYPE)
    return flat.reshape(len(blobs), EMBEDDING_DIM).astype(np.float32)
