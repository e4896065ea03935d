"""A drawing of one filter position: the (padded) input, the filter's window on it, and
the output sample it makes.

* 1D: the signal as a row of samples (padding hatched), the window over f of them, and
  the output row below with the sample it makes; lines join the two.
* 2D: the input grid (padding hatched) with the window, the output grid beside it.
* 3D: the input volume and the output volume in an oblique projection, the window and
  the output voxel drawn as boxes inside them.

Grids are drawn cell by cell up to :data:`MAX_CELLS` per side, as outlines beyond.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.explore.conv_shapes import ConvShape, window

MAX_CELLS = 40
INPUT = QColor("#e8f0fe")
PAD = QColor("#f1f3f4")
GRID = QColor("#9aa0a6")
WINDOW = QColor(26, 115, 232, 110)
WINDOW_EDGE = QColor("#1a73e8")
OUTPUT = QColor("#fef7e0")
HIT = QColor("#f9ab00")
TEXT = QColor("#3c4043")


class ConvDrawing(QWidget):
    """``set_shape(shape, position)``; draws nothing without a shape."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.shape: ConvShape | None = None
        self.position: tuple[int, ...] = ()

    def sizeHint(self) -> QSize:
        return QSize(640, 360)

    def set_shape(self, shape: ConvShape | None, position: tuple[int, ...] = ()) -> None:
        self.shape = shape
        if shape is not None:
            position = tuple(min(max(p, 0), o - 1) for p, o in zip(
                position or (0,) * len(shape.output), shape.output, strict=True))
        self.position = position
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        if self.shape is None:
            painter.setPen(TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "This convolution has no output.")
            return
        draw = {1: self._draw_1d, 2: self._draw_2d, 3: self._draw_3d}[self.shape.spec.dims]
        draw(painter)
        painter.end()

    # -- shared --------------------------------------------------------------------------
    def _label(self, painter: QPainter, x: float, y: float, text: str) -> None:
        painter.setPen(TEXT)
        painter.drawText(QPointF(x, y), text)

    @staticmethod
    def _cells(painter: QPainter, x: float, y: float, cell: float, rows: int, cols: int,
               pad_r: int, pad_c: int, fill: QColor) -> None:
        """A rows x cols grid at (x, y); the outer pad_r rows / pad_c columns hatched."""
        painter.setPen(QPen(GRID, 1))
        inner = QRectF(x + pad_c * cell, y + pad_r * cell, (cols - 2 * pad_c) * cell,
                       (rows - 2 * pad_r) * cell)
        outer = QRectF(x, y, cols * cell, rows * cell)
        painter.fillRect(outer, QBrush(PAD, Qt.BrushStyle.SolidPattern))
        painter.fillRect(outer, QBrush(GRID, Qt.BrushStyle.BDiagPattern))
        painter.fillRect(inner, fill)
        if max(rows, cols) <= MAX_CELLS:
            for r in range(rows + 1):
                painter.drawLine(QPointF(x, y + r * cell), QPointF(x + cols * cell, y + r * cell))
            for c in range(cols + 1):
                painter.drawLine(QPointF(x + c * cell, y), QPointF(x + c * cell, y + rows * cell))
        else:
            painter.drawRect(outer)
            painter.drawRect(inner)

    @staticmethod
    def _window_and_output(painter: QPainter, win: QRectF, hit: QRectF,
                           joins: tuple[tuple[QPointF, QPointF], ...]) -> None:
        """The filter's window, the output sample it makes, and dashed lines joining them."""
        painter.setPen(QPen(WINDOW_EDGE, 2))
        painter.setBrush(WINDOW)
        painter.drawRect(win)
        painter.setPen(QPen(HIT.darker(140), 2))
        painter.setBrush(HIT)
        painter.drawRect(hit)
        painter.setPen(QPen(WINDOW_EDGE, 1, Qt.PenStyle.DashLine))
        for a, b in joins:
            painter.drawLine(a, b)

    # -- 1D ------------------------------------------------------------------------------
    def _draw_1d(self, painter: QPainter) -> None:
        spec, shape = self.shape.spec, self.shape
        n, p, f = spec.size[0], spec.padding[0], spec.filter[0]
        total, out = n + 2 * p, shape.output[0]
        margin = 20.0
        cell = min(36.0, (self.width() - 2 * margin) / max(total, out))
        x0 = (self.width() - total * cell) / 2
        y_in = self.height() * 0.25
        self._cells(painter, x0, y_in, cell, 1, total, 0, p, INPUT)
        (first, last), = window(spec, self.position)
        win = QRectF(x0 + (first + p) * cell, y_in, (last - first + 1) * cell, cell)
        xo = (self.width() - out * cell) / 2
        y_out = self.height() * 0.65
        self._cells(painter, xo, y_out, cell, 1, out, 0, 0, OUTPUT)
        hit = QRectF(xo + self.position[0] * cell, y_out, cell, cell)
        self._window_and_output(painter, win, hit, ((win.bottomLeft(), hit.topLeft()),
                                                   (win.bottomRight(), hit.topRight())))
        self._label(painter, x0, y_in - 8, f"input: {n} samples x {spec.channels} channel(s)"
                    + (f", padding {p} each side" if p else ""))
        self._label(painter, xo, y_out + cell + 18,
                    f"output: {out} samples x {spec.filters} filter(s); filter {f}, "
                    f"stride {spec.stride[0]}; position {self.position[0]}")

    # -- 2D ------------------------------------------------------------------------------
    def _draw_2d(self, painter: QPainter) -> None:
        spec, shape = self.shape.spec, self.shape
        (h, w), (ph, pw) = spec.size, spec.padding
        rows, cols = h + 2 * ph, w + 2 * pw
        oh, ow = shape.output
        margin, gap = 20.0, 50.0
        avail_w = (self.width() - 2 * margin - gap) / (cols + ow)
        avail_h = (self.height() - 60) / max(rows, oh)
        cell = max(1.0, min(30.0, avail_w, avail_h))
        x0 = (self.width() - (cols + ow) * cell - gap) / 2
        y0 = 34.0
        self._cells(painter, x0, y0, cell, rows, cols, ph, pw, INPUT)
        (r0, r1), (c0, c1) = window(spec, self.position)
        win = QRectF(x0 + (c0 + pw) * cell, y0 + (r0 + ph) * cell, (c1 - c0 + 1) * cell,
                     (r1 - r0 + 1) * cell)
        xo = x0 + cols * cell + gap
        yo = y0 + (rows - oh) * cell / 2
        self._cells(painter, xo, yo, cell, oh, ow, 0, 0, OUTPUT)
        hit = QRectF(xo + self.position[1] * cell, yo + self.position[0] * cell, cell, cell)
        self._window_and_output(painter, win, hit, ((win.topRight(), hit.topLeft()),
                                                   (win.bottomRight(), hit.bottomLeft())))
        self._label(painter, x0, y0 - 10, f"input {h} x {w} x {spec.channels}"
                    + (f" (padding {ph}, {pw})" if ph or pw else ""))
        self._label(painter, xo, yo - 10, f"output {oh} x {ow} x {spec.filters}")
        self._label(painter, x0, y0 + rows * cell + 18,
                    f"filter {spec.filter[0]} x {spec.filter[1]} x {spec.channels}, stride "
                    f"{spec.stride[0]}, {spec.stride[1]}; output position {self.position}")

    # -- 3D ------------------------------------------------------------------------------
    def _draw_3d(self, painter: QPainter) -> None:
        spec, shape = self.shape.spec, self.shape
        (d, h, w), (pd, ph, pw) = spec.size, spec.padding
        od, oh, ow = shape.output
        dims_in = (d + 2 * pd, h + 2 * ph, w + 2 * pw)
        gap = 60.0
        depth_k = 0.5  # oblique projection: depth goes up-right at half scale
        span_x = dims_in[2] + dims_in[0] * depth_k + ow + od * depth_k
        span_y = max(dims_in[1] + dims_in[0] * depth_k, oh + od * depth_k)
        unit = max(0.5, min(24.0, (self.width() - 40 - gap) / span_x,
                            (self.height() - 70) / span_y))
        x0 = (self.width() - span_x * unit - gap) / 2
        base_y = 40 + span_y * unit

        def project(x: float, y: float, z: float, ox: float) -> QPointF:
            return QPointF(ox + (x + z * depth_k) * unit,
                           base_y - (dims_in[1] - y) * unit - z * depth_k * unit)

        def box(ox: float, lo: tuple[float, float, float], hi: tuple[float, float, float],
                fill: QColor, edge: QColor, width: float) -> None:
            (z0, y0, x_0), (z1, y1, x1) = lo, hi
            front = [project(x, y, z0, ox) for x, y in ((x_0, y0), (x1, y0), (x1, y1), (x_0, y1))]
            top = [project(x_0, y0, z0, ox), project(x1, y0, z0, ox), project(x1, y0, z1, ox),
                   project(x_0, y0, z1, ox)]
            side = [project(x1, y0, z0, ox), project(x1, y0, z1, ox), project(x1, y1, z1, ox),
                    project(x1, y1, z0, ox)]
            painter.setPen(QPen(edge, width))
            for face, shade in ((side, 125), (top, 110), (front, 100)):
                painter.setBrush(fill.darker(shade))
                painter.drawPolygon(QPolygonF(face))

        box(x0, (0, 0, 0), dims_in, PAD, GRID, 1)
        box(x0, (pd, ph, pw), (pd + d, ph + h, pw + w), INPUT, GRID, 1)
        win = window(spec, self.position)
        lo = tuple(a + p for (a, _), p in zip(win, (pd, ph, pw), strict=True))
        hi = tuple(b + 1 + p for (_, b), p in zip(win, (pd, ph, pw), strict=True))
        box(x0, lo, hi, WINDOW, WINDOW_EDGE, 2)
        xo = x0 + (dims_in[2] + dims_in[0] * depth_k) * unit + gap
        box(xo, (0, dims_in[1] - oh, 0), (od, dims_in[1], ow), OUTPUT, GRID, 1)
        z, y, x = self.position
        box(xo, (z, dims_in[1] - oh + y, x), (z + 1, dims_in[1] - oh + y + 1, x + 1), HIT,
            HIT.darker(140), 2)
        self._label(painter, x0, 20, f"input {d} x {h} x {w} x {spec.channels} "
                    f"(depth x height x width x channels)")
        self._label(painter, xo, 36 + (span_y - oh - od * depth_k) * unit,
                    f"output {od} x {oh} x {ow} x {spec.filters}")
        self._label(painter, x0, self.height() - 10,
                    f"filter {' x '.join(map(str, spec.filter))} x {spec.channels}, stride "
                    f"{', '.join(map(str, spec.stride))}; output position {self.position}")
