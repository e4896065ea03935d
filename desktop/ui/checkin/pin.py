"""The manager PIN: set on first use (typed twice), asked before anything a manager does,
with a short lockout after a few wrong tries.

The PIN itself is never stored: the gallery keeps a salted scrypt hash
(:mod:`desktop.store.pin`). Hashing is deliberately slow (tens of milliseconds), so it runs
in a :class:`~desktop.ui.qthreading.Worker` and the video never stutters while a PIN is
checked.

Lockout: after :data:`MAX_TRIES` wrong PINs in a row, PIN entry is refused for
:data:`LOCKOUT_S` seconds, doubling with each further lockout up to
:data:`LOCKOUT_MAX_S`. The state lives in the gallery's settings (``_pin_lockout``), so
restarting the app does not reset it; a right PIN does.
"""

from __future__ import annotations

import math
import time
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

from desktop.store.errors import PinError
from desktop.store.pin import MIN_PIN_LENGTH, validate_pin
from desktop.ui.qthreading import Worker

MAX_TRIES = 3
LOCKOUT_S = 30.0
LOCKOUT_MAX_S = 300.0
_KEY = "_pin_lockout"


class PinLock:
    """Counts wrong PINs and locks entry for a while (state kept in the gallery)."""

    def __init__(self, gallery: Any, clock: Callable[[], float] = time.time) -> None:
        self.gallery = gallery
        self.clock = clock

    def _state(self) -> dict[str, float]:
        value = self.gallery.get_setting(_KEY, None)
        return dict(value) if isinstance(value, dict) else {}

    def seconds_locked(self) -> float:
        """Seconds until PIN entry is allowed again (0 when it is)."""
        until = float(self._state().get("until", 0.0))
        return max(0.0, until - self.clock())

    def tries_left(self) -> int:
        return max(0, MAX_TRIES - int(self._state().get("failures", 0)))

    def failure(self) -> float:
        """Count a wrong PIN; returns the lockout it starts, in seconds (0: none yet)."""
        state = self._state()
        failures = int(state.get("failures", 0)) + 1
        lockouts = int(state.get("lockouts", 0))
        locked = 0.0
        if failures >= MAX_TRIES:
            locked = min(LOCKOUT_MAX_S, LOCKOUT_S * 2 ** lockouts)
            state["until"] = self.clock() + locked
            lockouts += 1
            failures = 0
        state.update(failures=failures, lockouts=lockouts)
        self.gallery.set_setting(_KEY, state)
        return locked

    def success(self) -> None:
        self.gallery.set_setting(_KEY, None)


class PinDialog(QDialog):
    """Asks for the manager PIN, or (``create=True``) sets it, typed twice.

    ``accepted`` fires only for a right PIN (or a new PIN saved). Widgets are attributes
    (``pin_edit``, ``confirm_edit``, ``ok_button``, ``message``) so tests can drive it.
    """

    def __init__(self, gallery: Any, *, create: bool, reason: str = "",
                 parent: QWidget | None = None, lock: PinLock | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.create = create
        self.lock = lock or PinLock(gallery)
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
        self.message = QLabel(objectName="pinMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b3261e;")
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
        if self.lock.seconds_locked() > 0:
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
        try:
            validate_pin(pin)
        except PinError as exc:
            self.message.setText(exc.message)
            return
        if pin != again:
            self.message.setText("The two PINs differ. Type the same PIN twice.")
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
        self.message.setStyleSheet("color: #b3261e;")
        self.ok_button.setEnabled(True)
        self.pin_edit.setEnabled(True)

    def _on_verified(self, ok: bool) -> None:
        self._idle()
        if ok:
            self.lock.success()
            self._done()
            return
        locked = self.lock.failure()
        self.pin_edit.clear()
        self.pin_edit.setFocus()
        if locked:
            self._update_lock()
        else:
            left = self.lock.tries_left()
            self.message.setText(f"Wrong PIN. {left} {'try' if left == 1 else 'tries'} left "
                                 "before a short lockout.")

    def _on_error(self, exc: BaseException) -> None:
        self._idle()
        self.message.setText(getattr(exc, "message", None) or f"Could not check the PIN: {exc}")

    def _done(self) -> None:
        self._worker = None
        self.accept()

    def _update_lock(self) -> None:
        left = self.lock.seconds_locked()
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
        return self.lock.seconds_locked() > 0


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
