"""The manager's Model page: the encoder and decision rule in use, fine-tuning on the
gallery, versions (compare, activate, roll back) and the verification head.

Four tabs: **In use** (:mod:`.overview_tab`), **Fine-tune** (:mod:`.finetune_tab`),
**Versions** (:mod:`.versions_tab`) and **Decision rule** (:mod:`.rule_tab`). Every long
task runs in a :class:`~desktop.ui.qthreading.Worker`, one at a time (:class:`JobSlot`);
the page's state is read off the UI thread too (:meth:`ModelPage.refresh`).

The page's operations come from a :class:`~.service.ModelService`: the one given, else
``ctx.model_service`` when the context carries one (tests), else the app's default.
"""

from __future__ import annotations

import logging
import sys
from html import escape
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QTabWidget, QWidget

from desktop.face.encoder_versions import ActivationRefused
from desktop.ui.checkin.model.finetune_tab import FineTuneTab
from desktop.ui.checkin.model.overview_tab import OverviewTab
from desktop.ui.checkin.model.rule_tab import RuleTab
from desktop.ui.checkin.model.service import (
    ModelOverview,
    ModelService,
    SwitchReport,
    prepare_for_training,
)
from desktop.ui.checkin.model.switcher import LiveSwitch
from desktop.ui.checkin.model.texts import PAGE_INTRO, error_html, num, pct
from desktop.ui.checkin.model.versions_tab import VersionsTab
from desktop.ui.checkin.model.widgets import JobSlot, MessageBox, scrolling
from desktop.ui.checkin.page_common import page_layout
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)


