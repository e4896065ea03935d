"""The Check-in tab: live one-shot recognition at the front desk.

What the receptionist sees: the camera's video at its own frame rate with a box, a name
and d on each face; "Welcome, NAME" when someone checks in; today's check-ins on the
right, newest first; camera and recognition rates and the device in the status bar; and,
when the camera fails, a banner saying what happened, counting down to the next attempt,
with "Choose camera or video file…".

What the manager gets behind the PIN ("Manage…", or the Check-in menu): people,
enrolment, the check-in log, settings and the model page (:mod:`desktop.ui.checkin`).

Nothing here waits: the camera, the face models, the pipeline, the gallery's opening and
every PIN check run off the UI thread (:mod:`desktop.ui.checkin.live`). A display timer
takes the newest frame and the newest result at about 30 Hz and repaints.

Tab hooks used by the main window: ``restore_state`` / ``save_state`` (the last source),
``activated``, ``shutdown``. Other tabs may call :meth:`CheckinTab.latest_frame`.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.face.camera import CONNECTING, ENDED, FAILED, RETRYING, RUNNING, SourceState
from desktop.face.pipeline import CheckinEvent, FrameResult
from desktop.ui import settings as ui_settings
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.live import (
    EngineFactory,
    LiveSession,
    default_engine_factory,
    engine_device,
)
from desktop.ui.checkin.pin import ManagerGate
from desktop.ui.checkin.shared_gallery import SharedGallerySignals, configured_gallery
from desktop.ui.checkin.side_panel import TodayPanel
from desktop.ui.checkin.startup import GalleryOpener, ReembedRunner
from desktop.ui.checkin.video_view import VideoView
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)

DISPLAY_MS = 33  # ~30 Hz: at least a webcam's frame rate
STATUS_MS = 1000
MAINTENANCE_MS = 3600 * 1000
ENGINE_DELAY_MS = 500  # after start, so the first paint does not share the CPU
RESULT_MAX_AGE_S = 1.0  # older results are not drawn (recognition paused or stopped)
SETTINGS_KEY = "checkin/camera"


def describe_problem(state: SourceState, had_frames: bool) -> tuple[str, str]:
    """(title, detail) for a banner about a source in trouble."""
    src = state.source
    if state.status == ENDED:
        return "The video ended", f"{src} played to its end."
    if state.status == FAILED:
        return f"Cannot play {src}", state.message
    if src.startswith("camera"):
        title = "The camera stopped" if had_frames else "No camera found"
        detail = (f"{src} stopped sending frames. Check its cable." if had_frames else
                  f"{src} cannot be opened. Plug a camera in, or choose another camera or a "
                  "video file.")
    elif src.startswith("stream"):
        title = "The stream stopped" if had_frames else "The stream cannot be reached"
        detail = state.message
    else:
        title, detail = "The video stopped", state.message
    return title, detail


class CheckinTab(QWidget):
    """The Check-in tab (see the module doc).

    Args (all optional; the main window passes only ``parent``):
        engine_factory: builds the face engine (in a worker thread).
        gallery_path: the gallery database (default: the user data folder's).
        source: the camera index, video file or URL to start with (default: the last
            one used, else camera 0).
        capture_factory: opens a capture for a source (tests pass fakes).
        autostart: start the camera, engine and gallery once the event loop runs.
        loop_files: play video files in a loop without the end-of-file pause.
    """

    title = "Check-in"

    def __init__(self, parent: QWidget | None = None, *,
                 engine_factory: EngineFactory | None = None,
                 gallery_path: str | Path | None = None, source: str | int | None = None,
                 capture_factory: Any = None, autostart: bool = True,
                 loop_files: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("checkinTab")
        self.engine_factory = engine_factory or default_engine_factory
        self.gallery_path = gallery_path if gallery_path is not None else configured_gallery()
        self.source = None if source is None else str(source)
        self.gallery: Any = None
        self.gallery_error: BaseException | None = None
        self.status_fields: dict[str, str] = {}
        self.manager: Any = None
        self.enrol_dialog: Any = None
        self.events: list[CheckinEvent] = []
        self._started = False
        self._had_frames = False
        self._shown: tuple[Any, Any] = (None, None)
        self._reembedding = False
        self._foreign_templates = 0  # shared gallery: templates of another desk's encoder

        self.session = LiveSession(self, capture_factory=capture_factory,
                                   loop_files=loop_files)
        self.shared = SharedGallerySignals(self)  # from the listener thread to this one
        self.shared.changed.connect(self._on_shared_change)
        self.gate = ManagerGate(lambda: self.gallery)
        self.opener = GalleryOpener(gallery_path, self)
        self.reembed = ReembedRunner(self)
        self._build()
        self._connect()
        self._display = QTimer(self)
        self._display.setInterval(DISPLAY_MS)
        self._display.setTimerType(Qt.TimerType.PreciseTimer)
        self._display.timeout.connect(self._tick)
        self._status = QTimer(self)
        self._status.setInterval(STATUS_MS)
        self._status.timeout.connect(self._update_status)
        self._maintenance = QTimer(self)
        self._maintenance.setInterval(MAINTENANCE_MS)
        self._maintenance.timeout.connect(self._run_maintenance)
        if autostart:
            QTimer.singleShot(0, self.start)

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        bar = QFrame(objectName="checkinBar")
        bar.setStyleSheet("#checkinBar { border-bottom: 1px solid palette(mid); }")
        self.source_label = QLabel(objectName="checkinSource")
        self.source_label.setStyleSheet("color: palette(placeholder-text);")
        self.choose_button = QPushButton("Choose camera or video file…",
                                         objectName="checkinChooseSource")
        self.manage_button = QPushButton("Manage…", objectName="checkinManage")
        self.manage_button.setToolTip("People, enrolment, the check-in log and settings "
                                      "(manager PIN)")
        self.choose_button.clicked.connect(self.choose_source)
        self.manage_button.clicked.connect(self.open_manager)
        row = QHBoxLayout(bar)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(self.source_label, 1)
        row.addWidget(self.choose_button)
        row.addWidget(self.manage_button)

        self.view = VideoView()
        self.panel = TodayPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([900, 280])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(bar)
        layout.addWidget(self.splitter, 1)
        self.view.set_notice("Starting…")
        self.view.clear_frame("Opening the camera…")

    def _connect(self) -> None:
        s = self.session
        s.source_state.connect(self._on_source_state)
        s.reopen_scheduled.connect(self._on_reopen_scheduled)
        s.engine_loading.connect(self._update_notice)
        s.engine_ready.connect(self._on_engine_ready)
        s.engine_failed.connect(self._on_engine_failed)
        s.checked_in.connect(self._on_checked_in)
        s.withheld.connect(self._on_withheld)
        s.matcher_ready.connect(lambda _n: self._update_notice())
        s.pipeline_error.connect(self._on_pipeline_error)
        self.view.choose_source_requested.connect(self.choose_source)
        self.view.source_banner.retry_requested.connect(self.session.retry_now)
        self.view.enrol_requested.connect(self.enrol_track)
        self.opener.opened.connect(self._on_gallery)
        self.opener.unavailable.connect(self._on_gallery_unavailable)
        self.reembed.done.connect(self._on_reembedded)

    # -- start and stop -----------------------------------------------------------------
    def start(self) -> None:
        """Open the camera, and start loading the engine and the gallery (idempotent)."""
        if self._started:
            return
        self._started = True
        self._install_menu()
        self.session.open_source(self.source or "0")
        self._update_source_label()
        # The models load once the window has painted (they compete for the CPU).
        QTimer.singleShot(ENGINE_DELAY_MS, self._load_engine)
        self.opener.start()
        self._display.start()
        self._status.start()
        self._maintenance.start()
        self._update_status()

    def _load_engine(self) -> None:
        if not self.session.closed:
            self.session.load_engine(self.engine_factory)

    def shutdown(self) -> None:
        """Stop the camera and every worker; close the gallery."""
        for timer in (self._display, self._status, self._maintenance):
            timer.stop()
        self.session.shutdown()
        self.session.wait_pipeline(2.0)
        if self.gallery is not None:
            self.gallery.close()

    def restore_state(self, settings: QSettings) -> None:
        if self.source is None:
            self.source = str(ui_settings.read(settings, SETTINGS_KEY, "0", str))

    def save_state(self, settings: QSettings) -> None:
        if self.source is not None:
            settings.setValue(SETTINGS_KEY, self.source)

    def activated(self) -> None:
        self.refresh_today()

    # -- for other tabs -----------------------------------------------------------------
    def latest_frame(self) -> np.ndarray | None:
        """A copy of the camera's newest frame, (H, W, 3) RGB uint8, or None."""
        frame = self.session.latest_camera_frame()
        return None if frame is None else frame.image.copy()

    # -- menu -----------------------------------------------------------------------------
    def _install_menu(self) -> None:
        window = self.window()
        if not isinstance(window, QMainWindow) or window is self:
            return
        menu = QMenu("&Check-in", window)
        for text, slot in (("Choose camera or video file…", self.choose_source),
                           ("Manage…", self.open_manager),
                           ("Enrol a person…", lambda: self.open_manager("enrol")),
                           ("Check-in log…", lambda: self.open_manager("log"))):
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, f=slot: f())
            menu.addAction(action)
        help_menu = getattr(window, "help_menu", None)
        if help_menu is not None:
            window.menuBar().insertMenu(help_menu.menuAction(), menu)
        else:
            window.menuBar().addMenu(menu)
        self.menu = menu

    # -- source ---------------------------------------------------------------------------
    def set_source(self, spec: str | int) -> None:
        """Watch another camera index, video file or stream URL (remembered)."""
        self.source = str(spec)
        self._had_frames = False
        self.view.source_banner.clear()
        self.view.clear_frame("Opening…")
        self._shown = (None, None)
        self.session.open_source(self.source)
        self._update_source_label()

    def choose_source(self) -> Any:
        from desktop.ui.checkin.source_dialog import SourceDialog

        dialog = SourceDialog(self.source, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.set_source(dialog.source() or self.source or "0"))
        dialog.open()
        return dialog

    def _update_source_label(self) -> None:
        camera = self.session.camera
        state = camera.state.status if camera is not None else "closed"
        words = {RUNNING: "live", CONNECTING: "opening…", RETRYING: "retrying", ENDED: "ended",
                 FAILED: "failed"}.get(state, state)
        self.source_label.setText(f"Watching {self.session.source_description} · {words}")

    def _on_source_state(self, state: SourceState) -> None:
        self._update_source_label()
        banner = self.view.source_banner
        if state.status == RUNNING:
            self._had_frames = True
            banner.clear()
        elif state.status == RETRYING:
            title, detail = describe_problem(state, self._had_frames)
            banner.show_problem(title, detail, state.retry_at, "Retrying")
        elif state.status in (ENDED, FAILED):
            title, detail = describe_problem(state, self._had_frames)
            banner.show_problem(title, detail, self.session.reopen_at,
                                "Playing again" if state.status == ENDED else "Trying again")

    def _on_reopen_scheduled(self, at: float, why: str) -> None:
        camera = self.session.camera
        if camera is not None:
            title, detail = describe_problem(camera.state, self._had_frames)
            self.view.source_banner.show_problem(title, detail, at, why)

    # -- engine, gallery, matcher ---------------------------------------------------------
    def _on_engine_ready(self, engine: Any) -> None:
        self._update_notice()
        self._update_status()
        self._maybe_reembed()

    def _on_engine_failed(self, exc: BaseException) -> None:
        self._update_notice()

    def _on_gallery(self, gallery: Any) -> None:
        self.gallery = gallery
        if hasattr(gallery, "add_change_listener"):
            gallery.add_change_listener(self.shared.changed.emit)
        self.gallery_error = None
        self.session.set_gallery(gallery)
        self.view.tau, self.view.margin = self.session.tau, self.session.margin
        self.manage_button.setEnabled(True)
        self.refresh_today()
        self._maybe_reembed()
        self._update_notice()

    def _on_gallery_unavailable(self, exc: BaseException) -> None:
        self.gallery_error = exc
        self.manage_button.setEnabled(False)
        self.manage_button.setToolTip("The gallery could not be opened: "
                                      + getattr(exc, "message", str(exc)))
        self._update_notice()

    def _maybe_reembed(self) -> None:
        engine, gallery = self.session.engine, self.gallery
        if engine is None or gallery is None or self._reembedding:
            return
        try:
            stale = gallery.count_stale(engine.model_id)
        except FacestyleError as exc:
            log.warning("cannot count stale templates: %s", exc)
            return
        self._foreign_templates = 0
        if not stale:
            return
        if getattr(gallery, "shared", False):
            # Another desk may have switched encoders on purpose: re-embedding here would
            # switch every desk back. Say so, and leave the choice to the manager.
            self._foreign_templates = stale
            log.warning("%d templates of the shared gallery come from another encoder than "
                        "this desk's (%s); not re-embedding them here", stale, engine.model_id)
            self._update_notice()
            return
        self._reembedding = True
        self.session.pause()
        self.reembed.start(gallery, engine)

    def _on_reembedded(self, report: Any) -> None:
        if self._reembedding:
            self._reembedding = False
            self.session.resume()
        self.session.refresh_matcher()
        self._update_notice()

    def _update_notice(self) -> None:
        s = self.session
        if s.engine is None and s.engine_error is None:
            text = "Loading face models…"
        elif s.engine_error is not None:
            text = "Recognition is off: " + getattr(s.engine_error, "message",
                                                    str(s.engine_error))
        elif self._reembedding:
            text = "Updating the gallery for the new encoder…"
        elif s.paused:
            text = f"Recognition paused while {s.pause_reason}"
        elif self._foreign_templates:
            text = (f"{self._foreign_templates} face templates come from another desk's "
                    "encoder and are not matched here: Manage… → Model")
        elif self.gallery is None and self.gallery_error is not None:
            text = "No gallery: faces are shown without names"
        elif self.gallery is not None and s.people == 0 and s.pipeline is not None:
            text = "No one is enrolled yet: Manage… → Enrol"
        else:
            text = ""
        self.view.set_notice(text)

    def _on_pipeline_error(self, exc: BaseException) -> None:
        self._show_message(f"Recognition hit a problem and restarted: "
                           f"{getattr(exc, 'message', exc)}")

    # -- the display loop -------------------------------------------------------------------
    def _tick(self) -> None:
        frame = self.session.latest_camera_frame()
        if frame is None:
            return
        result: FrameResult | None = self.session.latest_result
        if result is not None and (self.session.paused or not self.session.pipeline_running
                                   or result.frame is None
                                   or time.monotonic() - result.frame.timestamp
                                   > RESULT_MAX_AGE_S):
            result = None
        if frame is not self._shown[0] or result is not self._shown[1]:
            self._shown = (frame, result)
            self.view.show_frame(frame.image, frame.index, result)

    def _update_status(self) -> None:
        s = self.session
        cam = s.camera_fps()
        self._set_status("camera_fps", f"Camera {cam:.0f} fps" if cam > 0 else "Camera —")
        if s.engine is None:
            inf = "Recognition loading…" if s.engine_error is None else "Recognition off"
        elif s.paused:
            inf = "Recognition paused"
        else:
            inf = f"Recognition {s.inference_fps():.0f} fps"
        self._set_status("inference_fps", inf)
        if s.engine is not None:
            self._set_status("face_device", f"Faces on {engine_device(s.engine)}")
        self._update_source_label()
        self._update_notice()
        if self.gallery is not None:
            self.session.poll_gallery()
            sync_status = getattr(self.gallery, "sync_status", None)
            if callable(sync_status):
                status = sync_status()
                self._set_status("shared_gallery", status.describe(),
                                 status.error or f"Shared gallery on {status.location}")

    def _on_shared_change(self, kind: str) -> None:
        """Another desk changed the shared gallery, or the server came or went."""
        if kind == "people":
            self.session.poll_gallery()  # the local copy is updated: rebuild the matcher
        elif kind == "settings" and self.gallery is not None:
            self.session.set_gallery(self.gallery)  # tau, margin, cooldown
            self.view.tau, self.view.margin = self.session.tau, self.session.margin
        elif kind == "online":
            self.refresh_today()
        self._update_status()

    def _set_status(self, key: str, text: str, tooltip: str | None = None) -> None:
        self.status_fields[key] = text
        window = self.window()
        setter = getattr(window, "set_status_field", None)
        if callable(setter) and window is not self:
            setter(key, text)
            label = getattr(window, "_permanent", {}).get(key)
            if label is not None and tooltip is not None:
                label.setToolTip(tooltip)

    def _show_message(self, text: str, ms: int = 8000) -> None:
        window = self.window()
        if isinstance(window, QMainWindow) and window is not self:
            window.statusBar().showMessage(text, ms)
        log.info("%s", text)

    # -- check-ins ------------------------------------------------------------------------
    def _on_checked_in(self, event: CheckinEvent) -> None:
        self.events.append(event)
        when = time.strftime("%H:%M", time.localtime(event.time))
        self.view.welcome.welcome(event.person, f"checked in at {when}")
        if not event.recorded:
            self._show_message(f"The check-in of {event.person} could not be saved: "
                               f"{event.error}", 15000)
        self.refresh_today()

    def _on_withheld(self, event: Any) -> None:
        """Liveness refused a recognised face: say so in the status bar (the face's label
        says it too; the manager's log keeps it)."""
        self._show_message(f"Check-in of {event.person} withheld: {event.reason}.", 10000)

    def refresh_today(self) -> None:
        if self.gallery is None:
            return
        try:
            rows = self.gallery.checkins_on(date.today(), newest_first=True)
        except FacestyleError as exc:
            log.warning("cannot read today's check-ins: %s", exc)
            return
        self.panel.set_checkins(rows, self._avatar)

    def _avatar(self, person_id: int) -> np.ndarray | None:
        try:
            templates = self.gallery.templates(person_id)
            return self.gallery.template_chip(templates[0].id) if templates else None
        except (FacestyleError, ValueError):
            return None

    def _run_maintenance(self) -> None:
        if self.gallery is None:
            return
        worker = Worker(self.gallery.daily_maintenance)
        worker.result.connect(lambda report: self.refresh_today()
                              if report.checkins_deleted else None)
        worker.error.connect(lambda exc: log.warning("gallery maintenance failed: %s", exc))
        worker.start()

    # -- manager ----------------------------------------------------------------------------
    def _context(self) -> ManagerContext:
        ctx = ManagerContext(self.session, self.gallery, self.choose_source, self)
        ctx.people_changed.connect(self._on_people_changed)
        ctx.settings_changed.connect(self._on_settings_changed)
        ctx.checkins_changed.connect(self.refresh_today)
        return ctx

    def open_manager(self, page: str | None = None) -> Any:
        """Ask for the PIN, then open the manager area (on ``page``). Returns the PIN
        dialog (None without a gallery)."""
        if self.gallery is None:
            self._show_message("The gallery is not open, so the manager area is not "
                               "available.")
            return None
        return self.gate.request(self, lambda: self._show_manager(page),
                                 "open the manager area")

    def _show_manager(self, page: str | None = None) -> Any:
        from desktop.ui.checkin.manager import ManagerDialog

        if self.manager is not None:
            self.manager.raise_()
            if page:
                self.manager.show_page(page)
            return self.manager
        dialog = ManagerDialog(self._context(), self, initial=page)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._manager_closed)
        self.manager = dialog
        dialog.open()
        return dialog

    def _manager_closed(self) -> None:
        self.manager = None

    def enrol_track(self, track_id: int) -> Any:
        """Enrol the Unknown face of ``track_id`` from the live view (after the PIN)."""
        snapshot = self.session.track_snapshot(track_id)
        if snapshot is None:
            self._show_message("That face has not been identified yet; try again in a moment.")
            return None
        if self.gallery is None:
            return None
        return self.gate.request(self, lambda: self._enrol_snapshot(snapshot),
                                 "enrol this person")

    def _enrol_snapshot(self, snapshot: Any) -> Any:
        from desktop.ui.checkin.enrol_dialog import EnrolDialog, shot_from_snapshot

        dialog = EnrolDialog(self._context(), initial=[shot_from_snapshot(snapshot)],
                             start="camera", parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _: setattr(self, "enrol_dialog", None))
        self.enrol_dialog = dialog
        dialog.open()
        return dialog

    def _on_people_changed(self) -> None:
        self.session.refresh_matcher()
        self.panel.forget_avatars()
        self.refresh_today()

    def _on_settings_changed(self, changed: dict) -> None:
        kwargs: dict[str, Any] = {}
        if "tau" in changed:
            kwargs["tau"] = float(changed["tau"])
        if "margin" in changed:
            kwargs["margin"] = float(changed["margin"])
        if "cooldown_hours" in changed:
            kwargs["cooldown_s"] = float(changed["cooldown_hours"]) * 3600.0
        if "liveness" in changed:
            kwargs["liveness"] = str(changed["liveness"])
        self.session.apply_settings(**kwargs)
        self.view.tau, self.view.margin = self.session.tau, self.session.margin
