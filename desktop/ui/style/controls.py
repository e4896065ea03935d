"""The settings form of the Style tab: weights, layers and how the painting runs.

:class:`StyleControls` turns its widgets into a :class:`StyleSettings` and back
(``settings()`` / ``set_settings()``); the style blend belongs to the style images and is
filled in by the tab.
"""

from __future__ import annotations

import random

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.style.optimize import MAX_SIZE, MIN_SIZE
from desktop.style.settings import StyleSettings
from desktop.ui.style.layer_table import TABLE_LAYERS, LayerTable
from desktop.ui.style.log_slider import LogSlider, format_value
from desktop.ui.style.spin import CompactDoubleSpinBox

ALPHA_TIP = (
    "α, the content weight: how much G must keep the photo's content.\n"
    "  J(G) = α·J_content(C, G) + β·J_style(S, G)\n"
    "  J_content = ½·‖a[l](C) − a[l](G)‖²  at the content layer l\n"
    "Only the ratio α/β matters for the look; raise α to keep more of the photo."
)
BETA_TIP = (
    "β, the style weight: how much G must match the style's textures.\n"
    "  J_style = Σ_l λ_l · J_style^[l]\n"
    "  J_style^[l] = 1/(2·n_H·n_W·n_C)² · Σ_kk' (G_kk'(S) − G_kk'(G))²\n"
    "The normalisation 1/(2·n_H·n_W·n_C)² makes layers of different sizes comparable,\n"
    "so β is usually 10³…10⁵ times α. Raise β for a stronger style."
)
CONTENT_LAYER_TIP = (
    "The layer l whose activations a[l] G must share with the content image C.\n"
    "Deeper layers (relu4_2, the default) keep the layout but let the style repaint\n"
    "details; shallow layers keep the photo almost pixel for pixel."
)
SIZE_TIP = ("The longest side of G in pixels. Time and memory grow with the square of it;\n"
            "the memory needed is checked before the job starts.")
ITER_TIP = "How many optimiser steps to take. G is shown after every one."
OPT_TIP = ("L-BFGS (the paper's choice) converges in a few hundred steps with no learning "
           "rate.\nAdam takes smaller, steadier steps and uses the learning rate below.")
LR_TIP = "Adam's learning rate, in pixel values (0..255) per step. Unused by L-BFGS."
INIT_TIP = ("What G starts from: the content image (fast, keeps the photo), white noise\n"
            "(the paper's choice, more varied) or the first style image.")
TV_TIP = ("Total-variation weight: penalises differences between neighbouring pixels,\n"
          "  TV(G) = Σ_ij (G_i+1,j − G_ij)² + (G_i,j+1 − G_ij)²\n"
          "smoothing high-frequency noise. 0 turns it off; 10…1000 is a light to firm touch.")
SEED_TIP = "The random seed: the same seed and settings give the same picture."
COLOR_TIP = ("Keep the content's original colours: the style is transferred on luminance\n"
             "only, then the photo's colours are put back.")
POOL_TIP = ("How VGG19 downsamples: max pooling (as trained) or average pooling, which the\n"
            "paper found gives smoother gradients and slightly more appealing results.")
MULTI_TIP = ("Paint coarse to fine (on by default): solve at 1/4 and 1/2 of the size first,\n"
             "then refine at full size. The first picture shows within a second or two, and\n"
             "a good full-size picture takes about 3x fewer full-size iterations.\n"
             "Each smaller scale gets a fifteenth of the iterations, full size the rest.")
FLAT_TIP = ("End each scale, and the job at the last one, once J improves by less than 0.2%\n"
            "over 10 iterations: further iterations would not change the picture visibly.")
DEVICE_TIP = "auto uses a CUDA GPU when present, else the CPU."
PRECISION_TIP = ("auto uses bf16 where the hardware computes it natively and it was measured\n"
                 "to keep the result; fp32 is the reference.")


