"""Image helpers for style transfer: resizing to a longest side, and luminance/colour (YIQ).

Images are ``(H, W, 3)`` RGB arrays, uint8 0..255 unless a function says float.
"""

from __future__ import annotations

import cv2
import numpy as np

#: RGB -> YIQ (NTSC); Y is the luminance the colour-preserving mode transfers.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], dtype=np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def fit_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """``(h, w)`` scaled so the longest side is ``longest`` pixels (aspect kept, >= 1)."""
    scale = longest / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to exactly ``height x width`` (area filter shrinking, cubic enlarging)."""
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(image, (width, height), interpolation=interp)
    if image.dtype == np.uint8:
        return out
    return out.astype(image.dtype, copy=False)


def resize_longest(image: np.ndarray, longest: int) -> np.ndarray:
    """Resize so the longest side is ``longest`` pixels (up or down)."""
    return resize(image, *fit_size(image.shape[0], image.shape[1], longest))


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """RGB (0..255, any dtype) -> float64 YIQ with Y in 0..255."""
    return image.astype(np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb_uint8(yiq: np.ndarray) -> np.ndarray:
    """float YIQ -> RGB uint8 (clipped)."""
    return np.clip(yiq @ YIQ_TO_RGB.T + 0.5, 0, 255).astype(np.uint8)


def luminance_image(image: np.ndarray, match: np.ndarray | None = None) -> np.ndarray:
    """The image's luminance Y as a gray RGB uint8 image (Y in all three channels).

    With ``match`` (another image's luminance, float), Y is first shifted and scaled to
    that luminance's mean and standard deviation, as Gatys et al. (2016) do for the style
    image in luminance-only transfer.
    """
    y = rgb_to_yiq(image)[..., 0]
    if match is not None:
        y = (y - y.mean()) / (y.std() + 1e-6) * match.std() + match.mean()
    gray = np.clip(y + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def with_colours_of(generated: np.ndarray, content: np.ndarray) -> np.ndarray:
    """G's luminance combined with the content image's colour (I and Q) channels."""
    out = rgb_to_yiq(content)
    out[..., 0] = rgb_to_yiq(generated)[..., 0]
    return yiq_to_rgb_uint8(out)
