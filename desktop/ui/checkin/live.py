"""The live check-in session: camera, face engine, gallery and pipeline, bound to Qt.

Threads (the UI thread never waits on a camera or a model):

* the :class:`~desktop.face.camera.CameraSource` reads frames in its own threads and keeps
  only the newest; the UI polls :meth:`LiveSession.latest_camera_frame` at display rate;
* the face engine loads in a :class:`~desktop.ui.qthreading.Worker` (the first thing the
  view says is "Loading face models…");
* :meth:`CheckinPipeline.run` runs in a Worker with ``latest_only=True``: it always
  processes the newest frame and the UI receives only the newest result. Check-in events
  travel on their own signal, so coalescing results never drops one;
* building a matcher (reading every template) also runs in a Worker.

The torch work runs with all cores but one (:mod:`desktop.ui.torch_runtime`), so one
core stays free for the UI and video decoding on a small machine. Between its native
calls the pipeline runs Python code (tracking, landmarks, voting) that holds the GIL, so
the session lowers Python's thread switch interval to 1 ms and the UI
thread gets the GIL back quickly (``bench/checkin_ui_heartbeat.py`` measures it: with
spinning OpenMP threads on 2 busy cores the worst UI gap was 225 ms at the default 5 ms
and 50 ms at 1 ms; with ``OMP_WAIT_POLICY=PASSIVE``, set by ``desktop/__init__.py``, both
stay under ~80 ms).

Source faults are handled in two layers: a camera that fails or disappears is retried by
CameraSource itself (state ``retrying``, with its own backoff); a source that is over
(``ended``, ``failed``) is reopened here after a delay (a video file plays again, a file
that cannot be opened is tried again with a growing delay). No fault ends the session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from desktop.errors import FacestyleError
from desktop.face.camera import (
    ENDED,
    FAILED,
    CameraSource,
    Frame,
    SourceState,
    describe_source,
    parse_source,
)
from desktop.face.liveness import LandmarkModel, LivenessSettings
from desktop.face.pipeline import (
    DEFAULT_COOLDOWN_S,
    CheckinPipeline,
    FrameResult,
    GalleryCheckinLog,
    PipelineSettings,
)
from desktop.face.types import DEFAULT_TAU, EngineFactory, FaceEngineLike
from desktop.ui.qthreading import Worker
from desktop.ui.torch_runtime import responsive_gil

log = logging.getLogger(__name__)

#: Delay before a video file that ended plays again, in seconds.
REPLAY_DELAY_S = 3.0
#: Backoff for a source that failed for good (e.g. a missing file): first and largest delay.
REOPEN_FIRST_S = 2.0
REOPEN_MAX_S = 60.0
#: Longest pause before restarting a pipeline loop that keeps failing, in seconds.
RESTART_MAX_S = 30.0


def default_engine_factory() -> FaceEngineLike:
    """The app's face engine with the active encoder version (dlib's own, or the
    fine-tuned one a manager activated); models load lazily."""
    try:
        from desktop.face.encoder_versions import EncoderRegistry
    except ImportError as exc:
        raise FacestyleError(
            "The face engine is not available in this build.",
            "Recognition is off; the video still shows. Install the complete facestyle "
            "package to recognise faces.") from exc
    return EncoderRegistry().build_engine()


def build_matcher(gallery: Any, model_id: str, tau: float, margin: float) -> Any:
    """The gallery's matcher for ``model_id`` with the decision rule the manager chose
    (the threshold, or that encoder's verification head; the threshold when the head is
    missing). Runs in a worker: it reads the database and the head's file."""
    from desktop.face.encoder_versions import EncoderRegistry

    rule = EncoderRegistry().decision_rule(tau, model_id, strict=False)
    return gallery.matcher(model_id, tau=tau, margin=margin, rule=rule)


