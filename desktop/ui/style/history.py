"""The history strip: earlier results of this session, newest first.

Clicking a result shows it in the preview; double-clicking (or "Restore these settings"
in its menu) puts its settings back in the controls. The strip lives for the session only;
saved results keep their settings in the PNG text and JSON sidecar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPaintEvent
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QMenu, QWidget

from desktop.style.settings import StyleSettings
from desktop.ui.style.qimage import thumbnail

ICON = 56
MAX_ENTRIES = 40


@dataclass
class HistoryEntry:
    image: np.ndarray  # G, (H, W, 3) uint8 RGB
    settings: StyleSettings
    iterations: int  # iterations actually run
    losses: dict[str, float]
    content: str = ""  # where C came from: a path, "pasted image" or "camera snapshot"
    styles: list[str] = field(default_factory=list)  # the same for each S
    finished: bool = True  # False when stopped early
    created: float = field(default_factory=time.time)

    def summary(self) -> str:
        s = self.settings
        state = "finished" if self.finished else "stopped"
        styles = ", ".join(_name(s) for s in self.styles) or "?"
        return (f"{_name(self.content)} in the style of {styles}\n"
                f"{state} after {self.iterations} of {s.iterations} iterations, "
                f"{s.size} px, {s.optimizer}\n"
                f"α = {s.alpha:g}, β = {s.beta:g}, total loss {self.losses.get('total', 0):.4g}\n"
                "Click to view; double-click to restore these settings.")


def _name(source: str) -> str:
    """A file's name, or the words for a pasted image or camera snapshot."""
    return Path(source).name if source and Path(source).suffix else (source or "image")


class HistoryStrip(QListWidget):
    """Signals: ``view_requested(HistoryEntry)``, ``restore_requested(HistoryEntry)``,
    ``save_requested(HistoryEntry)``."""

    view_requested = Signal(object)
    restore_requested = Signal(object)
    save_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyStrip")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(ICON, ICON))
        self.setSpacing(4)
        self.setFixedHeight(ICON + 32)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setToolTip("Results of this session. Click to view; double-click to restore "
                        "the settings.")
        self.customContextMenuRequested.connect(self._menu)
        self.itemClicked.connect(lambda item: self.view_requested.emit(self.entry(item)))
        self.itemDoubleClicked.connect(lambda item: self.restore_requested.emit(self.entry(item)))
        self._count = 0

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(QColor("#80868b"))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                             "Finished and stopped results of this session appear here.")

    def add(self, entry: HistoryEntry) -> QListWidgetItem:
        self._count += 1
        icon = QIcon(thumbnail(entry.image, ICON))
        label = f"#{self._count} · {entry.iterations} it"
        item = QListWidgetItem(icon, label)
        item.setData(Qt.ItemDataRole.UserRole, entry)
        item.setToolTip(entry.summary())
        item.setSizeHint(QSize(ICON + 16, ICON + 26))
        self.insertItem(0, item)
        while self.count() > MAX_ENTRIES:
            self.takeItem(self.count() - 1)
        return item

    def entries(self) -> list[HistoryEntry]:
        return [self.entry(self.item(i)) for i in range(self.count())]

    @staticmethod
    def entry(item: QListWidgetItem) -> HistoryEntry:
        return item.data(Qt.ItemDataRole.UserRole)

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        entry = self.entry(item)
        menu = QMenu(self)
        for text, signal in (("View", self.view_requested),
                             ("Restore these settings", self.restore_requested),
                             ("Save as PNG…", self.save_requested)):
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, s=signal: s.emit(entry))
            menu.addAction(action)
        menu.exec(self.viewport().mapToGlobal(pos))
