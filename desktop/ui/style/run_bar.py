"""The pieces the image view and the video view share: the Start / Pause / Stop buttons
and the progress bar with its status line and device label."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QWidget,
)


def run_buttons(start_tip: str, stop_tip: str) -> tuple[QPushButton, QPushButton, QPushButton]:
    """Start (Ctrl+Enter), Pause/Resume and Stop, named for the tab's style sheet."""
    start = QPushButton("▶  Start")
    start.setObjectName("startButton")
    start.setShortcut(QKeySequence("Ctrl+Return"))
    start.setToolTip(start_tip)
    pause = QPushButton("❚❚  Pause")
    pause.setObjectName("pauseButton")
    pause.setToolTip("Pause after the current iteration; press again to resume")
    stop = QPushButton("■  Stop")
    stop.setObjectName("stopButton")
    stop.setToolTip(stop_tip)
    return start, pause, stop


def set_run_state(start: QPushButton, pause: QPushButton, stop: QPushButton,
                  state: str) -> None:
    """Enable the buttons for ``idle``, ``running``, ``paused`` or ``stopping``."""
    start.setEnabled(state == "idle")
    pause.setEnabled(state in ("running", "paused"))
    stop.setEnabled(state in ("running", "paused"))
    pause.setText("▶  Resume" if state == "paused" else "❚❚  Pause")
    pause.setProperty("paused", state == "paused")


def status_widgets() -> tuple[QProgressBar, QLabel, QLabel, QHBoxLayout]:
    """A thin progress bar, the status line and the device label (in a row)."""
    progress = QProgressBar()
    progress.setObjectName("styleProgress")
    progress.setTextVisible(False)
    progress.setFixedHeight(6)
    stats = QLabel("Ready")
    stats.setObjectName("styleStats")
    stats.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    device = QLabel("")
    device.setObjectName("styleDevice")
    device.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    device.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    row = QHBoxLayout()
    row.setContentsMargins(2, 0, 2, 0)
    row.addWidget(stats, 3)
    row.addWidget(device, 2)
    return progress, stats, device, row


def button_row(left: tuple[QWidget, ...], right: tuple[QWidget, ...]) -> QHBoxLayout:
    """``left`` widgets, a stretch, then ``right`` ones: the bar above a view."""
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for w in left:
        row.addWidget(w)
    row.addStretch(1)
    for w in right:
        row.addWidget(w)
    return row
