"""Enrol: start an enrolment from the camera or from photo files."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.enrol_dialog import MAX_SHOTS, EnrolDialog
from desktop.ui.checkin.page_common import page_layout


class EnrolPage(QWidget):
    def __init__(self, ctx: ManagerContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.dialog: EnrolDialog | None = None
        layout = page_layout(self, "Enrol a person")
        text = QLabel(
            "<p><b>From the camera:</b> the person stands in front of the camera, alone, "
            f"and looks at it. Up to {MAX_SHOTS} shots are taken by themselves, each only "
            "when the face is large enough, sharp and facing the camera; the dialog says "
            "what to change when a shot is refused.</p>"
            "<p><b>From photos:</b> choose one or more photos showing only this person, "
            "facing the camera. The same checks apply.</p>"
            "<p>You review the faces before saving. If the new person looks like someone "
            "already enrolled, you are told (\"looks like X, d = …\") and must confirm, so "
            "no one is enrolled twice by mistake.</p>")
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(text)
        self.camera_button = QPushButton("From the camera…", objectName="enrolFromCamera")
        self.files_button = QPushButton("From photo files…", objectName="enrolFromFiles")
        for b in (self.camera_button, self.files_button):
            b.setMinimumHeight(44)
            b.setStyleSheet("font-size: 15px; padding: 6px 18px;")
        self.camera_button.clicked.connect(lambda: self.open_dialog("camera"))
        self.files_button.clicked.connect(lambda: self.open_dialog("files"))
        row = QHBoxLayout()
        row.addWidget(self.camera_button)
        row.addWidget(self.files_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.state = QLabel(objectName="enrolPageState")
        self.state.setWordWrap(True)
        layout.addWidget(self.state)
        layout.addStretch(1)

    def refresh(self) -> None:
        session = self.ctx.session
        error = session.engine_error
        if session.engine is None:
            self.state.setText(
                "The face models are still loading…" if error is None else
                f"The face engine is not available: {getattr(error, 'message', error)}")
        else:
            self.state.setText(f"Camera: {session.source_description}.")

    def open_dialog(self, start: str) -> EnrolDialog:
        dialog = EnrolDialog(self.ctx, start="camera" if start == "camera" else None,
                             parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.open()
        if start == "files":
            dialog._choose_files()
        return dialog
