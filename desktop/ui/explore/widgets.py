"""Small pieces the Explore pages share: labelled groups, combo helpers, pixmaps, ETA text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QWidget

from desktop.errors import FacestyleError
from desktop.ui.style.live_view import format_duration
from desktop.ui.style.message_bar import ERROR, INFO, MessageBar
from desktop.ui.style.qimage import to_qimage
from desktop.ui.style.side_panel import group  # noqa: F401 - the Explore pages' groups too


def scroll_area(body: QWidget) -> QScrollArea:
    """``body`` in a frameless scroll area that resizes it."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(body)
    return scroll


def write_and_say(message: MessageBar, path: str | Path, write: Callable[[], object],
                  what: str = "write") -> bool:
    """Run ``write()``; say ``Saved NAME.`` on ``message``, or why it could not."""
    try:
        write()
    except OSError as exc:
        message.show_message(f"Cannot {what} {path}: {exc.strerror or exc}", ERROR)
        return False
    message.show_message(f"Saved {Path(path).name}.", INFO)
    return True


def fact(text: str = "", role: str = "fact") -> QLabel:
    """A wrapped, selectable label styled by ``role`` (fact, big, ok, bad)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setProperty("role", role)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def set_role(label: QLabel, role: str) -> None:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)


def select_data(combo: QComboBox, data: object) -> bool:
    """Select the item whose data is ``data``; False when there is none."""
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)
    return index >= 0


def compact(combo: QComboBox, chars: int) -> QComboBox:
    """Let ``combo`` be narrower than its longest item (about ``chars`` characters)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def pixmap(rgb: np.ndarray) -> QPixmap:
    """An RGB uint8 array as a QPixmap (copied: the array may go)."""
    return QPixmap.fromImage(to_qimage(rgb).copy())


def describe(exc: BaseException) -> str:
    if isinstance(exc, FacestyleError):
        return exc.message + (f" {exc.hint}" if exc.hint else "")
    return str(exc) or type(exc).__name__


def progress_text(done_text: str, fraction: float, elapsed: float) -> str:
    """``done_text · ETA 0:12`` from the fraction done and the seconds so far."""
    if 0.02 < fraction < 1 and elapsed > 1:
        remaining = elapsed * (1 - fraction) / fraction
        return f"{done_text} · ETA {format_duration(remaining)}"
    return done_text
