"""Reading images from files into RGB uint8 arrays, safely.

Every loader in the app goes through :func:`load_rgb`, so the same rules hold for face
photos, style images and pasted pictures:

* EXIF orientation is applied (phone photos come out upright);
* grayscale, palette, CMYK, 16-bit and alpha images all become 8-bit RGB (transparent
  pixels are composited over white);
* decompression bombs are refused before any pixel is decoded, and a corrupt or
  truncated file raises :class:`~desktop.errors.ImageError` with the file's name.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from desktop.errors import ImageError

#: Images with more pixels than this are refused before decoding (about 16k x 12k).
MAX_PIXELS = 200_000_000

ImageSource = str | os.PathLike[str] | bytes


def _name(source: ImageSource) -> str:
    return "the pasted image" if isinstance(source, bytes) else str(source)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(((arr - lo) * scale).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode == "P":
        return img.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or img.mode == "RGBA":
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_rgb(source: ImageSource, max_pixels: int = MAX_PIXELS,
             draft_side: int | None = None) -> np.ndarray:
    """Decode an image file (or its bytes) into an upright (H, W, 3) RGB uint8 array.

    ``draft_side``: for callers that will shrink the image to this longest side anyway, a
    JPEG may be decoded at 1/2, 1/4 or 1/8 scale, never below ``draft_side`` (PIL's
    ``draft``: several times faster for large photos). The result is then smaller than
    the file's own size; compare sizes to map coordinates back.

    Raises:
        ImageError: unreadable, not an image, corrupt/truncated, or over ``max_pixels``.
    """
    name = _name(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except FileNotFoundError as exc:
        raise ImageError(f"{name} does not exist.") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{name} is a folder, not an image.") from exc
    except OSError as exc:
        raise ImageError(f"Cannot open {name}: {exc.strerror or exc}") from exc
    with fp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(fp)
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{name} is {width}x{height} pixels, over the limit of "
                        f"{max_pixels / 1e6:.0f} megapixels; it was not opened.",
                        "Resize it in an image editor first.",
                    )
                if draft_side and img.format == "JPEG" and max(width, height) > draft_side:
                    scale = draft_side / max(width, height)
                    img.draft(None, (max(1, int(width * scale)), max(1, int(height * scale))))
                img.load()
                img = ImageOps.exif_transpose(img) or img
                rgb = _to_rgb(img)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{name} is too large to decode safely: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise ImageError(f"{name} is not an image file this app can read.") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{name} is damaged or truncated: {exc}") from exc
    return np.array(rgb, dtype=np.uint8)  # a writable copy: callers draw on it


def downscale_to(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink ``image`` so its longest side is at most ``max_side`` pixels.

    Returns the (possibly unchanged) image and the factor ``s`` with
    ``small = original * s``; multiply small-image coordinates by ``1 / s`` to map back.
    """
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return image, 1.0
    import cv2

    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def save_png(path: str | Path, image: np.ndarray, text: dict[str, str] | None = None) -> None:
    """Write an RGB uint8 array as PNG, with optional ``tEXt`` chunks."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    Image.fromarray(image).save(path, format="PNG", pnginfo=info)
