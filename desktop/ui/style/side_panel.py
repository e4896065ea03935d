"""The left-hand side of the Style tab: images, preset, weights, painting options and
output, in one scrollable column."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGroupBox, QScrollArea, QVBoxLayout, QWidget

from desktop.ui.style.controls import StyleControls
from desktop.ui.style.image_slot import ImageSlot, StyleList
from desktop.ui.style.output_options import OutputOptions
from desktop.ui.style.presets_bar import PresetsBar

PANEL_WIDTH = 380  # the width it gets in a normal window
MIN_WIDTH = 240


def group(title: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(8, 6, 8, 8)
    layout.setSpacing(6)
    for w in widgets:
        layout.addWidget(w)
    return box


class SidePanel(QScrollArea):
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

        body = QWidget()
        body.setObjectName("styleSideBody")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 10, 8)
        layout.setSpacing(10)
        layout.addWidget(group("Images", self.content, self.styles))
        layout.addWidget(group("Preset", self.presets))
        layout.addWidget(group("Weights", self.controls.weights))
        layout.addWidget(group("Painting", self.controls.run))
        layout.addWidget(group("Output", self.output))
        layout.addStretch(1)
        body.setMinimumWidth(PANEL_WIDTH - 20)
        self.setWidget(body)
