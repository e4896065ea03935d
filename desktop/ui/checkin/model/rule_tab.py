"""The "Decision rule" tab: train or retrain the verification head (|f_i - f_j| or
chi-square features) and choose what decides a match at the front desk: the distance
threshold or the head."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.checkin.model.host import ModelPageHost
from desktop.ui.checkin.model.metrics_view import MetricsTable
from desktop.ui.checkin.model.service import HeadReport, ModelOverview
from desktop.ui.checkin.model.texts import (
    FEATURE_CHOICES,
    HEAD_EXPLAINED,
    HEAD_SUMMARY,
    error_html,
)
from desktop.ui.checkin.model.widgets import Card, Explainer, MessageBox, choice_box, note
from desktop.ui.qthreading import Worker


class RuleTab(QWidget):
    def __init__(self, page: ModelPageHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.page = page
        self.head_worker: Worker | None = None
        self.rule_worker: Worker | None = None
        self.report: HeadReport | None = None
        self._has_head = False
        self._rule = "threshold"

        self.explained = Explainer(HEAD_SUMMARY, HEAD_EXPLAINED, "How it works",
                                   "modelHeadExplained")

        self.rule_card = Card("What decides a match at the front desk", "modelRuleChoice")
        self.threshold_radio = QRadioButton(objectName="modelRuleThreshold")
        self.head_radio = QRadioButton(objectName="modelRuleHead")
        self.rule_group = QButtonGroup(self)
        self.rule_group.addButton(self.threshold_radio)
        self.rule_group.addButton(self.head_radio)
        self.threshold_radio.clicked.connect(lambda: self.set_rule("threshold"))
        self.head_radio.clicked.connect(lambda: self.set_rule("verifier"))
        self.rule_message = MessageBox("modelRuleMessage")
        self.margin_note = note(name="modelRuleMarginNote")
        self.rule_card.body.addWidget(self.threshold_radio)
        self.rule_card.body.addWidget(self.head_radio)
        self.rule_card.body.addWidget(self.margin_note)
        self.rule_card.body.addWidget(self.rule_message)
        self.rule_card.body.addStretch(1)

        self.head_card = Card("Verification head", "modelHeadCard")
        self.head_status = QLabel(objectName="modelHeadStatus")
        self.head_status.setWordWrap(True)
        self.head_status.setStyleSheet("border: none;")
        self.features_box = choice_box(FEATURE_CHOICES, "modelHeadFeatures", "abs")
        self.train_button = QPushButton("Train the head", objectName="modelTrainHead")
        self.train_button.setAutoDefault(False)
        self.train_button.clicked.connect(self.train_head)
        self.head_progress = QProgressBar(objectName="modelHeadProgress")
        self.head_progress.setRange(0, 1000)
        self.head_progress.setTextVisible(False)
        self.head_progress.hide()
        self.head_message = MessageBox("modelHeadMessage")
        row = QHBoxLayout()
        row.addWidget(QLabel("Features"))
        row.addWidget(self.features_box, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.train_button)
        self.head_card.body.addWidget(self.head_status)
        self.head_card.body.addLayout(row)
        self.head_card.body.addLayout(buttons)
        self.head_card.body.addWidget(self.head_progress)
        self.head_card.body.addWidget(self.head_message)
        self.head_card.body.addStretch(1)

        self.figures_note = note(name="modelHeadFiguresNote")
        self.table = MetricsTable("modelHeadTable")
        self.live_note = note(
            "At the front desk the head's probability p is shown next to d on each face's "
            "label.", "modelLiveNote")

        cards = QHBoxLayout()
        cards.addWidget(self.rule_card, 1)
        cards.addWidget(self.head_card, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 4)
        layout.addWidget(self.explained)
        layout.addLayout(cards)
        layout.addWidget(self.figures_note)
        layout.addWidget(self.table)
        layout.addWidget(self.live_note)
        layout.addStretch(1)
        page.jobs.changed.connect(self._update_controls)

    def show_overview(self, ov: ModelOverview) -> None:
        self._has_head = ov.head is not None
        self._rule = ov.rule if (ov.rule != "verifier" or self._has_head) else "threshold"
        self.threshold_radio.setText(f"Distance threshold: d ≤ {ov.tau:.2f}")
        self.margin_note.setText(
            f"With either rule, a name is given only when the next nearest person is at "
             f"least {ov.margin:.2f} further away in d (Settings page)." if ov.margin else
             "Change the threshold and the margin on the Settings page.")
        if ov.head is not None:
            self.head_radio.setText(f"Verification head: p ≥ {ov.head.head.threshold:.2f}")
            self.head_status.setText(f"Trained for {ov.active.name}: {ov.head.describe()}.")
            self.train_button.setText("Retrain the head")
            self.features_box.setCurrentIndex(self.features_box.findData(ov.head.features))
        else:
            self.head_radio.setText("Verification head (train it first)")
            self.head_status.setText(
                f"No head has been trained for {ov.active.name} yet. Training takes a "
                "second and needs at least 2 people, one of them with 2 or more photos.")
            self.train_button.setText("Train the head")
        (self.head_radio if self._rule == "verifier" else self.threshold_radio).setChecked(True)
        if ov.rule == "verifier" and not self._has_head:
            self.rule_message.show_message(
                "warn", "The head is chosen but none fits the encoder in use, so the "
                "distance threshold decides. Train the head to use it.")
        fig = ov.figures
        if fig is not None and fig.head is not None:
            self.table.set_columns([("Distance threshold", fig.threshold),
                                    ("Verification head", fig.head)])
            self.figures_note.setText(f"Both rules on {fig.description()}.")
        elif fig is not None:
            self.table.set_columns([("Distance threshold", fig.threshold)])
            self.figures_note.setText(f"The distance threshold on {fig.description()}.")
        else:
            self.table.set_columns([])
            self.figures_note.setText(ov.figures_problem)
        self._update_controls()

    def _update_controls(self, *_: Any) -> None:
        busy = self.page.jobs.busy
        why = self.page.jobs.why_busy()
        self.train_button.setEnabled(not busy)
        self.train_button.setToolTip(why)
        self.features_box.setEnabled(not busy)
        self.threshold_radio.setEnabled(not busy)
        self.head_radio.setEnabled(not busy and self._has_head)
        self.head_radio.setToolTip(why if busy else "" if self._has_head else
                                   "Train the verification head first.")

    # -- actions ---------------------------------------------------------------------------
    def train_head(self) -> Worker | None:
        if self.page.jobs.busy:
            return None
        features = self.features_box.currentData()
        self.head_message.clear_message()
        self.head_progress.setValue(0)
        self.head_progress.show()
        worker = Worker(self.page.service.train_head, self.page.ctx.gallery, features)
        worker.progress.connect(lambda f, _m: self.head_progress.setValue(int(1000 * f)))
        worker.result.connect(self._on_head)
        worker.error.connect(self._on_head_error)
        worker.finished.connect(self.head_progress.hide)
        self.head_worker = worker
        self.page.jobs.start("head", worker)
        return worker

    def _on_head(self, report: HeadReport) -> None:
        self.report = report
        m = report.head.metrics
        text = (f"<b>Head trained</b> on {m.get('train_pairs')} pairs "
                f"({m.get('train_positives')} same-person): "
                f"{m.get('train_balanced_accuracy', 0):.1%} right on them.")
        if "heldout_balanced_accuracy" in m:
            text += (f" On {m['heldout_people']} people left out while fitting: "
                     f"{m['heldout_balanced_accuracy']:.1%} right, ROC AUC "
                     f"{m['heldout_roc_auc']:.3f}.")
        else:
            text += " (Too few people to also measure it on people it did not see.)"
        for line in report.notes:
            text += f"<br>{line}"
        if self._rule == "verifier":
            text += "<br>The front desk uses the new head from now on."
            self.page.rule_changed()
        else:
            text += "<br>Choose \"Verification head\" above to use it at the front desk."
        self.head_message.show_message("ok", text)
        self.page.refresh()

    def _on_head_error(self, exc: BaseException) -> None:
        self.head_message.show_message("error", error_html(exc))

    def set_rule(self, rule: str) -> Worker | None:
        """Make ``threshold`` or ``verifier`` the decision rule (off the UI thread)."""
        if self.page.jobs.busy or rule == self._rule:
            return None
        worker = Worker(self.page.service.set_rule, rule)
        worker.result.connect(lambda name: self._on_rule(rule, name))
        worker.error.connect(self._on_rule_error)
        self.rule_worker = worker
        self.page.jobs.start("rule", worker)
        return worker

    def _on_rule(self, rule: str, name: str) -> None:
        self._rule = rule
        if rule == "verifier":
            self.rule_message.show_message(
                "ok", f"The verification head ({name}) now decides matches at the front "
                "desk.")
        else:
            self.rule_message.show_message(
                "ok", "The distance threshold now decides matches at the front desk.")
        self.page.rule_changed()
        self.page.refresh()

    def _on_rule_error(self, exc: BaseException) -> None:
        (self.head_radio if self._rule == "verifier" else self.threshold_radio).setChecked(True)
        self.rule_message.show_message("error", error_html(exc))