def _combo(items: list[tuple[str, str]], tip: str) -> QComboBox:
    combo = QComboBox()
    for label, data in items:
        combo.addItem(label, data)
    combo.setToolTip(tip)
    return combo


def _select(combo: QComboBox, data: str) -> None:
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)


class WeightsPanel(QWidget):
    """alpha, beta, the content layer and the per-layer lambda table."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        defaults = StyleSettings()
        self.alpha = LogSlider(1e-3, 1e4, defaults.alpha)
        self.alpha.setObjectName("alpha")
        self.alpha.setToolTip(ALPHA_TIP)
        self.beta = LogSlider(1e-1, 1e9, defaults.beta)
        self.beta.setObjectName("beta")
        self.beta.setToolTip(BETA_TIP)
        self.ratio = QLabel()
        self.ratio.setObjectName("ratioLabel")
        self.ratio.setToolTip("α/β: the balance between content and style.")
        self.content_layer = _combo([(n, n) for n in TABLE_LAYERS], CONTENT_LAYER_TIP)
        _select(self.content_layer, defaults.content_layer)
        self.layers = LayerTable()

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(self._label("α content", ALPHA_TIP), self.alpha)
        form.addRow(self._label("β style", BETA_TIP), self.beta)
        form.addRow("", self.ratio)
        form.addRow(self._label("content layer", CONTENT_LAYER_TIP), self.content_layer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        style_label = QLabel("Style layers λ_l")
        style_label.setToolTip(self.layers.table.toolTip())
        layout.addWidget(style_label)
        layout.addWidget(self.layers)

        for signal in (self.alpha.valueChanged, self.beta.valueChanged,
                       self.content_layer.currentIndexChanged, self.layers.changed):
            signal.connect(self._changed)
        self._changed()

    @staticmethod
    def _label(text: str, tip: str) -> QLabel:
        label = QLabel(text)
        label.setToolTip(tip)
        return label

    def _changed(self) -> None:
        self.ratio.setText(f"<small>α/β = {format_value(self.alpha.value() / self.beta.value())}"
                           "</small>")
        self.changed.emit()


class RunPanel(QWidget):
    """Size, iterations, optimiser, init, TV, seed, colours, pooling, device, precision."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        d = StyleSettings()
        self.size = QSpinBox()
        self.size.setRange(MIN_SIZE, MAX_SIZE)
        self.size.setSingleStep(64)
        self.size.setSuffix(" px")
        self.size.setValue(d.size)
        self.size.setToolTip(SIZE_TIP)
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 10000)
        self.iterations.setSingleStep(50)
        self.iterations.setValue(d.iterations)
        self.iterations.setToolTip(ITER_TIP)
        self.optimizer = _combo([("L-BFGS", "lbfgs"), ("Adam", "adam")], OPT_TIP)
        self.lr = CompactDoubleSpinBox()
        self.lr.setRange(0.001, 100.0)
        self.lr.setDecimals(3)
        self.lr.setSingleStep(0.5)
        self.lr.setValue(d.lr)
        self.lr.setToolTip(LR_TIP)
        self.init = _combo([("content", "content"), ("noise", "noise"), ("style", "style")],
                           INIT_TIP)
        self.tv = CompactDoubleSpinBox()
        self.tv.setRange(0.0, 1e6)
        self.tv.setDecimals(4)
        self.tv.setSingleStep(10.0)
        self.tv.setToolTip(TV_TIP)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip(SEED_TIP)
        dice = QToolButton()
        dice.setText("⚄")
        dice.setObjectName("diceButton")
        dice.setToolTip("A new random seed")
        dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31 - 1)))
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        self.pooling = _combo([("max", "max"), ("average", "avg")], POOL_TIP)
        self.preserve_colors = QCheckBox("preserve the content's colours")
        self.preserve_colors.setToolTip(COLOR_TIP)
        self.multiscale = QCheckBox("coarse to fine")
        self.multiscale.setToolTip(MULTI_TIP)
        self.stop_when_flat = QCheckBox("stop when J stops improving")
        self.stop_when_flat.setToolTip(FLAT_TIP)
        self.device = _combo([("auto", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda")],
                             DEVICE_TIP)
        self.precision = _combo([("auto", "auto"), ("fp32", "fp32"), ("bf16", "bf16")],
                                PRECISION_TIP)

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("size", self.size)
        form.addRow("iterations", self.iterations)
        form.addRow("optimizer", self.optimizer)
        form.addRow("learning rate", self.lr)
        form.addRow("start from", self.init)
        form.addRow("TV weight", self.tv)
        form.addRow("seed", seed_row)
        form.addRow("pooling", self.pooling)
        form.addRow("", self.preserve_colors)
        form.addRow("", self.multiscale)
        form.addRow("", self.stop_when_flat)
        form.addRow("device", self.device)
        form.addRow("precision", self.precision)
        for i in range(form.rowCount()):
            label = form.itemAt(i, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(i, QFormLayout.ItemRole.FieldRole)
            if label is not None and label.widget() is not None and field.widget() is not None:
                label.widget().setToolTip(field.widget().toolTip())

        for signal in (self.size.valueChanged, self.iterations.valueChanged,
                       self.optimizer.currentIndexChanged, self.lr.valueChanged,
                       self.init.currentIndexChanged, self.tv.valueChanged,
                       self.seed.valueChanged, self.pooling.currentIndexChanged,
                       self.preserve_colors.toggled, self.multiscale.toggled,
                       self.stop_when_flat.toggled,
                       self.device.currentIndexChanged, self.precision.currentIndexChanged):
            signal.connect(self._changed)
        self._changed()

    def _changed(self) -> None:
        self.lr.setEnabled(self.optimizer.currentData() == "adam")
        self.changed.emit()


class StyleControls(QWidget):
    """Both panels, read and written as one :class:`StyleSettings`."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.weights = WeightsPanel()
        self.run = RunPanel()
        self.weights.changed.connect(self.changed)
        self.run.changed.connect(self.changed)

    def settings(self, style_blend: list[float] | None = None) -> StyleSettings:
        w, r = self.weights, self.run
        return StyleSettings(
            alpha=w.alpha.value(),
            beta=w.beta.value(),
            content_layer=w.content_layer.currentData(),
            style_layers=w.layers.weights(),
            style_blend=style_blend,
            size=r.size.value(),
            iterations=r.iterations.value(),
            optimizer=r.optimizer.currentData(),
            lr=r.lr.value(),
            init=r.init.currentData(),
            tv_weight=r.tv.value(),
            seed=r.seed.value(),
            preserve_colors=r.preserve_colors.isChecked(),
            pooling=r.pooling.currentData(),
            multiscale=r.multiscale.isChecked(),
            stop_when_flat=r.stop_when_flat.isChecked(),
            device=r.device.currentData(),
            precision=r.precision.currentData(),
        )

    def set_settings(self, s: StyleSettings) -> None:
        w, r = self.weights, self.run
        w.alpha.setValue(s.alpha)
        w.beta.setValue(s.beta)
        _select(w.content_layer, s.content_layer)
        w.layers.set_weights(s.style_layers)
        r.size.setValue(s.size)
        r.iterations.setValue(s.iterations)
        _select(r.optimizer, s.optimizer)
        r.lr.setValue(s.lr)
        _select(r.init, s.init)
        r.tv.setValue(s.tv_weight)
        r.seed.setValue(s.seed)
        r.preserve_colors.setChecked(s.preserve_colors)
        _select(r.pooling, s.pooling)
        r.multiscale.setChecked(s.multiscale)
        r.stop_when_flat.setChecked(s.stop_when_flat)
        _select(r.device, s.device)
        _select(r.precision, s.precision)
