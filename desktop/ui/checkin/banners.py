"""Banners laid over the video: "Welcome, NAME" on a check-in, and camera problems.

Both are plain child widgets of the video view, placed by it (``place``), so they cost
nothing while hidden and never cover the side panel.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

#: How long the welcome banner stays up, in milliseconds.
WELCOME_MS = 4000


class WelcomeBanner(QLabel):
    """"Welcome, Ada" for a few seconds; people arriving together share the banner."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("bannerLabel")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.names: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    def welcome(self, name: str, detail: str = "") -> None:
        if not self.isVisible():
            self.names = []
        if name not in self.names:
            self.names.append(name)
        who = _join(self.names[-3:])
        text = f"Welcome, {who}!"
        if detail:
            text += f"<br><span style='font-size:13px;font-weight:400'>{detail}</span>"
        self.setText(text)
        self.adjustSize()
        self.show()
        self.raise_()
        self._timer.start(WELCOME_MS)
        parent = self.parentWidget()
        if parent is not None:
            self.place(parent.rect())

    def dismiss(self) -> None:
        self.hide()
        self.names = []

    def place(self, area: QRect) -> None:
        self.adjustSize()
        w = min(area.width() - 40, max(self.sizeHint().width() + 40, 320))
        h = self.sizeHint().height()
        self.setGeometry(area.x() + (area.width() - w) // 2, area.bottom() - h - 28, w, h)


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


class SourceBanner(QFrame):
    """A camera problem in words, the countdown to the next attempt, and two actions:
    retry now, or choose another camera or video file."""

    retry_requested = Signal()
    choose_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceBanner")
        self.setStyleSheet(
            "#sourceBanner { background: rgba(32, 33, 36, 235); border-radius: 8px; }"
            "#sourceBanner QLabel { color: white; }"
            "#sourceBannerTitle { font-size: 16px; font-weight: 600; }"
            "#sourceBanner QPushButton { padding: 5px 12px; }")
        self.title = QLabel(objectName="sourceBannerTitle")
        self.detail = QLabel(objectName="sourceBannerDetail")
        self.detail.setWordWrap(True)
        self.countdown = QLabel(objectName="sourceBannerCountdown")
        self.retry_button = QPushButton("Retry now")
        self.choose_button = QPushButton("Choose camera or video file…")
        self.retry_button.clicked.connect(self.retry_requested)
        self.choose_button.clicked.connect(self.choose_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.countdown, 1)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.choose_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)
        self._retry_at: float | None = None
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._update_countdown)
        self.hide()

    def show_problem(self, title: str, detail: str, retry_at: float | None = None,
                     retry_label: str = "Retrying") -> None:
        """Show ``title``/``detail``; ``retry_at`` is the ``time.monotonic()`` of the next
        automatic attempt (None: no automatic retry)."""
        self.title.setText(title)
        self.detail.setText(detail)
        self._retry_at = retry_at
        self._retry_label = retry_label
        self._update_countdown()
        if retry_at is not None:
            self._tick.start()
        else:
            self._tick.stop()
        self.show()
        self.raise_()
        parent = self.parentWidget()
        if parent is not None:
            self.place(parent.rect())

    def clear(self) -> None:
        self._tick.stop()
        self._retry_at = None
        self.hide()

    def seconds_left(self) -> float | None:
        if self._retry_at is None:
            return None
        return max(0.0, self._retry_at - time.monotonic())

    def _update_countdown(self) -> None:
        left = self.seconds_left()
        if left is None:
            self.countdown.setText("")
        elif left < 0.5:
            self.countdown.setText(f"{self._retry_label} now…")
        else:
            self.countdown.setText(f"{self._retry_label} in {left:.0f} s")

    def place(self, area: QRect) -> None:
        w = min(area.width() - 40, 560)
        self.setFixedWidth(max(200, w))
        h = self.sizeHint().height()
        self.setGeometry(area.x() + (area.width() - self.width()) // 2,
                         area.y() + max(20, (area.height() - h) // 2), self.width(), h)
