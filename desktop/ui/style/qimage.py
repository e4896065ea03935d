"""Cheap conversions between RGB uint8 arrays and Qt images.

The live preview converts G at every iteration, so :func:`to_qimage` makes no copy of the
pixels: the QImage shares the array's buffer and keeps the array alive on itself.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, QMimeData, Qt
from PySide6.QtGui import QImage, QPixmap

from desktop.errors import ImageError
from desktop.imageio import load_rgb


def to_qimage(rgb: np.ndarray) -> QImage:
    """An (H, W, 3) uint8 RGB array as a QImage sharing its memory (no copy)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    image._keep = rgb  # type: ignore[attr-defined]  # the buffer must outlive the QImage
    return image


def thumbnail(rgb: np.ndarray, side: int) -> QPixmap:
    """A smooth thumbnail whose longest side is ``side`` pixels."""
    pixmap = QPixmap.fromImage(to_qimage(rgb))
    return pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """A QImage (any format, e.g. from the clipboard) as an (H, W, 3) uint8 RGB array.

    Transparent pixels are composited over white, like :func:`desktop.imageio.load_rgb`.
    """
    if image.isNull():
        raise ImageError("The clipboard image is empty.")
    if image.hasAlphaChannel():
        flat = QImage(image.size(), QImage.Format.Format_RGB888)
        flat.fill(Qt.GlobalColor.white)
        from PySide6.QtGui import QPainter

        painter = QPainter(flat)
        painter.drawImage(0, 0, image)
        painter.end()
        image = flat
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * h)
    return buf.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()


def rgb_from_mime(mime: QMimeData) -> tuple[np.ndarray, str] | None:
    """The first image in dropped or pasted data, and a name for it; None when there is
    none. Files go through :func:`load_rgb` (which raises ImageError for bad ones)."""
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                return load_rgb(path), path
    if mime.hasImage():
        data = mime.imageData()
        image = data if isinstance(data, QImage) else QImage(data)
        return qimage_to_rgb(image), "pasted image"
    for fmt in ("image/png", "image/jpeg", "image/bmp", "image/tiff"):
        if mime.hasFormat(fmt):
            return load_rgb(bytes(mime.data(fmt).data())), "pasted image"
    return None


def png_bytes(image: QImage) -> bytes:
    """Encode a QImage as PNG bytes (for tests and the clipboard)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data().data())
