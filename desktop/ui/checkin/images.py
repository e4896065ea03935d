"""numpy RGB images to Qt images, cheaply.

A camera frame is wrapped, not copied: :func:`wrap_rgb` returns a QImage that reads the
array's memory directly (the caller keeps the array alive while the QImage is drawn). At
640x360 that saves a 700 KB copy per displayed frame.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPixmap


def wrap_rgb(image: np.ndarray) -> QImage:
    """A QImage over ``image`` ((H, W, 3) RGB uint8) without copying its pixels.

    The QImage is only valid while ``image`` is alive and unchanged; copy it
    (``QImage.copy()``) to keep it longer.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {arr.shape} {arr.dtype}")
    if not arr.flags.c_contiguous:
        raise ValueError("the image must be C-contiguous (np.ascontiguousarray)")
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, int(arr.strides[0]), QImage.Format.Format_RGB888)


def to_qimage(image: np.ndarray) -> QImage:
    """An independent QImage copy of an RGB uint8 image (any memory layout)."""
    return wrap_rgb(np.ascontiguousarray(image)).copy()


def to_pixmap(image: np.ndarray, side: int | None = None) -> QPixmap:
    """A QPixmap of an RGB uint8 image, scaled smoothly to fit ``side`` px when given."""
    qimage = to_qimage(image)
    if side is not None:
        qimage = qimage.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(qimage)


def to_icon(image: np.ndarray, side: int = 64) -> QIcon:
    return QIcon(to_pixmap(image, side))
