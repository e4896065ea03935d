"""Plain-Python plumbing for long tasks: cancellation, pausing and progress reports.

Core functions that take a while accept an optional :class:`CancelToken` and an optional
progress callback. They know nothing of threads or Qt; ``desktop.ui.qthreading`` binds
both to Qt signals, and the CLI binds progress to a terminal bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from desktop.errors import Cancelled


class ProgressCallback(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` of the work done (0..1) with an optional short message."""


def no_progress(fraction: float, message: str = "") -> None:
    """A progress callback that ignores its reports."""


class CancelToken:
    """A thread-safe flag a task polls between steps; also supports pause and resume.

    ``checkpoint()`` is the one call a loop needs: it blocks while paused and raises
    :class:`~desktop.errors.Cancelled` once cancelled.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # wake a paused task so it can see the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled()

    def checkpoint(self, timeout: float | None = None) -> None:
        """Wait while paused (up to ``timeout`` s when given), then raise if cancelled."""
        self._running.wait(timeout)
        self.raise_if_cancelled()


def scaled(progress: ProgressCallback, start: float, stop: float) -> Callable[..., None]:
    """A callback reporting into the ``[start, stop]`` part of ``progress``'s range."""

    def report(fraction: float, message: str = "") -> None:
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return report
