"""A page of unit tiles: each unit's nine strongest patches as a 3 x 3 tile, clickable.

:class:`TileRenderer` cuts and lays out the tiles off the UI thread (reading images is
the slow part) and hands each one over as soon as it is ready, so a page fills in tile
by tile; a new page cancels the one still being drawn. :class:`UnitGrid` shows one
layer's units, ``page_size`` at a time, ordered by number or by strongest response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.explore.index import LayerIndex
from desktop.explore.patches import ImageCache, unit_tiles
from desktop.explore.sources import ImageSource
from desktop.ui.explore.widgets import pixmap, scroll_area
from desktop.ui.qthreading import Worker

ORDER_NUMBER, ORDER_STRONGEST = "number", "strongest"


def item_loader(source: ImageSource, index: LayerIndex) -> Callable[[int], np.ndarray | None]:
    """Item number -> the image the index saw (None when it can no longer be read)."""

    def load(item: int) -> np.ndarray | None:
        try:
            return source.load(index.items[item])
        except FacestyleError:
            return None

    return load


def _tiles(index: LayerIndex, units: Sequence[int], load: Callable, cell: int
           ) -> Iterator[tuple[str, int, np.ndarray]]:
    for unit, tile in unit_tiles(index, units, load, cell):
        yield index.layer, unit, tile


class TileRenderer(QObject):
    """``render(index, units, loader)``; ``tile_ready(layer, unit, rgb)`` per tile."""

    tile_ready = Signal(str, int, object)

    def __init__(self, cell: int = 40, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cell = cell
        self.worker: Worker | None = None

    def render(self, index: LayerIndex, units: Sequence[int], load: Callable) -> None:
        self.cancel()
        cached = load if isinstance(load, ImageCache) else ImageCache(load)
        worker = Worker(_tiles, index, list(units), cached, self.cell)
        worker.yielded.connect(self._on_yielded)  # a slot: dropped if this renderer goes
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()

    def _on_yielded(self, value: tuple[str, int, np.ndarray]) -> None:
        if self.sender() is self.worker:
            self.tile_ready.emit(*value)

    def _on_finished(self) -> None:
        if self.sender() is self.worker:
            self.worker = None

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker = None

    def wait(self, timeout: float = 10.0) -> bool:
        worker = self.worker
        return worker.wait(timeout) if worker is not None else True


class UnitCard(QFrame):
    """One unit: its tile and a caption; a click emits ``clicked(unit)``."""

    clicked = Signal(int)

    def __init__(self, unit: int, caption: str, side: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("unitCard")
        self.unit = unit
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.tile = QLabel("…")
        self.tile.setFixedSize(QSize(side, side))
        self.tile.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel(caption)
        self.caption.setProperty("role", "fact")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(5, 5, 5, 4)
        layout.setSpacing(3)
        layout.addWidget(self.tile, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.caption)
        self.has_tile = False

    def set_tile(self, rgb: np.ndarray) -> None:
        self.tile.setPixmap(pixmap(rgb))
        self.has_tile = True

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit(self.unit)
        super().mouseReleaseEvent(event)


def unit_order(index: LayerIndex, order: str) -> list[int]:
    """The layer's units by number, or strongest response first (silent units last)."""
    if order == ORDER_STRONGEST:
        best = np.nan_to_num(index.unit_max(), neginf=-1.0)
        return [int(u) for u in np.argsort(-best, kind="stable")]
    return list(range(index.channels))


def caption(index: LayerIndex, unit: int) -> str:
    best = float(index.unit_max()[unit])
    if not np.isfinite(best):
        return f"unit {unit} · no entries"
    return f"unit {unit} · max {best:.4g}" if best > 0 else f"unit {unit} · silent (0)"


