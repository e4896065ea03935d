"""Aligned face chips as dlib makes them (``get_face_chip_details`` + ``extract_image_chip``).

Facts from ``dlib/image_transforms/interpolation.h`` and ``image_pyramid.h``:

* **Template.** For 5-point shapes dlib maps the landmarks onto a fixed mean face given in
  unit chip coordinates (:data:`TEMPLATE_5`). With padding ``p`` a template point ``q``
  moves to ``(p + q) / (1 + 2p)``, then scales by the chip size. The least-squares
  similarity (Umeyama) from these chip points to the landmarks gives a scale ``s`` (image
  pixels per chip pixel), an angle and a centre: the chip is the image region
  ``size * s`` pixels square, rotated by that angle about the image point the chip's centre
  ``(size / 2, size / 2)`` maps to (:class:`ChipDetails`).
* **Pyramid.** When that region is much larger than the chip, plain bilinear sampling
  would alias, so dlib first halves the image with ``pyramid_down<2>`` until one more halving
  would make the region smaller than the chip. Each halving is a separable 5-tap
  ``[1 4 6 4 1]`` filter on integers, floor-divided by 256, keeping every other pixel,
  with output size ``(n - 3) // 2``; a point ``p`` on the finer level sits at
  ``p / 2 - (1.25, 0.75)`` on the coarser one. Only the part of the image around the chip
  (grown by a margin of 2, 6, 14... pixels for 0, 1, 2... halvings) is used.
* **Sampling.** Each chip pixel takes the bilinear interpolation of its four neighbours,
  truncated (not rounded) to uint8; where a neighbour falls outside the image the pixel is
  black.

Here the warp itself is OpenCV's ``warpAffine`` (on float32, so only its 1/32-pixel
coordinate quantisation differs from dlib), then truncation and dlib's black border. The
pyramid is reproduced exactly in integers. Measured on the faces-dev photos, descriptors
of our chips are within a few thousandths (L2) of those of dlib's chips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from desktop.errors import ImageError

#: dlib's 5-point template (``get_face_chip_details``), unit chip coordinates, in the
#: 5-point landmark order: right eye outer, right eye inner, left eye outer, left eye
#: inner corner, bottom of the nose.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

DEFAULT_SIZE = 150
DEFAULT_PADDING = 0.25

_BINOMIAL5 = np.array([1, 4, 6, 4, 1], dtype=np.float32)


def template_points(size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """Where an aligned face's 5 landmarks land in a ``size`` chip: (5, 2) float64 pixels."""
    return (padding + TEMPLATE_5) / (2 * padding + 1) * size


@dataclass(frozen=True)
class ChipDetails:
    """dlib's ``chip_details``: which rotated image rectangle becomes the chip.

    Attributes:
        rect: (left, top, right, bottom) image pixels, float, of the unrotated rectangle
            (inclusive corners: its width is ``right - left + 1``).
        angle: rotation about the rectangle's centre, radians (positive turns x towards y).
        rows, cols: the chip's size in pixels.

    As in dlib, chip pixels 0 and ``cols - 1`` sit on the rectangle's corners, so the
    chip equals the fitted similarity only up to about half a pixel (its pixel step is
    ``(size * scale - 1) / (size - 1)`` rather than ``scale``). The encoder was trained on
    exactly these chips, so the quirk is kept.
    """

    rect: tuple[float, float, float, float]
    angle: float
    rows: int
    cols: int

    def chip_to_image(self) -> np.ndarray:
        """(2, 3) float64 affine taking chip pixel (x, y, 1) to image pixel (x, y)."""
        return _corner_affine(_rotated_corners(self.rect, self.angle), self.rows, self.cols)

    def image_to_chip(self) -> np.ndarray:
        """(2, 3) float64 affine taking image pixel (x, y, 1) to chip pixel (x, y), e.g. to
        draw landmarks on a chip (dlib's ``get_mapping_to_chip``)."""
        return cv2.invertAffineTransform(self.chip_to_image())


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity taking points ``src`` to ``dst`` (Umeyama, 1991).

    Args:
        src, dst: (K, 2) points, K >= 2.

    Returns:
        (2, 3) float64 ``[[a, -b, tx], [b, a, ty]]``: rotation times scale, then
        translation. For 2-D points Umeyama's SVD solution has this closed form.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    sigma = np.sum(s**2)
    if sigma == 0:
        a, b = 1.0, 0.0  # all source points coincide: no scale or rotation to find
    else:
        a = np.sum(s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]) / sigma
        b = np.sum(s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]) / sigma
    m = np.array([[a, -b], [b, a]])
    return np.hstack([m, (mu_d - m @ mu_s)[:, None]])


