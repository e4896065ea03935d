"""The Style tab's Video mode: wires the clip card and video options, the video view and
one :class:`~desktop.ui.style.video_job.VideoJob`.

The style images, weights and painting options are the tab's own (shared with Image
mode). Each job's finished frames live in a work folder under the app's cache, named by
the clip, the style images and the settings, so pressing Start again after a Stop (or
after closing the app) resumes at the next frame, while any change of clip or setting
starts a fresh folder. *Save video…* encodes the finished frames.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from desktop.errors import FacestyleError
from desktop.paths import user_dirs
from desktop.style import video_io
from desktop.style.settings import StyleSettings
from desktop.style.video import (
    FrameResult,
    VideoSettings,
    VideoStep,
    WorkFolder,
    job_id,
    job_key,
    painted_indices,
    slice_indices,
    write_result,
)
from desktop.ui.error_dialog import show_error
from desktop.ui.qthreading import Worker
from desktop.ui.style.live_view import format_duration
from desktop.ui.style.message_bar import ERROR, INFO, WARNING
from desktop.ui.style.message_bar import describe as _describe
from desktop.ui.style.video_job import FAILED, FINISHED, IDLE, PAUSED, VideoFn, VideoJob
from desktop.ui.style.video_panel import VideoPanel
from desktop.ui.style.video_view import VideoView

MISSING = "video-missing"
#: The Check-in camera's newest frame, (H, W, 3) RGB uint8, or None.
CameraFn = Callable[[], "np.ndarray | None"]


#: Work folders of earlier video jobs kept (newest first) so that they can be resumed.
KEEP_JOBS = 8


def work_root() -> Path:
    """Where the Style tab keeps the frames of video jobs."""
    return user_dirs().cache / "video-work"


def prune_work(root: Path, keep: Path | None = None, jobs: int = KEEP_JOBS) -> list[Path]:
    """Delete all but the ``jobs`` most recently changed work folders under ``root`` (never
    ``keep``); returns the folders deleted."""
    try:
        folders = sorted((p for p in root.iterdir() if p.is_dir() and p != keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    gone = []
    for old in folders[max(0, jobs - (keep is not None)):]:
        WorkFolder(old).clear()
        with contextlib.suppress(OSError):
            old.rmdir()
            gone.append(old)
    return gone


class VideoMode(QObject):
    """``panel`` (side) and ``view`` (right) of Video mode, and the job behind them.

    ``style_settings()`` and ``styles()`` read the tab's shared controls.
    """

    def __init__(self, style_settings: Callable[[], StyleSettings],
                 styles: Callable[[], list[np.ndarray]], video_fn: VideoFn | None = None,
                 parent: QWidget | None = None,
                 camera: Callable[[], CameraFn | None] | None = None) -> None:
        super().__init__(parent)
        self._style_settings = style_settings
        self._styles = styles
        self._parent = parent
        self.panel = VideoPanel()
        self.view = VideoView()
        self.job = VideoJob(video_fn, self)
        self.work: Path | None = None  # the folder of the job shown
        self.settings: VideoSettings | None = None
        self._started = 0.0
        self._save_worker: Worker | None = None
        self._notices_shown = False
        self._camera = camera or (lambda: None)
        self.live_worker: Worker | None = None

        self.panel.clip.changed.connect(self._clip_changed)
        self.panel.clip.failed.connect(lambda exc: self.message(_describe(exc), ERROR))
        self.view.start_button.clicked.connect(self.start)
        self.view.pause_button.clicked.connect(self.job.toggle_pause)
        self.view.stop_button.clicked.connect(self.job.stop)
        self.view.save_button.clicked.connect(self.ask_save)
        self.view.live_button.toggled.connect(self._live_toggled)
        self.job.step.connect(self._on_step)
        self.job.frames.connect(self._on_frames)
        self.job.state_changed.connect(self._on_state)
        self.job.ended.connect(self._on_ended)
        self.job.failed.connect(lambda exc: show_error(self._parent, exc,
                                                       "Video style transfer stopped"))
        self.view.set_running(IDLE)

    # -- settings and inputs -----------------------------------------------------------
    def video_settings(self) -> VideoSettings:
        return self.panel.options.apply(VideoSettings(style=self._style_settings()))

    def message(self, text: str, level: str = INFO, key: str = "") -> None:
        self.view.message.show_message(text, level, key=key)

    def _clip_changed(self) -> None:
        clip = self.panel.clip
        if clip.info is not None:
            self.panel.options.start_frame.setMaximum(max(0, clip.info.frames - 1))
        if not self.job.running:
            self.view.clear()
            self.view.show_input(clip.first_frame, "input · frame 0 (press Start to paint)")
            self.view.stats.setText("Ready")
        self.view.message.clear(MISSING)

    def missing(self) -> list[str]:
        out = []
        if self.panel.clip.info is None:
            out.append("a content clip (the video to repaint)")
        if not self._styles():
            out.append("a style image S (the painting whose style to copy)")
        return out

    # -- running -------------------------------------------------------------------------
    def start(self) -> bool:
        """Start (or resume) painting the clip; False with a message when it cannot."""
        if self.job.running:
            return False
        missing = self.missing()
        self.panel.clip.set_missing(self.panel.clip.info is None)
        if missing:
            self.message("To start, add " + " and ".join(missing) + ".", ERROR, MISSING)
            return False
        settings = self.video_settings()
        if not settings.style.style_layers:
            self.message("Tick at least one style layer in the λ table (Weights).", ERROR)
            return False
        info = self.panel.clip.info
        assert info is not None
        styles = self._styles()
        try:
            settings.check()
            key = job_key(info, styles, settings)
            done = len(painted_indices(work_root() / job_id(key), info, settings))
        except (FacestyleError, OSError) as exc:
            self.message(_describe(exc), ERROR)
            return False
        self.work = work_root() / job_id(key)
        self.settings = settings
        self.view.clear()
        self.view.fps = info.fps
        n = len(slice_indices(info, settings))
        prune_work(work_root(), keep=self.work)
        self.view.plot.set_iterations(n)
        self.view.progress.setRange(0, n)
        self.view.progress.setValue(done)
        self.view.message.clear()
        if done:
            self.message(f"Resuming: {done} of {n} frames were painted before with these "
                         "settings; painting goes on at the next one.", INFO)
        self.view.stats.setText("Preparing: loading VGG19…")
        self._started = time.monotonic()
        self._notices_shown = False
        self.job.start(info.path, styles, settings, self.work)
        return True

    def _on_state(self, state: str) -> None:
        self.view.set_running(state)
        if state == PAUSED:
            self.view.stats.setText(self.view.stats.text().split("  ·  paused")[0]
                                    + "  ·  paused")

    def _on_frames(self, frames: list[FrameResult]) -> None:
        for f in frames:
            self.view.add_frame(f.index, f.input, f.image, {**f.losses})
        self.view.progress.setValue(len(self.view.finished))

    def _on_step(self, step: VideoStep) -> None:
        if not self._notices_shown and step.notices:
            self._notices_shown = True
            self.message(" ".join(step.notices), WARNING)
        n = step.frames
        parts = [f"Frame {step.position + 1} / {n}"]
        report = step.report
        if report is not None:
            parts.append(f"iteration {report.iteration} / {step.frame_iterations}")
            index = (self.settings.start_frame if self.settings else 0) + step.position
            self.view.show_painting(index, step.frame, report.image,
                                    f"painting frame {index} · iteration "
                                    f"{report.iteration} / {step.frame_iterations}")
            device = report.device + (f" · {report.precision}" if report.precision else "")
            self.view.device_label.setText(device)
            parts.append(f"J = {report.total:.4g}")
        painted = [f for f in self.job.log.frames if not f.resumed]
        if painted:
            per_frame = sum(f.seconds for f in painted[-10:]) / len(painted[-10:])
            parts.append(f"{per_frame:.1f} s/frame")
        if step.eta_seconds is not None:
            parts.append(f"ETA {format_duration(step.eta_seconds)}")
        if self.job.state == PAUSED:
            parts.append("paused")
        self.view.stats.setText("  ·  ".join(parts))

    def _on_ended(self, outcome: str) -> None:
        self.view.plot.flush()
        frames = self.job.log.frames
        done = len(self.view.finished)
        elapsed = format_duration(time.monotonic() - self._started)
        painted = sum(1 for f in frames if not f.resumed)
        if outcome == FINISHED:
            text = (f"Finished: {done} frames ({painted} painted now, {elapsed}). "
                    "Save video… writes them as a video file.")
        elif outcome == FAILED:
            text = f"The job failed after {done} frames; they are kept."
        else:
            text = (f"Stopped after {done} frames ({elapsed}); they are kept. Start resumes "
                    "at the next frame.")
        self.view.stats.setText(text)
        self.view.set_running(IDLE)

    # -- saving --------------------------------------------------------------------------
    def ask_save(self) -> None:
        info = self.panel.clip.info
        if info is None or not self.view.finished or self.work is None:
            self.message("There is no painted frame to save yet: press Start first.", ERROR)
            return
        suggestion = str(Path(info.path).with_name(Path(info.path).stem + "-styled.mp4"))
        path, _ = QFileDialog.getSaveFileName(self.view, "Save the stylised video",
                                              suggestion, "MP4 video (*.mp4);;AVI video "
                                              "(*.avi)")
        if path:
            self.save_to(path)

    def save_to(self, path: str | Path) -> Worker | None:
        """Encode the finished frames into ``path`` off the UI thread (a message says when
        it is done); returns the worker, None when there is nothing to save."""
        info = self.panel.clip.info
        if info is None or self.work is None or not self.view.finished:
            return None
        path = Path(path)
        if path.suffix.lower() not in video_io.CODECS:
            path = path.with_suffix(".mp4")
        indices = [index for index, _, _ in self.view.finished]
        worker = Worker(write_result, self.work, path, info.fps, indices)
        worker.result.connect(lambda got: self.message(
            f"Saved {path.name}: {got[0]} frames, {got[1]}×{got[2]}, {info.fps:.3g} fps"
            + (" (without the clip's sound)." if info.has_audio else "."), INFO))
        worker.error.connect(lambda exc: show_error(self._parent, exc,
                                                    "Could not save the video"))
        self._save_worker = worker
        self.view.save_button.setEnabled(False)
        worker.finished.connect(lambda: self.view.set_running(self.job.state))
        worker.start()
        return worker

    def discard_work(self) -> None:
        """Forget the frames of the job shown (its work folder)."""
        if self.work is not None and not self.job.running:
            WorkFolder(self.work).clear()

    # -- live camera ---------------------------------------------------------------------
    def _live_toggled(self, on: bool) -> None:
        if on:
            if not self.start_live():
                self.view.live_button.setChecked(False)
        else:
            self.stop_live()

    def start_live(self) -> bool:
        """Paint the Check-in camera live; False (with a message) without camera or style."""
        if self.job.running or self.live_worker is not None:
            return False
        camera = self._camera()
        if camera is None or camera() is None:
            self.message("Start the camera in the Check-in tab first: live painting repaints "
                         "its picture.", ERROR)
            return False
        styles = self._styles()
        if not styles:
            self.message("Pick a style image first.", ERROR)
            return False
        from desktop.style.live import DEFAULT_SIZE, paint_live

        settings = self._style_settings()
        settings.size = min(settings.size, DEFAULT_SIZE)
        settings.iterations = min(settings.iterations, 20)
        counter = iter(range(10**12))

        def next_frame() -> tuple[int, np.ndarray] | None:
            frame = camera()
            if frame is None:
                time.sleep(0.05)
                return None
            return next(counter), frame

        worker = Worker(paint_live, next_frame, styles, settings,
                        temporal_weight=self.panel.options.apply(VideoSettings()).temporal_weight,
                        latest_only=True, low_priority=True)
        worker.yielded.connect(self._on_live)
        worker.error.connect(lambda exc: self.message(_describe(exc), ERROR))
        worker.finished.connect(self._live_ended)
        self.live_worker = worker
        self.view.message.clear()
        self.view.stats.setText("Live: painting the first camera frame…")
        self.view.start_button.setEnabled(False)
        worker.start()
        return True

    def stop_live(self) -> None:
        if self.live_worker is not None:
            self.live_worker.cancel()

    def _on_live(self, frame: Any) -> None:
        self.view.show_live(frame.input, frame.image, f"live · {frame.fps:.2f} frames/s")
        self.view.stats.setText(f"Live: {frame.fps:.2f} painted frames/s (the camera's other "
                                f"frames are skipped) · J = {frame.total:.4g}")

    def _live_ended(self) -> None:
        self.live_worker = None
        self.view.live_button.setChecked(False)
        self.view.set_running(self.job.state)
        self.view.stats.setText("Live painting stopped.")

    def shutdown(self, timeout: float = 5.0) -> bool:
        live = self.live_worker
        if live is not None:
            live.cancel()
            live.wait(timeout)
        return self.job.shutdown(timeout)

    def state(self) -> dict[str, Any]:
        """What the tab remembers between sessions."""
        return {"clip": self.panel.clip.path, "video": self.video_settings().to_dict()}