class ModelPage(QWidget):
    """Built by the manager dialog as ``ModelPage(ctx, parent)``. Its tabs see it as a
    :class:`~.host.ModelPageHost`.

    ``overview_shown(ModelOverview)`` when every tab shows a newly read state (``shown``).
    """

    overview_shown = Signal(object)

    def __init__(self, ctx: Any, parent: QWidget | None = None,
                 service: ModelService | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.service = service or getattr(ctx, "model_service", None) or ModelService()
        self.jobs = JobSlot(self)
        self.overview: ModelOverview | None = None
        self.shown: ModelOverview | None = None
        self.overview_worker: Worker | None = None
        self.compare_worker: Worker | None = None
        self.warmup_worker: Worker | None = None
        self.confirm_box: QMessageBox | None = None
        self._refresh_again = False

        layout = page_layout(self, "Model", PAGE_INTRO)
        self.message = MessageBox("modelPageMessage")
        self.overview_tab = OverviewTab()
        self.finetune_tab = FineTuneTab(self)
        self.versions_tab = VersionsTab(self)
        self.rule_tab = RuleTab(self)
        self.tabs = QTabWidget(objectName="modelTabs")
        self.tabs.setDocumentMode(True)
        for tab, title in ((self.overview_tab, "In use"), (self.finetune_tab, "Fine-tune"),
                           (self.versions_tab, "Versions"),
                           (self.rule_tab, "Decision rule")):
            self.tabs.addTab(scrolling(tab), title)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)

        self.switcher = self._live_switch()
        self.switcher.phase.connect(self.versions_tab.switch_phase)
        self.switcher.progress.connect(self.versions_tab.switch_progress_to)
        self.switcher.done.connect(self._on_switch_done)
        self.switcher.engine_reloaded.connect(self._on_engine_reloaded)
        if self.switcher.running:  # the manager was reopened during a switch
            self.jobs.hold("switch")
            self.versions_tab.switch_started("The encoder is being switched…")

    def _live_switch(self) -> LiveSwitch:
        session = self.ctx.session
        existing = session.findChild(LiveSwitch) if session is not None else None
        if existing is not None and existing.running:
            return existing
        if existing is not None:
            existing.deleteLater()
        return LiveSwitch(self.service, session, self.ctx.gallery)

    def tab(self, key: str) -> QWidget:
        """``overview``, ``finetune``, ``versions`` or ``rule``: show that tab."""
        widget = {"overview": self.overview_tab, "finetune": self.finetune_tab,
                  "versions": self.versions_tab, "rule": self.rule_tab}[key]
        for i in range(self.tabs.count()):
            if self.tabs.widget(i).widget() is widget:
                self.tabs.setCurrentIndex(i)
        return widget

    # -- getting ready to train ---------------------------------------------------------------
    def warm_up(self) -> Worker | None:
        """Load the training machinery in the background (once per process), so that Start
        begins at once; called when the Fine-tune tab is first shown."""
        if self.warmup_worker is not None or "torch._dynamo" in sys.modules:
            return None
        worker = Worker(prepare_for_training)
        worker.error.connect(lambda exc: log.warning("training warm-up failed: %s", exc))
        self.warmup_worker = worker
        worker.start()
        return worker

    # -- reading the state -------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the model's state off the UI thread, then show it (called when shown)."""
        if self.overview_worker is not None and self.overview_worker.is_running:
            self._refresh_again = True
            return
        worker = Worker(self.service.overview, self.ctx.gallery)
        worker.result.connect(self._on_overview)
        worker.error.connect(self._on_overview_error)
        worker.finished.connect(self._on_overview_finished)
        self.overview_worker = worker
        worker.start()

    def _on_overview(self, ov: ModelOverview) -> None:
        engine = getattr(self.ctx, "engine", None)
        ov.live_model_id = getattr(engine, "model_id", None) if engine is not None else None
        self.overview = ov
        if self.message.kind == "error":
            self.message.clear_message()
        # one tab per turn of the event loop, the one on screen first: the UI thread never
        # redraws all four at once
        tabs = [self.overview_tab, self.finetune_tab, self.versions_tab, self.rule_tab]
        current = self.tabs.currentWidget().widget()
        tabs.sort(key=lambda t: t is not current)
        self._show_next(ov, tabs)

    def _show_next(self, ov: ModelOverview, tabs: list[QWidget]) -> None:
        if self.overview is not ov:
            return  # a newer state is being shown
        tabs[0].show_overview(ov)
        if len(tabs) > 1:
            QTimer.singleShot(0, self, lambda: self._show_next(ov, tabs[1:]))
        else:
            self.shown = ov
            self.overview_shown.emit(ov)

    def _on_overview_error(self, exc: BaseException) -> None:
        log.warning("model overview failed: %s", exc)
        self.message.show_message("error", "The model's state could not be read: "
                                  + error_html(exc))

    def _on_overview_finished(self) -> None:
        self.overview_worker = None
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    def version_names(self) -> list[str]:
        return [r.name for r in self.overview.versions] if self.overview else []

    def _tau(self) -> float | None:
        return self.overview.tau if self.overview is not None else None

    # -- compare -----------------------------------------------------------------------------
    def compare(self, name: str) -> Worker | None:
        """Score ``name`` and the encoder in use on the same held-out pairs."""
        if self.jobs.busy:
            return None
        self.versions_tab.message.show_message(
            "info", f"Comparing {escape(name)} with the encoder in use on people set aside "
            "during training…")
        worker = Worker(self.service.compare, name, self._tau())
        worker.result.connect(self._on_compared)
        worker.error.connect(lambda exc: self.versions_tab.message.show_message(
            "error", error_html(exc)))
        self.compare_worker = worker
        self.jobs.start("compare", worker)
        return worker

    def _on_compared(self, check: Any) -> None:
        self.versions_tab.message.clear_message()
        self.versions_tab.show_comparison(check)

    # -- switching ---------------------------------------------------------------------------
    def _confirm(self, title: str, text: str, detail: str, yes: str, then: Any) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("modelConfirm")
        box.setInformativeText(detail)
        ok = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r: then() if box.clickedButton() is ok else None)
        self.confirm_box = box
        box.open()
        return box

    def _templates_text(self) -> str:
        ov = self.overview
        n = ov.readiness.templates if ov is not None else 0
        return (f"The gallery's {n} stored face template{'s' if n != 1 else ''} are updated "
                "for it; recognition pauses meanwhile.")

    def confirm_activate(self, name: str) -> QMessageBox:
        current = self.overview.active.name if self.overview else "the encoder in use"
        return self._confirm(
            "Activate an encoder", f"Use {name} at the front desk instead of {current}?",
            f"{self._templates_text()} First the guard checks that {name} does at least as "
            f"well as {current} on people set aside during training; if it does worse, "
            "nothing changes. You can roll back at any time.", "Activate",
            lambda: self.activate(name))

    def confirm_rollback(self) -> QMessageBox | None:
        if self.overview is None or self.overview.previous is None:
            return None
        previous = self.overview.previous
        return self._confirm(
            "Roll back", f"Go back to {previous}, the encoder used before "
            f"{self.overview.active.name}?", self._templates_text(), f"Roll back to {previous}",
            self.rollback)

    def confirm_delete(self, name: str) -> QMessageBox:
        return self._confirm(
            "Delete a version", f"Delete the encoder version {name}?",
            "Its weights and figures are removed from this computer. This cannot be undone.",
            "Delete", lambda: self.delete(name))

    def activate(self, name: str) -> bool:
        """Activate ``name`` (guarded), re-embed the gallery, reload the live engine."""
        return self._switch(name, f"Activating {name}…")

    def rollback(self) -> bool:
        return self._switch(None, "Rolling back…")

    def _switch(self, name: str | None, text: str) -> bool:
        if self.jobs.busy or self.switcher.running:
            return False
        self.jobs.hold("switch")
        self.message.clear_message()
        self.tab("versions")
        self.versions_tab.switch_started(text)
        self.switcher.start(name, self._tau())
        return True

    def cancel_switch(self) -> None:
        self.versions_tab.switch_phase("Stopping after the current batch…")
        self.switcher.cancel()

    def _on_switch_done(self, report: SwitchReport | None, exc: BaseException | None) -> None:
        box = self.versions_tab.message
        if isinstance(exc, ActivationRefused):
            text = "<b>The guard refused.</b> " + error_html(exc)
            ov = self.overview
            if ov is not None and ov.previous == exc.check.candidate:
                text += (f"<br>{escape(exc.check.candidate)} was in use before: <b>Roll "
                         "back</b> returns to it without the guard.")
            box.show_message("error", text)
            if exc.check.candidate_metrics is not None:
                self.versions_tab.show_comparison(exc.check)
        elif exc is not None:
            box.show_message("error", error_html(exc))
        elif report is None:
            box.show_message("warn", "Cancelled. The encoder in use is whatever the registry "
                             "holds now; any stored face templates not yet updated are updated "
                             "when the front desk reloads the encoder.")
        else:
            box.show_message("warn" if report.reembed_cancelled else "ok", switch_text(report))
            if report.check is not None and report.check.candidate_metrics is not None:
                self.versions_tab.show_comparison(report.check, activated=True)
        if isinstance(exc, ActivationRefused):
            self.versions_tab.switch_ended()
            self.jobs.release()
        self.refresh()

    def _on_engine_reloaded(self, engine: Any, exc: BaseException | None) -> None:
        self.versions_tab.switch_ended()
        self.jobs.release()
        box = self.versions_tab.message
        kind = box.kind or "ok"
        if exc is not None:
            box.show_message("warn" if kind != "error" else kind, box.text() + (
                "<br><b>The front desk could not load the new encoder:</b> "
                + error_html(exc)))
        elif engine is None:
            pass  # no live session to reload (nothing more to say)
        else:
            box.show_message(kind, box.text() + f"<br>The front desk now uses "
                             f"<b>{escape(str(getattr(engine, 'model_id', '?')))}</b>.")
        self.refresh()

    # -- delete --------------------------------------------------------------------------------
    def delete(self, name: str) -> Worker | None:
        if self.jobs.busy:
            return None
        worker = Worker(self.service.delete, name)
        worker.result.connect(lambda _r: self.versions_tab.message.show_message(
            "ok", f"Deleted {escape(name)}."))
        worker.error.connect(lambda exc: self.versions_tab.message.show_message(
            "error", error_html(exc)))
        worker.finished.connect(self.refresh)
        self.jobs.start("delete", worker)
        return worker

    # -- the rule ------------------------------------------------------------------------------
    def rule_changed(self) -> None:
        """Ask the live session to rebuild its matcher (with the rule now chosen)."""
        session = self.ctx.session
        if session is not None and hasattr(session, "refresh_matcher"):
            session.refresh_matcher()

    # -- manager hooks ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """The manager window closes: stop training, head fitting and comparisons. A switch
        in progress goes on (it lives on the live session) and reloads the engine."""
        for worker in (self.finetune_tab.worker, self.rule_tab.head_worker,
                       self.compare_worker, self.overview_worker):
            if worker is not None and worker.is_running:
                worker.cancel()


def switch_text(report: SwitchReport) -> str:
    """What a finished activation or roll-back did, in a few sentences."""
    v = report.version
    verb = "Activated" if report.action == "activate" else "Rolled back to"
    text = f"<b>{verb} {escape(v.name)}.</b>"
    check = report.check
    if check is not None and check.candidate_metrics is not None \
            and check.current_metrics is not None and check.candidate != check.current:
        new, old = check.candidate_metrics, check.current_metrics
        text += (f" On {new.pairs} pairs of people set aside during training it decides "
                 f"{pct(new.accuracy)} right (ROC AUC {num(new.roc_auc)}), against "
                 f"{pct(old.accuracy)} ({num(old.roc_auc)}) for {escape(check.current)}.")
    r = report.reembed
    if report.reembed_cancelled:
        done = r.done if r is not None else 0
        text += (f"<br>Updating the stored face templates was cancelled after {done}; the "
                 "rest are updated when the front desk reloads the encoder.")
    elif r is not None and r.total:
        text += f"<br>Updated {r.done} stored face template{'s' if r.done != 1 else ''}."
        if r.failed:
            text += f" {len(r.failed)} could not be read and are not matched."
    if report.head_missing:
        text += (f"<br>The verification head belongs to the previous encoder, so the distance "
                 f"threshold decides until a head is trained for {escape(v.name)} (Decision "
                 "rule tab).")
    return text
