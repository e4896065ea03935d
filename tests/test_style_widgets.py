"""The Style tab's small widgets: log slider, lambda table, canvas compare and zoom."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage

from desktop.style.settings import DEFAULT_STYLE_LAYERS, StyleSettings
from desktop.ui.style.canvas import ImageCanvas
from desktop.ui.style.controls import StyleControls
from desktop.ui.style.layer_table import TABLE_LAYERS, LayerTable
from desktop.ui.style.log_slider import LogSlider, format_value


def test_log_slider_spans_decades_and_keeps_typed_values(qtbot):
    slider = LogSlider(1e-2, 1e6, 1.0)
    qtbot.addWidget(slider)
    assert slider.slider.value() == round(2 / 8 * 1000)  # 1 is 2 of 8 decades in
    slider.slider.setValue(slider.slider.maximum())
    assert slider.value() == 1e6 and slider.field.text() == "1e6"
    slider.slider.setValue(500)  # halfway in log: 10^2
    assert slider.value() == pytest.approx(100.0)
    slider.field.setText("2345.5")
    slider.field.editingFinished.emit()
    assert slider.value() == 2345.5  # exact, not snapped to a slider step
    slider.field.setText("1e9")
    slider.field.editingFinished.emit()
    assert slider.value() == 1e6  # clamped to the range
    values = []
    slider.valueChanged.connect(values.append)
    slider.setValue(0.5)
    assert values == [0.5]
    assert format_value(1e4) == "1e4" and format_value(0.2) == "0.2"


def test_layer_table_lists_every_conv_and_relu_layer(qtbot):
    table = LayerTable()
    qtbot.addWidget(table)
    assert len(TABLE_LAYERS) == 32
    assert TABLE_LAYERS[:4] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2")
    assert TABLE_LAYERS[-1] == "relu5_4" and not any(n.startswith("pool") for n in TABLE_LAYERS)
    assert table.weights() == DEFAULT_STYLE_LAYERS
    table.set_checked("relu1_1", False)
    assert "relu1_1" not in table.weights()
    assert not table.spin("relu1_1").isEnabled()
    table.set_checked("conv2_2", True)
    table.spin("conv2_2").setValue(0.75)
    assert table.weights()["conv2_2"] == 0.75
    table.set_checked("relu1_1", True)
    assert table.weights()["relu1_1"] == 0.2  # its weight was kept while unticked
    assert table.sum_label.text().startswith("6 layers")


def test_controls_round_trip_every_setting(qtbot):
    controls = StyleControls()
    qtbot.addWidget(controls.weights)
    qtbot.addWidget(controls.run)
    wanted = StyleSettings(alpha=0.5, beta=2e6, content_layer="conv5_2",
                           style_layers={"relu3_3": 1.5}, size=320, iterations=77,
                           optimizer="adam", lr=2.5, init="noise", tv_weight=0.001, seed=99,
                           preserve_colors=True, pooling="avg", multiscale=True,
                           device="cpu", precision="bf16")
    controls.set_settings(wanted)
    assert controls.settings() == wanted
    assert controls.run.lr.isEnabled()
    controls.set_settings(StyleSettings())
    assert controls.settings() == StyleSettings()
    assert not controls.run.lr.isEnabled()  # L-BFGS has no learning rate


def solid(color: str, w: int = 40, h: int = 20) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB888)
    image.fill(QColor(color))
    return image


def test_before_after_split_shows_C_left_and_G_right(qtbot):
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 200)
    canvas.show()
    canvas.set_image(solid("blue"))
    canvas.set_before(solid("red"))
    canvas.set_compare(True)
    canvas.set_split(0.25)
    shot = canvas.grab().toImage()
    rect = canvas.image_rect()
    y = int(rect.center().y())
    left = QColor(shot.pixel(int(rect.left() + rect.width() * 0.1), y))
    right = QColor(shot.pixel(int(rect.left() + rect.width() * 0.6), y))
    assert left.red() > 200 and left.blue() < 50
    assert right.blue() > 200 and right.red() < 50
    canvas.set_compare(False)
    shot = canvas.grab().toImage()
    assert QColor(shot.pixel(int(rect.left() + rect.width() * 0.1), y)).blue() > 200


def test_zoom_keeps_the_point_under_the_cursor(qtbot):
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 200)
    canvas.show()
    canvas.set_image(solid("green", 100, 50))
    assert canvas.zoom() is None
    fit = canvas.image_rect()
    cursor = QPointF(fit.left() + fit.width() * 0.75, fit.top() + fit.height() * 0.5)
    canvas.zoom_by(2.0, cursor)
    assert canvas.zoom() == pytest.approx(2 * fit.width() / 100)
    rect = canvas.image_rect()
    assert (cursor.x() - rect.left()) / rect.width() == pytest.approx(0.75)
    canvas.fit()
    assert canvas.zoom() is None and canvas.image_rect() == fit
