"""The Model page's plots (pyqtgraph): the live training curves and ROC curves.

:class:`TrainingCurves` shows, while a fine-tune runs, the triplet loss of every step
(thin) and its mean per epoch (dots), and per epoch the held-out accuracy and the share
of active triplets (L > 0). New points are drawn at most every 0.4 s however fast the
steps come, and only the curves that changed; the axes stay fixed while the points fit
(the loss axis grows in round steps), because pyqtgraph redraws an axis in Python
whenever its range moves, and that competes with training for the interpreter.

:class:`RocPlot` draws ROC curves (true accepts against false accepts) with each rule's
operating point, in the colours of :func:`desktop.face.evaluation.draw_roc`, the PNG
export.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QVBoxLayout, QWidget

from desktop.face.evaluation import SERIES_COLORS, PairMetrics
from desktop.face.training import EpochReport, StepReport

FOREGROUND = "#5f6368"
LOSS_STEP = (26, 115, 232, 90)
LOSS_EPOCH = "#1a57b8"
HELDOUT = "#1e8e3e"
ACTIVE = "#e8710a"
REDRAW_MS = 400


def _plot(title: str, left: str, bottom: str, tip: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setToolTip(tip)
    plot.setTitle(title, color="#202124", size="10pt")
    small = QFont(plot.font())
    small.setPointSizeF(max(7.5, small.pointSizeF() - 1.5))
    for axis, label in (("left", left), ("bottom", bottom)):
        ax = plot.getAxis(axis)
        ax.setPen(pg.mkPen(FOREGROUND))
        ax.setTextPen(pg.mkPen(FOREGROUND))
        ax.setTickFont(small)
        ax.setLabel(label, color=FOREGROUND)
        ax.enableAutoSIPrefix(False)
        # Axes repaint their ticks and labels from Python on every update of the plot; a
        # pixmap cache redraws them only when their range or size changes.
        ax.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.getPlotItem().titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.setMinimumHeight(150)
    return plot


def _finite(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


class TrainingCurves(QWidget):
    """Loss per step and per epoch (left); held-out accuracy and active triplets per epoch
    (right). ``reset(epochs)``, then ``add(report)`` for every step / epoch report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot(
            "Triplet loss: <span style='color:#6ea2ec'>— each step</span> "
            f"<span style='color:{LOSS_EPOCH}'>━ mean of each epoch</span>", "loss", "epoch",
            "The triplet loss L = max(d(A,P) − d(A,N) + α, 0), averaged over a batch: thin "
            "line every step, dots the mean of each epoch. It falls as the encoder learns "
            "to put photos of one person closer together than photos of two people.")
        self.loss_plot.setObjectName("modelLossPlot")
        self.epoch_plot = _plot(
            f"Each epoch: <span style='color:{HELDOUT}'>● held-out accuracy</span> "
            f"<span style='color:{ACTIVE}'>▼ active triplets</span>", "%", "epoch",
            "Held-out accuracy: same/different decisions on people set aside (never trained "
            "on), at the threshold fitted on the training people. Active triplets: the "
            "share of triplets still breaking the margin; it falls as training succeeds.")
        self.epoch_plot.setObjectName("modelEpochPlot")
        self.epoch_plot.setYRange(0, 100, padding=0.02)
        self.step_curve = self.loss_plot.plot([], [], name="each step",
                                              pen=pg.mkPen(LOSS_STEP, width=1.2))
        # no point symbols on this plot: it repaints with every few steps, and pyqtgraph
        # paints symbols in Python (the per-epoch plot, repainted once an epoch, has them)
        self.epoch_curve = self.loss_plot.plot(
            [], [], name="epoch mean", pen=pg.mkPen(LOSS_EPOCH, width=2.5))
        self.heldout_curve = self.epoch_plot.plot(
            [], [], name="held-out accuracy", pen=pg.mkPen(HELDOUT, width=2), symbol="o",
            symbolSize=7, symbolBrush=HELDOUT, symbolPen=None)
        self.active_curve = self.epoch_plot.plot(
            [], [], name="active triplets", pen=pg.mkPen(ACTIVE, width=2), symbol="t",
            symbolSize=8, symbolBrush=ACTIVE, symbolPen=None)
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(HELDOUT, width=1,
                                                                 style=Qt.PenStyle.DashLine),
                                         label="kept", labelOpts={"color": HELDOUT,
                                                                  "position": 0.96})
        self.best_line.setVisible(False)
        self.epoch_plot.addItem(self.best_line)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.epoch_plot, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)
        self.reset(10)

    def sizeHint(self) -> QSize:
        return QSize(560, 250)

    def reset(self, epochs: int) -> None:
        self.epochs = max(1, int(epochs))
        self.step_x: list[float] = []
        self.step_loss: list[float] = []
        self.epoch_x: list[float] = []
        self.epoch_loss: list[float] = []
        self.heldout: list[float] = []
        self.active: list[float] = []
        self.best_epoch: int | None = None
        self._drawn = (-1, -1)
        self._loss_top = 0.0
        if getattr(self, "_x_epochs", None) != self.epochs:  # axes repaint only on change
            for plot in (self.loss_plot, self.epoch_plot):
                plot.setXRange(0, self.epochs, padding=0.02)
            self._x_epochs = self.epochs
        self.redraw()

    def add(self, report: StepReport | EpochReport) -> None:
        if isinstance(report, StepReport):
            self.step_x.append(report.epoch - 1 + report.step / max(1, report.steps_per_epoch))
            self.step_loss.append(report.loss)
        elif isinstance(report, EpochReport):
            self.epoch_x.append(float(report.epoch))
            self.epoch_loss.append(report.loss)
            self.heldout.append(100.0 * report.heldout_accuracy)
            self.active.append(100.0 * report.active_fraction)
            self.best_epoch = report.best_epoch
        if not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        steps = _finite(self.step_x, self.step_loss)
        if len(steps[0]) != self._drawn[0]:
            self.step_curve.setData(*steps)
            self._fit_loss_axis(steps[1])
        if len(self.epoch_x) != self._drawn[1]:
            self.epoch_curve.setData(*_finite(self.epoch_x, self.epoch_loss))
            self.heldout_curve.setData(*_finite(self.epoch_x, self.heldout))
            self.active_curve.setData(*_finite(self.epoch_x, self.active))
            if self.best_epoch is not None and len(self.epoch_x) > 1:
                self.best_line.setPos(self.best_epoch)
                self.best_line.setVisible(True)
            else:
                self.best_line.setVisible(False)
        self._drawn = (len(steps[0]), len(self.epoch_x))

    def _fit_loss_axis(self, losses: np.ndarray) -> None:
        """Grow the loss axis in round steps (0 .. m x 10^k, m one of 1, 1.2, 1.5, 2, 2.5, 3,
        4, 5, 6, 8) to hold every loss (a new run starts from its first losses)."""
        if not len(losses):
            return
        top = float(losses.max())
        if self._loss_top > 0 and top <= self._loss_top:
            return
        exponent = math.floor(math.log10(top)) if top > 0 else 0
        for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
            if m * 10 ** exponent >= top:
                break
        self._loss_top = m * 10 ** exponent
        self.loss_plot.setYRange(0, self._loss_top, padding=0.02)

    def finish(self) -> None:
        """Draw what is pending now (the run ended)."""
        self._timer.stop()
        self.redraw()

    # -- for tests ---------------------------------------------------------------------------
    def drawn_points(self) -> dict[str, int]:
        """How many points each curve shows now."""
        def n(curve: pg.PlotDataItem) -> int:
            x, _ = curve.getData()
            return 0 if x is None else len(x)

        return {"step_loss": n(self.step_curve), "epoch_loss": n(self.epoch_curve),
                "heldout": n(self.heldout_curve), "active": n(self.active_curve)}


