"""The left-hand side of the Style tab: the Image / Video switch, images (or the clip),
preset, weights, painting options and output, in one scrollable column."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.style.controls import StyleControls
from desktop.ui.style.image_slot import ImageSlot, StyleList
from desktop.ui.style.output_options import OutputOptions
from desktop.ui.style.presets_bar import PresetsBar

PANEL_WIDTH = 380  # the width it gets in a normal window
MIN_WIDTH = 240
IMAGE_MODE, VIDEO_MODE = "image", "video"


def group(title: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(8, 6, 8, 8)
    layout.setSpacing(6)
    for w in widgets:
        layout.addWidget(w)
    return box


class SidePanel(QScrollArea):
    """Signal ``mode_changed(str)``: ``image`` or ``video``, when the switch is flipped."""

    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("styleSidePanel")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Narrow windows get a horizontal scroll bar rather than a squeezed panel.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setMinimumWidth(MIN_WIDTH)
        self.setMaximumWidth(PANEL_WIDTH + 140)

        self.content = ImageSlot("content", "Content C")
        self.content.setToolTip("The photo to repaint. Drop an image here, open a file, "
                                "paste one, or take a snapshot from the Check-in camera.")
        self.styles = StyleList()
        self.controls = StyleControls()
        self.presets = PresetsBar(lambda: self.controls.settings())
        self.output = OutputOptions()
        self.mode_buttons: dict[str, QToolButton] = {}
        self._mode_group = QButtonGroup(self)
        switch = QHBoxLayout()
        switch.setSpacing(0)
        for key, text, tip in ((IMAGE_MODE, "Image", "Paint one picture"),
                               (VIDEO_MODE, "Video", "Paint a clip frame by frame, with "
                                "temporal consistency")):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setObjectName(f"mode_{key}")
            button.setProperty("segment", True)
            self._mode_group.addButton(button)
            self.mode_buttons[key] = button
            switch.addWidget(button)
        switch.addStretch(1)
        self.mode_buttons[IMAGE_MODE].setChecked(True)
        self._mode_group.buttonClicked.connect(lambda _b: self.mode_changed.emit(self.mode()))
        self.video_panel: QWidget | None = None

        body = QWidget()
        body.setObjectName("styleSideBody")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 10, 8)
        layout.setSpacing(10)
        layout.addLayout(switch)
        self.images_group = group("Images", self.content, self.styles)
        layout.addWidget(self.images_group)
        layout.addWidget(group("Preset", self.presets))
        layout.addWidget(group("Weights", self.controls.weights))
        layout.addWidget(group("Painting", self.controls.run))
        self.output_group = group("Output", self.output)
        layout.addWidget(self.output_group)
        layout.addStretch(1)
        body.setMinimumWidth(PANEL_WIDTH - 20)
        self.setWidget(body)

    # -- Image / Video --------------------------------------------------------------------
    def mode(self) -> str:
        return next(k for k, b in self.mode_buttons.items() if b.isChecked())

    def add_video_panel(self, panel: QWidget) -> None:
        """The clip card and video options, shown instead of the content card in Video
        mode."""
        self.video_panel = panel
        layout = self.images_group.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(0, panel)
        panel.setVisible(self.mode() == VIDEO_MODE)

    def set_mode(self, mode: str) -> None:
        """Show the controls of ``image`` or ``video`` mode (without emitting)."""
        if mode not in self.mode_buttons:
            return
        self.mode_buttons[mode].setChecked(True)
        video = mode == VIDEO_MODE
        self.content.setVisible(not video)
        if self.video_panel is not None:
            self.video_panel.setVisible(video)
        self.output_group.setVisible(not video)  # "save every N iterations": images only
        self.images_group.setTitle("Clip and styles" if video else "Images")
