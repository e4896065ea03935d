"""The side panel: today's check-ins, newest first, with each person's face thumbnail."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.store import CheckIn
from desktop.ui.checkin.images import to_pixmap

AVATAR = 44

AvatarLookup = Callable[[int], np.ndarray | None]


def initials_icon(name: str, side: int = AVATAR) -> QIcon:
    """A round grey badge with the person's initials (deleted people, no thumbnail)."""
    pix = QPixmap(side, side)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor("#c5cad0"))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawEllipse(0, 0, side, side)
    p.setPen(QColor("#3c4043"))
    letters = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, letters)
    p.end()
    return QIcon(pix)


class _Row(QWidget):
    """One check-in: the face, the name in bold, the time and d below it."""

    def __init__(self, icon: QIcon, name: str, detail: str) -> None:
        super().__init__()
        face = QLabel()
        face.setPixmap(icon.pixmap(AVATAR, AVATAR))
        face.setFixedSize(AVATAR, AVATAR)
        title = QLabel(name)
        title.setStyleSheet("font-weight: 600; font-size: 14px;")
        sub = QLabel(detail)
        sub.setStyleSheet("color: palette(placeholder-text);")
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(title)
        text.addWidget(sub)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 5, 10, 5)
        row.setSpacing(10)
        row.addWidget(face)
        row.addLayout(text, 1)


class TodayPanel(QFrame):
    """Lists check-ins (``set_checkins``), newest first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("todayPanel")
        self.setMinimumWidth(240)
        self.setStyleSheet(
            "#todayPanel { background: palette(base); border-left: 1px solid palette(mid); }"
            "#todayTitle { font-size: 15px; font-weight: 600; padding: 10px 10px 0 10px; }"
            "#todaySubtitle { color: palette(placeholder-text); padding: 0 10px 6px 10px; }"
            "#todayList { border: none; }"
            "#todayList::item { border-bottom: 1px solid palette(midlight); }")
        self.title = QLabel("Today's check-ins", objectName="todayTitle")
        self.subtitle = QLabel("", objectName="todaySubtitle")
        self.list = QListWidget(objectName="todayList")
        self.list.setIconSize(QSize(AVATAR, AVATAR))
        self.list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.empty = QLabel("No one has checked in yet today.", objectName="todayEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: palette(placeholder-text); padding: 20px;")
        for label in (self.title, self.subtitle):
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.list, 1)
        self._icons: dict[int, QIcon] = {}
        self.checkins: list[CheckIn] = []
        self.set_checkins([], None)

    def set_checkins(self, checkins: Sequence[CheckIn], avatar: AvatarLookup | None,
                     day: date | None = None) -> None:
        """Show ``checkins`` (any order; shown newest first)."""
        day = day or date.today()
        self.checkins = sorted(checkins, key=lambda c: (c.at, c.id), reverse=True)
        n = len(self.checkins)
        self.subtitle.setText(f"{day:%A %d %B} · {n} check-in{'s' if n != 1 else ''}")
        self.list.clear()
        for c in self.checkins:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{c.name}, {c.when:%H:%M}")
            item.setToolTip(f"{c.name} checked in at {c.when:%H:%M:%S}\n"
                            f"d = {c.d:.3f} (squared L2 distance to their nearest template)"
                            + (f"\ncamera: {c.camera}" if c.camera else ""))
            row = _Row(self._icon(c, avatar), c.name, f"{c.when:%H:%M}  ·  d = {c.d:.2f}")
            item.setSizeHint(row.sizeHint())
            self.list.addItem(item)
            self.list.setItemWidget(item, row)
        self.empty.setVisible(n == 0)
        self.list.setVisible(n > 0)

    def forget_avatars(self) -> None:
        self._icons.clear()

    def _icon(self, c: CheckIn, avatar: AvatarLookup | None) -> QIcon:
        if c.person_id is None:
            return initials_icon(c.name)
        icon = self._icons.get(c.person_id)
        if icon is None:
            chip = avatar(c.person_id) if avatar is not None else None
            icon = initials_icon(c.name) if chip is None else QIcon(to_pixmap(chip, AVATAR))
            self._icons[c.person_id] = icon
        return icon

    def names(self) -> list[str]:
        """The names listed, top to bottom (newest first)."""
        return [c.name for c in self.checkins]