def load_engine(factory: EngineFactory) -> Iterator[str]:
    """Build the engine and load its models now, so that the first live frame does not pay
    for lazy loading. A generator for a Worker: it yields between models (so closing the
    window does not wait for every model to load) and returns the engine."""
    _limit_torch_threads()
    engine = factory()
    for part in ("detector", "landmarks", "embedder"):
        yield part
        getattr(engine, part, None)  # FaceEngine loads each model on first access
    yield "warm-up"
    warm_up = getattr(engine, "warm_up", None)
    if callable(warm_up):
        warm_up()
    else:
        engine.detect(np.zeros((120, 160, 3), np.uint8))
        engine.embed(np.zeros((1, 150, 150, 3), np.uint8))
    return engine


def liveness_mode(value: Any) -> str:
    """The gallery's ``liveness`` setting as a mode; anything unknown is ``"off"``
    (logged), so a hand-edited setting cannot stop the live view."""
    from desktop.face.liveness import MODES

    mode = str(value)
    if mode not in MODES:
        log.warning("unknown liveness setting %r; liveness is off", value)
        return "off"
    return mode


def _limit_torch_threads() -> None:
    from desktop.ui.torch_runtime import share_cores_with_ui

    share_cores_with_ui()


def engine_device(engine: Any) -> str:
    """Where the engine's encoder runs: "CPU" or "GPU cuda:0" (engines without a device
    attribute, such as test fakes, run on the CPU)."""
    for holder in (engine, getattr(engine, "embedder", None)):
        device = getattr(holder, "device", None)
        if device is not None and not callable(device):
            text = str(device)
            return "CPU" if text == "cpu" else f"GPU {text}"
    return "CPU"


