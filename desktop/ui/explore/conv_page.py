"""The "Conv shapes" page: the course's 1D, 2D and 3D convolutions, worked out and checked.

Set the input size, channels, filter size, stride, padding (per dimension) and the
number of filters; the page shows floor((n + 2p - f) / s) + 1 for each dimension, the
output shape, the parameter count, and the shape torch's Conv1d / Conv2d / Conv3d gives
for the same layer (run off the UI thread), with a drawing of one filter position
(move it with the sliders).
"""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.explore.conv_shapes import (
    DIM_NAMES,
    EXAMPLES,
    ConvShape,
    ConvSpec,
    conv_shape,
    torch_output_shape,
)
from desktop.ui.explore.conv_drawing import ConvDrawing
from desktop.ui.explore.widgets import compact, fact, group, scroll_area, set_role
from desktop.ui.qthreading import Worker
from desktop.ui.settings import read


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    spin.setMaximumWidth(80)
    return spin


class ConvShapePage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dims = 2
        self.shape: ConvShape | None = None
        self._check: Worker | None = None
        self._checked_spec: ConvSpec | None = None

        self.dim_buttons = QButtonGroup(self)
        dims_row = QHBoxLayout()
        for dims, text in ((1, "1D signal"), (2, "2D image"), (3, "3D volume / video")):
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setProperty("segment", True)
            self.dim_buttons.addButton(button, dims)
            dims_row.addWidget(button)
        dims_row.addStretch(1)
        self.examples = QComboBox()
        self.examples.addItem("Course examples…", "")
        for name in EXAMPLES:
            self.examples.addItem(name, name)
        compact(self.examples, 24)

        grid = QGridLayout()
        for col, head in enumerate(("", "input n", "filter f", "stride s", "padding p")):
            grid.addWidget(QLabel(f"<b>{head}</b>"), 0, col)
        self.rows: list[tuple[QLabel, QSpinBox, QSpinBox, QSpinBox, QSpinBox]] = []
        for d in range(3):
            name = QLabel()
            size = _spin(1, 4096, 14, "Input samples along this dimension")
            filt = _spin(1, 255, 5, "Filter size along this dimension")
            stride = _spin(1, 64, 1, "Step between filter positions")
            pad = _spin(0, 255, 0, "Zeros added on each side")
            for col, widget in enumerate((name, size, filt, stride, pad)):
                grid.addWidget(widget, d + 1, col)
            self.rows.append((name, size, filt, stride, pad))
        grid.setColumnStretch(5, 1)
        self.channels = _spin(1, 4096, 1, "Input channels (3 for RGB)")
        self.filters = _spin(1, 4096, 16, "Number of filters = output channels")
        counts = QHBoxLayout()
        counts.addWidget(QLabel("channels"))
        counts.addWidget(self.channels)
        counts.addSpacing(16)
        counts.addWidget(QLabel("filters"))
        counts.addWidget(self.filters)
        counts.addStretch(1)

        self.formula = fact("")
        self.formula.setTextFormat(Qt.TextFormat.PlainText)
        self.output = fact("", "big")
        self.params = fact("")
        self.torch_line = fact("")
        self.sliders: list[tuple[QLabel, QSlider]] = []
        sliders = QVBoxLayout()
        for _ in range(3):
            label, slider = QLabel(), QSlider(Qt.Orientation.Horizontal)
            row = QHBoxLayout()
            row.addWidget(label)
            row.addWidget(slider, 1)
            sliders.addLayout(row)
            slider.valueChanged.connect(lambda _: self._position_changed())
            self.sliders.append((label, slider))
        self.drawing = ConvDrawing()

        body = QWidget()
        left = QVBoxLayout(body)
        left.setContentsMargins(8, 8, 10, 8)
        left.addLayout(dims_row)
        left.addWidget(self.examples)
        left.addWidget(group("Layer", self._column(grid, counts)))
        left.addWidget(group("Output", self._column(self.output, self.formula, self.params,
                                                    self.torch_line)))
        left.addStretch(1)
        panel = scroll_area(body)
        panel.setMinimumWidth(260)
        right_widget = QWidget()
        right = QVBoxLayout(right_widget)
        right.addWidget(self.drawing, 1)
        right.addWidget(QLabel("Filter position (output index):"))
        right.addLayout(sliders)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(panel)
        splitter.addWidget(right_widget)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([520, 660])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self._recompute_timer = QTimer(self)
        self._recompute_timer.setSingleShot(True)
        self._recompute_timer.setInterval(60)
        self._recompute_timer.timeout.connect(self.recompute)
        self.dim_buttons.idClicked.connect(self.set_dims)
        self.examples.currentIndexChanged.connect(lambda _: self._example_chosen())
        for row in self.rows:
            for spin in row[1:]:
                spin.valueChanged.connect(lambda _: self._recompute_timer.start())
        for spin in (self.channels, self.filters):
            spin.valueChanged.connect(lambda _: self._recompute_timer.start())
        self.set_spec(EXAMPLES["2D: RGB image 6 x 6 x 3, 2 filters of 3 x 3"])

    @staticmethod
    def _column(*items) -> QWidget:
        """Widgets and layouts stacked in one widget."""
        widget = QWidget()
        column = QVBoxLayout(widget)
        column.setContentsMargins(0, 0, 0, 0)
        for item in items:
            if isinstance(item, QWidget):
                column.addWidget(item)
            else:
                column.addLayout(item)
        return widget

    # -- the spec ----------------------------------------------------------------------
    def set_dims(self, dims: int) -> None:
        self.dims = dims
        button = self.dim_buttons.button(dims)
        if button is not None and not button.isChecked():
            button.setChecked(True)
        for d, (name, *spins) in enumerate(self.rows):
            visible = d < dims
            name.setText(DIM_NAMES[dims][d] if visible else "")
            for widget in (name, *spins):
                widget.setVisible(visible)
        self.recompute()

    def set_spec(self, spec: ConvSpec) -> None:
        values = [(self.channels, spec.channels), (self.filters, spec.filters)]
        for d, (_, size, filt, stride, pad) in enumerate(self.rows[: spec.dims]):
            values += [(size, spec.size[d]), (filt, spec.filter[d]), (stride, spec.stride[d]),
                       (pad, spec.padding[d])]
        for spin, value in values:  # quietly: one recompute at the end
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.set_dims(spec.dims)

    def spec(self) -> ConvSpec:
        rows = self.rows[: self.dims]
        return ConvSpec(self.dims, tuple(r[1].value() for r in rows), self.channels.value(),
                        tuple(r[2].value() for r in rows), tuple(r[3].value() for r in rows),
                        tuple(r[4].value() for r in rows), self.filters.value())

    def _example_chosen(self) -> None:
        name = self.examples.currentData()
        if name:
            self.set_spec(EXAMPLES[name])

    # -- results -----------------------------------------------------------------------
    def recompute(self) -> None:
        spec = self.spec()
        try:
            shape = conv_shape(spec)
        except FacestyleError as exc:
            self.shape = None
            self.output.setText("No output")
            self.formula.setText(exc.message)
            self.params.setText(exc.hint or "")
            self.torch_line.setText("")
            self.drawing.set_shape(None)
            for label, slider in self.sliders:
                label.setVisible(False)
                slider.setVisible(False)
            return
        self.shape = shape
        self.formula.setText("\n".join(shape.formula_lines()))
        out = " x ".join(str(n) for n in shape.output)
        self.output.setText(f"{out} x {spec.filters}   (input "
                            f"{' x '.join(str(n) for n in spec.size)} x {spec.channels})")
        self.params.setText(shape.parameter_line() + f"; {shape.macs:,} multiply-adds")
        for d, (label, slider) in enumerate(self.sliders):
            visible = d < spec.dims
            label.setVisible(visible)
            slider.setVisible(visible)
            if visible:
                slider.blockSignals(True)
                slider.setRange(0, shape.output[d] - 1)
                slider.blockSignals(False)
                label.setText(DIM_NAMES[spec.dims][d])
        self._position_changed()
        self._check_with_torch(spec)

    def _position_changed(self) -> None:
        if self.shape is None:
            return
        position = tuple(s.value() for _, s in self.sliders[: self.shape.spec.dims])
        self.drawing.set_shape(self.shape, position)

    def _check_with_torch(self, spec: ConvSpec) -> None:
        self.torch_line.setText(f"torch Conv{spec.dims}d: checking…")
        set_role(self.torch_line, "fact")
        worker = Worker(torch_output_shape, spec)
        worker.result.connect(lambda result, s=spec: self._torch_result(s, result))
        worker.error.connect(lambda exc, s=spec: self._torch_failed(s, exc))
        self._check = worker
        worker.start()

    def _torch_result(self, spec: ConvSpec, result: tuple[tuple[int, ...], bool]) -> None:
        if spec != self.spec() or self.shape is None:
            return  # a newer layer is being checked
        got, ran = result
        agree = got == self.shape.output_shape
        how = "ran it" if ran else "shape inference on the meta device"
        mark = "✓ same" if agree else "✗ DIFFERENT"
        self.torch_line.setText(f"torch Conv{spec.dims}d ({how}): output {tuple(got)} "
                                f"(channels first) {mark}")
        set_role(self.torch_line, "ok" if agree else "bad")
        self._checked_spec = spec

    def _torch_failed(self, spec: ConvSpec, exc: BaseException) -> None:
        if spec == self.spec():
            self.torch_line.setText(str(exc))
            set_role(self.torch_line, "bad")

    def checked(self) -> bool:
        """Whether torch's answer for the current layer is shown."""
        return self._checked_spec == self.spec()

    # -- persistence -------------------------------------------------------------------
    def save_state(self, s: QSettings) -> None:
        spec = self.spec()
        s.setValue("explore/conv", json.dumps({
            "dims": spec.dims, "size": spec.size, "channels": spec.channels,
            "filter": spec.filter, "stride": spec.stride, "padding": spec.padding,
            "filters": spec.filters}))

    def restore_state(self, s: QSettings) -> None:
        try:
            saved = json.loads(read(s, "explore/conv", "{}", str))
            if saved:
                self.set_spec(ConvSpec.make(saved["dims"], tuple(saved["size"]),
                                            saved["channels"], tuple(saved["filter"]),
                                            tuple(saved["stride"]), tuple(saved["padding"]),
                                            saved["filters"]))
        except (ValueError, KeyError, TypeError, FacestyleError):
            pass
