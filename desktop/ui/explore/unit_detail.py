"""One unit, large: its nine patches with their activations and images, and its
activation map over a chosen image.

The patches are cut and the map computed off the UI thread. The map is drawn over the
image as a heat map, each feature-map position at the centre of its receptive field;
"Another image…" (VGG19 only: the encoder takes face chips) shows it on any picture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.explore.index import Entry, LayerIndex
from desktop.explore.networks import ExploreNetwork
from desktop.explore.patches import activation_map, crop, fit_cell, overlay
from desktop.ui.explore.widgets import describe, fact, pixmap
from desktop.ui.qthreading import Worker
from desktop.ui.style.canvas import ImageCanvas
from desktop.ui.style.qimage import to_qimage

CELL = 112
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


def _patches(index: LayerIndex, unit: int, load: Callable) -> list[tuple[Entry, np.ndarray]]:
    out = []
    for entry in index.entries(unit):
        image = load(entry.item)
        if image is not None:
            out.append((entry, fit_cell(crop(image, index.box(entry)), CELL)))
    return out


def _map(network: ExploreNetwork, image: np.ndarray, layer: str, unit: int,
         geometry) -> tuple[np.ndarray, float, float]:
    from desktop.ui.torch_runtime import prepare_background_torch

    prepare_background_torch()
    amap = activation_map(network, image, layer, unit)
    return overlay(image, amap, geometry), float(amap.max()), float(amap.mean())


class UnitDetail(QDialog):
    """The dialog; ``visualize_requested(network, layer, unit)``."""

    visualize_requested = Signal(str, str, int)

    def __init__(self, index: LayerIndex, unit: int, load: Callable,
                 network: Callable[[], ExploreNetwork], title: str,
                 prepare_image: Callable[[np.ndarray], np.ndarray] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("unitDetail")
        self.setWindowTitle(f"{title} {index.layer} · unit {unit}")
        self.index, self.unit, self.load = index, unit, load
        self._network = network
        self._prepare = prepare_image
        self._workers: list[Worker] = []
        g = index.geometry
        entries = index.entries(unit)

        heading = fact(f"{title} {index.layer} · unit {unit}", "big")
        if entries:
            top = entries[0]
            x0, y0, x1, y1 = index.box(top)
            summary = (f"Receptive field {g.size} x {g.size} px, stride {g.jump} px. Strongest "
                       f"activation {top.value:.4g} in {index.items[top.item].label}, at "
                       f"feature-map position ({top.row}, {top.col}) = image pixels x {x0}…"
                       f"{x1 - 1}, y {y0}…{y1 - 1}. Grey: outside the image.")
        else:
            summary = "This unit has no entries."
        self.summary = fact(summary)

        self.grid = QGridLayout()
        self.grid.setSpacing(6)
        self.cells: list[tuple[QLabel, QLabel]] = []
        for n in range(9):
            picture, text = QLabel("…"), fact("")
            picture.setFixedSize(CELL, CELL)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setFixedWidth(CELL)
            box = QVBoxLayout()
            box.setSpacing(2)
            box.addWidget(picture)
            box.addWidget(text)
            self.grid.addLayout(box, *divmod(n, 3))
            self.cells.append((picture, text))

        self.images = QComboBox()
        seen: set[int] = set()
        for entry in entries:
            if entry.item not in seen:
                seen.add(entry.item)
                self.images.addItem(index.items[entry.item].label, entry.item)
        self.other = QPushButton("Another image…")
        self.other.setVisible(prepare_image is not None)
        self.canvas = ImageCanvas("Choose an image to see where the unit responds.")
        self.canvas.setMinimumSize(360, 300)
        self.map_facts = fact("")
        map_bar = QHBoxLayout()
        map_bar.addWidget(QLabel("Activation map over:"))
        map_bar.addWidget(self.images, 1)
        map_bar.addWidget(self.other)
        right = QVBoxLayout()
        right.addLayout(map_bar)
        right.addWidget(self.canvas, 1)
        right.addWidget(self.map_facts)

        body = QHBoxLayout()
        left = QVBoxLayout()
        left.addLayout(self.grid)
        left.addStretch(1)
        body.addLayout(left)
        body.addLayout(right, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.visualize = buttons.addButton("Visualise this unit",
                                           QDialogButtonBox.ButtonRole.ActionRole)
        self.visualize.setToolTip("Synthesise an image that makes this unit fire "
                                  "(Feature visualisation page)")
        buttons.rejected.connect(self.reject)
        self.visualize.clicked.connect(self._visualize)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.summary)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        self.resize(1060, 720)

        self.images.currentIndexChanged.connect(lambda _: self._show_item())
        self.other.clicked.connect(self._choose_other)
        self._start(Worker(_patches, index, unit, load), self._show_patches)
        if self.images.count():
            self._show_item()

    # -- work ----------------------------------------------------------------------------
    def _start(self, worker: Worker, on_result: Callable) -> None:
        worker.result.connect(on_result)
        worker.error.connect(lambda exc: self.map_facts.setText(describe(exc)))
        worker.finished.connect(lambda w=worker: self._workers.remove(w)
                                if w in self._workers else None)
        self._workers.append(worker)
        worker.start()

    def _show_patches(self, patches: list[tuple[Entry, np.ndarray]]) -> None:
        for n, (picture, text) in enumerate(self.cells):
            if n < len(patches):
                entry, rgb = patches[n]
                picture.setPixmap(pixmap(rgb))
                label = self.index.items[entry.item].label
                name = label.rsplit("/", 1)[-1]
                text.setText(f"{entry.rank + 1}. {entry.value:.4g}\n"
                             + self.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle,
                                                             CELL))
                text.setToolTip(f"{label}\nfeature-map position ({entry.row}, {entry.col}), "
                                f"box {list(self.index.box(entry))}")
            else:
                picture.setText("")
                text.setText("")

    def _show_item(self) -> None:
        item = self.images.currentData()
        if item is None:
            return
        image = self.load(int(item))
        if image is None:
            self.map_facts.setText("That image can no longer be read.")
            return
        self._compute_map(image, self.index.items[int(item)].label)

    def _choose_other(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Activation map over an image", "",
                                              IMAGE_FILTER)
        if path:
            self.show_file(path)

    def show_file(self, path: str) -> None:
        from desktop.imageio import load_rgb

        try:
            image = load_rgb(path)
        except Exception as exc:  # an unreadable file: say so, keep the dialog
            self.map_facts.setText(describe(exc))
            return
        if self._prepare is not None:
            image = self._prepare(image)
        self._compute_map(image, path)

    def _compute_map(self, image: np.ndarray, label: str) -> None:
        self.map_facts.setText(f"Computing the map over {label}…")
        # below the UI, like every job that runs a network (its threads, and NNPACK's pool
        # where this is the first Winograd convolution of the session, inherit that)
        worker = Worker(_map, self._network(), image, self.index.layer, self.unit,
                        self.index.geometry, low_priority=True)
        self._start(worker, lambda result, label=label: self._show_map(result, label))

    def _show_map(self, result: tuple[np.ndarray, float, float], label: str) -> None:
        shown, top, mean = result
        self.canvas.set_image(to_qimage(shown))
        self.canvas.caption = label
        self.map_facts.setText(f"Unit {self.unit} over {label}: max {top:.4g}, mean "
                               f"{mean:.4g}. Bright = strong; each feature-map position is "
                               f"drawn at the centre of its {self.index.geometry.size} px "
                               "field.")

    def _visualize(self) -> None:
        self.visualize_requested.emit(self.index.network, self.index.layer, self.unit)
        self.accept()

    def busy(self) -> bool:
        return bool(self._workers)

    def done(self, result: int) -> None:
        for worker in list(self._workers):
            worker.cancel()
        super().done(result)
