"""One video style job at a time, off the UI thread, with start / pause / resume / stop.

:class:`VideoJob` runs :func:`desktop.style.video.stylize_video` in a
:class:`~desktop.ui.qthreading.Worker` with ``latest_only=True``: the UI gets the newest
step whenever it is free (a slow repaint skips iterations), while every finished frame is
kept in order in a :class:`FrameLog` on the worker's side, so none is lost to skipping.
Stopping keeps every finished frame in the work folder; starting the same job again
resumes at the next frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.style.video import FrameResult, VideoSettings, VideoStep
from desktop.tasks import CancelToken
from desktop.ui.qthreading import Worker
from desktop.ui.style.job import (
    FAILED,
    FINISHED,
    IDLE,
    PAUSED,
    RUNNING,
    STOPPED,
    STOPPING,
    WorkerJob,
)

VideoFn = Callable[..., Iterator[VideoStep]]

__all__ = ["FAILED", "FINISHED", "IDLE", "PAUSED", "RUNNING", "STOPPED", "STOPPING",
           "FrameLog", "VideoJob"]


class FrameLog:
    """Finished frames in order; written by the worker, read by the UI (``since(n)``)."""

    def __init__(self) -> None:
        self.frames: list[FrameResult] = []
        self._lock = threading.Lock()

    def add(self, frame: FrameResult) -> None:
        with self._lock:
            self.frames.append(frame)

    def since(self, n: int) -> list[FrameResult]:
        with self._lock:
            return self.frames[n:]


def default_video_fn() -> VideoFn:
    from desktop.style.video import stylize_video

    return stylize_video


def _run(clip: str, styles: list[np.ndarray], settings: VideoSettings, work: Path,
         log: FrameLog, video_fn: VideoFn, restart: bool,
         cancel: CancelToken | None = None) -> Iterator[VideoStep]:
    from desktop.ui.torch_runtime import prepare_background_torch

    # on its low-priority thread, as the image job: every core, the UI preempting it
    prepare_background_torch(optimizers=True)
    for step in video_fn(clip, styles, settings, work, cancel=cancel, restart=restart):
        if step.finished is not None:
            log.add(step.finished)
        yield step


class VideoJob(WorkerJob):
    """Signals: ``step(VideoStep)`` (the newest), ``frames(list[FrameResult])`` (every
    finished frame, in order), ``state_changed(str)``, ``ended(outcome)`` with outcome
    ``finished``/``stopped``/``failed``, and ``failed(exception)``."""

    step = Signal(object)
    frames = Signal(list)
    ended = Signal(str)

    def __init__(self, video_fn: VideoFn | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._video_fn = video_fn
        self.log = FrameLog()
        self._seen = 0
        self.last: VideoStep | None = None

    def start(self, clip: str, styles: list[np.ndarray], settings: VideoSettings,
              work: Path, restart: bool = False) -> None:
        if self.state != IDLE:
            raise RuntimeError("a video job is already running")
        self.log = FrameLog()
        self._seen = 0
        self.last = None
        self._launch(Worker(_run, clip, styles, settings, work, self.log,
                            self._video_fn or default_video_fn(), restart, latest_only=True,
                            low_priority=True), self._on_step)

    def _flush(self) -> None:
        new = self.log.since(self._seen)
        if new:
            self._seen += len(new)
            self.frames.emit(new)

    def _on_step(self, step: VideoStep) -> None:
        self.last = step
        self._flush()
        self.step.emit(step)

    def _end(self, outcome: str) -> None:
        self._flush()
        self.worker = None
        self._set_state(IDLE)
        self.ended.emit(outcome)
