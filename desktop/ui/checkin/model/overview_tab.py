"""The "In use" tab: the active encoder and decision rule, and how well both rules tell the
gallery's people apart (figures and ROC curves)."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop.ui.checkin.model.metrics_view import MetricsTable, RocPanel
from desktop.ui.checkin.model.service import ModelOverview, VersionRow
from desktop.ui.checkin.model.texts import pct
from desktop.ui.checkin.model.widgets import Card, MessageBox, note


def encoder_lines(row: VersionRow) -> tuple[str, str]:
    """(what it is, how well it did on set-aside people) for the encoder card."""
    v = row.version
    if v.builtin:
        what = ("Built-in: dlib's face encoder (a ResNet), as shipped, trained on about 3 "
                "million faces.")
        return what, "No fine-tuning yet."
    what = (f"Fine-tuned from {v.base} on {row.created_text()}: {row.data_text()}; "
            f"{row.train_text()}.")
    h = row.heldout
    if h:
        how = (f"On {h.get('pairs', '?')} pairs of people set aside during training: "
               f"{pct(h.get('accuracy'))} right at d ≤ {h.get('tau', 0):.2f}, ROC AUC "
               f"{h.get('roc_auc', float('nan')):.3f}.")
    else:
        how = ""
    return what, how


def rule_lines(ov: ModelOverview) -> tuple[str, str]:
    margin = (f", and the next person at least {ov.margin:.2f} further away"
              if ov.margin else "")
    if ov.rule == "verifier" and ov.head is not None:
        return (f"Verification head: same person when p ≥ {ov.head.head.threshold:.2f}"
                f"{margin}.", ov.head.describe() + ".")
    if ov.rule == "verifier":
        return (f"Distance threshold (d ≤ {ov.tau:.2f}){margin}: the head is chosen but "
                "cannot be used.",
                f"{ov.head_problem} Until one is trained, the plain threshold decides.")
    return (f"Distance threshold: same person when d ≤ {ov.tau:.2f}{margin}.",
            "d is the squared distance between two faces' 128 numbers; lower is closer. "
            "Change tau on the Settings page.")


class OverviewTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.encoder_card = Card("Face encoder in use", "modelEncoderCard")
        self.encoder_name = QLabel(objectName="modelActiveEncoder")
        self.encoder_name.setStyleSheet("font-size: 16px; font-weight: 700; border: none;")
        self.encoder_what = note(name="modelEncoderWhat")
        self.encoder_how = note(name="modelEncoderHow")
        for w in (self.encoder_name, self.encoder_what, self.encoder_how):
            self.encoder_card.body.addWidget(w)
        self.encoder_card.body.addStretch(1)
        self.rule_card = Card("Decision rule in use", "modelRuleCard")
        self.rule_name = QLabel(objectName="modelActiveRule")
        self.rule_name.setWordWrap(True)
        self.rule_name.setStyleSheet("font-size: 14px; font-weight: 700; border: none;")
        self.rule_detail = note(name="modelRuleDetail")
        self.rule_card.body.addWidget(self.rule_name)
        self.rule_card.body.addWidget(self.rule_detail)
        self.rule_card.body.addStretch(1)
        self.stale = MessageBox("modelStaleMessage")
        self.figures_heading = QLabel("How well the rules tell your people apart")
        self.figures_heading.setStyleSheet("font-weight: 600; font-size: 14px; margin-top: 6px;")
        self.figures_note = note(name="modelFiguresNote")
        self.table = MetricsTable("modelRuleTable")
        self.roc = RocPanel("ROC on the gallery's photos", "modelOverviewRoc")
        self.roc.setMinimumHeight(230)

        cards = QGridLayout()
        cards.addWidget(self.encoder_card, 0, 0)
        cards.addWidget(self.rule_card, 0, 1)
        cards.setColumnStretch(0, 1)
        cards.setColumnStretch(1, 1)
        self.legend = note(
            "Green marks the better rule. ROC AUC: 1.0 separates same and different "
            "people perfectly, 0.5 is guessing. Equal error rate: how often each kind of "
            "mistake happens where both are equally common (lower is better). Rest the "
            "pointer on a figure for what it means.", "modelFiguresLegend")
        left = QVBoxLayout()
        left.addWidget(self.table)
        left.addWidget(self.legend)
        left.addStretch(1)
        figures = QHBoxLayout()
        figures.addLayout(left, 3)
        figures.addWidget(self.roc, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 4)
        layout.addLayout(cards)
        layout.addWidget(self.stale)
        layout.addWidget(self.figures_heading)
        layout.addWidget(self.figures_note)
        layout.addLayout(figures, 1)

    def show_overview(self, ov: ModelOverview) -> None:
        row = ov.active_row
        self.encoder_name.setText(row.name)
        self.encoder_name.setToolTip(f"model id {row.version.model_id}")
        what, how = encoder_lines(row)
        self.encoder_what.setText(what)
        self.encoder_how.setText(how)
        self.encoder_how.setVisible(bool(how))
        name, detail = rule_lines(ov)
        self.rule_name.setText(name)
        self.rule_detail.setText(detail)
        problems = []
        if ov.live_model_id and ov.live_model_id != ov.active.model_id:
            problems.append(f"The front desk is still running {escape(ov.live_model_id)}, "
                            f"not {escape(ov.active.model_id)}; it changes over when the "
                            "Check-in tab reloads its encoder.")
        if ov.stale_templates:
            problems.append(f"{ov.stale_templates} stored face templates were made by "
                            "another encoder and are not matched until they are updated "
                            "(this happens when the Check-in tab loads the encoder in use).")
        if problems:
            self.stale.show_message("warn", "<br>".join(problems))
        else:
            self.stale.clear_message()
        fig = ov.figures
        if fig is None:
            self.figures_note.setText(ov.figures_problem)
            self.table.set_columns([])
            self.roc.set_series([])
            self.roc.setVisible(False)
            return
        self.roc.setVisible(True)
        in_use = "verifier" if (ov.rule == "verifier" and fig.head is not None) else "threshold"
        columns = [("Threshold" + ("\n(in use)" if in_use == "threshold" else ""),
                    fig.threshold)]
        if fig.head is not None:
            columns.append(("Head" + ("\n(in use)" if in_use == "verifier" else ""), fig.head))
        self.table.set_columns(columns)
        self.roc.set_series([("distance threshold", fig.threshold),
                             ("verification head", fig.head)])
        self.figures_note.setText(
            f"Measured with {ov.active.name} on {fig.description()}."
            + ("" if fig.head is not None else
               " Train a verification head (Decision rule tab) to compare it with the "
               "threshold."))
