"""The "Versions" tab: every encoder version with its data and figures; compare one with
the encoder in use, activate it (guarded), roll back, delete; the switch's progress."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.checkin.model.host import ModelPageHost
from desktop.ui.checkin.model.metrics_view import ComparisonView
from desktop.ui.checkin.model.service import ModelOverview, VersionRow
from desktop.ui.checkin.model.texts import num, pct
from desktop.ui.checkin.model.widgets import MessageBox, note
from desktop.ui.checkin.page_common import cell, read_only_table

COLUMNS = ("Version", "Created", "Trained on", "Held-out right", "ROC AUC", "EER", "Status")


def status_text(row: VersionRow) -> str:
    if row.active:
        return "in use"
    if row.previous:
        return "used before"
    return ""


def short_data_text(row: VersionRow) -> str:
    if row.version.builtin:
        return "dlib's own training"
    data = row.version.meta.get("data", {})
    return f"{data.get('identities', '?')} people, {data.get('images', '?')} photos"


def details_html(row: VersionRow) -> str:
    """Everything about one version, for the line under the table."""
    v = row.version
    text = f"<b>{escape(v.name)}</b>: "
    if v.builtin:
        text += "dlib's pretrained face encoder, as shipped (about 3 million faces)."
    else:
        text += (f"fine-tuned from {escape(str(v.base))} on {row.created_text()}, "
                 f"{escape(row.data_text())}; {escape(row.train_text())}.")
        h = row.heldout
        if h:
            tar = (h.get("tar_at_far") or {}).get("0.01")
            text += (f" Held out during training: {h.get('pairs', '?')} pairs, "
                     f"{pct(h.get('accuracy'))} right at d ≤ {num(h.get('tau'), 2)}, "
                     f"TAR {pct(tar)} at FAR 1%.")
        extra = v.meta.get("device")
        if extra:
            text += f" Trained on {escape(str(extra))}."
    return text + f" <span style='color:#80868b'>model id {escape(v.model_id)}</span>"


class VersionsTab(QWidget):
    def __init__(self, page: ModelPageHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.page = page
        self.rows: list[VersionRow] = []
        self.intro = note(
            "Each fine-tune is saved as a version; the built-in encoder is always here. "
            "<b>Activate</b> makes a version the one the front desk uses (refused when it "
            "does worse than the one in use); <b>Roll back</b> returns to the version used "
            "before. Both update the stored face templates, which pauses recognition for "
            "a moment.")
        self.table = read_only_table(COLUMNS, "modelVersionsTable")
        self.table.setSelectionMode(self.table.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.setMinimumHeight(110)
        self.table.setMaximumHeight(190)
        self.details = note(name="modelVersionDetails")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.compare_button = QPushButton("Compare with the one in use",
                                          objectName="modelCompare")
        self.activate_button = QPushButton("Activate…", objectName="modelActivate")
        self.rollback_button = QPushButton("Roll back", objectName="modelRollback")
        self.delete_button = QPushButton("Delete…", objectName="modelDelete")
        for b in (self.compare_button, self.activate_button, self.rollback_button,
                  self.delete_button):
            b.setAutoDefault(False)
        self.compare_button.clicked.connect(lambda: self._with_selected(page.compare))
        self.activate_button.clicked.connect(lambda: self._with_selected(page.confirm_activate))
        self.rollback_button.clicked.connect(page.confirm_rollback)
        self.delete_button.clicked.connect(lambda: self._with_selected(page.confirm_delete))
        buttons = QHBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.activate_button)
        buttons.addStretch(1)
        buttons.addWidget(self.rollback_button)
        buttons.addWidget(self.delete_button)

        self.phase = QLabel(objectName="modelSwitchPhase")
        self.phase.setWordWrap(True)
        self.switch_progress = QProgressBar(objectName="modelSwitchProgress")
        self.switch_progress.setRange(0, 1000)
        self.switch_progress.setTextVisible(False)
        self.switch_cancel = QPushButton("Cancel", objectName="modelSwitchCancel")
        self.switch_cancel.setAutoDefault(False)
        self.switch_cancel.clicked.connect(page.cancel_switch)
        prog = QHBoxLayout()
        prog.addWidget(self.switch_progress, 1)
        prog.addWidget(self.switch_cancel)
        self.switch_box = QWidget(objectName="modelSwitchBox")
        box = QVBoxLayout(self.switch_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.phase)
        box.addLayout(prog)
        self.switch_box.hide()

        self.message = MessageBox("modelSwitchMessage")
        self.comparison = ComparisonView("modelVersionsCompare")
        self.comparison.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 4)
        layout.addWidget(self.intro)
        layout.addWidget(self.table)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addWidget(self.switch_box)
        layout.addWidget(self.message)
        layout.addWidget(self.comparison)
        layout.addStretch(1)
        page.jobs.changed.connect(self._update_buttons)
        self._update_buttons()

    def show_overview(self, ov: ModelOverview) -> None:
        known = {r.name for r in self.rows}
        new = [r.name for r in ov.versions if r.name not in known]
        selected = new[-1] if known and new else self.selected_name()
        self.rows = list(reversed(ov.versions))  # newest first, the built-in last
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            h = row.heldout
            values = (row.name, row.created_text(), short_data_text(row),
                      pct(h.get("accuracy")) if h else "—",
                      num(h.get("roc_auc"), 3) if h else "—",
                      pct(h.get("eer")) if h else "—", status_text(row))
            for c, text in enumerate(values):
                item = cell(text, align_right=c in (3, 4, 5))
                if row.active:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if c == 0:
                    item.setToolTip(f"model id {row.version.model_id}")
                self.table.setItem(r, c, item)
        self.rollback_button.setText(f"Roll back to {ov.previous}" if ov.previous
                                     else "Roll back")
        self.select(selected or (self.rows[0].name if self.rows else None))
        self._update_buttons()

    def select(self, name: str | None) -> None:
        for r, row in enumerate(self.rows):
            if row.name == name:
                self.table.selectRow(r)
                return

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() \
            else []
        if not rows or rows[0].row() >= len(self.rows):
            return None
        return self.rows[rows[0].row()].name

    def _selected_row(self) -> VersionRow | None:
        name = self.selected_name()
        return next((r for r in self.rows if r.name == name), None)

    def _with_selected(self, action: Any) -> None:
        name = self.selected_name()
        if name is not None:
            action(name)

    def _update_buttons(self, *_: Any) -> None:
        busy = self.page.jobs.busy
        row = self._selected_row()
        self.details.setText(details_html(row) if row is not None else "")
        why = self.page.jobs.why_busy()
        selectable = row is not None and not busy
        self.compare_button.setEnabled(selectable and not row.active)
        self.activate_button.setEnabled(selectable and not row.active)
        self.delete_button.setEnabled(selectable and not row.active and not row.version.builtin)
        ov = self.page.overview
        self.rollback_button.setEnabled(not busy and ov is not None and ov.previous is not None)
        for b in (self.compare_button, self.activate_button, self.delete_button,
                  self.rollback_button):
            b.setToolTip(why if busy else "")
        if not busy and ov is not None and ov.previous is None:
            self.rollback_button.setToolTip("No version was in use before this one.")

    # -- the switch's progress (driven by the page) ------------------------------------------
    def switch_started(self, text: str) -> None:
        self.message.clear_message()
        self.phase.setText(text)
        self.switch_progress.setRange(0, 0)  # busy until the re-embedding reports
        self.switch_cancel.setEnabled(False)  # the guard's comparison runs to its end
        self.switch_cancel.setToolTip("Updating the stored face templates can be stopped; "
                                      "the comparison before it takes a few seconds.")
        self.switch_box.show()

    def switch_phase(self, text: str) -> None:
        self.phase.setText(text)

    def switch_progress_to(self, fraction: float, message: str) -> None:
        """The core's progress: the guard's comparison, then "k/n templates"."""
        if not message.endswith("templates"):
            return  # the comparison (busy indicator) or the last word (the result says it)
        self.switch_progress.setRange(0, 1000)
        self.switch_progress.setValue(int(1000 * fraction))
        self.switch_cancel.setEnabled(True)
        self.phase.setText(f"Updating the stored face templates for the new encoder: "
                           f"{message}")

    def switch_ended(self) -> None:
        self.switch_box.hide()
        self.switch_progress.setRange(0, 1000)

    def show_comparison(self, check: Any, activated: bool = False) -> None:
        self.comparison.set_check(check, activated)
        self.comparison.show()
