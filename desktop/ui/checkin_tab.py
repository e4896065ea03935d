"""The Check-in tab (front-desk recognition). Built out by the check-in work."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class CheckinTab(QWidget):
    title = "Check-in"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("checkinTab")
        label = QLabel("The live check-in view is not built yet.")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        QVBoxLayout(self).addWidget(label)
