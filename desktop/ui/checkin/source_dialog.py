"""Choose what the Check-in tab watches: a camera (by index), a video file or a stream URL.

Cameras are listed without opening them (opening a camera can take seconds, or hang):
on Linux from ``/dev/video*``, elsewhere indices 0 to 4. The choice is returned as the
text :class:`~desktop.face.camera.CameraSource` takes: ``"0"``, a path, or a URL.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop.face.camera import is_stream_url, parse_source
from desktop.ui.checkin.pin import error_label

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg);;All files (*)"


def camera_indices() -> list[int]:
    """Camera indices worth offering (not opened, so this is instant)."""
    if sys.platform.startswith("linux"):
        found = sorted({int(m.group(1)) for p in glob.glob("/dev/video*")
                        if (m := re.fullmatch(r"/dev/video(\d+)", p))})
        return found or [0]
    return list(range(5))


class SourceDialog(QDialog):
    """``source()`` is the chosen source text once accepted."""

    def __init__(self, current: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceDialog")
        self.setWindowTitle("Choose camera or video file")
        self.setMinimumWidth(520)
        self.camera_radio = QRadioButton("Camera", objectName="sourceCameraRadio")
        self.file_radio = QRadioButton("Video file", objectName="sourceFileRadio")
        self.url_radio = QRadioButton("Stream URL", objectName="sourceUrlRadio")
        group = QButtonGroup(self)
        for r in (self.camera_radio, self.file_radio, self.url_radio):
            group.addButton(r)
        self.camera_combo = QComboBox(objectName="sourceCamera")
        self.camera_combo.setEditable(True)
        for i in camera_indices():
            self.camera_combo.addItem(f"{i}")
        self.file_edit = QLineEdit(objectName="sourceFile")
        self.file_edit.setPlaceholderText("A video file stands in for a camera")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.url_edit = QLineEdit(objectName="sourceUrl")
        self.url_edit.setPlaceholderText("rtsp://camera.local/stream or http://…")
        grid = QGridLayout()
        grid.addWidget(self.camera_radio, 0, 0)
        grid.addWidget(self.camera_combo, 0, 1, 1, 2)
        grid.addWidget(self.file_radio, 1, 0)
        grid.addWidget(self.file_edit, 1, 1)
        grid.addWidget(browse, 1, 2)
        grid.addWidget(self.url_radio, 2, 0)
        grid.addWidget(self.url_edit, 2, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.message = error_label("sourceMessage")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.camera_combo.activated.connect(lambda _: self.camera_radio.setChecked(True))
        self.file_edit.textEdited.connect(lambda _: self.file_radio.setChecked(True))
        self.url_edit.textEdited.connect(lambda _: self.url_radio.setChecked(True))
        self._set_current(current)

    def _set_current(self, current: str | None) -> None:
        spec = parse_source(current) if current not in (None, "") else 0
        if isinstance(spec, int):
            self.camera_radio.setChecked(True)
            self.camera_combo.setCurrentText(str(spec))
        elif is_stream_url(spec):
            self.url_radio.setChecked(True)
            self.url_edit.setText(spec)
        else:
            self.file_radio.setChecked(True)
            self.file_edit.setText(spec)

    def _browse(self) -> None:
        start = self.file_edit.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a video file", start, VIDEO_FILTER)
        if path:
            self.file_edit.setText(path)
            self.file_radio.setChecked(True)

    def source(self) -> str | None:
        """The chosen source, or None with ``message`` set when it is not valid."""
        if self.camera_radio.isChecked():
            text = self.camera_combo.currentText().strip()
            if not text.isdigit():
                self.message.setText("A camera is chosen by its number: 0, 1, 2…")
                return None
            return text
        if self.file_radio.isChecked():
            path = self.file_edit.text().strip()
            if not path or not os.path.isfile(path):
                self.message.setText("Choose an existing video file.")
                return None
            return path
        url = self.url_edit.text().strip()
        if not is_stream_url(url):
            self.message.setText("A stream URL looks like rtsp://host/path or http://host/path.")
            return None
        return url

    def _accept(self) -> None:
        if self.source() is not None:
            self.accept()

