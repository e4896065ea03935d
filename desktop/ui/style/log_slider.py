"""A log-scale slider with an exact numeric field, for weights that span decades.

Dragging the slider moves through ``minimum..maximum`` evenly in log10 (e.g. 1e-2..1e9);
the field beside it shows and accepts the exact value (``1e4``, ``2500``, ``0.03``).
A typed value keeps its exact digits; the slider just moves to the nearest position.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QSlider, QWidget

STEPS = 1000


def format_value(value: float) -> str:
    """Short and exact enough: ``10000 -> '1e+04'``, ``0.2 -> '0.2'``, ``2500 -> '2500'``."""
    text = f"{value:.4g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        return f"{mantissa}e{int(exp)}"
    return text


class LogSlider(QWidget):
    """``value()`` / ``setValue()`` in real units; ``valueChanged(float)`` on every change."""

    valueChanged = Signal(float)

    def __init__(self, minimum: float, maximum: float, value: float,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if not 0 < minimum < maximum:
            raise ValueError("a log slider needs 0 < minimum < maximum")
        self._lo, self._hi = math.log10(minimum), math.log10(maximum)
        self._min, self._max = minimum, maximum
        self._value = value
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.field = QLineEdit()
        self.field.setObjectName("logField")
        self.field.setMaximumWidth(78)
        self.field.setAlignment(Qt.AlignmentFlag.AlignRight)
        validator = QDoubleValidator(0.0, 1e15, 12, self.field)  # clamped in setValue
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.field.setValidator(validator)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.field)
        self.slider.valueChanged.connect(self._slider_moved)
        self.field.editingFinished.connect(self._field_edited)
        self.setValue(value)

    def value(self) -> float:
        return self._value

    def setValue(self, value: float) -> None:
        value = min(max(float(value), self._min), self._max)
        changed = value != self._value
        self._value = value
        self._show(value)
        if changed:
            self.valueChanged.emit(value)

    def setToolTip(self, text: str) -> None:
        super().setToolTip(text)
        self.slider.setToolTip(text)
        self.field.setToolTip(text)

    def _position(self, value: float) -> int:
        return round((math.log10(value) - self._lo) / (self._hi - self._lo) * STEPS)

    def _show(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._position(value))
        self.slider.blockSignals(False)
        self.field.setText(format_value(value))

    def _slider_moved(self, position: int) -> None:
        exact = 10 ** (self._lo + (self._hi - self._lo) * position / STEPS)
        # Snap to 2 significant digits so dragging gives round numbers (1e4, 2.5e3).
        value = float(f"{exact:.2g}")
        self._value = min(max(value, self._min), self._max)
        self.field.setText(format_value(self._value))
        self.valueChanged.emit(self._value)

    def _field_edited(self) -> None:
        try:
            value = float(self.field.text())
        except ValueError:
            self._show(self._value)
            return
        if not math.isfinite(value) or value <= 0:
            self._show(self._value)
            return
        self.setValue(value)
