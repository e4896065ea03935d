"""Small widgets the Model page's tabs share: notes, coloured message boxes, cards, and the
one-job-at-a-time slot."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.qthreading import Worker

STYLES = {
    "info": "background: #e8f0fe; color: #174ea6; border: 1px solid #c6dafc;",
    "ok": "background: #e6f4ea; color: #0d652d; border: 1px solid #b7e1c1;",
    "warn": "background: #fef7e0; color: #7a4b00; border: 1px solid #f6dc9c;",
    "error": "background: #fce8e6; color: #a50e0e; border: 1px solid #f4c7c3;",
}


def choice_box(choices: tuple[tuple[str, str, str], ...], name: str,
               default: str | None = None) -> QComboBox:
    """A combo box of ``(key, label, tooltip)`` choices; ``currentData()`` is the key."""
    box = QComboBox(objectName=name)
    for key, label, tip in choices:
        box.addItem(label, key)
        box.setItemData(box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    if default is not None:
        box.setCurrentIndex(box.findData(default))
    return box


def note(text: str = "", name: str = "") -> QLabel:
    """Grey explanatory text (rich text, wrapped)."""
    label = QLabel(text, objectName=name or None)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setStyleSheet("color: palette(placeholder-text);")
    return label


class Explainer(QWidget):
    """A one-line summary, and the full explanation behind a "More…" toggle."""

    def __init__(self, summary: str, details: str, toggle: str, name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.summary = note(summary)
        self.summary.setStyleSheet("")
        self.toggle = QToolButton(objectName=f"{name}Toggle")
        self.toggle.setText(toggle)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._toggled)
        self.details = note(details, f"{name}Details")
        self.details.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.summary, 1)
        row.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.details)

    def _toggled(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)


class MessageBox(QLabel):
    """A coloured message: ``show_message(kind, html)`` (info, ok, warn, error); hidden
    while empty. ``kind`` is kept for tests."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, html: str) -> None:
        self.kind = kind
        self.setStyleSheet(f"QLabel {{ {STYLES[kind]} border-radius: 6px; padding: 8px 10px; }}")
        self.setText(html)
        self.setVisible(bool(html))

    def clear_message(self) -> None:
        self.kind = ""
        self.setText("")
        self.hide()


class Card(QFrame):
    """A titled, lightly framed box."""

    def __init__(self, title: str, name: str = "modelCard",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setStyleSheet(f"QFrame#{name} {{ border: 1px solid palette(mid); "
                           "border-radius: 8px; background: palette(base); }")
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: 600; color: palette(placeholder-text); "
                                 "border: none; background: transparent;")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(12, 8, 12, 10)
        self.body.setSpacing(4)
        self.body.addWidget(self.title)


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless vertical scroll area (for small screens)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def reveal(widget: QWidget) -> None:
    """Scroll the enclosing scroll area so that ``widget`` is in view."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is not None:
        parent.ensureWidgetVisible(widget, 0, 0)


JOB_WORDS = {
    "train": "a fine-tune is running",
    "switch": "the encoder is being switched",
    "head": "the verification head is being trained",
    "rule": "the decision rule is being changed",
    "compare": "two encoders are being compared",
    "delete": "a version is being deleted",
}


class JobSlot(QObject):
    """At most one long job of the page at a time. ``changed(kind)`` ("" when idle)."""

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.kind = ""
        self.worker: Worker | None = None

    @property
    def busy(self) -> bool:
        return bool(self.kind)

    def why_busy(self) -> str:
        return f"Wait until {JOB_WORDS.get(self.kind, 'the current task')} finishes." \
            if self.kind else ""

    def start(self, kind: str, worker: Worker, *, hold: bool = False) -> bool:
        """Start ``worker`` as the page's job; False (not started) when one runs. With
        ``hold`` the slot stays taken until :meth:`release` (for jobs that go on after
        their worker, like an engine reload)."""
        if self.kind:
            return False
        self.kind = kind
        self.worker = worker
        if not hold:
            worker.finished.connect(self.release)
        self.changed.emit(kind)
        worker.start()
        return True

    def hold(self, kind: str) -> bool:
        """Take the slot without a worker (the caller releases it)."""
        if self.kind:
            return False
        self.kind = kind
        self.worker = None
        self.changed.emit(kind)
        return True

    def release(self) -> None:
        if self.kind:
            self.kind = ""
            self.worker = None
            self.changed.emit("")

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
