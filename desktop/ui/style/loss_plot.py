"""The live loss plot: total, content and style loss per iteration, on a log scale.

Losses are the weighted terms the loop reports (alpha*J_content, beta*J_style, tv*TV and
their sum J). Values of 0 or less cannot sit on a log axis, so they leave a gap.

Repainting the plot (mostly its axes) costs the UI thread far more than showing G, so
new points are drawn at most every :data:`REDRAW_MS` milliseconds; :meth:`flush` draws
at once (at the end of a job).
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QVBoxLayout, QWidget

SERIES = (  # key, label, colour, width
    ("total", "total J", "#202124", 2.2),
    ("content", "α·J_content", "#1a73e8", 1.6),
    ("style", "β·J_style", "#e8710a", 1.6),
    ("tv", "TV", "#9aa0a6", 1.2),
    ("temporal", "γ·J_temporal", "#188038", 1.6),
)
#: Series listed in the legend only once they have a value (TV, and the temporal term of
#: a video).
OPTIONAL = {"tv": "TV", "temporal": "γ·J_temporal"}
REDRAW_MS = 200
PLOT_TIP = ("The loss after every iteration, log scale: total J = α·J_content + β·J_style "
            "(+ TV).\nA falling style curve means G is taking on the style; the content curve "
            "rises as G leaves the photo.\nCoarse to fine (dashed lines: each scale's size): "
            "J is measured on G at the current scale, in the output size's units\n(the "
            "content term is scaled by the ratio of positions, so α and β weigh the same at "
            "every scale). At a scale change J\njumps up for a few iterations: the "
            "upsampled G lacks the finest brush strokes, which the larger scale adds.")


class LossPlot(QWidget):
    """``append(iteration, losses)``; ``point_count(key)`` for tests."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="w", foreground="#5f6368")
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("lossPlot")
        self.plot.setToolTip(PLOT_TIP)
        self.plot.setMenuEnabled(False)
        self.plot.setLogMode(x=False, y=True)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        small = QFont(self.font())
        small.setPointSizeF(max(7.5, small.pointSizeF() - 1.5))
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTickFont(small)
        self.legend = self.plot.addLegend(offset=(-8, 6), labelTextSize="8pt",
                                          brush=pg.mkBrush(255, 255, 255, 200))
        self._markers: list[pg.InfiniteLine] = []
        self._x: list[float] = []
        self._y: dict[str, list[float]] = {key: [] for key, *_ in SERIES}
        self._curves: dict[str, pg.PlotDataItem] = {}
        for key, label, colour, width in SERIES:
            curve = self.plot.plot([], [], name=label, pen=pg.mkPen(colour, width=width),
                                   connect="finite")
            self._curves[key] = curve
        for key in OPTIONAL:
            self._curves[key].setVisible(False)
            self.legend.removeItem(self._curves[key])  # listed once the term shows up
        self._listed: set[str] = set()
        self.set_iterations(100)
        self.plot.setYRange(0, 4, padding=0)  # 1 .. 1e4 until there are losses
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._redraw)
        self.redraws = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_iterations(self, n: int) -> None:
        """Fix the x axis to a job of ``n`` iterations (the curves grow into it)."""
        self.plot.setXRange(0, max(1, n), padding=0.02)

    def mark_scale(self, step: float, label: str) -> None:
        """A dashed vertical line where a coarse-to-fine scale starts, labelled (e.g. 256 px)."""
        line = pg.InfiniteLine(pos=float(step), angle=90, movable=False,
                               pen=pg.mkPen("#9aa0a6", width=1, style=Qt.PenStyle.DashLine),
                               label=label, labelOpts={"position": 0.06, "color": "#5f6368",
                                                       "anchors": [(0, 1), (0, 1)]})
        self.plot.addItem(line)
        self._markers.append(line)

    def scale_marks(self) -> list[tuple[float, str]]:
        """``(step, label)`` of the scale lines shown (for tests)."""
        return [(line.value(), line.label.format) for line in self._markers]

    def clear(self) -> None:
        for line in self._markers:
            self.plot.removeItem(line)
        self._markers.clear()
        self._x.clear()
        for values in self._y.values():
            values.clear()
        self.flush()

    def append(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Add ``(iteration, {"total": .., "content": .., "style": .., "tv": ..})`` rows."""
        if not rows:
            return
        for iteration, losses in rows:
            self._x.append(float(iteration))
            for key in self._y:
                value = float(losses.get(key, math.nan))
                self._y[key].append(value if value > 0 and math.isfinite(value) else math.nan)
        self.plot.enableAutoRange(axis="y")
        if not self._redraw_timer.isActive():
            if len(self._x) == len(rows):  # the first points: show them at once
                self._redraw()
            else:
                self._redraw_timer.start()

    def flush(self) -> None:
        """Draw the points not drawn yet."""
        self._redraw_timer.stop()
        self._redraw()

    def _redraw(self) -> None:
        self.redraws += 1
        x = np.asarray(self._x, dtype=float)
        for key, curve in self._curves.items():
            y = np.asarray(self._y[key], dtype=float)
            if key in OPTIONAL:
                shown = bool(np.isfinite(y).any())
                curve.setVisible(shown)
                if shown and key not in self._listed:
                    self.legend.addItem(curve, OPTIONAL[key])
                    self._listed.add(key)
            if np.isfinite(y).any():
                curve.setData(x, y)
            else:
                curve.setData([], [])

    def point_count(self, key: str = "total") -> int:
        """How many finite points the ``key`` curve shows."""
        return int(np.isfinite(np.asarray(self._y[key], dtype=float)).sum())

    def curve(self, key: str) -> pg.PlotDataItem:
        return self._curves[key]