def get_face_chip_details(
    landmarks5: np.ndarray, size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING
) -> ChipDetails:
    """Where dlib would cut the aligned chip for one face.

    Args:
        landmarks5: (5, 2) landmark pixels in dlib's 5-point order.
        size: chip side in pixels (dlib's encoder wants 150).
        padding: margin around the template face, as a fraction of its size (0.25 for the
            encoder).
    """
    pts = np.asarray(landmarks5, np.float64)
    if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
        raise ValueError(f"landmarks5 must be a finite (5, 2) array; got shape {pts.shape}")
    if size < 1 or padding < 0:
        raise ValueError("size must be positive and padding non-negative")
    tform = similarity_transform(template_points(size, padding), pts)
    # Scale and angle from where the chip's x axis goes; the rectangle from its centre.
    a, b = tform[0, 0], tform[1, 0]
    scale, angle = math.hypot(a, b), math.atan2(b, a)
    cx, cy = tform @ np.array([size / 2.0, size / 2.0, 1.0])
    half = (size * scale - 1) / 2  # dlib's centered_drect: width - 1 between corners
    return ChipDetails((cx - half, cy - half, cx + half, cy + half), angle, size, size)


def face_chip_transforms(
    landmarks: np.ndarray, size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING
) -> np.ndarray:
    """(N, 2, 3) float64 image-to-chip affines for (N, 5, 2) landmarks (for drawing)."""
    out = np.zeros((0, 2, 3))
    for lm in _as_batch(landmarks):
        out = np.concatenate([out, get_face_chip_details(lm, size, padding).image_to_chip()[None]])
    return out


def extract_chips(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = DEFAULT_SIZE,
    padding: float = DEFAULT_PADDING,
) -> np.ndarray:
    """Aligned face chips, each cut as ``dlib.get_face_chip(image, shape, size, padding)``.

    Args:
        image: (H, W, 3) RGB uint8 (a (H, W) grey image is repeated into 3 channels).
        landmarks: (N, 5, 2) or (5, 2) landmark pixels, dlib's 5-point order.

    Returns:
        (N, size, size, 3) uint8 RGB chips.
    """
    image = _check_image(image)
    batch = _as_batch(landmarks)
    chips = np.zeros((len(batch), size, size, 3), np.uint8)
    for i, lm in enumerate(batch):
        chips[i] = extract_image_chip(image, get_face_chip_details(lm, size, padding))
    return chips


def extract_image_chip(image: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib's ``extract_image_chip`` with bilinear interpolation.

    Args:
        image: (H, W, 3) RGB uint8 (or (H, W) grey, repeated into 3 channels).
        details: where to cut, from :func:`get_face_chip_details`.

    Returns:
        (rows, cols, 3) uint8.
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    area = details.rows * details.cols
    # How many halvings until one more would make the region smaller than the chip.
    depth, grow = 0, 2.0
    rect = _rect_down(details.rect)
    while _rect_area(rect) > area:
        rect = _rect_down(rect)
        depth += 1
        grow = grow * 2 + 2
    # The part of the image the chip needs (its rotated rectangle, grown by a margin).
    corners = _rotated_corners(details.rect, details.angle)
    lo = np.maximum(corners.min(axis=0) - grow, 0)
    hi = np.minimum(corners.max(axis=0) + grow, (w - 1, h - 1))
    left, top = (_round_half_away(v) for v in lo)
    right, bottom = (_round_half_away(v) for v in hi)
    source = image[top : max(top, bottom + 1), left : max(left, right + 1)]  # may be empty
    # Down the pyramid, moving the chip's rectangle along (relative to the crop).
    rect = (details.rect[0] - left, details.rect[1] - top,
            details.rect[2] - left, details.rect[3] - top)
    for _ in range(depth):
        source = pyramid_down2(source)
        rect = _rect_down(rect)
    chip_to_source = _corner_affine(_rotated_corners(rect, details.angle), details.rows,
                                    details.cols)
    return _warp_bilinear(source, chip_to_source, details.rows, details.cols)


def pyramid_down2(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>``: 5x5 binomial blur and 2x subsampling, in integers.

    (H, W, C) or (H, W) uint8 in; ((H - 3) // 2, (W - 3) // 2, ...) uint8 out, each pixel
    ``floor(sum(w_i w_j x[2r + i, 2c + j]) / 256)`` with ``w = [1, 4, 6, 4, 1]``. Images of
    8 pixels or fewer on a side give an empty image, as in dlib.
    """
    nr, nc = image.shape[:2]
    out_r, out_c = (nr - 3) // 2, (nc - 3) // 2
    if nr <= 8 or nc <= 8:
        return np.zeros((0, 0, *image.shape[2:]), np.uint8)
    # The 5x5 sums are whole numbers below 2**16, so float32 holds them exactly and the
    # floor division by 256 (a power of two) is exact too. The border mode never matters:
    # the kept pixels (2 + 2k) have all their taps inside the image.
    sums = cv2.sepFilter2D(image, cv2.CV_32F, _BINOMIAL5, _BINOMIAL5,
                           borderType=cv2.BORDER_REPLICATE)
    kept = sums[2 : 2 + 2 * out_r : 2, 2 : 2 + 2 * out_c : 2]
    return (kept * (1 / 256)).astype(np.uint8)  # truncation is floor for these sums


# -- helpers --------------------------------------------------------------------------
def _rect_down(rect: tuple[float, ...]) -> tuple[float, float, float, float]:
    """A rectangle's place one pyramid level down: p / 2 - (1.25, 0.75) for each corner."""
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _rect_area(rect: tuple[float, ...]) -> float:
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _rotated_corners(rect: tuple[float, ...], angle: float) -> np.ndarray:
    """Top-left, top-right, bottom-left, bottom-right corners of ``rect`` rotated by
    ``angle`` about its centre: (4, 2) float64."""
    left, top, right, bottom = rect
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]])
    c, s = math.cos(angle), math.sin(angle)
    return (corners - centre) @ np.array([[c, s], [-s, c]]) + centre


