"""The manager PIN: set on first use (typed twice), asked before anything a manager does,
with a short lockout after a few wrong tries.

The PIN itself is never stored: the gallery keeps a salted scrypt hash
(:mod:`desktop.store.pin`). Hashing is deliberately slow (tens of milliseconds), so it runs
in a :class:`~desktop.ui.qthreading.Worker` and the video never stutters while a PIN is
checked.

The lockout is the gallery's (:meth:`Gallery.verify_pin`): after a few wrong PINs in a row
PIN entry is refused for a while (30 s, doubling), counted in the database so restarting
the app does not reset it. The dialog shows the countdown and disables entry meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.store.errors import PinError, PinLockedError
from desktop.store.pin import MIN_PIN_LENGTH, validate_pin
from desktop.ui.qthreading import Worker

ERROR_RED = "#b3261e"


def new_pin_problem(pin: str, again: str) -> str | None:
    """Why a new PIN typed twice cannot be used (too short, too long, the two differ), or
    None when it can."""
    try:
        validate_pin(pin)
    except PinError as exc:
        return exc.message
    if pin != again:
        return "The two PINs differ. Type the same PIN twice."
    return None


def error_label(name: str) -> QLabel:
    """A red, wrapping label for a dialog's problems."""
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {ERROR_RED};")
    return label


class PinDialog(QDialog):
    """Asks for the manager PIN, or (``create=True``) sets it, typed twice.

    ``accepted`` fires only for a right PIN (or a new PIN saved). Widgets are attributes
    (``pin_edit``, ``confirm_edit``, ``ok_button``, ``message``) so tests can drive it.
    """

    def __init__(self, gallery: Any, *, create: bool, reason: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.create = create
        self.setObjectName("pinDialog")
        self.setWindowTitle("Set the manager PIN" if create else "Manager PIN")
        self.setModal(True)
        self.setMinimumWidth(380)
        intro = QLabel(objectName="pinIntro")
        intro.setWordWrap(True)
        if create:
            intro.setText(
                "<b>Choose a manager PIN.</b><br>It protects enrolment, the people list, the "
                f"check-in log and the settings. Use at least {MIN_PIN_LENGTH} characters; "
                "only a salted hash of it is stored.")
        else:
            intro.setText(f"<b>Enter the manager PIN</b>{' to ' + reason if reason else ''}.")
        self.pin_edit = QLineEdit(objectName="pinEdit")
        self.pin_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm_edit = QLineEdit(objectName="pinConfirmEdit")
        self.confirm_edit.setEchoMode(QLineEdit.EchoMode.Password)
        form = QFormLayout()
        form.addRow("PIN", self.pin_edit)
        if create:
            form.addRow("Again", self.confirm_edit)
        else:
            self.confirm_edit.hide()
        self.message = error_label("pinMessage")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Set PIN" if create else "Unlock")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._worker: Worker | None = None
        self._tick = QTimer(self)
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._update_lock)
        if not create:
            self._update_lock()

    # -- entry --------------------------------------------------------------------------
    def submit(self) -> None:
        if self._worker is not None:
            return
        pin = self.pin_edit.text()
        if self.create:
            self._set_pin(pin, self.confirm_edit.text())
            return
        if self.seconds_locked() > 0:
            self._update_lock()
            return
        if not pin:
            self.message.setText("Type the PIN.")
            return
        self._busy("Checking…")
        self._worker = Worker(self.gallery.verify_pin, pin)
        self._worker.result.connect(self._on_verified)
        self._worker.error.connect(self._on_error)
        self._worker.start()

    def _set_pin(self, pin: str, again: str) -> None:
        problem = new_pin_problem(pin, again)
        if problem is not None:
            self.message.setText(problem)
            if pin != again:
                self.confirm_edit.clear()
                self.confirm_edit.setFocus()
            return
        self._busy("Saving…")
        self._worker = Worker(self.gallery.set_pin, pin)
        self._worker.result.connect(lambda _: self._done())
        self._worker.error.connect(self._on_error)
        self._worker.start()

    def _busy(self, text: str) -> None:
        self.message.setStyleSheet("color: palette(text);")
        self.message.setText(text)
        self.ok_button.setEnabled(False)
        self.pin_edit.setEnabled(False)

    def _idle(self) -> None:
        self._worker = None
        self.message.setStyleSheet(f"color: {ERROR_RED};")
        self.ok_button.setEnabled(True)
        self.pin_edit.setEnabled(True)

    def _on_verified(self, ok: bool) -> None:
        self._idle()
        if ok:
            self._done()
            return
        self.pin_edit.clear()
        self.pin_edit.setFocus()
        if self.seconds_locked() > 0:
            self._update_lock()
        else:
            self.message.setText("Wrong PIN. Try again.")

    def _on_error(self, exc: BaseException) -> None:
        self._idle()
        if isinstance(exc, PinLockedError):
            self._update_lock()
            return
        self.message.setText(getattr(exc, "message", None) or f"Could not check the PIN: {exc}")

    def seconds_locked(self) -> float:
        """Seconds until the gallery accepts a PIN again (0: now)."""
        return float(self.gallery.pin_lockout_remaining())

    def _done(self) -> None:
        self._worker = None
        self.accept()

    def _update_lock(self) -> None:
        left = self.seconds_locked()
        if left > 0:
            self.pin_edit.setEnabled(False)
            self.ok_button.setEnabled(False)
            self.message.setText(f"Too many wrong PINs. Try again in {math.ceil(left)} s.")
            if not self._tick.isActive():
                self._tick.start()
        elif self._tick.isActive() or not self.pin_edit.isEnabled():
            self._tick.stop()
            if self._worker is None:
                self.pin_edit.setEnabled(True)
                self.ok_button.setEnabled(True)
                self.message.setText("")
                self.pin_edit.setFocus()

    @property
    def locked(self) -> bool:
        return self.seconds_locked() > 0


class ManagerGate:
    """Asks for the PIN (or has it set on first use) before a manager action."""

    def __init__(self, gallery_getter: Callable[[], Any]) -> None:
        self._gallery = gallery_getter
        self.last_dialog: PinDialog | None = None

    def request(self, parent: QWidget, on_granted: Callable[[], None],
                reason: str = "") -> PinDialog | None:
        """Open the PIN dialog (not blocking); call ``on_granted`` once the PIN is right.

        Returns the dialog, or None when there is no gallery to check against.
        """
        gallery = self._gallery()
        if gallery is None:
            return None
        dialog = PinDialog(gallery, create=not gallery.has_pin(), reason=reason, parent=parent)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(on_granted)
        self.last_dialog = dialog
        dialog.open()
        return dialog
