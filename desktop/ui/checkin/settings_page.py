"""Settings: the recognition threshold tau and margin (explained in plain words), the
check-in cooldown, liveness (photo and screen attacks), retention of the log, the camera,
and the manager PIN.

The recognition settings live in the gallery (so the CLI uses the same ones); the camera
source lives in the app's settings file.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.face.types import DEFAULT_TAU
from desktop.resources import default as default_setting
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.page_common import page_layout
from desktop.ui.checkin.pin import error_label, new_pin_problem
from desktop.ui.checkin.shared_gallery import (
    database_problem,
    describe_gallery,
    store_database,
    stored_database,
)
from desktop.ui.qthreading import Worker

TAU_EXPLAINED = (
    "A face gets a name only when its distance d to that person is at most tau. "
    "<b>Lower is stricter</b>: fewer wrong names, but more people shown as \"Unknown\". "
    "<b>Higher is more lenient</b>: people are named more readily, but a look-alike may get "
    "the wrong name. The default, {default:.2f}, is dlib's trained threshold (0.6 as a plain "
    "distance).")
MARGIN_EXPLAINED = (
    "The nearest other person must be at least this much further away than the named one; "
    "otherwise the face stays \"Unknown\". It guards against look-alikes. 0 turns it off.")


DATABASE_EXPLAINED = (
    "Several desks share one set of people and one check-in log on a PostgreSQL server. "
    "The app uses it from its next start (<code>facestyle gallery migrate --to URL</code> "
    "copies this desk's people there first). Put the password in ~/.pgpass (PGPASSFILE) or "
    "PGPASSWORD, never here; TLS options go in the URL (<code>?sslmode=verify-full</code>). "
    "FACESTYLE_DATABASE or <code>--database</code> override this field.")


LIVENESS_CHOICES = (("off", "Off"), ("passive", "Passive"),
                    ("challenge", "Passive + challenge (recommended)"))
LIVENESS_EXPLAINED = (
    "Stops a printed photo or a phone screen held up to the camera from checking someone "
    "in. <b>Off</b>: anyone the camera recognises checks in, from a photo too. "
    "<b>Passive</b>: no one is asked anything; a face checks in once it has moved a little "
    "as only a real head can (turning, talking), and a photo that is tilted or waved is "
    "refused. Someone who stands perfectly still is not checked in until they move. "
    "<b>Passive + challenge</b>: as passive, and when a face has not moved enough within "
    "a second, its label asks for a blink (then a small head turn); no answer within 6 "
    "seconds shows the face as Unknown. Refused check-ins are listed in the log with the "
    "reason. No setting catches everything: a video of the person played on a screen, or "
    "a 3-D mask, can still pass.")


SPIN_WIDTH = 130




def _spin(name: str, lo: float, hi: float, step: float, decimals: int,
          suffix: str = "") -> QDoubleSpinBox:
    spin = QDoubleSpinBox(objectName=name)
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    spin.setSuffix(suffix)
    spin.setFixedWidth(SPIN_WIDTH)
    return spin


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setStyleSheet("color: palette(placeholder-text);")
    return label


class SettingsPage(QWidget):
    def __init__(self, ctx: ManagerContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        layout = page_layout(self, "Settings")

        recog = QGroupBox("Recognition")
        form = QFormLayout(recog)
        self.tau_spin = _spin("settingsTau", 0.05, 1.0, 0.01, 2)
        self.tau_equiv = QLabel(objectName="settingsTauEquivalent")
        tau_row = QHBoxLayout()
        tau_row.addWidget(self.tau_spin)
        tau_row.addWidget(self.tau_equiv, 1)
        form.addRow("Threshold tau (d)", tau_row)
        form.addRow("", _note(TAU_EXPLAINED.format(default=DEFAULT_TAU)))
        self.margin_spin = _spin("settingsMargin", 0.0, 0.3, 0.01, 2)
        form.addRow("Margin (d)", self.margin_spin)
        form.addRow("", _note(MARGIN_EXPLAINED))
        self.tau_spin.valueChanged.connect(self._update_equivalent)


        checkin = QGroupBox("Check-ins")
        cform = QFormLayout(checkin)
        self.cooldown_spin = _spin("settingsCooldown", 0.0, 72.0, 0.5, 1, " h")
        cform.addRow("Cooldown", self.cooldown_spin)
        cform.addRow("", _note("A person is checked in at most once in this time, however "
                               "often they pass the camera."))
        self.liveness_combo = QComboBox(objectName="settingsLiveness")
        for mode, label in LIVENESS_CHOICES:
            self.liveness_combo.addItem(label, mode)
        cform.addRow("Liveness", self.liveness_combo)
        cform.addRow("", _note(LIVENESS_EXPLAINED))
        self.retention_spin = QSpinBox(objectName="settingsRetention")
        self.retention_spin.setRange(0, 36500)
        self.retention_spin.setSuffix(" days")
        self.retention_spin.setFixedWidth(SPIN_WIDTH)
        self.retention_spin.setSpecialValueText("keep forever")
        self.apply_retention_button = QPushButton("Apply now", objectName="settingsApplyRetention")
        self.apply_retention_button.clicked.connect(self.apply_retention_now)
        rrow = QHBoxLayout()
        rrow.addWidget(self.retention_spin)
        rrow.addWidget(self.apply_retention_button)
        rrow.addStretch(1)
        cform.addRow("Keep the log for", rrow)
        cform.addRow("", _note("Older check-ins are deleted automatically once a day."))


        camera = QGroupBox("Camera")
        camrow = QHBoxLayout(camera)
        self.camera_label = QLabel(objectName="settingsCamera")
        self.camera_button = QPushButton("Choose camera or video file…",
                                         objectName="settingsChooseCamera")
        self.camera_button.clicked.connect(self._choose_camera)
        self.camera_button.setEnabled(ctx.choose_source is not None)
        camrow.addWidget(self.camera_label, 1)
        camrow.addWidget(self.camera_button)

        shared = QGroupBox("Shared gallery (several desks)")
        sform = QFormLayout(shared)
        self.database_now = QLabel(objectName="settingsDatabaseNow")
        self.database_now.setWordWrap(True)
        sform.addRow("Now", self.database_now)
        self.database_edit = QLineEdit(objectName="settingsDatabase")
        self.database_edit.setPlaceholderText("postgresql://USER@HOST:5432/DBNAME "
                                              "(empty: this computer's own file)")
        self.database_edit.setText(stored_database())
        sform.addRow("Server", self.database_edit)
        sform.addRow("", _note(DATABASE_EXPLAINED))

        pin = QGroupBox("Manager PIN")
        pinrow = QHBoxLayout(pin)
        pinrow.addWidget(QLabel("Only a salted hash of the PIN is stored."), 1)
        self.pin_button = QPushButton("Change PIN…", objectName="settingsChangePin")
        self.pin_button.clicked.connect(self._change_pin)
        pinrow.addWidget(self.pin_button)

        self.save_button = QPushButton("Save settings", objectName="settingsSave")
        self.save_button.setDefault(True)
        self.defaults_button = QPushButton("Restore defaults", objectName="settingsDefaults")
        self.save_button.clicked.connect(self.save)
        self.defaults_button.clicked.connect(self.restore_defaults)
        self.status = QLabel(objectName="settingsStatus")
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.defaults_button)
        buttons.addWidget(self.save_button)

        for box in (recog, checkin, camera, shared, pin):
            layout.addWidget(box)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self) -> None:
        g = self.ctx.gallery
        self.tau_spin.setValue(float(g.get_setting("tau")))
        self.margin_spin.setValue(float(g.get_setting("margin")))
        self.cooldown_spin.setValue(float(g.get_setting("cooldown_hours")))
        self.retention_spin.setValue(int(g.get_setting("retention_days") or 0))
        self._set_liveness(str(g.get_setting("liveness")))
        self.camera_label.setText(f"Now: {self.ctx.session.source_description}")
        self.database_now.setText(describe_gallery(g))
        self._update_equivalent()

    def _update_equivalent(self) -> None:
        tau = self.tau_spin.value()
        self.tau_equiv.setText(f"= {math.sqrt(tau):.2f} as a plain L2 distance")

    def _set_liveness(self, mode: str) -> None:
        index = self.liveness_combo.findData(mode)
        self.liveness_combo.setCurrentIndex(index if index >= 0 else 0)

    def values(self) -> dict[str, float | str]:
        return {"tau": round(self.tau_spin.value(), 4),
                "margin": round(self.margin_spin.value(), 4),
                "cooldown_hours": round(self.cooldown_spin.value(), 2),
                "retention_days": int(self.retention_spin.value()),
                "liveness": str(self.liveness_combo.currentData())}

    def save(self) -> dict[str, float | str]:
        """Store the settings in the gallery (and the shared gallery's address in the
        app's settings file); returns the gallery settings that changed."""
        problem = database_problem(self.database_edit.text())
        if problem is not None:
            self.status.setText(problem)
            return {}
        g = self.ctx.gallery
        changed = {}
        for key, value in self.values().items():
            if g.get_setting(key) != value:
                g.set_setting(key, value)
                changed[key] = value
        moved = store_database(self.database_edit.text())
        self.status.setText("Saved. The new gallery is used from the next start."
                            if moved else "Saved." if changed else "Nothing changed.")
        if changed:
            self.ctx.settings_changed.emit(changed)
        return changed

    def restore_defaults(self) -> None:
        self.tau_spin.setValue(float(default_setting("checkin", "tau", DEFAULT_TAU)))
        self.margin_spin.setValue(float(default_setting("checkin", "margin", 0.03)))
        self.cooldown_spin.setValue(float(default_setting("checkin", "cooldown_hours", 4.0)))
        self.retention_spin.setValue(int(default_setting("checkin", "retention_days", 365)))
        self._set_liveness(str(default_setting("checkin", "liveness", "challenge")))
        self.status.setText("Defaults shown; press Save settings to use them.")

    def apply_retention_now(self) -> int:
        days = int(self.retention_spin.value())
        try:
            n = self.ctx.gallery.apply_retention(days)
        except FacestyleError as exc:
            self.status.setText(exc.message)
            return 0
        self.status.setText(f"Deleted {n} check-in{'s' if n != 1 else ''} older than {days} "
                            "days." if days else "Retention is off: nothing deleted.")
        if n:
            self.ctx.checkins_changed.emit()
        return n

    def _choose_camera(self) -> None:
        if self.ctx.choose_source is not None:
            self.ctx.choose_source()
            self.camera_label.setText(f"Now: {self.ctx.session.source_description}")

    def _change_pin(self) -> None:
        ChangePinDialog(self.ctx.gallery, self).open()


class ChangePinDialog(QDialog):
    """Current PIN, new PIN twice; checked and hashed off the UI thread."""

    def __init__(self, gallery, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.setWindowTitle("Change the manager PIN")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.current_edit = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.new_edit = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.again_edit = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        form = QFormLayout()
        form.addRow("Current PIN", self.current_edit)
        form.addRow("New PIN", self.new_edit)
        form.addRow("Again", self.again_edit)
        self.message = error_label("changePinMessage")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._worker: Worker | None = None

    def submit(self) -> None:
        if self._worker is not None:
            return
        new = self.new_edit.text()
        problem = new_pin_problem(new, self.again_edit.text())
        if problem is not None:
            self.message.setText(problem)
            return
        self.message.setText("Saving…")
        self._worker = Worker(self.gallery.set_pin, new, current_pin=self.current_edit.text())
        self._worker.result.connect(lambda _: self.accept())
        self._worker.error.connect(self._failed)
        self._worker.start()

    def _failed(self, exc: BaseException) -> None:
        self._worker = None
        self.message.setText(getattr(exc, "message", str(exc)))
