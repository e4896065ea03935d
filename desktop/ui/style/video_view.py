"""The right-hand side of the Style tab in Video mode: the input and stylised frames side by
side, a player over the finished frames, the numbers and the per-frame loss plot.

While a job runs, the view follows the frame being painted (its G after every iteration)
unless the user has moved the frame slider back to look at an earlier frame; *Play*
loops over the finished frames at the clip's frame rate.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.style.canvas import ImageCanvas
from desktop.ui.style.loss_plot import LossPlot
from desktop.ui.style.message_bar import MessageBar
from desktop.ui.style.qimage import to_qimage
from desktop.ui.style.run_bar import button_row, run_buttons, set_run_state, status_widgets

PLACEHOLDER = ("Open a clip on the left and pick a style image,\n"
               "then press Start to paint it frame by frame.")
PLOT_TIP = ("The loss of each finished frame, log scale: total J = α·J_content + β·J_style "
            "+ γ·J_temporal.\nThe temporal term is the price of keeping a frame close to "
            "the previous result\nwarped by the optical flow (0 on the first frame of a "
            "shot).")


class VideoView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_button, self.pause_button, self.stop_button = run_buttons(
            "Paint the clip with these settings (Ctrl+Enter); a stopped clip resumes at its "
            "next frame",
            "Stop after the current iteration; the finished frames are kept and Start "
            "resumes at the next one")
        self.save_button = QPushButton("Save video…")
        self.save_button.setObjectName("saveVideoButton")
        self.save_button.setToolTip("Write the finished frames as a video file (MP4 or AVI)")
        self.live_button = QPushButton("●  Live camera")
        self.live_button.setObjectName("liveButton")
        self.live_button.setCheckable(True)
        self.live_button.setToolTip(
            "Paint the Check-in camera's picture continuously: the painting is warped by the\n"
            "camera's optical flow and refined a few iterations per frame, so it follows the\n"
            "scene. Uses the style images, weights and size set on the left.")
        bar = button_row((self.start_button, self.pause_button, self.stop_button),
                         (self.live_button, self.save_button))
        self.message = MessageBar()

        self.input_canvas = ImageCanvas(PLACEHOLDER)
        self.input_canvas.setObjectName("videoInput")
        self.output_canvas = ImageCanvas("")
        self.output_canvas.setObjectName("videoOutput")
        self.input_canvas.link(self.output_canvas)
        self.output_canvas.link(self.input_canvas)
        frames_row = QHBoxLayout()
        frames_row.setContentsMargins(0, 0, 0, 0)
        frames_row.setSpacing(4)
        frames_row.addWidget(self.input_canvas, 1)
        frames_row.addWidget(self.output_canvas, 1)

        self.play_button = QToolButton()
        self.play_button.setObjectName("playButton")
        self.play_button.setText("▶ Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play the finished frames in a loop at the clip's rate")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("frameSlider")
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Look at any finished frame; back at the end it follows the "
                               "painting again")
        self.frame_label = QLabel("no frames yet")
        self.frame_label.setObjectName("frameLabel")
        self.frame_label.setMinimumWidth(120)
        player = QHBoxLayout()
        player.setContentsMargins(0, 0, 0, 0)
        player.addWidget(self.play_button)
        player.addWidget(self.slider, 1)
        player.addWidget(self.frame_label)

        self.progress, self.stats, self.device_label, stats_row = status_widgets()

        self.plot = LossPlot()
        self.plot.plot.setToolTip(PLOT_TIP)
        self.plot.plot.setLabel("bottom", "frame")
        self.plot.setMinimumHeight(120)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(6)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.message)
        top_layout.addLayout(frames_row, 1)
        top_layout.addLayout(player)
        top_layout.addWidget(self.progress)
        top_layout.addLayout(stats_row)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(top)
        self.splitter.addWidget(self.plot)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([560, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        #: finished frames: (clip frame number, input, stylised), in order
        self.finished: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.fps = 25.0
        self._following = True
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._next_frame)
        self.play_button.toggled.connect(self._play)
        self.slider.valueChanged.connect(self._slider_moved)

    # -- frames ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.finished.clear()
        self.play_button.setChecked(False)
        self._following = True
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.frame_label.setText("no frames yet")
        self.plot.clear()

    def show_input(self, frame: np.ndarray | None, caption: str = "") -> None:
        """The clip's first frame before a job (or None to clear)."""
        self.input_canvas.caption = caption
        self.input_canvas.set_image(to_qimage(frame) if frame is not None else None)
        if frame is None:
            self.output_canvas.set_image(None)

    def add_frame(self, index: int, frame: np.ndarray, image: np.ndarray,
                  losses: dict[str, float] | None = None) -> None:
        """A finished frame: kept for the player, plotted, and shown when following."""
        self.finished.append((index, frame, image))
        if losses is not None:
            self.plot.append([(len(self.finished), losses)])
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(self.finished) - 1)
        if self._following:
            self.slider.setValue(len(self.finished) - 1)
        self.slider.blockSignals(False)
        if self._following and not self.play_button.isChecked():
            self._show(len(self.finished) - 1)
        else:
            self._update_label()

    def show_painting(self, index: int, frame: np.ndarray | None, image: np.ndarray,
                      caption: str) -> None:
        """The frame being painted, after an iteration (only while following)."""
        if not self._following or self.play_button.isChecked():
            return
        if frame is not None:
            self.input_canvas.caption = f"input · frame {index}"
            self.input_canvas.set_image(to_qimage(frame))
        self.output_canvas.caption = caption
        self.output_canvas.set_image(to_qimage(image))

    def shown_frame(self) -> int | None:
        """Position (0-based among the finished frames) of the frame shown, if any."""
        return self.slider.value() if self.finished else None

    def _show(self, position: int) -> None:
        index, frame, image = self.finished[position]
        self.input_canvas.caption = f"input · frame {index}"
        self.input_canvas.set_image(to_qimage(frame))
        self.output_canvas.caption = f"stylised · frame {index}"
        self.output_canvas.set_image(to_qimage(image))
        self._update_label()

    def _update_label(self) -> None:
        if self.finished:
            self.frame_label.setText(f"frame {self.slider.value() + 1} / {len(self.finished)}"
                                     " done")

    def _slider_moved(self, position: int) -> None:
        if not self.finished:
            return
        self._following = position == len(self.finished) - 1
        self._show(position)

    # -- player ---------------------------------------------------------------------------
    def _play(self, on: bool) -> None:
        self.play_button.setText("❚❚ Pause" if on else "▶ Play")
        if on and self.finished:
            self._timer.start(max(10, round(1000 / max(self.fps, 1.0))))
        else:
            self._timer.stop()
            if on:
                self.play_button.setChecked(False)

    def _next_frame(self) -> None:
        if not self.finished:
            return
        self.slider.setValue((self.slider.value() + 1) % len(self.finished))

    def set_running(self, state: str) -> None:
        idle = state == "idle"
        set_run_state(self.start_button, self.pause_button, self.stop_button, state)
        self.save_button.setEnabled(idle and bool(self.finished))
        self.live_button.setEnabled(idle or self.live_button.isChecked())

    def show_live(self, frame: np.ndarray, image: np.ndarray, caption: str) -> None:
        """A live camera picture and its painting."""
        self.input_canvas.caption = "camera"
        self.input_canvas.set_image(to_qimage(frame))
        self.output_canvas.caption = caption
        self.output_canvas.set_image(to_qimage(image))
