"""The "Fine-tune" tab: teach the encoder the gallery's people with the triplet loss, watch
it learn (loss, active triplets, held-out accuracy, progress, time left), cancel, and see
the new version beside the one in use."""

from __future__ import annotations

import math
import time
from html import escape
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.face.encoder_versions import check_name
from desktop.face.training import EpochReport, StepReport, TrainConfig
from desktop.ui.checkin.model.host import ModelPageHost
from desktop.ui.checkin.model.metrics_view import ComparisonView
from desktop.ui.checkin.model.plots import TrainingCurves
from desktop.ui.checkin.model.service import (
    FineTuneSummary,
    ModelOverview,
    Phase,
    default_version_name,
)
from desktop.ui.checkin.model.texts import (
    EPOCHS_TIP,
    FINE_TUNE_EXPLAINED,
    FINE_TUNE_SUMMARY,
    LR_CHOICES,
    LR_TIP,
    MARGIN_TIP,
    MINING_CHOICES,
    MINING_TIP,
    NAME_TIP,
    TRAIN_CHOICES,
    TRAIN_TIP,
    duration,
    error_html,
    pct,
)
from desktop.ui.checkin.model.widgets import Explainer, MessageBox, choice_box, reveal
from desktop.ui.qthreading import Worker


class FineTuneTab(QWidget):
    def __init__(self, page: ModelPageHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.page = page
        self.worker: Worker | None = None
        self.summary: FineTuneSummary | None = None
        self.events = 0
        self._t_first: float | None = None
        self._step_first = 0
        self._can_train = False

        self.explained = Explainer(FINE_TUNE_SUMMARY, FINE_TUNE_EXPLAINED,
                                   "How it works, and the risks", "modelFineTuneExplained")
        self.readiness = MessageBox("modelReadiness")

        self.name_edit = QLineEdit(default_version_name(), objectName="modelVersionName")
        self.name_edit.setToolTip(NAME_TIP)
        self.epochs_spin = QSpinBox(objectName="modelEpochs")
        self.epochs_spin.setRange(1, 200)
        self.epochs_spin.setValue(10)
        self.epochs_spin.setToolTip(EPOCHS_TIP)
        self.margin_spin = QDoubleSpinBox(objectName="modelMargin")
        self.margin_spin.setRange(0.01, 2.0)
        self.margin_spin.setSingleStep(0.05)
        self.margin_spin.setDecimals(2)
        self.margin_spin.setValue(0.2)
        self.margin_spin.setToolTip(MARGIN_TIP)
        self.mining_box = choice_box(MINING_CHOICES, "modelMining", "semi-hard")
        self.mining_box.setToolTip(MINING_TIP)
        self.train_box = choice_box(TRAIN_CHOICES, "modelTrainWhat", "last-level")
        self.train_box.setToolTip(TRAIN_TIP)
        self.lr_box = QComboBox(objectName="modelLearningRate")
        self.lr_box.setEditable(True)
        self.lr_box.addItems(list(LR_CHOICES))
        self.lr_box.setCurrentText("0.0001")
        self.lr_box.setToolTip(LR_TIP)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        fields = (("Save as", self.name_edit), ("Triplets", self.mining_box),
                  ("Epochs", self.epochs_spin), ("Train", self.train_box),
                  ("Margin α", self.margin_spin), ("Learning rate", self.lr_box))
        for k, (text, field) in enumerate(fields):
            row, col = divmod(k, 2)
            label = QLabel(text)
            label.setToolTip(field.toolTip())
            label.setBuddy(field)
            grid.addWidget(label, row, 2 * col)
            grid.addWidget(field, row, 2 * col + 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.start_button = QPushButton("Start fine-tuning", objectName="modelStartTraining")
        self.start_button.setAutoDefault(False)
        self.start_button.setStyleSheet("font-weight: 600; padding: 4px 14px;")
        self.cancel_button = QPushButton("Cancel", objectName="modelCancelTraining")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.setToolTip("Stop the fine-tune; nothing is saved. Closing the "
                                      "manager window stops it too.")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(objectName="modelTrainProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        self.status = QLabel("Not started. Closing the manager window stops a running "
                             "fine-tune.", objectName="modelTrainStatus")
        self.epoch_line = QLabel(objectName="modelEpochLine")
        self.epoch_line.setStyleSheet("color: palette(placeholder-text);")
        for label in (self.status, self.epoch_line):
            # one fixed line each: new text every step must not re-lay out the tab (and
            # with it the plots, whose relayout is slow Python in pyqtgraph)
            label.setWordWrap(False)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setFixedHeight(label.fontMetrics().height() + 4)  # also when empty

        self.curves = TrainingCurves()
        self.curves.setMinimumHeight(240)

        self.result = MessageBox("modelTrainResult")
        self.comparison = ComparisonView("modelTrainCompare")
        self.comparison.hide()
        self.activate_button = QPushButton("Activate this version…",
                                           objectName="modelActivateNew")
        self.activate_button.hide()
        self.activate_button.clicked.connect(self._activate)
        act_row = QHBoxLayout()
        act_row.addStretch(1)
        act_row.addWidget(self.activate_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 4)
        layout.addWidget(self.explained)
        layout.addWidget(self.readiness)
        layout.addLayout(grid)
        layout.addLayout(run_row)
        layout.addWidget(self.status)
        layout.addWidget(self.epoch_line)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.result)
        layout.addLayout(act_row)
        layout.addWidget(self.comparison)
        page.jobs.changed.connect(self._update_buttons)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.page.warm_up()

    # -- settings --------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The settings chosen; raises FacestyleError for a bad learning rate."""
        try:
            lr = float(self.lr_box.currentText().strip())
        except ValueError:
            lr = math.nan
        if not (math.isfinite(lr) and 0 < lr < 1):
            raise FacestyleError(f"{self.lr_box.currentText()!r} is not a usable learning "
                                 "rate.", "Use a small positive number such as 0.0001.")
        tau = self.page.overview.tau if self.page.overview is not None else None
        config = TrainConfig(epochs=self.epochs_spin.value(), margin=self.margin_spin.value(),
                             mining=self.mining_box.currentData(),
                             train=self.train_box.currentData(), lr=lr)
        if tau is not None:
            config.tau = tau
        for key, value in self.page.service.train_overrides.items():
            setattr(config, key, value)
        return config

    def show_overview(self, ov: ModelOverview) -> None:
        r = ov.readiness
        self._can_train = r.can_train
        if r.can_train:
            self.readiness.show_message("ok", r.message())
        else:
            self.readiness.show_message("warn", r.message())
        self._update_buttons()

    def _update_buttons(self, *_: Any) -> None:
        running = self.worker is not None and self.worker.is_running
        busy_elsewhere = self.page.jobs.busy and not running
        self.start_button.setEnabled(not running and not busy_elsewhere and self._can_train)
        self.start_button.setToolTip(
            self.page.jobs.why_busy() if busy_elsewhere else
            "" if self._can_train else "Not enough people with 2 or more photos yet.")
        self.cancel_button.setEnabled(running)
        for w in (self.name_edit, self.epochs_spin, self.margin_spin, self.mining_box,
                  self.train_box, self.lr_box):
            w.setEnabled(not running)
        self.activate_button.setEnabled(not self.page.jobs.busy)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> Worker | None:
        """Start a fine-tune with the chosen settings (returns its worker)."""
        if self.page.jobs.busy:
            return None
        name = self.name_edit.text().strip()
        try:
            check_name(name)
            config = self.config()
            config.validate()
        except FacestyleError as exc:
            self.result.show_message("error", error_html(exc))
            return None
        if name in self.page.version_names():
            self.result.show_message(
                "error", f"A version named <b>{name}</b> already exists. Choose another name.")
            return None
        self.summary = None
        self.events = 0
        self._t_first = None
        self.result.clear_message()
        self.comparison.hide()
        self.activate_button.hide()
        self.curves.reset(config.epochs)
        self.progress.setValue(0)
        self.epoch_line.setText("")
        self.status.setText("Starting…")
        worker = Worker(self.page.service.fine_tune, self.page.ctx.gallery, name, config)
        worker.yielded.connect(self._on_event)
        worker.result.connect(self._on_result)
        worker.error.connect(self._on_error)
        worker.cancelled.connect(self._on_cancelled)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.page.jobs.start("train", worker)
        self._update_buttons()
        return worker

    def cancel(self) -> None:
        if self.worker is not None and self.worker.is_running:
            self.status.setText("Stopping after the current step…")
            self.worker.cancel()

    def _on_event(self, event: Any) -> None:
        self.events += 1
        if isinstance(event, Phase):
            self.status.setText(event.message)
            return
        self.curves.add(event)
        if isinstance(event, StepReport):
            self._on_step(event)
        elif isinstance(event, EpochReport):
            self._on_epoch(event)

    def _on_step(self, s: StepReport) -> None:
        now = time.monotonic()
        if self._t_first is None:
            self._t_first, self._step_first = now, s.global_step
        self.progress.setValue(int(1000 * s.global_step / max(1, s.total_steps)))
        done = s.global_step - self._step_first
        if done >= 2:
            per_step = (now - self._t_first) / done
            left = f"about {duration(per_step * (s.total_steps - s.global_step))} left"
        else:
            left = "estimating the time left…"
        self.status.setText(f"Epoch {s.epoch} of {self.curves.epochs} · step {s.step} of "
                            f"{s.steps_per_epoch} · loss {s.loss:.3f} · {left}")

    def _on_epoch(self, e: EpochReport) -> None:
        start = self.curves.heldout[0] / 100 if self.curves.heldout else math.nan
        if e.epoch == 0:
            self.epoch_line.setText(
                f"Before training: {pct(e.heldout_accuracy)} right on "
                f"{e.heldout_pairs} pairs of set-aside people.")
            return
        kept = "the best so far" if e.improved else f"the best: epoch {e.best_epoch}"
        self.epoch_line.setText(
            f"Epoch {e.epoch}: held-out accuracy {pct(e.heldout_accuracy)} ({pct(start)} "
            f"before; {kept}) · active triplets {pct(e.active_fraction)} · loss {e.loss:.3f}")

    def _on_result(self, summary: FineTuneSummary) -> None:
        """Show the outcome; the comparison (tables and plots) is drawn on the next turn of
        the event loop, so the UI never does all of it in one go."""
        self.summary = summary
        self.progress.setValue(1000)
        r = summary.outcome.result
        base, final = r.baseline, r.final
        if r.improved:
            head = (f"<b>Saved {summary.name}.</b> It learned: on people set aside from "
                    f"training, the best epoch ({r.best_epoch}) decides {pct(r.best.accuracy)} "
                    f"of pairs right, against {pct(base.accuracy)} before.")
        else:
            head = (f"<b>Saved {summary.name}, but no epoch beat the starting encoder</b> on "
                    "the set-aside people, so it holds the starting weights unchanged and "
                    "there is nothing to activate. More people or photos, or a smaller "
                    "learning rate, may help.")
        details = (f" {r.epochs_run} epochs in {duration(r.seconds)} on {r.device} "
                   f"({r.stop_reason}). At your threshold d ≤ {final.tau:.2f} it decides "
                   f"{pct(final.accuracy)} right.")
        if final.best_accuracy - final.accuracy > 0.05:
            details += (f" For these people the best threshold would be d ≤ "
                        f"{final.best_threshold:.2f} ({pct(final.best_accuracy)} right): tau "
                        "is set on the Settings page.")
        self.result.show_message("ok" if r.improved else "warn", head + details)
        self.status.setText("Finished.")
        self.name_edit.setText(default_version_name())
        if summary.check is None and summary.check_problem:
            self.result.show_message(self.result.kind, self.result.text()
                                     + f"<br>Not compared: {escape(summary.check_problem)}")
        QTimer.singleShot(0, self, lambda: self._show_comparison(summary))

    def _show_comparison(self, summary: FineTuneSummary) -> None:
        if summary is not self.summary:
            return
        if summary.check is not None:
            self.comparison.set_check(summary.check)
            self.comparison.show()
            check = summary.check
            self.activate_button.setVisible(check.allowed and check.candidate != check.current
                                            and summary.outcome.result.improved)
        QTimer.singleShot(0, self, lambda: reveal(
            self.activate_button if self.activate_button.isVisible() else self.result))
        QTimer.singleShot(0, self, self.page.refresh)

    def _on_error(self, exc: BaseException) -> None:
        self.status.setText("Stopped: the fine-tune could not run.")
        self.result.show_message("error", error_html(exc))

    def _on_cancelled(self) -> None:
        self.status.setText("Cancelled. Nothing was saved.")
        self.result.show_message("info", "The fine-tune was cancelled; no version was saved "
                                 "and the encoder in use is unchanged.")

    def _on_finished(self) -> None:
        self.curves.finish()
        self.worker = None
        self._update_buttons()

    def _activate(self) -> None:
        if self.summary is not None:
            self.page.activate(self.summary.name)
