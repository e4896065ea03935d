"""Enrolling a person: shots from the live camera or from photos, a review, and one save.

The camera capture takes up to :data:`MAX_SHOTS` shots by itself, at least
:data:`SHOT_SPACING_S` apart, each only when the frame passes every check (exactly one
face, at least 80 px, sharp, facing the camera, and, with the desk's liveness on, judged
live: a printed photo or a phone screen held up to the camera is refused with its reason);
a refused frame shows its reason in large type under the preview. Photos from files go
through the same checks but liveness (a file is a photo by nature: importing one is the
manager's deliberate choice).

Before saving, the aligned chips are shown for review (a bad one can be removed), and the
new descriptors are compared with the gallery: a face close to someone already enrolled
("looks like X, d = ...") or shots that do not look like each other need an explicit tick
before Save is allowed. Saving is one gallery transaction (the person and all templates,
or nothing).

Live recognition is paused while the dialog is open, so capture has the machine to itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.face.liveness import LivenessMonitor, LivenessSettings
from desktop.store import NewTemplate, Person
from desktop.store.enrol import similarity_problems
from desktop.store.gallery import clean_name
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.enrol_work import (
    CaptureUpdate,
    PhotoResult,
    Shot,
    capture_loop,
    examine_photos,
)
from desktop.ui.checkin.images import to_icon, to_qimage
from desktop.ui.checkin.pin import error_label
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)

MAX_SHOTS = 5
MIN_SHOTS = 3
SHOT_SPACING_S = 0.4
PREVIEW_W = 480
CHIP_ICON = 88
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff);;All files (*)"


class EnrolDialog(QDialog):
    """Enrol a new person, or (``person`` given) add photos to one.

    Args:
        ctx: the manager context (gallery, live session).
        person: add to this person instead of creating one.
        initial: shots already taken (e.g. an Unknown face from the live view).
        start: ``"camera"`` starts the camera capture at once.
    """

    enrolled = Signal(object)  # the Person saved

    def __init__(self, ctx: ManagerContext, *, person: Person | None = None,
                 initial: Sequence[Shot] = (), start: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.person = person
        self.shots: list[Shot] = list(initial)
        self.rejections = 0
        self.saved: Person | None = None
        self._capture: Worker | None = None
        self._photos: Worker | None = None
        self._matcher: Any = None
        self._matcher_worker: Worker | None = None
        self._last_take = 0.0
        self._camera_shots = 0
        self._problems: list[str] = []
        self._paused_session = False
        self._waiting_engine = False
        self.setObjectName("enrolDialog")
        self.setWindowTitle(f"Add photos of {person.name}" if person else "Enrol a person")
        self.setMinimumSize(980, 660)
        self._build()
        self._load_matcher()
        self._refresh_shots()
        if start == "camera":
            self.start_capture()

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.name_edit = QLineEdit(objectName="enrolName")
        self.name_edit.setPlaceholderText("Full name, as the welcome banner should show it")
        self.employee_edit = QLineEdit(objectName="enrolEmployeeId")
        self.employee_edit.setPlaceholderText("optional")
        intro = QLabel(
            "<b>From the camera:</b> the person stands alone in front of it and looks at it; "
            f"up to {MAX_SHOTS} shots are taken by themselves, each only when the face is "
            "large, sharp and turned towards the camera. <b>From photos:</b> the same checks "
            "apply. Review the faces on the right, then save.", objectName="enrolIntro")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setStyleSheet("color: palette(placeholder-text); margin-bottom: 4px;")
        form = QFormLayout()
        if self.person is None:
            form.addRow("Name", self.name_edit)
            form.addRow("Employee id", self.employee_edit)
        else:
            form.addRow("Person", QLabel(f"<b>{self.person.name}</b>"))
        self.name_edit.textChanged.connect(self._update_save)

        # capture column
        self.preview = QLabel(objectName="enrolPreview")
        self.preview.setFixedSize(PREVIEW_W, PREVIEW_W * 9 // 16)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #16181b; color: #c4c7c5; border-radius: 6px;")
        self.preview.setText("Start the camera capture, or import photos.")
        self.reason_label = QLabel(objectName="enrolReason")
        self.reason_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason_label.setWordWrap(True)
        self.reason_label.setFixedWidth(PREVIEW_W)
        self.reason_label.setMinimumHeight(52)
        self.reason_label.setStyleSheet("font-size: 17px; font-weight: 600;")
        self.capture_button = QPushButton("Start camera capture", objectName="captureButton")
        self.capture_button.clicked.connect(self._toggle_capture)
        self.import_button = QPushButton("Import photos…", objectName="importButton")
        self.import_button.clicked.connect(self._choose_files)
        buttons = QHBoxLayout()
        buttons.addWidget(self.capture_button)
        buttons.addWidget(self.import_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.preview)
        left.addWidget(self.reason_label)
        left.addLayout(buttons)
        left.addStretch(1)

        # review column
        self.count_label = QLabel(objectName="enrolCount")
        self.count_label.setStyleSheet("font-weight: 600;")
        self.chip_list = QListWidget(objectName="enrolChips")
        self.chip_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.chip_list.setIconSize(QSize(CHIP_ICON, CHIP_ICON))
        self.chip_list.setGridSize(QSize(CHIP_ICON + 18, CHIP_ICON + 34))
        self.chip_list.setMovement(QListWidget.Movement.Static)
        self.chip_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.chip_list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.chip_list.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.remove_button = QPushButton("Remove selected", objectName="removeShotButton")
        self.remove_button.clicked.connect(self.remove_selected)
        QShortcut(QKeySequence.StandardKey.Delete, self.chip_list, self.remove_selected)
        self.chip_list.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(bool(self.chip_list.selectedItems())))
        self.warning_label = QLabel(objectName="enrolWarnings")
        self.warning_label.setWordWrap(True)
        self.warning_label.setTextFormat(Qt.TextFormat.RichText)
        self.warning_frame = QFrame(objectName="enrolWarningFrame")
        self.warning_frame.setStyleSheet(
            "#enrolWarningFrame { background: #fff4e5; border: 1px solid #f0b45b;"
            " border-radius: 6px; } #enrolWarningFrame QLabel, #enrolWarningFrame QCheckBox"
            " { color: #5f3b00; }")
        self.ack_box = QCheckBox("I checked the faces: save anyway", objectName="enrolAck")
        self.ack_box.toggled.connect(self._update_save)
        wl = QVBoxLayout(self.warning_frame)
        wl.addWidget(self.warning_label)
        wl.addWidget(self.ack_box)
        right = QVBoxLayout()
        right.addWidget(self.count_label)
        right.addWidget(self.chip_list, 1)
        right.addWidget(self.remove_button)
        right.addWidget(self.warning_frame)

        columns = QHBoxLayout()
        columns.addLayout(left)
        columns.addLayout(right, 1)

        self.error_label = error_label("enrolError")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(columns, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    # -- engine and matcher ---------------------------------------------------------------
    @property
    def engine(self) -> Any:
        return self.ctx.engine

    def _load_matcher(self) -> None:
        engine = self.engine
        if engine is None:
            if not self._waiting_engine:
                self._waiting_engine = True
                self.ctx.session.engine_ready.connect(self._on_engine_ready)
            self._set_reason("Loading face models…", ok=None)
            self.capture_button.setEnabled(False)
            self.import_button.setEnabled(False)
            return
        worker = Worker(self.ctx.gallery.matcher, engine.model_id)
        worker.result.connect(self._on_matcher)
        worker.error.connect(lambda exc: log.warning("no matcher for the look-alike check: %s",
                                                     exc))
        self._matcher_worker = worker
        worker.start()

    def _on_engine_ready(self, _engine: Any) -> None:
        self._waiting_engine = False
        self.ctx.session.engine_ready.disconnect(self._on_engine_ready)
        self.capture_button.setEnabled(True)
        self.import_button.setEnabled(True)
        self._set_reason("", ok=None)
        self._load_matcher()

    def _on_matcher(self, matcher: Any) -> None:
        self._matcher = matcher
        self._refresh_shots()

    @property
    def matcher_ready(self) -> bool:
        return self._matcher is not None

    # -- camera capture ---------------------------------------------------------------------
    @property
    def capturing(self) -> bool:
        return self._capture is not None and self._capture.is_running

    def _toggle_capture(self) -> None:
        if self.capturing:
            self.stop_capture()
        else:
            self.start_capture()

    def start_capture(self) -> None:
        """Start judging the camera's frames and taking good shots."""
        if self.capturing or self.engine is None:
            return
        session = self.ctx.session
        if not self._paused_session:
            session.pause()
            self._paused_session = True
        self._camera_shots = sum(1 for s in self.shots if s.source == "webcam")
        self._capture = Worker(capture_loop, session.latest_camera_frame, self.engine,
                               liveness=self._liveness_monitor(), latest_only=True)
        self._capture.yielded.connect(self._on_update)
        self._capture.error.connect(self._on_capture_error)
        self._capture.finished.connect(self._on_capture_finished)
        self._capture.start()
        self.capture_button.setText("Stop camera capture")
        self._set_reason("Look at the camera…", ok=None)

    def _liveness_monitor(self) -> LivenessMonitor | None:
        """A fresh monitor with the desk's liveness setting, or None when it is off."""
        session = self.ctx.session
        mode = getattr(session, "liveness", "off")
        if mode == "off":
            return None
        return LivenessMonitor(LivenessSettings.of(mode), getattr(session, "landmarks", None))

    def stop_capture(self) -> None:
        if self._capture is not None:
            self._capture.cancel()

    def _on_capture_finished(self) -> None:
        self._capture = None
        self.capture_button.setText("Start camera capture")
        if self._camera_shots >= MAX_SHOTS or len(self.shots) >= MAX_SHOTS:
            self._set_reason(f"{len(self.shots)} shots taken. Review them, then save.", ok=True)

    def _on_capture_error(self, exc: BaseException) -> None:
        self._set_reason(f"Capture stopped: {getattr(exc, 'message', exc)}", ok=False)

    def _on_update(self, update: CaptureUpdate) -> None:
        if not self.capturing:
            return
        check = update.check
        self._show_preview(update)
        if not check.ok or update.descriptor is None or check.face is None:
            self.rejections += 1
            # Waiting for liveness is not the person's fault: said in the neutral colour.
            self._set_reason(check.reason, ok=None if "liveness_pending" in check.codes
                             else False)
            return
        if update.time - self._last_take < SHOT_SPACING_S:
            self._set_reason("Good, hold still…", ok=True)
            return
        self._last_take = update.time
        self._camera_shots += 1
        self.shots.append(Shot(check.face.chip.copy(), update.descriptor, "webcam",
                               f"camera shot {self._camera_shots}"))
        self._refresh_shots()
        if len(self.shots) >= MAX_SHOTS:
            self._set_reason(f"{len(self.shots)} shots taken. Review them, then save.", ok=True)
            self.stop_capture()
        else:
            self._set_reason(f"Shot {len(self.shots)} of {MAX_SHOTS} taken. Move your head a "
                             "little…", ok=True)

    def _show_preview(self, update: CaptureUpdate) -> None:
        image = to_qimage(update.image)
        pix = QPixmap.fromImage(image.scaled(self.preview.size(),
                                             Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))
        faces = update.faces or ((update.check.face,) if update.check.face else ())
        if faces and image.width() > 0:
            s = pix.width() / image.width()
            painter = QPainter(pix)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            for face in faces:
                good = update.check.ok and face is update.check.face
                painter.setPen(QPen(QColor("#1e9e57" if good else "#d93025"), 3))
                x, y, w, h = face.box
                painter.drawRoundedRect(int(x * s), int(y * s), int(w * s), int(h * s), 6, 6)
            painter.end()
        self.preview.setPixmap(pix)

    def _set_reason(self, text: str, ok: bool | None) -> None:
        colour = {True: "#1e8e3e", False: "#c5221f", None: "palette(text)"}[ok]
        self.reason_label.setStyleSheet(f"font-size: 17px; font-weight: 600; color: {colour};")
        self.reason_label.setText(text)

    # -- photos -------------------------------------------------------------------------
    def _choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Photos of the person", str(Path.home()),
                                                IMAGE_FILTER)
        if paths:
            self.import_files(paths)

    def import_files(self, paths: Sequence[str | Path]) -> Worker | None:
        """Examine photos in the background and keep the good faces (returns the worker)."""
        if self.engine is None or (self._photos is not None and self._photos.is_running):
            return None
        self.import_button.setEnabled(False)
        self._set_reason(f"Examining {len(paths)} photo{'s' if len(paths) != 1 else ''}…",
                         ok=None)
        self._photos = Worker(examine_photos, self.engine, list(paths))
        self._photos.result.connect(self._on_photos)
        self._photos.error.connect(lambda exc: self._set_reason(
            f"Import failed: {getattr(exc, 'message', exc)}", ok=False))
        self._photos.finished.connect(lambda: self.import_button.setEnabled(True))
        self._photos.start()
        return self._photos

    def _on_photos(self, results: list[PhotoResult]) -> None:
        refused = []
        for r in results:
            if r.ok and r.check.face is not None and r.descriptor is not None:
                self.shots.append(Shot(r.check.face.chip.copy(), r.descriptor, "file",
                                       r.path.name))
            else:
                refused.append(f"{r.path.name}: {r.check.reason}")
        self._refresh_shots()
        kept = len(results) - len(refused)
        if refused:
            self._set_reason(f"{kept} of {len(results)} photos used", ok=kept > 0)
            self.error_label.setText("Not used:\n" + "\n".join(refused))
        else:
            self._set_reason(f"{kept} photo{'s' if kept != 1 else ''} added", ok=True)
            self.error_label.clear()

    # -- review -------------------------------------------------------------------------
    def remove_selected(self) -> None:
        rows = sorted((self.chip_list.row(i) for i in self.chip_list.selectedItems()),
                      reverse=True)
        for row in rows:
            self.remove_shot(row)

    def remove_shot(self, index: int) -> None:
        del self.shots[index]
        self._refresh_shots()

    def _refresh_shots(self) -> None:
        self.chip_list.clear()
        for shot in self.shots:
            item = QListWidgetItem(to_icon(shot.chip, CHIP_ICON), shot.label)
            item.setToolTip(f"{shot.label} ({'camera' if shot.source == 'webcam' else 'file'})")
            self.chip_list.addItem(item)
        n = len(self.shots)
        if n == 0:
            text = "Review: no faces yet. Accepted shots appear here."
        else:
            hint = "" if n >= MIN_SHOTS else f" ({MIN_SHOTS} or more recognise best)"
            text = f"Review: {n} face{'s' if n != 1 else ''}{hint}"
        self.count_label.setText(text)
        self.count_label.setWordWrap(True)
        self.remove_button.setEnabled(bool(self.chip_list.selectedItems()))
        self._check_similarity()
        self._update_save()

    def _check_similarity(self) -> None:
        self._problems = []
        if self.shots:
            tau = float(self.ctx.gallery.get_setting("tau"))
            vectors = np.stack([s.descriptor for s in self.shots])
            self._problems, _ = similarity_problems(
                vectors, [s.label for s in self.shots], self._matcher, tau=tau,
                exclude_person_id=self.person.id if self.person else None)
        if self._problems:
            items = "".join(f"<li>{_capitalise(p)}</li>" for p in self._problems)
            self.warning_label.setText(f"<b>Please check before saving:</b><ul "
                                       f"style='margin:4px 0 0 -20px'>{items}</ul>")
            self.warning_frame.show()
        else:
            self.warning_frame.hide()
            self.ack_box.setChecked(False)

    @property
    def warnings(self) -> list[str]:
        return list(self._problems)

    def _update_save(self) -> None:
        ok = bool(self.shots) and (self.person is not None or bool(self.name_edit.text().strip()))
        if self._problems and not self.ack_box.isChecked():
            ok = False
        self.save_button.setEnabled(ok)

    # -- save ---------------------------------------------------------------------------
    def save(self) -> None:
        """Save the person (or the new photos) in one transaction."""
        if not self.save_button.isEnabled():
            return
        engine = self.engine
        gallery = self.ctx.gallery
        templates = [NewTemplate(s.chip, s.descriptor, engine.model_id,
                                 getattr(engine, "model_version", ""), s.source)
                     for s in self.shots]
        try:
            if self.person is not None:
                gallery.add_templates(self.person.id, templates)
                saved = gallery.person(self.person.id)
            else:
                name = clean_name(self.name_edit.text())
                saved = gallery.enrol(name, templates,
                                      employee_id=self.employee_edit.text() or None)
        except ValueError as exc:
            self.error_label.setText(_capitalise(str(exc)) + ".")
            return
        except FacestyleError as exc:
            self.error_label.setText(exc.message + (f" {exc.hint}" if exc.hint else ""))
            return
        self.saved = saved
        self.ctx.people_changed.emit()
        self.enrolled.emit(saved)
        self.accept()

    # -- closing ------------------------------------------------------------------------
    def done(self, result: int) -> None:
        for worker in (self._capture, self._photos, self._matcher_worker):
            if worker is not None:
                worker.cancel()
        if self._paused_session:
            self._paused_session = False
            self.ctx.session.resume()
        if self._waiting_engine:
            self._waiting_engine = False
            self.ctx.session.engine_ready.disconnect(self._on_engine_ready)
        super().done(result)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def shot_from_snapshot(snapshot: Any) -> Shot:
    """A shot from the live view's track snapshot (an Unknown face)."""
    return Shot(np.ascontiguousarray(snapshot.chip), np.asarray(snapshot.descriptor, np.float32),
                "webcam", "live view")

