"""Layers side by side: "deeper units see larger regions and more complex things".

One column per layer (two or three, e.g. relu1_1, relu3_1, relu5_1). Each column's header
states the layer's receptive field and stride and draws that field to scale inside the
outline of an analysed image; below come the tiles of the layer's most strongly
responding units, so colour and edge patches, textures and parts, and whole objects
line up next to each other.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop.explore.index import LayerIndex
from desktop.ui.explore.unit_grid import (
    ORDER_STRONGEST,
    TileRenderer,
    UnitCard,
    caption,
    unit_order,
)
from desktop.ui.explore.widgets import scroll_area

DIAGRAM = 72  # px of the image outline in a column's header


def field_diagram(field_px: int, image_px: int, side: int = DIAGRAM) -> QPixmap:
    """An ``image_px`` square image outline, ``side`` px on screen, with one receptive
    field of ``field_px`` drawn to scale at its centre (clipped when it is larger)."""
    out = QPixmap(side, side)
    out.fill(QColor("#ffffff"))
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#9aa0a6"), 1))
    painter.drawRect(QRectF(0.5, 0.5, side - 1, side - 1))
    size = max(2.0, (side - 1) * field_px / max(1, image_px))
    box = QRectF((side - size) / 2, (side - size) / 2, size, size)
    painter.setPen(QPen(QColor("#1a73e8"), 2))
    painter.setBrush(QColor(26, 115, 232, 50))
    painter.setClipRect(QRectF(0, 0, side, side))
    painter.drawRect(box)
    painter.end()
    return out


class LayerColumn(QFrame):
    """One layer: its header and the tiles of ``count`` units."""

    unit_clicked = Signal(str, int)

    def __init__(self, index: LayerIndex, loader: Callable, count: int, cell: int,
                 image_px: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerColumn")
        self.index = index
        g = index.geometry
        title = QLabel(index.layer)
        title.setProperty("role", "big")
        facts = QLabel(f"receptive field {g.size} px\nstride {g.jump} px\n{index.channels} units")
        facts.setProperty("role", "fact")
        diagram = QLabel()
        diagram.setPixmap(field_diagram(g.size, image_px))
        diagram.setToolTip(f"One {index.layer} unit's receptive field ({g.size} px) inside a "
                           f"{image_px} px image, to scale.")
        head = QHBoxLayout()
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(facts)
        head.addLayout(text, 1)
        head.addWidget(diagram)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(head)
        self.cards: dict[int, UnitCard] = {}
        units = unit_order(index, ORDER_STRONGEST)[:count]
        for unit in units:
            card = UnitCard(unit, caption(index, unit), 3 * cell + 4)
            card.clicked.connect(lambda u: self.unit_clicked.emit(self.index.layer, u))
            layout.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
            self.cards[unit] = card
        layout.addStretch(1)
        self.renderer = TileRenderer(cell, self)
        self.renderer.tile_ready.connect(self._on_tile)
        self.renderer.render(index, units, loader)

    def _on_tile(self, layer: str, unit: int, rgb) -> None:
        card = self.cards.get(unit)
        if card is not None:
            card.set_tile(rgb)


class CompareView(QWidget):
    """``set_layers([(LayerIndex, loader), ...])``; ``unit_clicked(layer, unit)``."""

    unit_clicked = Signal(str, int)

    def __init__(self, count: int = 4, cell: int = 44, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.count, self.cell = count, cell
        self.columns: list[LayerColumn] = []
        self.body = QWidget()
        self.row = QHBoxLayout(self.body)
        self.row.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.row.setSpacing(10)
        self.note = QLabel("Pick two or three layers under “Compare with” and index them.")
        self.note.setProperty("role", "fact")
        self.row.addWidget(self.note)
        scroll = scroll_area(self.body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        hint = QLabel("Each column shows the units that respond most strongly; deeper layers "
                      "see larger regions (the blue square, to scale) and more complex "
                      "things. Click a unit for its patches and activation map.")
        hint.setWordWrap(True)
        hint.setProperty("role", "fact")
        layout.addWidget(hint)
        layout.addWidget(scroll, 1)

    def set_layers(self, layers: list[tuple[LayerIndex, Callable]], image_px: int) -> None:
        self.clear()
        self.note.setVisible(not layers)
        for index, loader in layers:
            column = LayerColumn(index, loader, self.count, self.cell, image_px)
            column.unit_clicked.connect(self.unit_clicked)
            self.row.addWidget(column)
            self.columns.append(column)

    def clear(self) -> None:
        for column in self.columns:
            column.renderer.cancel()
            column.deleteLater()
        self.columns = []
        self.note.setVisible(True)

    def tiles_done(self) -> bool:
        return bool(self.columns) and all(
            card.has_tile for column in self.columns for card in column.cards.values())

    def wait(self, timeout: float = 10.0) -> bool:
        return all(column.renderer.wait(timeout) for column in self.columns)