class UnitGrid(QWidget):
    """One layer's units, a page at a time. ``unit_clicked(layer, unit)``."""

    unit_clicked = Signal(str, int)

    def __init__(self, cell: int = 40, columns: int = 4, page_size: int = 16,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell, self.columns, self.page_size = cell, columns, page_size
        self.renderer = TileRenderer(cell, self)
        self.renderer.tile_ready.connect(self._on_tile)
        self.index: LayerIndex | None = None
        self.loader: Callable | None = None
        self.page = 0
        self.cards: dict[int, UnitCard] = {}

        self.previous = QToolButton()
        self.previous.setText("◀")
        self.previous.setToolTip("Previous units (Page Up)")
        self.next = QToolButton()
        self.next.setText("▶")
        self.next.setToolTip("Next units (Page Down)")
        self.page_label = QLabel()
        self.order = QComboBox()
        self.order.addItem("by unit number", ORDER_NUMBER)
        self.order.addItem("strongest first", ORDER_STRONGEST)
        self.order.setToolTip("Order units by number, or by their strongest activation over "
                              "the images (silent units last)")
        bar = QHBoxLayout()
        bar.addWidget(self.previous)
        bar.addWidget(self.page_label)
        bar.addWidget(self.next)
        bar.addStretch(1)
        bar.addWidget(QLabel("Order:"))
        bar.addWidget(self.order)

        self.body = QWidget()
        self.grid = QGridLayout(self.body)
        self.grid.setSpacing(8)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = scroll_area(self.body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(scroll, 1)

        self.previous.clicked.connect(lambda: self.show_page(self.page - 1))
        self.next.clicked.connect(lambda: self.show_page(self.page + 1))
        self.order.currentIndexChanged.connect(lambda _: self.show_page(0))
        self._update_bar()

    @property
    def pages(self) -> int:
        if self.index is None:
            return 0
        return max(1, -(-self.index.channels // self.page_size))

    def set_index(self, index: LayerIndex | None, loader: Callable | None,
                  page: int = 0) -> None:
        self.index, self.loader = index, loader
        self.show_page(page)

    def units_on_page(self) -> list[int]:
        if self.index is None:
            return []
        order = unit_order(self.index, self.order.currentData())
        start = self.page * self.page_size
        return order[start:start + self.page_size]

    def show_page(self, page: int) -> None:
        self.renderer.cancel()
        for card in self.cards.values():
            card.deleteLater()
        self.cards = {}
        if self.index is None or self.loader is None:
            self.page = 0
            self._update_bar()
            return
        self.page = min(max(page, 0), self.pages - 1)
        side = 3 * self.cell + 4
        units = self.units_on_page()
        for n, unit in enumerate(units):
            card = UnitCard(unit, caption(self.index, unit), side)
            card.setToolTip(self._tooltip(unit))
            card.clicked.connect(lambda u, layer=self.index.layer: self.unit_clicked.emit(layer, u))
            self.grid.addWidget(card, *divmod(n, self.columns))
            self.cards[unit] = card
        self._update_bar()
        self.renderer.render(self.index, units, self.loader)

    def _tooltip(self, unit: int) -> str:
        assert self.index is not None
        entries = self.index.entries(unit)
        if not entries:
            return f"Unit {unit} has no entries."
        top = entries[0]
        return (f"Unit {unit}: strongest {top.value:.4g} in "
                f"{self.index.items[top.item].label}. Click for the patches, their images and "
                "the unit's activation map.")

    def _on_tile(self, layer: str, unit: int, rgb: np.ndarray) -> None:
        card = self.cards.get(unit)
        if card is not None and self.index is not None and layer == self.index.layer:
            card.set_tile(rgb)

    def _update_bar(self) -> None:
        if self.index is None:
            self.page_label.setText("No units yet")
        else:
            units = self.units_on_page()
            first = self.page * self.page_size + 1
            self.page_label.setText(f"{first}–{first + len(units) - 1} of "
                                    f"{self.index.channels} units (page {self.page + 1} / "
                                    f"{self.pages})")
        self.previous.setEnabled(self.page > 0)
        self.next.setEnabled(self.index is not None and self.page + 1 < self.pages)

    def tiles_done(self) -> bool:
        return bool(self.cards) and all(c.has_tile for c in self.cards.values())