def series_color(index: int) -> tuple[int, int, int]:
    return SERIES_COLORS[index % len(SERIES_COLORS)]


class RocPlot(QWidget):
    """ROC curves: true accepts (TAR) against false accepts (FAR), with operating points.

    ``set_series([(label, metrics), ...])``; metrics without an ROC are skipped.
    """

    def __init__(self, title: str = "ROC curve", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot(
            title, "true matches accepted (TAR)", "strangers accepted (FAR)",
            "Each curve shows, for every possible setting, how many true matches are "
            "accepted (up) against how many strangers are let through (right). Closer to "
            "the top-left corner is better; the diagonal is guessing. The dot is the "
            "setting in use.")
        self.plot.setObjectName("modelRocPlot")
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setAspectLocked(False)
        self.plot.setMinimumSize(240, 200)
        chance = self.plot.plot([0, 1], [0, 1], pen=pg.mkPen("#bdc1c6", width=1,
                                                             style=Qt.PenStyle.DashLine))
        chance.setZValue(-5)
        self.legend = self.plot.addLegend(offset=(-6, -6), labelTextSize="8pt",
                                          brush=pg.mkBrush(255, 255, 255, 220))
        self.legend.setLabelTextColor("#202124")
        self._items: list[pg.GraphicsObject] = []
        self.series: list[tuple[str, PairMetrics]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def sizeHint(self) -> QSize:
        return QSize(340, 260)

    def set_series(self, series: Sequence[tuple[str, PairMetrics | None]]) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items.clear()
        self.legend.clear()
        self.series = [(label, m) for label, m in series
                       if m is not None and m.roc is not None
                       and not np.isnan(m.roc.fpr).any() and not np.isnan(m.roc.tpr).any()]
        for index, (label, m) in enumerate(self.series):
            colour = series_color(index)
            fpr = np.r_[m.roc.fpr, 1.0]
            tpr = np.r_[m.roc.tpr, 1.0]
            auc = f"AUC {m.roc_auc:.3f}" if math.isfinite(m.roc_auc) else "AUC —"
            curve = self.plot.plot(fpr, tpr, name=f"{label} ({auc})",
                                   pen=pg.mkPen(colour, width=max(2.0, 3.5 - index)))
            self._items.append(curve)
            if m.operating_point is not None:
                far, tar = m.operating_point
                if math.isfinite(far) and math.isfinite(tar):
                    dot = pg.ScatterPlotItem([far], [tar], size=11, brush=pg.mkBrush(*colour),
                                             pen=pg.mkPen("#202124", width=1.2))
                    self.plot.addItem(dot)
                    self._items.append(dot)

    def curve_count(self) -> int:
        return len(self.series)
