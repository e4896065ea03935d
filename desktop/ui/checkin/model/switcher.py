"""Switching the encoder the front desk uses: activate (guarded) or roll back, re-embed the
gallery, then reload the live Check-in engine.

:class:`LiveSwitch` lives on the live session, not on the page: closing the manager window
in the middle of a switch does not leave the gallery half re-embedded with no engine
reload. Live recognition is paused from the start of the switch until the new engine is
ready (or failed to load), so no face is matched against a gallery that is changing
under it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.face.encoder_versions import ActivationRefused
from desktop.ui.checkin.model.service import ModelService, Phase, SwitchReport
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)


class LiveSwitch(QObject):
    """One switch at a time.

    Signals:
        phase(str): what is happening now;
        progress(float, str): the re-embedding's progress;
        done(object, object): ``(SwitchReport or None, exception or None)`` when the
            switch itself ended (None, None: cancelled before it finished);
        engine_reloaded(object, object): ``(engine or None, exception or None)`` when the
            live engine was reloaded after a switch.
    """

    phase = Signal(str)
    progress = Signal(float, str)
    done = Signal(object, object)
    engine_reloaded = Signal(object, object)

    def __init__(self, service: ModelService, session: Any, gallery: Any) -> None:
        super().__init__(session)
        self.service = service
        self.session = session
        self.gallery = gallery
        self.worker: Worker | None = None
        self.report: SwitchReport | None = None
        self._paused = False
        self._waiting_engine = False

    @property
    def running(self) -> bool:
        return (self.worker is not None and self.worker.is_running) or self._waiting_engine

    def start(self, name: str | None, tau: float | None) -> Worker:
        """Activate ``name`` (rollback for None) off the UI thread."""
        if self.running:
            raise RuntimeError("a switch is already running")
        self.report = None
        self._pause()
        worker = Worker(self.service.switch, self.gallery, name, tau)
        worker.yielded.connect(self._on_yield)
        worker.progress.connect(self.progress)
        worker.result.connect(self._on_result)
        worker.error.connect(self._on_error)
        worker.cancelled.connect(self._on_cancelled)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    # -- the switch ----------------------------------------------------------------------------
    def _on_yield(self, value: Any) -> None:
        if isinstance(value, Phase):
            self.phase.emit(value.message)

    def _on_result(self, report: SwitchReport) -> None:
        self.report = report
        self.done.emit(report, None)
        self._reload_engine()

    def _on_error(self, exc: BaseException) -> None:
        self.done.emit(None, exc)
        if isinstance(exc, ActivationRefused):
            self._resume()  # nothing changed
        else:
            self._reload_engine()  # the switch may have happened before the failure

    def _on_cancelled(self) -> None:
        self.done.emit(None, None)
        self._reload_engine()  # the registry says what is active; the engine follows

    # -- the live engine -----------------------------------------------------------------------
    def _reload_engine(self) -> None:
        session = self.session
        if session is None or not hasattr(session, "load_engine"):
            self._resume()
            self.engine_reloaded.emit(None, None)
            return
        self.phase.emit("Loading the new encoder for the front desk…")
        self._waiting_engine = True
        session.engine_ready.connect(self._on_engine_ready)
        session.engine_failed.connect(self._on_engine_failed)
        session.load_engine(self.service.live_engine)

    def _disconnect_engine(self) -> None:
        self._waiting_engine = False
        for signal, slot in ((self.session.engine_ready, self._on_engine_ready),
                             (self.session.engine_failed, self._on_engine_failed)):
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)

    def _on_engine_ready(self, engine: Any) -> None:
        self._disconnect_engine()
        self._resume()
        log.info("live engine reloaded: %s", getattr(engine, "model_id", "?"))
        self.engine_reloaded.emit(engine, None)

    def _on_engine_failed(self, exc: BaseException) -> None:
        self._disconnect_engine()
        self._resume()
        self.engine_reloaded.emit(None, exc)

    def _pause(self) -> None:
        if not self._paused and self.session is not None and hasattr(self.session, "pause"):
            self.session.pause("switching the face encoder")
            self._paused = True

    def _resume(self) -> None:
        if self._paused:
            self.session.resume()
            self._paused = False
