"""Output options: "save every N iterations" into a folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.paths import user_dirs


def default_folder() -> Path:
    pictures = Path.home() / "Pictures"
    base = pictures if pictures.is_dir() else user_dirs().data
    return base / "facestyle"


class OutputOptions(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.enabled = QCheckBox("Save G every")
        self.enabled.setToolTip("Write G as PNG (with its settings) every N iterations of a "
                                "job, to watch how it developed.")
        self.every = QSpinBox()
        self.every.setRange(1, 10000)
        self.every.setValue(50)
        self.every.setSuffix(" iterations")
        self.folder = QLineEdit(str(default_folder()))
        self.folder.setObjectName("autosaveFolder")
        self.folder.setToolTip("The folder for the saved iterations (created when needed).")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the folder")
        browse.clicked.connect(self._browse)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.enabled)
        top.addWidget(self.every, 1)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.folder, 1)
        bottom.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(bottom)
        self.enabled.toggled.connect(self._update)
        self.every.valueChanged.connect(self.changed)
        self.folder.editingFinished.connect(self.changed)
        self._update()

    def plan(self) -> tuple[Path, int] | None:
        """(folder, every) when autosaving is on, else None."""
        if not self.enabled.isChecked() or not self.folder.text().strip():
            return None
        return Path(self.folder.text().strip()).expanduser(), self.every.value()

    def _update(self) -> None:
        on = self.enabled.isChecked()
        self.every.setEnabled(on)
        self.folder.setEnabled(on)
        self.changed.emit()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save iterations to", self.folder.text())
        if folder:
            self.folder.setText(folder)
            self.changed.emit()
