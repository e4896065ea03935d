"""The per-layer lambda table: every VGG19 conv and relu layer, a checkbox and a weight.

J_style = sum over the checked layers l of lambda_l * J_style^[l]. Unchecked rows keep
their weight (greyed out) so toggling a layer back on restores it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.style.settings import DEFAULT_STYLE_LAYERS
from desktop.style.vgg import LAYER_NAMES
from desktop.ui.style.spin import CompactDoubleSpinBox

#: Channels n_C of each block of VGG19.
BLOCK_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
#: The rows of the table: every layer a loss can read (conv and relu; not the pools).
TABLE_LAYERS: tuple[str, ...] = tuple(n for n in LAYER_NAMES if not n.startswith("pool"))

LAMBDA_TIP = (
    "λ_l weighs layer l in the style cost:\n"
    "  J_style = Σ_l λ_l · J_style^[l]\n"
    "  J_style^[l] = 1/(2·n_H·n_W·n_C)² · Σ_kk' (G_kk'(S) − G_kk'(G))²\n"
    "  G_kk' = Σ_ij a_ijk · a_ijk'  (the Gram matrix of layer l's activations)\n"
    "Shallow layers (relu1_x, relu2_x) carry colour and fine texture; deep layers\n"
    "(relu4_x, relu5_x) carry larger brush strokes and shapes. Tick a layer to use it."
)


def channels(layer: str) -> int:
    return BLOCK_CHANNELS[int(layer[-3])]


class LayerTable(QWidget):
    """``weights()`` gives ``{layer: lambda}`` of the ticked rows; ``changed()`` on edits."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(len(TABLE_LAYERS), 3, self)
        self.table.setObjectName("layerTable")
        self.table.setHorizontalHeaderLabels(["layer", "λ", "n_C"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(1, 92)
        self.table.setToolTip(LAMBDA_TIP)
        self.table.setMinimumHeight(200)
        self._spins: dict[str, CompactDoubleSpinBox] = {}
        self._items: dict[str, QTableWidgetItem] = {}
        for row, layer in enumerate(TABLE_LAYERS):
            item = QTableWidgetItem(layer)
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setToolTip(LAMBDA_TIP)
            self.table.setItem(row, 0, item)
            spin = CompactDoubleSpinBox()
            spin.setRange(0.0, 1000.0)
            spin.setDecimals(3)
            spin.setSingleStep(0.05)
            spin.setValue(0.2)
            spin.setFrame(False)
            spin.setObjectName(f"lambda_{layer}")
            spin.setToolTip(f"λ for {layer}")
            spin.valueChanged.connect(self._edited)
            self.table.setCellWidget(row, 1, spin)
            n_c = QTableWidgetItem(str(channels(layer)))
            n_c.setFlags(Qt.ItemFlag.ItemIsEnabled)
            n_c.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setItem(row, 2, n_c)
            self._spins[layer] = spin
            self._items[layer] = item
        self.table.itemChanged.connect(self._item_changed)

        self.sum_label = QLabel()
        self.sum_label.setObjectName("lambdaSum")
        defaults = QPushButton("Defaults")
        defaults.setToolTip("relu1_1 … relu5_1 with λ = 0.2 each")
        defaults.clicked.connect(lambda: self.set_weights(DEFAULT_STYLE_LAYERS))
        clear = QPushButton("None")
        clear.setToolTip("Untick every layer")
        clear.clicked.connect(lambda: self.set_weights({}))
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.sum_label, 1)
        buttons.addWidget(defaults)
        buttons.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.set_weights(DEFAULT_STYLE_LAYERS)

    def weights(self) -> dict[str, float]:
        return {layer: self._spins[layer].value() for layer in TABLE_LAYERS
                if self._items[layer].checkState() == Qt.CheckState.Checked}

    def set_weights(self, weights: dict[str, float]) -> None:
        self.table.blockSignals(True)
        for layer in TABLE_LAYERS:
            on = layer in weights
            spin = self._spins[layer]
            spin.blockSignals(True)
            if on:
                spin.setValue(float(weights[layer]))
            spin.setEnabled(on)
            spin.blockSignals(False)
            self._items[layer].setCheckState(
                Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.table.blockSignals(False)
        self._edited()

    def set_checked(self, layer: str, on: bool) -> None:
        self._items[layer].setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def spin(self, layer: str) -> CompactDoubleSpinBox:
        return self._spins[layer]

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            layer = item.text()
            self._spins[layer].setEnabled(item.checkState() == Qt.CheckState.Checked)
            self._edited()

    def _edited(self) -> None:
        weights = self.weights()
        self.sum_label.setText(f"{len(weights)} layers · Σλ = {sum(weights.values()):.3g}")
        self.changed.emit()
