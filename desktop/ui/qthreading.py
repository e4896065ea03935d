"""One small worker utility: run core work off the UI thread and hear back through signals.

A :class:`Worker` wraps a plain function or a generator function from the core::

    worker = Worker(train, dataset, epochs=5)        # or a generator function
    worker.progress.connect(bar.set_fraction)          # (fraction, message)
    worker.yielded.connect(show_iteration)             # each value a generator yields
    worker.result.connect(done)                        # the return value
    worker.error.connect(lambda exc: show_error(self, exc))
    worker.cancelled.connect(...)
    worker.start()
    ...
    worker.cancel()                                    # cooperative; see CancelToken

The function receives a :class:`~desktop.tasks.CancelToken` as ``cancel=`` and a progress
callback as ``progress=`` when its signature names those parameters, so core code stays
free of Qt. A generator is paused, resumed and cancelled between its yields.

With ``latest_only=True`` the ``yielded`` signal never queues up: while the UI is still
busy with one value, newer values replace the pending one, so the UI always shows the
newest and never falls behind a fast producer.

With ``low_priority=True`` the function runs on a thread of its own pool whose OS
priority is lowered (nice 10 on Linux), so a long compute job may use every core while
the UI thread, at normal priority, still gets a core the moment it needs one.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from desktop.errors import Cancelled
from desktop.tasks import CancelToken

log = logging.getLogger(__name__)

_POOL: QThreadPool | None = None
_LOW_POOL: QThreadPool | None = None
_ACTIVE: set[Worker] = set()
_ACTIVE_LOCK = threading.Lock()
_NOTHING = object()


def thread_pool() -> QThreadPool:
    """The app's own pool. Long-lived loops (camera, inference) each hold a thread, so the
    pool is sized well above the core count rather than sharing Qt's global pool."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(32)
    return _POOL


def low_priority_pool() -> QThreadPool:
    """Threads that run below the UI's priority (long compute jobs: style painting). Their
    lowered priority is kept for good (an unprivileged process cannot raise it again), so
    they are a pool of their own and never run other work."""
    global _LOW_POOL
    if _LOW_POOL is None:
        _LOW_POOL = QThreadPool()
        _LOW_POOL.setMaxThreadCount(4)
    return _LOW_POOL


class _Runnable(QRunnable):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._worker = worker

    def run(self) -> None:
        if self._worker.low_priority:
            from desktop.ui.torch_runtime import lower_thread_priority

            lower_thread_priority()
        self._worker._run()


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Worker(QObject):
    """Runs ``fn(*args, **kwargs)`` on a pool thread and reports through Qt signals.

    Signals are emitted from the worker thread and delivered queued to receivers that live
    in the UI thread. Exactly one of ``result``, ``error`` or ``cancelled`` fires, then
    ``finished``.
    """

    started = Signal()
    progress = Signal(float, str)
    yielded = Signal(object)
    result = Signal(object)
    error = Signal(object)
    cancelled = Signal()
    finished = Signal()

    _deliver_latest = Signal()

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        latest_only: bool = False,
        low_priority: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        #: run on :func:`low_priority_pool`, below the UI thread's OS priority
        self.low_priority = low_priority
        self.token = CancelToken()
        self._fn = fn
        self._args = args
        self._kwargs = dict(kwargs)
        if _accepts(fn, "cancel") and "cancel" not in self._kwargs:
            self._kwargs["cancel"] = self.token
        if _accepts(fn, "progress") and "progress" not in self._kwargs:
            self._kwargs["progress"] = self._emit_progress
        self._latest_only = latest_only
        self._latest_lock = threading.Lock()
        self._latest: Any = _NOTHING
        self._done = threading.Event()
        self._started = False
        self._deliver_latest.connect(self._on_deliver_latest)

    # -- control, from the UI thread -------------------------------------------------
    def start(self) -> Worker:
        if self._started:
            raise RuntimeError("a Worker runs once; make a new one")
        self._started = True
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        (low_priority_pool() if self.low_priority else thread_pool()).start(_Runnable(self))
        return self

    def cancel(self) -> None:
        self.token.cancel()

    def pause(self) -> None:
        self.token.pause()

    def resume(self) -> None:
        self.token.resume()

    @property
    def is_running(self) -> bool:
        return self._started and not self._done.is_set()

    @property
    def is_paused(self) -> bool:
        return self.token.paused

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the function has returned (for shutdown and tests)."""
        return self._done.wait(timeout)

    # -- the worker thread -----------------------------------------------------------
    def _emit_progress(self, fraction: float, message: str = "") -> None:
        self.progress.emit(float(fraction), str(message))

    def _emit_yield(self, value: Any) -> None:
        if not self._latest_only:
            self.yielded.emit(value)
            return
        with self._latest_lock:
            idle = self._latest is _NOTHING
            self._latest = value
        if idle:
            self._deliver_latest.emit()

    @Slot()
    def _on_deliver_latest(self) -> None:
        with self._latest_lock:
            value, self._latest = self._latest, _NOTHING
        if value is not _NOTHING:
            self.yielded.emit(value)

    def _run(self) -> None:
        self.started.emit()
        try:
            self.token.raise_if_cancelled()
            out = self._fn(*self._args, **self._kwargs)
            if inspect.isgenerator(out):
                out = self._drive(out)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:
            log.debug("worker %s failed", getattr(self._fn, "__name__", self._fn), exc_info=True)
            self.error.emit(exc)
        else:
            self.result.emit(out)
        finally:
            self._done.set()
            self.finished.emit()
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self)

    def _drive(self, gen: Any) -> Any:
        try:
            while True:
                self.token.checkpoint()
                try:
                    value = next(gen)
                except StopIteration as stop:
                    return stop.value
                self._emit_yield(value)
        finally:
            gen.close()


def active_workers() -> list[Worker]:
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def shutdown_workers(timeout: float = 5.0) -> bool:
    """Cancel every running worker and wait for them (at most ``timeout`` s in total).

    Returns True when all of them stopped in time.
    """
    import time

    workers = active_workers()
    for worker in workers:
        worker.cancel()
    deadline = time.monotonic() + timeout
    return all(w.wait(max(0.0, deadline - time.monotonic())) for w in workers)
