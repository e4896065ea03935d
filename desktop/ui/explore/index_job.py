"""Indexing a source off the UI thread, with progress, ETA and cancel.

:class:`IndexJob` runs :func:`desktop.explore.index.index_layers` in a
low-priority :class:`~desktop.ui.qthreading.Worker` (one at a time; the UI and the
Check-in tab keep their priority). Signals: ``progress(fraction,
text)`` with the rate and ETA in the text, ``done(dict of LayerIndex)``,
``failed(exception)``, ``stopped()`` (cancelled), and ``running_changed(bool)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.explore.index import IndexSettings
from desktop.explore.sources import ImageSource
from desktop.tasks import CancelToken, ProgressCallback, no_progress
from desktop.ui.explore.widgets import progress_text
from desktop.ui.qthreading import Worker


def _index(source: ImageSource, network: str, layers: Sequence[str], settings: IndexSettings,
           device: str, precision: str, cache_only: bool = False,
           cancel: CancelToken | None = None,
           progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """The worker's side: share the cores with the UI, then index."""
    from desktop.explore.index import index_layers
    from desktop.explore.networks import open_network
    from desktop.ui.torch_runtime import prepare_background_torch

    prepare_background_torch()
    net = open_network(network, device, precision)
    return index_layers(source, net, layers, settings, cancel=cancel, progress=progress,
                        cache_only=cache_only)


class IndexJob(QObject):
    progress = Signal(float, str)
    done = Signal(object)
    failed = Signal(object)
    stopped = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: Worker | None = None
        self.source: ImageSource | None = None
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, source: ImageSource, network: str, layers: Sequence[str],
              settings: IndexSettings, device: str = "auto", precision: str = "auto",
              cache_only: bool = False) -> None:
        if self.worker is not None:
            raise RuntimeError("an index is already running")
        self.source = source
        self._started = time.monotonic()
        worker = Worker(_index, source, network, list(layers), settings, device, precision,
                        cache_only, low_priority=True)
        worker.progress.connect(self._on_progress)
        worker.result.connect(lambda result: self._end(self.done, result))
        worker.error.connect(lambda exc: self._end(self.failed, exc))
        worker.cancelled.connect(lambda: self._end(self.stopped))
        self.worker = worker
        self.running_changed.emit(True)
        worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def shutdown(self, timeout: float = 5.0) -> bool:
        worker = self.worker
        if worker is None:
            return True
        worker.cancel()
        return worker.wait(timeout)

    def _on_progress(self, fraction: float, message: str) -> None:
        elapsed = time.monotonic() - self._started
        self.progress.emit(fraction, progress_text(message, fraction, elapsed))

    def _end(self, signal: Any, *args: Any) -> None:
        self.worker = None
        self.running_changed.emit(False)
        signal.emit(*args)