class LiveSession(QObject):
    """Owns the camera, the engine, the pipeline and its worker (see the module doc).

    Signals (all delivered on the UI thread):

    * ``source_state(SourceState)``: the camera's state changed;
    * ``reopen_scheduled(float, str)``: an ended/failed source will be reopened at the
      given ``time.monotonic()``; the text says why;
    * ``engine_loading()``, ``engine_ready(engine)``, ``engine_failed(exception)``;
    * ``result(FrameResult)``: the newest pipeline result (older ones may be skipped);
    * ``checked_in(CheckinEvent)``: every check-in, none skipped;
    * ``withheld(WithheldCheckin)``: every check-in liveness refused ("photo suspected");
    * ``matcher_ready(int)``: a new matcher is in use (its number of people);
    * ``pipeline_error(exception)``: the pipeline loop failed (it is restarted).
    """

    source_state = Signal(object)
    reopen_scheduled = Signal(float, str)
    engine_loading = Signal()
    engine_ready = Signal(object)
    engine_failed = Signal(object)
    result = Signal(object)
    checked_in = Signal(object)
    withheld = Signal(object)
    matcher_ready = Signal(int)
    pipeline_error = Signal(object)
    _camera_state = Signal(int, object)  # (camera generation, SourceState), any thread

    def __init__(self, parent: QObject | None = None, *,
                 capture_factory: Callable[[Any], Any] | None = None,
                 loop_files: bool = False) -> None:
        super().__init__(parent)
        self.capture_factory = capture_factory
        self.loop_files = loop_files
        self.source_spec: str | None = None
        self.camera: CameraSource | None = None
        self.engine: FaceEngineLike | None = None
        self.engine_error: BaseException | None = None
        self.gallery: Any = None
        self.pipeline: CheckinPipeline | None = None
        self.checkin_log: GalleryCheckinLog | None = None
        self.latest_result: FrameResult | None = None
        self.tau = DEFAULT_TAU
        self.margin: float | None = None
        self.cooldown_s = DEFAULT_COOLDOWN_S
        self.liveness = "off"  # the gallery's "liveness" setting once it is open
        self.landmarks = LandmarkModel()  # the 68-point model, loaded when first needed
        self.people = 0
        self.matcher_revision: int | None = None
        self._worker: Worker | None = None
        self._engine_worker: Worker | None = None
        self._matcher_worker: Worker | None = None
        self._matcher_again = False
        self._want_pipeline = False
        self._pause_reasons: list[str] = []
        self._errors_in_a_row = 0
        self._closed = False
        self._reopen_failures = 0
        self.reopen_at: float | None = None
        self._reopen_timer = QTimer(self)
        self._reopen_timer.setSingleShot(True)
        self._reopen_timer.timeout.connect(self._reopen)
        self._generation = 0
        self._camera_state.connect(self._on_camera_state)
        responsive_gil()

    # -- camera -------------------------------------------------------------------------
    def open_source(self, spec: int | str) -> None:
        """Switch to another camera index, video file or stream URL (returns at once)."""
        spec = str(parse_source(spec))
        self._reopen_timer.stop()
        self.reopen_at = None
        self._reopen_failures = 0
        self.source_spec = spec
        self._start_camera()

    def _start_camera(self) -> None:
        old, self.camera = self.camera, None
        if old is not None:
            old.close(timeout=0.0)  # never wait for a stuck driver on the UI thread
        if self._closed or self.source_spec is None:
            return
        self._generation += 1
        generation = self._generation

        def on_state(state: SourceState) -> None:  # called from the camera's threads
            self._camera_state.emit(generation, state)

        kwargs: dict[str, Any] = {"on_state": on_state, "loop": self.loop_files}
        if self.capture_factory is not None:
            kwargs["capture_factory"] = self.capture_factory
        self.camera = CameraSource(self.source_spec, **kwargs)
        self.camera.start()
        self._restart_pipeline()

    def retry_now(self) -> None:
        """Reopen the current source at once (the banner's "Retry now")."""
        if self.source_spec is not None:
            self._reopen_timer.stop()
            self.reopen_at = None
            self._start_camera()

    @property
    def source_description(self) -> str:
        return describe_source(self.source_spec) if self.source_spec is not None else "none"

    def latest_camera_frame(self) -> Frame | None:
        camera = self.camera
        return None if camera is None else camera.latest()

    def camera_fps(self) -> float:
        camera = self.camera
        return 0.0 if camera is None else camera.fps

    def _on_camera_state(self, generation: int, state: SourceState) -> None:
        if generation != self._generation or self._closed:
            return  # a camera we already closed
        self.source_state.emit(state)
        if state.status == "running":
            self._reopen_failures = 0
        if state.status not in (ENDED, FAILED):
            return
        if state.status == ENDED:
            delay, why = REPLAY_DELAY_S, "Playing again"
        else:
            delay = min(REOPEN_MAX_S, REOPEN_FIRST_S * 2 ** self._reopen_failures)
            self._reopen_failures += 1
            why = "Trying again"
        self.reopen_at = time.monotonic() + delay
        self._reopen_timer.start(int(delay * 1000))
        self.reopen_scheduled.emit(self.reopen_at, why)

    def _reopen(self) -> None:
        self.reopen_at = None
        self._start_camera()

    # -- engine -------------------------------------------------------------------------
    def load_engine(self, factory: EngineFactory) -> None:
        """Load the face engine off the UI thread (``engine_ready`` / ``engine_failed``)."""
        if self._engine_worker is not None and self._engine_worker.is_running:
            return
        self.engine_error = None
        worker = Worker(load_engine, factory)
        worker.result.connect(self._on_engine)
        worker.error.connect(self._on_engine_error)
        self._engine_worker = worker
        self.engine_loading.emit()
        worker.start()

    def set_engine(self, engine: FaceEngineLike) -> None:
        """Use an engine that is already loaded (tests, or a shared one)."""
        self._on_engine(engine)

    def _on_engine(self, engine: FaceEngineLike) -> None:
        if self._closed:
            return
        self.engine = engine
        self.pipeline = CheckinPipeline(
            engine, None, settings=PipelineSettings(
                cooldown_s=self.cooldown_s, camera=self.source_description,
                liveness=LivenessSettings.of(self.liveness)),
            landmarks=self.landmarks)
        self._attach_log()
        self.engine_ready.emit(engine)
        self.refresh_matcher()
        self._want_pipeline = True
        self._restart_pipeline()

    def _on_engine_error(self, exc: BaseException) -> None:
        log.error("the face engine could not be loaded: %s", exc)
        self.engine_error = exc
        self.engine_failed.emit(exc)

    # -- gallery and matcher -------------------------------------------------------------
    def set_gallery(self, gallery: Any) -> None:
        """Use ``gallery`` (a :class:`desktop.store.Gallery`, or None: no names, no
        check-ins) and read its settings."""
        self.gallery = gallery
        if gallery is not None:
            self.tau = float(gallery.get_setting("tau"))
            self.margin = float(gallery.get_setting("margin"))
            self.cooldown_s = float(gallery.get_setting("cooldown_hours")) * 3600.0
            self.liveness = liveness_mode(gallery.get_setting("liveness"))
        self._attach_log()
        if self.pipeline is not None:
            self.pipeline.update_settings(cooldown_s=self.cooldown_s,
                                          liveness=LivenessSettings.of(self.liveness))
        self.refresh_matcher()

    def _attach_log(self) -> None:
        if self.pipeline is None:
            return
        if self.gallery is None or self.engine is None:
            self.checkin_log = None
        else:
            self.checkin_log = GalleryCheckinLog(self.gallery, self.engine.model_id)
        self.pipeline.checkin_log = self.checkin_log

    def apply_settings(self, *, tau: float | None = None, margin: float | None = None,
                       cooldown_s: float | None = None, liveness: str | None = None) -> None:
        """New threshold, margin, cooldown or liveness mode, from the next frame on."""
        if liveness is not None:
            self.liveness = liveness_mode(liveness)
            if self.pipeline is not None:
                self.pipeline.update_settings(liveness=LivenessSettings.of(self.liveness))
        if tau is not None:
            self.tau = float(tau)
        if margin is not None:
            self.margin = float(margin)
        if cooldown_s is not None:
            self.cooldown_s = float(cooldown_s)
            if self.pipeline is not None:
                self.pipeline.update_settings(cooldown_s=self.cooldown_s)
        if tau is not None or margin is not None:
            self.refresh_matcher()

    def refresh_matcher(self) -> None:
        """Rebuild the matcher from the gallery (after an enrolment, a deletion, a
        settings change or a re-embedding), off the UI thread."""
        if self.pipeline is None or self.engine is None:
            return
        if self.gallery is None:
            self.pipeline.set_matcher(None)
            return
        if self._matcher_worker is not None and self._matcher_worker.is_running:
            self._matcher_again = True
            return
        worker = Worker(build_matcher, self.gallery, self.engine.model_id, self.tau,
                        self.margin)
        worker.result.connect(self._on_matcher)
        worker.error.connect(self.pipeline_error)
        worker.finished.connect(self._on_matcher_finished)
        self._matcher_worker = worker
        worker.start()

    def _on_matcher(self, matcher: Any) -> None:
        if self.pipeline is None:
            return
        self.pipeline.set_matcher(matcher, rule=getattr(matcher.rule, "name", ""))
        self.people = int(getattr(matcher, "n_people", 0))
        self.matcher_revision = getattr(matcher, "revision", None)
        self.matcher_ready.emit(self.people)

    def poll_gallery(self) -> None:
        """Rebuild the matcher when the gallery changed behind our back (another window,
        the CLI). Cheap: one small query."""
        if self.gallery is None or self.engine is None or self.matcher_revision is None:
            return
        try:
            revision = self.gallery.revision()
        except Exception as exc:
            log.debug("gallery revision unavailable: %s", exc)
            return
        if revision != self.matcher_revision:
            self.matcher_revision = revision  # once per change
            self.refresh_matcher()

    def _on_matcher_finished(self) -> None:
        if self._matcher_again:
            self._matcher_again = False
            self.refresh_matcher()

    # -- the pipeline worker -------------------------------------------------------------
    def _restart_pipeline(self) -> None:
        """Run the pipeline on the current camera; a previous run is stopped first (one
        thread at a time uses the pipeline)."""
        if self.pipeline is None or self._closed or not self._want_pipeline:
            return
        if self._worker is not None and self._worker.is_running:
            self._worker.cancel()  # _on_worker_finished starts the next one
            return
        camera = self.camera
        if camera is None:
            return
        self.pipeline.update_settings(camera=self.source_description)
        worker = Worker(self._run_pipeline, self.pipeline, camera, latest_only=True)
        worker.yielded.connect(self._on_result)
        worker.error.connect(self._on_pipeline_error)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        if self._pause_reasons:
            worker.pause()
        worker.start()

    def _run_pipeline(self, pipeline: CheckinPipeline, camera: CameraSource,
                      cancel: Any = None) -> Any:
        """The worker's generator: the pipeline's loop, with events sent on their own."""
        _limit_torch_threads()
        for result in pipeline.run(camera, cancel=cancel):
            for event in result.events:
                self.checked_in.emit(event)
            for event in result.withheld:
                self.withheld.emit(event)
            yield result

    def _on_result(self, result: FrameResult) -> None:
        self.latest_result = result
        self._errors_in_a_row = 0
        self.result.emit(result)

    def _on_pipeline_error(self, exc: BaseException) -> None:
        log.error("the check-in pipeline failed: %s", exc, exc_info=exc)
        self._errors_in_a_row += 1
        self.pipeline_error.emit(exc)

    def _on_worker_finished(self) -> None:
        worker = self.sender()
        if worker is not None and worker is not self._worker:
            return
        self._worker = None
        camera = self.camera
        if camera is not None and not camera.state.terminal and not self._closed:
            # The camera still runs (a switch, or an error in the loop): run again, after
            # a growing pause when the loop keeps failing.
            errors = self._errors_in_a_row
            delay = 0 if not errors else min(RESTART_MAX_S, 0.2 * 2 ** (errors - 1))
            QTimer.singleShot(int(delay * 1000), self._restart_pipeline)

    def wait_pipeline(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the pipeline's worker has returned."""
        worker = self._worker
        return worker is None or worker.wait(timeout)

    @property
    def pipeline_running(self) -> bool:
        return self._worker is not None and self._worker.is_running

    def pause(self, reason: str = "enrolling") -> None:
        """Pause recognition while ``reason`` (e.g. "enrolling"); nestable, each pause
        undone by one :meth:`resume`."""
        self._pause_reasons.append(reason)
        if self._worker is not None:
            self._worker.pause()

    def resume(self) -> None:
        if self._pause_reasons:
            self._pause_reasons.pop()
        if not self._pause_reasons and self._worker is not None:
            self._worker.resume()

    @property
    def paused(self) -> bool:
        return bool(self._pause_reasons)

    @property
    def pause_reason(self) -> str:
        """Why recognition is paused (the latest reason), or "" when it runs."""
        return self._pause_reasons[-1] if self._pause_reasons else ""

    def track_snapshot(self, track_id: int) -> Any:
        return None if self.pipeline is None else self.pipeline.track_snapshot(track_id)

    def inference_fps(self) -> float:
        if self.pipeline is None or not self.pipeline_running:
            return 0.0
        return self.pipeline.stats().fps

    # -- end ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self) -> None:
        """Stop everything; returns quickly (workers are joined by the main window)."""
        self._closed = True
        self._reopen_timer.stop()
        for worker in (self._worker, self._engine_worker, self._matcher_worker):
            if worker is not None:
                worker.cancel()
        if self.camera is not None:
            self.camera.close(timeout=0.5)
