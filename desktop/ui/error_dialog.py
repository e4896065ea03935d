"""The application-wide error dialog: an exception becomes a readable message, not a crash.

Errors written for people (:class:`~desktop.errors.FacestyleError`) show their message and
hint; anything else shows a plain summary, with the traceback under "Show details" and a
button to copy it. :func:`install_excepthook` routes uncaught exceptions here.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from desktop.errors import FacestyleError

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> tuple[str, str, str]:
    """(message, hint, details) for an exception, in words for the user."""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, FacestyleError):
        return exc.message, exc.hint or "", details
    if isinstance(exc, MemoryError):
        return (
            "The computer ran out of memory.",
            "Try a smaller image size, or close other programs.",
            details,
        )
    text = str(exc) or type(exc).__name__
    return (
        f"Something went wrong: {text}",
        "Your data is safe. If this keeps happening, send the details to the developers.",
        details,
    )


class ErrorDialog(QMessageBox):
    def __init__(self, exc: BaseException, parent: QWidget | None = None, title: str = "") -> None:
        super().__init__(parent)
        message, hint, details = describe(exc)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle(title or "facestyle: problem")
        self.setText(message)
        self.setInformativeText(hint)
        self.setDetailedText(details)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStandardButtons(QMessageBox.StandardButton.Ok)
        copy = self.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.disconnect()
        copy.clicked.connect(lambda: QApplication.clipboard().setText(f"{message}\n\n{details}"))


def show_error(parent: QWidget | None, exc: BaseException, title: str = "") -> ErrorDialog:
    """Log ``exc`` and show it in a non-blocking dialog (returned, for tests)."""
    log.error("%s", exc, exc_info=(type(exc), exc, exc.__traceback__))
    dialog = ErrorDialog(exc, parent, title)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def install_excepthook() -> None:
    """Show uncaught exceptions (UI thread or Python threads) in the error dialog."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, exc, tb)
            return
        exc.__traceback__ = tb
        if QApplication.instance() is None:
            previous(kind, exc, tb)
            return
        show_error(QApplication.activeWindow(), exc)

    sys.excepthook = hook