def _corner_affine(corners: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(2, 3) affine taking the chip's corners (0, 0), (cols-1, 0), (0, rows-1) to the
    first three of ``corners`` (top-left, top-right, bottom-left)."""
    tl, tr, bl = corners[0], corners[1], corners[2]
    return np.column_stack([(tr - tl) / max(cols - 1, 1), (bl - tl) / max(rows - 1, 1), tl])


def _warp_bilinear(source: np.ndarray, chip_to_source: np.ndarray, rows: int, cols: int):
    """Bilinear samples of ``source`` at chip_to_source(chip pixel), truncated to uint8;
    black where any of the four neighbours is outside ``source`` (as dlib)."""
    h, w = source.shape[:2]
    if h < 2 or w < 2:
        return np.zeros((rows, cols, 3), np.uint8)
    warped = cv2.warpAffine(
        source if source.dtype == np.float32 else source.astype(np.float32),
        chip_to_source, (cols, rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    # Truncate as dlib's static_cast<unsigned char>, with a hair of slack for float32 sums
    # that land just under a whole number.
    warped += 1e-3
    chip = np.clip(warped, 0, 255, out=warped).astype(np.uint8)
    if not _maps_inside(chip_to_source, rows, cols, w, h):
        (ax, bx, cx), (ay, by, cy) = chip_to_source
        xs = np.arange(cols, dtype=np.float64)[None, :]
        ys = np.arange(rows, dtype=np.float64)[:, None]
        fx, fy = np.floor(ax * xs + (bx * ys + cx)), np.floor(ay * xs + (by * ys + cy))
        chip[(fx < 0) | (fy < 0) | (fx + 1 >= w) | (fy + 1 >= h)] = 0
    return chip


def _maps_inside(affine: np.ndarray, rows: int, cols: int, w: int, h: int) -> bool:
    """Whether every chip pixel's four bilinear neighbours are inside a (h, w) source.

    The map is affine, so checking the chip's four corners (with a pixel of margin for
    rounding) covers the whole chip.
    """
    corners = np.array([[0, 0, 1], [cols - 1, 0, 1], [0, rows - 1, 1], [cols - 1, rows - 1, 1]])
    x, y = (corners @ affine.T).T
    return bool(np.all(x >= 1) and np.all(y >= 1) and np.all(x < w - 2) and np.all(y < h - 2))


def _round_half_away(value: float) -> int:
    """C's ``lround``: halves round away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _as_batch(landmarks: np.ndarray) -> np.ndarray:
    arr = np.asarray(landmarks, np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.size == 0:
        return np.zeros((0, 5, 2))
    if arr.ndim != 3 or arr.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must be (N, 5, 2); got shape {arr.shape}")
    return arr


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageError("Face chips need an 8-bit image (numpy uint8 array).")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ImageError(f"Face chips need an RGB or grey image; got an array of shape {image.shape}.")
