"""The Style tab: pick C and S, set alpha, beta and lambda, and watch G being painted.

The widgets live in :mod:`desktop.ui.style`; this module wires them to one
:class:`~desktop.ui.style.job.StyleJob`:

* the side panel (images, preset, weights, painting options, output) builds a
  :class:`~desktop.style.settings.StyleSettings`;
* Start checks what is missing (inline, with the missing cards outlined), checks the
  memory the job will need, and runs the loop off the UI thread;
* each iteration's G goes to the preview (newest only), every iteration's losses go to the
  plot, and the status line shows the iteration, it/s, ETA and device;
* a finished or stopped job lands in the history strip; G can be saved as PNG with its
  settings (PNG text + JSON sidecar), or every N iterations while it runs.

**Video mode** (the switch above the images) paints a clip frame by frame with the same
styles, weights and painting options; :class:`~desktop.ui.style.video_mode.VideoMode`
runs it, with its own view in place of the image preview.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QCursor, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.style.presets import apply_preset
from desktop.style.recording import Autosave, LossRow, eta_waits_for_next_scale
from desktop.style.settings import IterationReport, StyleSettings
from desktop.ui.error_dialog import show_error
from desktop.ui.qthreading import Worker
from desktop.ui.settings import read
from desktop.ui.style import saving
from desktop.ui.style.history import HistoryEntry
from desktop.ui.style.image_slot import ImageSlot
from desktop.ui.style.job import FAILED, FINISHED, IDLE, PAUSED, RUNNING, StyleJob
from desktop.ui.style.live_view import LiveView, format_duration
from desktop.ui.style.look import STYLE_SHEET
from desktop.ui.style.message_bar import ERROR, INFO, WARNING
from desktop.ui.style.message_bar import describe as _describe
from desktop.ui.style.qimage import to_qimage
from desktop.ui.style.side_panel import IMAGE_MODE, PANEL_WIDTH, VIDEO_MODE, SidePanel
from desktop.ui.style.video_mode import VideoMode

log = logging.getLogger(__name__)

MISSING = "missing"  # the key of the "To start, add ..." message


class StyleTab(QWidget):
    title = "Style"

    def __init__(self, parent: QWidget | None = None, stylize: Any = None,
                 stylize_video: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("styleTab")
        self.setStyleSheet(STYLE_SHEET)
        self.side = SidePanel()
        self.live = LiveView()
        self.job = StyleJob(stylize, self)
        self.video = VideoMode(self.settings, self.side.styles.images, stylize_video, self,
                               camera=self.camera_source)
        self.side.add_video_panel(self.video.panel)
        # the view of the mode shown; the other is hidden (and so asks for no room)
        self.right = QWidget()
        right_layout = QVBoxLayout(self.right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.live)
        right_layout.addWidget(self.video.view)
        self.video.view.hide()
        self.shown: np.ndarray | None = None  # the G in the preview
        self.shown_settings: StyleSettings | None = None
        self.shown_inputs: dict[str, Any] = {}  # the sources of the shown G's C and S
        self._job_inputs: dict[str, Any] = {}
        self._job_started = 0.0
        self._last_save_dir = ""
        self._notices_shown = True
        self._plot_scale = -1  # the coarse-to-fine scale the plot has marked last
        self._multiscale_job = False
        self._change_noted = False
        #: prepare the network while the user picks images (off with an injected stylize)
        self.warm_up_enabled = stylize is None
        self._warming: Worker | None = None
        self._warmed: tuple | None = None  # what the last warm-up prepared

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.side)
        splitter.addWidget(self.right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([PANEL_WIDTH, 900])
        self.splitter = splitter
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

        side, live = self.side, self.live
        side.mode_changed.connect(self.set_mode)
        side.content.changed.connect(self._inputs_changed)
        side.styles.changed.connect(self._inputs_changed)
        for source in (side.content, side.styles):
            source.notice.connect(lambda text: self.message(text, WARNING))
            source.failed.connect(self._image_failed)
        side.presets.preset_chosen.connect(self.apply_preset)
        side.presets.failed.connect(lambda exc: self.message(_describe(exc), ERROR))
        side.presets.saved.connect(lambda name: self.message(f"Saved the preset “{name}”.", INFO))
        side.controls.run.iterations.valueChanged.connect(self._iterations_changed)
        side.controls.changed.connect(self._settings_changed)
        live.start_button.clicked.connect(self.start)
        live.pause_button.clicked.connect(self.job.toggle_pause)
        live.stop_button.clicked.connect(self.job.stop)
        live.save_button.clicked.connect(self.ask_save)
        live.history.view_requested.connect(self.view_entry)
        live.history.restore_requested.connect(self.restore_entry)
        live.history.save_requested.connect(lambda e: self.ask_save(e.image, e.settings))
        self.job.report.connect(self._on_report)
        self.job.rows.connect(self._on_rows)
        self.job.state_changed.connect(self._on_state)
        self.job.ended.connect(self._on_ended)
        self.job.failed.connect(lambda exc: show_error(self, exc, "Style transfer stopped"))
        live.set_running(IDLE)
        live.save_button.setEnabled(False)
        # Ctrl+V anywhere in the tab (text fields keep their own paste)
        paste = QShortcut(QKeySequence(QKeySequence.StandardKey.Paste), self)
        paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        paste.activated.connect(self.paste_image)

    # -- Image / Video ---------------------------------------------------------------
    def mode(self) -> str:
        return self.side.mode()

    def set_mode(self, mode: str) -> None:
        """Show Image or Video mode (a running job of the other mode keeps running)."""
        self.side.set_mode(mode)
        self.live.setVisible(mode != VIDEO_MODE)
        self.video.view.setVisible(mode == VIDEO_MODE)

    # -- settings --------------------------------------------------------------------
    def settings(self) -> StyleSettings:
        return self.side.controls.settings(self.side.styles.blend())

    def set_settings(self, settings: StyleSettings) -> None:
        self.side.controls.set_settings(settings)
        self.side.styles.set_blend(settings.style_blend)

    def apply_preset(self, preset: StyleSettings) -> None:
        self.set_settings(apply_preset(self.settings(), preset))

    # -- messages --------------------------------------------------------------------
    def message(self, text: str, level: str = INFO) -> None:
        self.live.message.show_message(text, level)

    def _image_failed(self, exc: Exception) -> None:
        self.message(_describe(exc), ERROR)

    def _settings_changed(self) -> None:
        """A change during a run: say once that the run keeps what it started with."""
        if self.job.running and not self._change_noted:
            self._change_noted = True
            self.message("This run keeps the settings it started with. Press Stop, then "
                         "Start, to paint with the new ones.", INFO)

    # -- inputs ----------------------------------------------------------------------
    def paste_target(self) -> ImageSlot:
        """Where Ctrl+V puts the clipboard's image: the card under the pointer; else the
        first card without an image (the content first); else the content card."""
        widget = QApplication.widgetAt(QCursor.pos())
        while widget is not None and not isinstance(widget, ImageSlot):
            widget = widget.parentWidget()
        if widget is not None and self.isAncestorOf(widget):
            return widget
        if self.side.content.image is None:
            return self.side.content
        for slot in self.side.styles.slots:
            if slot.image is None:
                return slot
        return self.side.content

    def paste_image(self) -> bool:
        """Ctrl+V: the clipboard's image (or image file) into :meth:`paste_target`."""
        return self.paste_target().paste()

    def _inputs_changed(self) -> None:
        if self.isVisible():
            self.warm_up()
        content = self.side.content.image
        styles = self.side.styles.images()
        self.live.set_inputs(to_qimage(content) if content is not None else None,
                             to_qimage(styles[0]) if styles else None)
        if self.shown is None and content is not None and not self.job.running:
            self.live.canvas.caption = "C · content (press Start to paint)"
            self.live.canvas.set_image(to_qimage(content))
        if content is not None and styles:
            self.live.message.clear(MISSING)
        if content is not None:
            self.side.content.set_missing(False)
        if styles:
            self.side.styles.set_missing(False)

    def _iterations_changed(self, n: int) -> None:
        if not self.job.running and self.live.plot.point_count() == 0:
            self.live.plot.set_iterations(n)

    def missing(self) -> list[str]:
        """What must be added before a job can start, in words (empty when ready)."""
        out = []
        if self.side.content.image is None:
            out.append("a content image C (the photo to repaint)")
        if not self.side.styles.images():
            out.append("a style image S (the painting whose style to copy)")
        return out

    # -- running ---------------------------------------------------------------------
    def start(self) -> bool:
        """Start a job with the current images and settings; False (with an inline
        message saying why) when something is missing or will not fit."""
        if self.job.running:
            return False
        missing = self.missing()
        self.side.content.set_missing(self.side.content.image is None)
        self.side.styles.set_missing(not self.side.styles.images())
        if missing:
            self.live.message.show_message(
                "To start, add " + " and ".join(missing) + ": use Open…, drop a file on its "
                "card, or Paste.", ERROR, key=MISSING)
            return False
        settings = self.settings()
        if not settings.style_layers:
            self.message("Tick at least one style layer in the λ table (Weights).", ERROR)
            return False
        content = self.side.content.image
        styles = self.side.styles.images()
        assert content is not None
        try:
            job_plan = saving.check_plan(settings, content.shape, len(styles))
        except FacestyleError as exc:
            self.message(_describe(exc), ERROR)
            return False
        autosave = None
        plan = self.side.output.plan()
        if plan is not None:
            autosave = Autosave(plan[0], plan[1], saving.save_result)
        self.live.message.clear()
        self.live.plot.clear()
        self._plot_scale = -1
        self._multiscale_job = len(job_plan.scales) > 1
        self.live.plot.set_iterations(settings.iterations)
        self.live.progress.setRange(0, settings.iterations)
        self.live.progress.setValue(0)
        self.live.stats.setText("Preparing: loading VGG19 and computing the targets…")
        self._job_started = time.monotonic()
        self._notices_shown = False
        self._change_noted = False
        self.shown_settings = settings
        self._job_inputs = {"content": self.side.content.source,
                            "styles": [s.source for s in self.side.styles.filled()]}
        self.job.start(content, styles, settings, autosave)
        return True

    def _on_state(self, state: str) -> None:
        self.live.set_running(state)
        if state == PAUSED:
            self.live.stats.setText(self.live.stats.text().split("  ·  paused")[0]
                                    + "  ·  paused")
        self._status_bar(state)

    def _on_report(self, report: IterationReport) -> None:
        if not self._notices_shown:
            self._notices_shown = True
            notices = getattr(report, "notices", None) or []
            if notices:
                self.message(" ".join(notices), WARNING)
        self.shown = report.image
        self.shown_inputs = self._job_inputs
        h, w = report.size
        scale = (f" · scale {report.scale_index + 1} of {len(report.scales)}"
                 if len(report.scales) > 1 else "")
        self.live.show_generated(to_qimage(report.image),
                                 f"G · iteration {report.iteration} · {w}×{h} px{scale}")
        self.live.save_button.setEnabled(True)
        self.live.progress.setRange(0, max(1, report.total_iterations))
        self.live.progress.setValue(report.iteration)
        spi = self.job.seconds_per_iteration()
        eta = self.job.eta_seconds()
        parts = [f"Iteration {report.iteration} / {report.total_iterations}"]
        if spi:
            parts.append(f"{1 / spi:.2f} it/s" if spi < 1 else f"{spi:.1f} s/it")
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        elif eta_waits_for_next_scale(report):
            parts.append("ETA after this scale")
        parts.append(f"J = {report.total:.4g}")
        if self.job.state == PAUSED:
            parts.append("paused")
        self.live.stats.setText("  ·  ".join(parts))
        device = report.device or ""
        if report.precision:
            device = f"{device} · {report.precision}" if device else report.precision
        self.live.device_label.setText(device)
        self._status_bar(self.job.state, report)

    def _on_rows(self, rows: list[LossRow]) -> None:
        for row in rows:  # a dashed line where each coarse-to-fine scale starts
            if row.scale_index != self._plot_scale and row.size != (0, 0):
                self._plot_scale = row.scale_index
                if self._multiscale_job:
                    self.live.plot.mark_scale(row.step, f"{max(row.size)} px")
        self.live.plot.append([(r.step, r.losses()) for r in rows])

    def _on_ended(self, outcome: str, last: IterationReport | None) -> None:
        self.live.plot.flush()
        elapsed = format_duration(time.monotonic() - self._job_started)
        recorder = self.job.recorder
        done = len(recorder.rows)
        if last is not None and self.shown_settings is not None:
            entry = HistoryEntry(
                image=last.image, settings=self.shown_settings, iterations=done,
                losses=last.losses(), content=self._job_inputs.get("content", ""),
                styles=list(self._job_inputs.get("styles", [])),
                finished=outcome == FINISHED)
            self.live.history.add(entry)
        if outcome == FINISHED:
            text = f"Finished: {done} iterations in {elapsed}."
            if last is not None and last.flat and done < last.total_iterations:
                text = (f"Finished early: J stopped improving (less than 0.2% over 10 "
                        f"iterations) after {done} of {last.total_iterations} iterations, "
                        f"{elapsed}.")
        elif outcome == FAILED:
            text = f"The job failed after {done} iterations; G so far is kept."
        else:
            text = f"Stopped after {done} iterations ({elapsed}); G so far is kept."
        if recorder.saved:
            text += f" Saved {len(recorder.saved)} images to {recorder.saved[0].parent}."
        self.live.stats.setText(text)
        if recorder.save_errors:
            self.message("Saving every N iterations stopped: "
                         f"{_describe(recorder.save_errors[0])}", WARNING)
        elif outcome == FAILED and self.live.message.isHidden():
            self.message(text, ERROR)
        self._status_bar(IDLE)

    def _status_bar(self, state: str, report: IterationReport | None = None) -> None:
        window = self.window()
        setter = getattr(window, "set_status_field", None)
        if not callable(setter):
            return
        if state == IDLE:
            setter("style", "")
        elif report is not None:
            setter("style", f"Style: {report.iteration}/{report.total_iterations}"
                   + (" (paused)" if state == PAUSED else ""))
        elif state == RUNNING:
            setter("style", "Style: starting")

    # -- history ---------------------------------------------------------------------
    def view_entry(self, entry: HistoryEntry) -> None:
        self.shown = entry.image
        self.shown_settings = entry.settings
        self.shown_inputs = {"content": entry.content, "styles": list(entry.styles)}
        self.live.show_generated(to_qimage(entry.image), f"G · from history "
                                 f"({entry.iterations} iterations)")
        self.live.save_button.setEnabled(True)

    def restore_entry(self, entry: HistoryEntry) -> None:
        self.view_entry(entry)
        self.set_settings(entry.settings)
        self.message("Restored the settings of that result.", INFO)

    # -- saving ----------------------------------------------------------------------
    def ask_save(self, image: np.ndarray | None = None,
                 settings: StyleSettings | None = None) -> Path | None:
        image = image if isinstance(image, np.ndarray) else self.shown
        if image is None:
            self.message("There is no G to save yet: press Start first.", ERROR)
            return None
        start = self._last_save_dir or str(self.side.output.folder.text())
        suggestion = str(Path(start) / time.strftime("style-%Y%m%d-%H%M%S.png"))
        path, _ = QFileDialog.getSaveFileName(self, "Save G as PNG", suggestion,
                                              "PNG images (*.png)")
        if not path:
            return None
        return self.save_to(path, image, settings)

    def save_to(self, path: str | Path, image: np.ndarray | None = None,
                settings: StyleSettings | None = None) -> Path | None:
        """Save G (the shown one unless given) as PNG + JSON sidecar; None on failure."""
        image = image if image is not None else self.shown
        settings = settings or self.shown_settings or self.settings()
        if image is None:
            self.message("There is no G to save yet: press Start first.", ERROR)
            return None
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        extra = {**self.shown_inputs, **self.job.extra()}
        try:
            saving.save_result(path, image, settings, extra)
        except (FacestyleError, OSError) as exc:
            show_error(self, exc, "Could not save G")
            return None
        self._last_save_dir = str(path.parent)
        self.message(f"Saved {path.name} (settings in the PNG and in {path.stem}.json).", INFO)
        return path

    # -- camera ----------------------------------------------------------------------
    def camera_source(self) -> Any:
        """The Check-in tab's ``latest_frame`` when it has one, else None."""
        window = self.window()
        tab = getattr(window, "tab", None)
        if not callable(tab):
            return None
        try:
            checkin = tab("checkin")
        except KeyError:
            return None
        frame_fn = getattr(checkin, "latest_frame", None)
        return frame_fn if callable(frame_fn) else None

    def activated(self) -> None:
        self.side.content.set_camera_source(self.camera_source())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.activated()
        self.warm_up()

    # -- warm-up ---------------------------------------------------------------------
    def warm_up(self) -> None:
        """While the user picks images: build the job's network (about a second of reading
        weights) and, once the content is known, run one evaluation at the first scale's
        size, on a low-priority thread, so Start shows G within a moment. Repeated only
        when what the job needs changes (network layers, precision, the first scale)."""
        if not self.warm_up_enabled or self.job.running:
            return
        if self._warming is not None and self._warming.is_running:
            return
        settings = self.settings()
        if not settings.style_layers:
            return
        content = self.side.content.image
        shape = tuple(content.shape) if content is not None else None
        key = (settings.size, settings.pooling, settings.multiscale, settings.device,
               settings.precision, settings.content_layer,
               tuple(sorted(n for n, w in settings.style_layers.items() if w)), shape)
        if key == self._warmed:
            return
        from desktop.style.optimize import warm_up

        def prepare() -> bool:
            from desktop.ui.torch_runtime import prepare_background_torch

            prepare_background_torch()
            return warm_up(settings, shape)

        self._warmed = key
        self._warming = Worker(prepare, low_priority=True)
        self._warming.error.connect(lambda exc: log.debug("style warm-up failed: %s", exc))
        self._warming.finished.connect(self._warmed_up)
        self._warming.start()

    def _warmed_up(self) -> None:
        self._warming = None
        if self.isVisible():
            self.warm_up()  # the images or settings may have changed meanwhile

    @property
    def warming(self) -> bool:
        """Whether a warm-up is running."""
        return self._warming is not None and self._warming.is_running

    # -- persistence -----------------------------------------------------------------
    def save_state(self, settings: QSettings) -> None:
        settings.setValue("style/settings", self.settings().to_json())
        settings.setValue("style/content", _path_or_empty(self.side.content.source))
        settings.setValue("style/styles", json.dumps(
            [_path_or_empty(s.source) for s in self.side.styles.filled()]))
        settings.setValue("style/view", self.live.view())
        out = self.side.output
        settings.setValue("style/autosave", out.enabled.isChecked())
        settings.setValue("style/autosave_every", out.every.value())
        settings.setValue("style/autosave_folder", out.folder.text())
        settings.setValue("style/preset", self.side.presets.current_name() or "")
        settings.setValue("style/mode", self.mode())
        settings.setValue("style/video", json.dumps(self.video.state()))

    def restore_state(self, settings: QSettings) -> None:
        base = StyleSettings()
        base.size = read(settings, "style/size", base.size, int)
        base.iterations = read(settings, "style/iterations", base.iterations, int)
        raw = read(settings, "style/settings", "", str)
        if raw:
            try:
                base = StyleSettings.from_dict(json.loads(raw))
            except (ValueError, TypeError):
                log.warning("ignoring unreadable style settings in the settings file")
        content = read(settings, "style/content", "", str)
        gone: list[str] = []
        if content:
            if Path(content).is_file():
                self.side.content.load_file(content)
            else:
                gone.append(content)
        try:
            styles = json.loads(read(settings, "style/styles", "[]", str))
        except ValueError:
            styles = []
        for path in [p for p in styles if isinstance(p, str) and p]:
            if Path(path).is_file():
                self.side.styles.slot_for_new_image().load_file(path)
            else:
                gone.append(path)
        self.set_settings(base)
        self.live.set_view(read(settings, "style/view", "g", str))
        out = self.side.output
        out.enabled.setChecked(read(settings, "style/autosave", False, bool))
        out.every.setValue(read(settings, "style/autosave_every", 50, int))
        folder = read(settings, "style/autosave_folder", "", str)
        if folder:
            out.folder.setText(folder)
        preset = read(settings, "style/preset", "", str)
        if preset in self.side.presets.names():
            self.side.presets.select(preset)
        try:
            video = json.loads(read(settings, "style/video", "{}", str))
        except ValueError:
            video = {}
        clip = video.get("clip") if isinstance(video, dict) else None
        if isinstance(clip, str) and clip:
            if Path(clip).is_file():
                self.video.panel.clip.load_file(clip)
            else:
                gone.append(clip)
        if isinstance(video, dict) and isinstance(video.get("video"), dict):
            from desktop.style.video import VideoSettings

            with contextlib.suppress(TypeError, ValueError):
                self.video.panel.options.set_from(VideoSettings.from_dict(video["video"]))
        self.set_mode(read(settings, "style/mode", IMAGE_MODE, str))
        if gone:
            self.message("Last time's images are no longer there: "
                         + ", ".join(Path(p).name for p in gone) + ".", INFO)

    def shutdown(self) -> None:
        """On close: stop the job and wait for it (at most 5 s)."""
        self.shutdown_job(timeout=5.0)

    def shutdown_job(self, timeout: float) -> bool:
        if self._warming is not None:
            self._warming.wait(timeout)
        stopped = self.job.shutdown(timeout=timeout)
        stopped = self.video.shutdown(timeout) and stopped
        if not stopped:
            log.warning("the style job did not stop within %.0f s", timeout)
        return stopped


def _path_or_empty(source: str) -> str:
    return source if source and Path(source).is_file() else ""

