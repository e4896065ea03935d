"""Figures side by side: a metrics table, an ROC panel with PNG export, and the
before/after comparison of two encoders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.face.encoder_versions import ActivationCheck
from desktop.face.evaluation import PairMetrics, RocSeries, save_roc_png
from desktop.ui.checkin.model.plots import RocPlot, series_color
from desktop.ui.checkin.model.texts import METRIC_ROWS, metric_values, operating_text
from desktop.ui.error_dialog import show_error
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)

BETTER = QColor("#1e8e3e")


class MetricsTable(QTableWidget):
    """Rows are the figures (METRIC_ROWS), the first column their names, then one column
    per rule or encoder; with two or more columns the better value of each row is bold
    and green."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent)
        self.setObjectName(name)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        header.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.columns: list[tuple[str, dict[str, Any]]] = []
        self.set_columns([])

    def set_columns(self, columns: Sequence[tuple[str, PairMetrics | dict | None]]) -> None:
        """``[(title, metrics or its to_json() dict), ...]``."""
        self.columns = [(title, metric_values(m)) for title, m in columns]
        rows = [("op", "Setting", "The threshold the first figure is measured at.", "")] + \
            [(r.key, r.label, r.tip, r.better) for r in METRIC_ROWS]
        self.clear()
        self.setRowCount(len(rows))
        self.setColumnCount(len(columns) + 1)
        self.setHorizontalHeaderLabels([""] + [title for title, _ in columns])
        for col, (title, _) in enumerate(columns, start=1):
            self.horizontalHeaderItem(col).setToolTip(title.replace("\n", " "))
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for col in range(1, len(columns) + 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
        for row, (key, label, tip, better) in enumerate(rows):
            head = QTableWidgetItem(label)
            head.setToolTip(tip)
            head.setForeground(QColor("#5f6368"))
            self.setItem(row, 0, head)
            values = [v.get(key) for _, v in self.columns]
            best = self._best(values, better)
            for col, (_, m) in enumerate(columns):
                if key == "op":
                    text = operating_text(m)
                else:
                    fmt = next(r.fmt for r in METRIC_ROWS if r.key == key)
                    text = fmt(values[col])
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(tip)
                if best is not None and col in best:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                    item.setForeground(BETTER)
                self.setItem(row, col + 1, item)
        self.setVisible(bool(columns))
        self.resizeRowsToContents()
        height = self.horizontalHeader().sizeHint().height() + sum(
            self.rowHeight(r) for r in range(self.rowCount())) + 2 * self.frameWidth()
        self.setFixedHeight(height)

    def _best(self, values: list[Any], better: str) -> set[int] | None:
        nums = [(i, float(v)) for i, v in enumerate(values)
                if isinstance(v, (int, float)) and v == v]
        if not better or len(nums) < 2:
            return None
        target = max(v for _, v in nums) if better == "higher" else min(v for _, v in nums)
        if all(abs(v - target) < 1e-12 for _, v in nums):
            return None  # a tie: nothing to point out
        return {i for i, v in nums if abs(v - target) < 1e-12}

    def text(self, row_key: str, column: int) -> str:
        """The shown text of one figure of column ``column`` (0 = the first rule)."""
        keys = ["op"] + [r.key for r in METRIC_ROWS]
        item = self.item(keys.index(row_key), column + 1)
        return "" if item is None else item.text()


class RocPanel(QWidget):
    """An :class:`RocPlot` with "Save as PNG…" (drawn by the core's ``save_roc_png``)."""

    exported = Signal(str)

    def __init__(self, title: str = "ROC curve", name: str = "modelRoc",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.title = title
        self.plot = RocPlot(title)
        self.export_button = QPushButton("Save as PNG…", objectName=f"{name}Export")
        self.export_button.setToolTip("Save these ROC curves as a picture (PNG).")
        self.export_button.clicked.connect(self._ask_path)
        self.export_button.setEnabled(False)
        self.worker: Worker | None = None
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addLayout(row)

    def sizeHint(self) -> QSize:
        return QSize(340, 290)

    def set_series(self, series: Sequence[tuple[str, PairMetrics | None]]) -> None:
        self.plot.set_series(series)
        self.export_button.setEnabled(self.plot.curve_count() > 0)

    def _ask_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the ROC curves", "roc.png",
                                              "PNG images (*.png)")
        if path:
            self.export_png(path if path.lower().endswith(".png") else path + ".png")

    def export_png(self, path: str | Path) -> Worker:
        """Write the PNG off the UI thread; ``exported(path)`` when written."""
        series = [RocSeries(label, m, series_color(i))
                  for i, (label, m) in enumerate(self.plot.series)]
        worker = Worker(save_roc_png, Path(path), series, self.title)
        worker.result.connect(lambda p: self.exported.emit(str(p)))
        worker.error.connect(lambda exc: show_error(self, exc, "The ROC picture was not saved"))
        self.worker = worker
        worker.start()
        return worker


class ComparisonView(QWidget):
    """Two encoders on the same held-out pairs: the verdict, the figures side by side and
    both ROC curves (from an :class:`ActivationCheck`)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.verdict = QLabel(objectName=f"{name}Verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.pairs = QLabel(objectName=f"{name}Pairs")
        self.pairs.setWordWrap(True)
        self.pairs.setStyleSheet("color: palette(placeholder-text);")
        self.table = MetricsTable(f"{name}Table")
        self.roc = RocPanel("ROC on people set aside", f"{name}Roc")
        self.roc.setMinimumHeight(260)
        body = QHBoxLayout()
        body.addWidget(self.table, 1, Qt.AlignmentFlag.AlignTop)
        body.addWidget(self.roc, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.verdict)
        layout.addWidget(self.pairs)
        layout.addLayout(body, 1)
        self.check: ActivationCheck | None = None

    def set_check(self, check: ActivationCheck, activated: bool = False) -> None:
        """Show the guard's comparison; ``activated``: the candidate has just been made
        active (the columns read before / after)."""
        self.check = check
        titles = ("Before", "After") if activated else ("In use", "Candidate")
        self.table.set_columns([(titles[0], check.current_metrics),
                                (titles[1], check.candidate_metrics)])
        for col, name in ((1, check.current), (2, check.candidate)):
            self.table.horizontalHeaderItem(col).setToolTip(name)
        self.roc.set_series([(check.current, check.current_metrics),
                             (check.candidate, check.candidate_metrics)])
        cand, curr = escape(check.candidate), escape(check.current)
        if check.candidate == check.current:
            verdict = f"<b>{cand}</b> is the encoder in use."
        elif activated:
            verdict = (f"<span style='color:#1e8e3e'><b>{cand} is now in use.</b></span> "
                       f"Before and after, on people neither encoder was trained on:")
        elif check.allowed:
            verdict = (f"<span style='color:#1e8e3e'><b>{cand} does at least as well as "
                       f"{curr}</b></span> on people neither was trained on, so it can be "
                       "activated.")
        else:
            verdict = (f"<span style='color:#b3261e'><b>{cand} does worse than {curr}</b>"
                       "</span> on people neither was trained on; the guard will not "
                       "activate it.")
        self.verdict.setText(verdict)
        self.pairs.setText(f"Measured on {check.pairs}." if check.pairs else check.reason)
