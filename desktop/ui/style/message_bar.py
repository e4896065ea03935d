"""An inline message above the preview: what is missing, what was changed, what failed.

Messages stay in the layout (not a dialog) so the user can act while reading them; one at
a time, the newest wins, and the ✕ dismisses it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

INFO, WARNING, ERROR = "info", "warning", "error"


def describe(exc: BaseException) -> str:
    """An error in one line for the message bar: a FacestyleError's message and hint."""
    from desktop.errors import FacestyleError

    if isinstance(exc, FacestyleError):
        return exc.message + (f" {exc.hint}" if exc.hint else "")
    return str(exc) or type(exc).__name__


class MessageBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("styleMessage")
        self.label = QLabel()
        self.label.setObjectName("styleMessageText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(lambda: self.clear())
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        row.addWidget(self.label, 1)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.level = ""
        self.key = ""
        self.hide()

    def show_message(self, text: str, level: str = INFO, key: str = "") -> None:
        """Show ``text``; ``key`` names the message so that :meth:`clear` can take back
        only that one once it no longer applies."""
        self.level = level
        self.key = key
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self, key: str | None = None) -> None:
        """Hide the message (only if it is the one named ``key``, when given)."""
        if key is not None and key != self.key:
            return
        self.level = ""
        self.key = ""
        self.label.clear()
        self.hide()
