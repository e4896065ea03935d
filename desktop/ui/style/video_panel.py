"""The Style tab's Video mode controls: the clip, which frames, and the temporal options.

:class:`ClipCard` takes a video file (Open… or a drop) and shows its first frame and what
it holds; a file OpenCV cannot read gives a message, not an exception.
:class:`VideoOptions` holds the options video adds to the image settings (see
:class:`~desktop.style.video.VideoSettings`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.style import video_io
from desktop.style.video import VideoSettings
from desktop.ui.style.log_slider import LogSlider
from desktop.ui.style.qimage import thumbnail

THUMB = 84
VIDEO_FILTER = ("Videos (" + " ".join(f"*{s}" for s in video_io.VIDEO_SUFFIXES)
                + ");;All files (*)")
GAMMA_TIP = (
    "γ, the temporal weight: how strongly each frame must match the previous result\n"
    "warped by the optical flow, where the flow can be trusted:\n"
    "  J_temporal = Σ c·(G − warp(G_prev))² / D,  D = 3·H·W\n"
    "c is 0 where the flow is unreliable (disocclusions, motion boundaries).\n"
    "Higher: steadier texture; too high: smears where the flow is wrong. 0 turns it off.")
FIRST_TIP = ("Iterations of the first frame (and of the first frame after a scene cut): it\n"
             "starts from the content, and is painted coarse to fine when that is on.\n"
             "Every later frame starts from the previous result warped by the flow, so it\n"
             "needs fewer (the 'iterations' above), at full size only. Every frame runs\n"
             "all its iterations ('stop when flat' is for still images).")
LONG_TIP = ("Tie each frame also to the results 2 and 4 frames back (Ruder et al.'s\n"
            "long-term loss): steadier where something passes in front for a moment.")
WARM_TIP = ("Start each frame from the previous result warped by the optical flow.\n"
            "Off: every frame starts from the content, as a still image would.")


class ClipCard(QFrame):
    """The content clip: thumbnail of its first frame, name and facts, Open… and drop.

    Signals: ``changed()`` when a clip is set; ``failed(Exception)`` for a bad file.
    """

    changed = Signal()
    failed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("clipSlot")
        self.setProperty("slot", True)
        self.setAcceptDrops(True)
        self.info: video_io.VideoInfo | None = None
        self.first_frame: np.ndarray | None = None
        self.thumb = QLabel("Drop a\nclip here")
        self.thumb.setObjectName("thumb")
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel("none yet")
        self.name.setObjectName("slotName")
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.name.setWordWrap(True)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Choose a video file (or drop one on this card).")
        self.open_button.clicked.connect(self.choose_file)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(3)
        right.addWidget(QLabel("<b>Content clip</b>"))
        right.addWidget(self.name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        right.addLayout(buttons)
        right.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 6)
        row.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(right, 1)

    @property
    def path(self) -> str:
        return self.info.path if self.info is not None else ""

    def load_file(self, path: str | Path) -> bool:
        """Open a clip; a bad one emits ``failed`` and keeps the current clip."""
        try:
            info = video_io.probe(path)
            first = next(video_io.read_frames(path, info.height, info.width, 0, 1))[1]
        except (FacestyleError, StopIteration) as exc:
            if isinstance(exc, StopIteration):
                exc = FacestyleError(f"{Path(path).name}: no frame could be decoded.")
            self.failed.emit(exc)
            return False
        self.info, self.first_frame = info, first
        self.thumb.setPixmap(thumbnail(first, THUMB - 4))
        facts = f"{info.width}×{info.height} · {info.frames} frames · {info.fps:.3g} fps"
        if info.has_audio:
            facts += " · sound is not kept"
        self.name.setText(f"{Path(path).name}\n{facts}")
        self.name.setToolTip(str(path))
        self.set_missing(False)
        self.changed.emit()
        return True

    def choose_file(self) -> None:
        start = str(Path(self.path).parent) if self.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose the content clip", start,
                                              VIDEO_FILTER)
        if path:
            self.load_file(path)

    def set_missing(self, missing: bool) -> None:
        self.setProperty("missing", missing)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls and self.load_file(urls[0].toLocalFile()):
            event.acceptProposedAction()


class VideoOptions(QWidget):
    """First frame, frame count, γ, first-frame iterations, long-term and warm start."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        d = VideoSettings()
        self.start_frame = QSpinBox()
        self.start_frame.setRange(0, 10**7)
        self.start_frame.setToolTip("The first frame of the clip to paint (0: the start).")
        self.frames = QSpinBox()
        self.frames.setRange(0, 10**7)
        self.frames.setSpecialValueText("all")
        self.frames.setToolTip("How many frames to paint from there (all: to the end).")
        self.gamma = LogSlider(1e3, 1e11, d.temporal_weight)
        self.gamma.setObjectName("gamma")
        self.gamma.setToolTip(GAMMA_TIP)
        self.first_iterations = QSpinBox()
        self.first_iterations.setRange(1, 10000)
        self.first_iterations.setSingleStep(50)
        self.first_iterations.setValue(d.first_iterations)
        self.first_iterations.setToolTip(FIRST_TIP)
        self.long_term = QCheckBox("long-term (2 and 4 back)")
        self.long_term.setToolTip(LONG_TIP)
        self.warm_start = QCheckBox("warm start")
        self.warm_start.setChecked(d.warm_start)
        self.warm_start.setToolTip(WARM_TIP)
        self.temporal_on = QCheckBox("temporal term")
        self.temporal_on.setChecked(True)
        self.temporal_on.setToolTip(GAMMA_TIP)
        self.temporal_on.toggled.connect(self.gamma.setEnabled)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("first frame", self.start_frame)
        form.addRow("frames", self.frames)
        form.addRow("γ temporal", self.gamma)
        form.addRow("", self.temporal_on)
        form.addRow("first-frame iterations", self.first_iterations)
        form.addRow("", self.warm_start)
        form.addRow("", self.long_term)
        for signal in (self.start_frame.valueChanged, self.frames.valueChanged,
                       self.gamma.valueChanged, self.first_iterations.valueChanged,
                       self.long_term.toggled, self.warm_start.toggled,
                       self.temporal_on.toggled):
            signal.connect(self.changed)

    def apply(self, settings: VideoSettings) -> VideoSettings:
        """``settings`` with this panel's values."""
        settings.start_frame = self.start_frame.value()
        settings.max_frames = self.frames.value()
        settings.temporal_weight = self.gamma.value() if self.temporal_on.isChecked() else 0.0
        settings.first_iterations = self.first_iterations.value()
        settings.long_term = [1, 2, 4] if self.long_term.isChecked() else [1]
        settings.warm_start = self.warm_start.isChecked()
        return settings

    def set_from(self, settings: VideoSettings) -> None:
        self.start_frame.setValue(settings.start_frame)
        self.frames.setValue(settings.max_frames)
        self.temporal_on.setChecked(bool(settings.temporal_weight))
        if settings.temporal_weight:
            self.gamma.setValue(settings.temporal_weight)
        self.first_iterations.setValue(settings.first_iterations)
        self.long_term.setChecked(len(settings.long_term) > 1)
        self.warm_start.setChecked(settings.warm_start)


class VideoPanel(QWidget):
    """The clip card and the video options, shown in place of the content card."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.clip = ClipCard()
        self.options = VideoOptions()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.clip)
        layout.addWidget(self.options)

    def thumbnail(self) -> QPixmap | None:
        return self.clip.thumb.pixmap()
