"""One style job at a time, run off the UI thread, with start / pause / resume / stop.

:class:`StyleJob` runs ``desktop.style.optimize.stylize`` in a
:class:`~desktop.ui.qthreading.Worker` with ``latest_only=True``: the loop yields after
every iteration and the UI is handed the newest report whenever it is free, so a slow
repaint skips frames instead of queueing them. Every iteration's losses still reach the
plot through the :class:`~desktop.style.recording.Recorder` the worker fills.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.style.recording import Autosave, Recorder, recorded
from desktop.style.settings import IterationReport, StyleSettings
from desktop.tasks import CancelToken
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)

IDLE, RUNNING, PAUSED, STOPPING = "idle", "running", "paused", "stopping"
FINISHED, STOPPED, FAILED = "finished", "stopped", "failed"

StylizeFn = Callable[..., Iterator[IterationReport]]


def default_stylize() -> StylizeFn:
    from desktop.style.optimize import stylize

    return stylize


def _run(content: np.ndarray, styles: list[np.ndarray], settings: StyleSettings,
         recorder: Recorder, autosave: Autosave | None, stylize: StylizeFn,
         cancel: CancelToken | None = None) -> Iterator[IterationReport]:
    """The worker's side: the loop's reports, recorded (and autosaved) on the way."""
    from desktop.ui.torch_runtime import prepare_background_torch

    # on its low-priority thread: every core, the UI thread preempting it when it must;
    # torch.optim (slow to import the first time: torch._dynamo) only for Adam
    prepare_background_torch(optimizers=settings.optimizer == "adam")
    yield from recorded(stylize(content, styles, settings, cancel=cancel), settings, recorder,
                        autosave)


class WorkerJob(QObject):
    """One background job at a time on a low-priority :class:`Worker`, with the run
    states (``idle``, ``running``, ``paused``, ``stopping``) and their controls; the
    image job and the video job (:mod:`desktop.ui.style.video_job`) both build on it.

    Signals: ``state_changed(str)`` and ``failed(exception)``; a subclass says how a run
    ends (:meth:`_end`) and what its worker yields.
    """

    state_changed = Signal(str)
    failed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: Worker | None = None
        self.state = IDLE

    def _launch(self, worker: Worker, on_value: Callable[[Any], None]) -> None:
        """Wire ``worker`` (yielded values to ``on_value``; its end to :meth:`_end`) and
        start it."""
        worker.yielded.connect(on_value)
        worker.error.connect(self._on_error)
        worker.cancelled.connect(lambda: self._end(STOPPED))
        worker.result.connect(lambda _: self._end(FINISHED))
        self.worker = worker
        self._set_state(RUNNING)
        worker.start()

    def pause(self) -> None:
        if self.state == RUNNING and self.worker is not None:
            self.worker.pause()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.state == PAUSED and self.worker is not None:
            self.worker.resume()
            self._set_state(RUNNING)

    def toggle_pause(self) -> None:
        self.resume() if self.state == PAUSED else self.pause()

    def stop(self) -> None:
        """Ask the loop to stop after its current iteration (``ended`` follows)."""
        if self.state in (RUNNING, PAUSED) and self.worker is not None:
            self.worker.cancel()
            self._set_state(STOPPING)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop and wait for the worker (on close). True when it stopped in time."""
        worker = self.worker
        if worker is None:
            return True
        worker.cancel()
        return worker.wait(timeout)

    @property
    def running(self) -> bool:
        return self.state != IDLE

    def _on_error(self, exc: BaseException) -> None:
        self.failed.emit(exc)
        self._end(FAILED)

    def _end(self, outcome: str) -> None:
        raise NotImplementedError

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.state}>"


class StyleJob(WorkerJob):
    """Signals: ``report(IterationReport)`` (the newest), ``rows(list[LossRow])`` (every
    iteration, in order), ``state_changed(str)``, ``ended(outcome, last report or None)``
    with outcome ``finished``/``stopped``/``failed``, and ``failed(exception)``."""

    report = Signal(object)
    rows = Signal(list)
    ended = Signal(str, object)

    def __init__(self, stylize: StylizeFn | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stylize = stylize
        self.recorder = Recorder()
        self.settings: StyleSettings | None = None
        self._rows_seen = 0
        self.last: IterationReport | None = None

    # -- control -----------------------------------------------------------------------
    def start(self, content: np.ndarray, styles: list[np.ndarray], settings: StyleSettings,
              autosave: Autosave | None = None) -> None:
        if self.state != IDLE:
            raise RuntimeError("a style job is already running")
        stylize = self._stylize or default_stylize()
        self.recorder = Recorder()
        self._rows_seen = 0
        self.last = None
        self.settings = settings
        self._launch(Worker(_run, content, styles, settings, self.recorder, autosave, stylize,
                            latest_only=True, low_priority=True), self._on_report)

    # -- numbers for the status line ---------------------------------------------------
    def seconds_per_iteration(self) -> float | None:
        return self.recorder.seconds_per_iteration()

    def eta_seconds(self) -> float | None:
        last = self.last
        if last is None:
            return None
        return self.recorder.eta_seconds(last)  # a larger scale's iterations cost more

    # -- from the worker ---------------------------------------------------------------
    def _flush_rows(self) -> None:
        new = self.recorder.rows_since(self._rows_seen)
        if new:
            self._rows_seen += len(new)
            self.rows.emit(new)

    def _on_report(self, report: IterationReport) -> None:
        self.last = report
        self._flush_rows()
        self.report.emit(report)

    def _end(self, outcome: str) -> None:
        self._flush_rows()
        last = self.recorder.last or self.last
        if last is not None and last is not self.last:
            self.last = last
            self.report.emit(last)
        self.worker = None
        self._set_state(IDLE)
        self.ended.emit(outcome, last)

    def extra(self) -> dict[str, Any]:
        """Numbers to store with a saved result."""
        last = self.last
        if last is None:
            return {}
        return {"iteration": last.iteration, "losses": last.losses(), "device": last.device,
                "precision": last.precision, "threads": last.threads}
