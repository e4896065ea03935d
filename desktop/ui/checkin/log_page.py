"""Check-in log: one day, or a date range; export to CSV.

Dates are local calendar days; a range includes both ends. Retention (deleting check-ins
older than N days, applied once a day) is set on the Settings page; the current rule is
stated under the table. Check-ins that liveness withheld (a photo or a screen suspected,
or no blink when asked) are listed in a second table, with the reason, when the period
has any; they are not check-ins and are not exported.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QButtonGroup,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.face.liveness import REASONS
from desktop.store import CheckIn, WithheldCheckIn
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.page_common import cell, page_layout, read_only_table

log = logging.getLogger(__name__)


def _qdate(d: date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _pydate(q: QDate) -> date:
    return date(q.year(), q.month(), q.day())


def _date_edit(name: str) -> QDateEdit:
    edit = QDateEdit(objectName=name)
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("ddd d MMM yyyy")
    edit.setDate(_qdate(date.today()))
    return edit


class LogPage(QWidget):
    def __init__(self, ctx: ManagerContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        layout = page_layout(self, "Check-in log")
        self.day_radio = QRadioButton("Day", objectName="logDayMode")
        self.range_radio = QRadioButton("Date range", objectName="logRangeMode")
        self.day_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.day_radio)
        group.addButton(self.range_radio)
        self.day_edit = _date_edit("logDay")
        self.prev_button = QPushButton("◀", objectName="logPrevDay")
        self.next_button = QPushButton("▶", objectName="logNextDay")
        self.today_button = QPushButton("Today", objectName="logToday")
        for b in (self.prev_button, self.next_button):
            b.setFixedWidth(34)
        self.from_edit = _date_edit("logFrom")
        self.from_edit.setDate(_qdate(date.today() - timedelta(days=6)))
        self.to_edit = _date_edit("logTo")
        self.export_button = QPushButton("Export CSV…", objectName="logExport")
        row = QHBoxLayout()
        row.addWidget(self.day_radio)
        row.addWidget(self.prev_button)
        row.addWidget(self.day_edit)
        row.addWidget(self.next_button)
        row.addWidget(self.today_button)
        row.addSpacing(18)
        row.addWidget(self.range_radio)
        row.addWidget(self.from_edit)
        row.addWidget(QLabel("to"))
        row.addWidget(self.to_edit)
        row.addStretch(1)
        row.addWidget(self.export_button)
        layout.addLayout(row)
        self.table = read_only_table(["Time", "Name", "Employee id", "d", "Camera", "Rule"],
                                     "logTable")
        self.table.horizontalHeaderItem(3).setToolTip(
            "d: squared L2 distance to the person's nearest template (lower is closer)")
        layout.addWidget(self.table, 1)
        self.withheld_title = QLabel("<b>Withheld by liveness</b>: the face was recognised "
                                     "but not judged live", objectName="logWithheldTitle")
        self.withheld_table = read_only_table(
            ["Time", "Name", "Employee id", "d", "Camera", "Reason"], "logWithheldTable")
        self.withheld_table.setMaximumHeight(160)
        layout.addWidget(self.withheld_title)
        layout.addWidget(self.withheld_table)
        self.summary = QLabel(objectName="logSummary")
        self.retention = QLabel(objectName="logRetention")
        self.retention.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.summary)
        layout.addWidget(self.retention)
        self.checkins: list[CheckIn] = []
        self.withheld: list[WithheldCheckIn] = []

        for w in (self.day_radio, self.range_radio):
            w.toggled.connect(self._mode_changed)
        self.day_edit.dateChanged.connect(self.refresh)
        self.from_edit.dateChanged.connect(self.refresh)
        self.to_edit.dateChanged.connect(self.refresh)
        self.prev_button.clicked.connect(lambda: self._step(-1))
        self.next_button.clicked.connect(lambda: self._step(1))
        self.today_button.clicked.connect(lambda: self.day_edit.setDate(_qdate(date.today())))
        self.export_button.clicked.connect(self._choose_export)
        ctx.checkins_changed.connect(self._refresh_if_visible)
        self._mode_changed()

    # -- the period shown ---------------------------------------------------------------
    def period(self) -> tuple[date, date]:
        """[start, end) as local dates (end exclusive)."""
        if self.day_radio.isChecked():
            day = _pydate(self.day_edit.date())
            return day, day + timedelta(days=1)
        a, b = _pydate(self.from_edit.date()), _pydate(self.to_edit.date())
        if b < a:
            a, b = b, a
        return a, b + timedelta(days=1)

    def show_day(self, day: date) -> None:
        self.day_radio.setChecked(True)
        self.day_edit.setDate(_qdate(day))
        self.refresh()

    def show_range(self, start: date, end: date) -> None:
        self.range_radio.setChecked(True)
        self.from_edit.setDate(_qdate(start))
        self.to_edit.setDate(_qdate(end))
        self.refresh()

    def _step(self, days: int) -> None:
        self.day_edit.setDate(self.day_edit.date().addDays(days))

    def _mode_changed(self) -> None:
        day = self.day_radio.isChecked()
        for w in (self.day_edit, self.prev_button, self.next_button, self.today_button):
            w.setEnabled(day)
        self.from_edit.setEnabled(not day)
        self.to_edit.setEnabled(not day)
        self.refresh()

    def _refresh_if_visible(self) -> None:
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        start, end = self.period()
        try:
            self.checkins = self.ctx.gallery.checkins_between(start, end, newest_first=True)
        except FacestyleError as exc:
            self.summary.setText(exc.message)
            return
        self.withheld = self._withheld_between(start, end)
        one_day = end - start == timedelta(days=1)
        self._fill_withheld(one_day)
        self.table.setRowCount(len(self.checkins))
        for row, c in enumerate(self.checkins):
            when = c.when
            self.table.setItem(row, 0, cell(f"{when:%H:%M:%S}" if one_day else
                                            f"{when:%Y-%m-%d %H:%M}"))
            name = cell(c.name + ("" if c.person_id is not None else " (deleted)"))
            self.table.setItem(row, 1, name)
            self.table.setItem(row, 2, cell(c.employee_id or ""))
            self.table.setItem(row, 3, cell(f"{c.d:.3f}", align_right=True))
            self.table.setItem(row, 4, cell(c.camera))
            self.table.setItem(row, 5, cell(c.rule))
        n = len(self.checkins)
        people = len({(c.person_id, c.name) for c in self.checkins})
        span = (f"{start:%A %d %B %Y}" if one_day else
                f"{start:%d %b %Y} to {end - timedelta(days=1):%d %b %Y}")
        withheld = len(self.withheld)
        self.summary.setText(f"{span}: {n} check-in{'s' if n != 1 else ''}"
                             + (f" by {people} {'person' if people == 1 else 'people'}" if n
                                else "")
                             + (f"; {withheld} withheld by liveness" if withheld else ""))
        days = self.ctx.gallery.get_setting("retention_days")
        self.retention.setText(
            f"Check-ins older than {int(days)} days are deleted automatically once a day "
            "(change it in Settings)." if days and float(days) > 0 else
            "Check-ins are kept forever (set a retention period in Settings).")

    def _withheld_between(self, start: date, end: date) -> list[WithheldCheckIn]:
        """The withheld check-ins of the period; none when the gallery cannot say (a shared
        gallery while its server is away): the check-ins themselves still show."""
        try:
            return self.ctx.gallery.withheld_between(start, end, newest_first=True)
        except FacestyleError as exc:
            log.warning("withheld check-ins not shown: %s", exc.message)
            return []

    def _fill_withheld(self, one_day: bool) -> None:
        rows = self.withheld
        self.withheld_title.setVisible(bool(rows))
        self.withheld_table.setVisible(bool(rows))
        self.withheld_table.setRowCount(len(rows))
        for row, w in enumerate(rows):
            when = w.when
            self.withheld_table.setItem(row, 0, cell(f"{when:%H:%M:%S}" if one_day else
                                                     f"{when:%Y-%m-%d %H:%M}"))
            self.withheld_table.setItem(row, 1, cell(
                w.name + ("" if w.person_id is not None else " (deleted)")))
            self.withheld_table.setItem(row, 2, cell(w.employee_id or ""))
            self.withheld_table.setItem(row, 3, cell(f"{w.d:.3f}", align_right=True))
            self.withheld_table.setItem(row, 4, cell(w.camera))
            self.withheld_table.setItem(row, 5, cell(REASONS.get(w.reason, w.reason)))

    # -- export -------------------------------------------------------------------------
    def _choose_export(self) -> None:
        start, end = self.period()
        last = end - timedelta(days=1)
        name = (f"checkins-{start:%Y-%m-%d}.csv" if start == last else
                f"checkins-{start:%Y-%m-%d}-to-{last:%Y-%m-%d}.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export check-ins",
                                              str(Path.home() / name), "CSV files (*.csv)")
        if path:
            self.export_to(path)

    def export_to(self, path: str | Path) -> int:
        """Write the period shown to ``path`` as CSV; returns the rows written."""
        start, end = self.period()
        try:
            n = self.ctx.gallery.export_checkins_csv(path, start, end)
        except FacestyleError as exc:
            self.summary.setText(exc.message + (f" {exc.hint}" if exc.hint else ""))
            return 0
        self.summary.setText(f"Exported {n} check-in{'s' if n != 1 else ''} to {path}.")
        return n
