"""The manager's Model page on a tiny generated gallery with a tiny encoder: it opens in the
manager dialog (and behind the PIN), fine-tunes off the UI thread with a live curve and a
responsive UI, cancels, shows the activation guard's refusal, activates (re-embedding the
gallery and reloading the live engine) and rolls back, trains the verification head and
switches the decision rule, and exports the ROC as a PNG."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import torch
from model_page_fakes import (
    ChipEncoder,
    VersionEngine,
    fill_gallery,
    make_registry,
    make_service,
)
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from desktop.face.encoder_versions import BUILTIN
from desktop.face.training import TrainConfig, run_training
from desktop.face.training.jobs import fine_tune_version
from desktop.face.verifier import VerifierRule, fit_verifier, load_verifier, verifier_path
from desktop.imageio import load_rgb
from desktop.jobs import dataset_from_gallery
from desktop.store import Gallery, NewTemplate
from desktop.store.reembed import reembed_gallery
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.live import LiveSession
from desktop.ui.checkin.manager import PAGES, ManagerDialog
from desktop.ui.checkin.model import ModelPage
from desktop.ui.checkin.model.host import ModelPageHost
from desktop.ui.qthreading import shutdown_workers

pytest_plugins = ["conftest_checkin"]

PEOPLE, PHOTOS = 10, 4


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    """An encoder folder holding 'good' (fine-tuned on the generated gallery from the tiny
    built-in) and 'worse' (an encoder whose output is constant), neither active."""
    root = tmp_path_factory.mktemp("encoders")
    registry = make_registry(root)
    with Gallery(tmp_path_factory.mktemp("g") / "g.sqlite3") as g:
        fill_gallery(g, registry, PEOPLE, PHOTOS)
        config = TrainConfig(epochs=4, train="all", lr=3e-3, mining="all", device="cpu",
                             precision="fp32", batch_p=6, batch_k=3, heldout_fraction=0.3)
        run_training(fine_tune_version(dataset_from_gallery(g), "good", config, registry))
    constant = ChipEncoder(seed=1)
    with torch.no_grad():
        constant.fc.weight.zero_()
    registry.save("worse", constant, base=BUILTIN, heldout=registry.heldout(registry.get("good")),
                  metrics={}, data={}, train={})
    return root


@pytest.fixture
def trained(trained_root, tmp_path):
    """A copy of trained_root (nothing active) and a gallery embedded by the built-in."""
    shutil.copytree(trained_root, tmp_path / "enc")
    registry = make_registry(tmp_path / "enc")
    g = Gallery(tmp_path / "trained.sqlite3")
    fill_gallery(g, registry, PEOPLE, PHOTOS)
    yield registry, g
    g.close()


@pytest.fixture
def registry(tmp_path):
    return make_registry(tmp_path / "encoders")


@pytest.fixture
def model_gallery(tmp_path, registry):
    g = Gallery(tmp_path / "gallery.sqlite3")
    fill_gallery(g, registry, PEOPLE, PHOTOS)
    yield g
    g.close()


@pytest.fixture
def open_page(qtbot):
    """``open_page(registry, gallery)``: the Model page in the manager dialog (real PAGES,
    the PIN bypassed by building the dialog from a context), once its state is shown."""
    sessions, dialogs = [], []

    def make(registry, gallery):
        session = LiveSession()
        session.set_gallery(gallery)
        session.set_engine(VersionEngine(registry))
        sessions.append(session)
        ctx = ManagerContext(session, gallery)
        ctx.model_service = make_service(registry)
        dialog = ManagerDialog(ctx, initial="model")
        qtbot.addWidget(dialog)
        dialogs.append(dialog)  # the dialog has no parent: keep it alive
        dialog.show()
        page = dialog.page("model")
        qtbot.waitUntil(lambda: page.shown is not None, timeout=10_000)
        return page

    yield make
    for session in sessions:
        session.shutdown()
    assert shutdown_workers(10.0)


def idle(page) -> bool:
    return not page.jobs.busy


def accept(box: QMessageBox) -> None:
    """Press the confirm box's accepting button."""
    button = next(b for b in box.buttons()
                  if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
    button.click()


# -- tests -----------------------------------------------------------------------------------


def test_the_model_page_opens_in_the_manager_and_shows_what_is_in_use(
        registry, model_gallery, open_page):
    page = open_page(registry, model_gallery)
    dialog = page.window()
    assert isinstance(dialog, ManagerDialog)
    assert isinstance(page, ModelPage) and dialog.current_key() == "model"
    assert dialog.page_keys() == [p.key for p in PAGES]
    # the tabs reach the page only through the small ModelPageHost interface
    assert isinstance(page, ModelPageHost)
    assert page.finetune_tab.page is page.versions_tab.page is page.rule_tab.page is page
    ov = page.overview_tab
    assert ov.encoder_name.text() == BUILTIN
    assert ov.rule_name.text().startswith("Distance threshold: same person when d ≤ 0.36")
    # the threshold rule measured on the gallery's own pairs (every same-person pair)
    same_pairs = PEOPLE * PHOTOS * (PHOTOS - 1) // 2
    assert f"{same_pairs} same-person" in ov.figures_note.text()
    assert ov.table.text("pairs", 0) == str(2 * same_pairs)
    assert ov.table.text("op", 0) == "d ≤ 0.36"
    assert ov.roc.plot.curve_count() == 1
    tab = page.finetune_tab
    assert tab.readiness.kind == "ok"
    assert tab.readiness.text().startswith(f"{PEOPLE} of the {PEOPLE} enrolled people")
    assert tab.start_button.isEnabled()
    assert page.versions_tab.table.rowCount() == 1
    assert not page.rule_tab.head_radio.isEnabled()  # no head yet


def test_the_model_page_is_behind_the_manager_pin(make_tab, qtbot):
    from checkin_fakes import FrameCapture, walking
    from live_fakes import FakeEngine

    from desktop.ui.checkin.pin import PinDialog

    tab = make_tab(source="0", capture_factory=lambda s: FrameCapture(walking("bob", 3)),
                   engine_factory=FakeEngine)
    qtbot.waitUntil(lambda: tab.gallery is not None and tab.session.engine is not None,
                    timeout=10_000)
    tab.gallery.set_pin("2468")
    pin = tab.open_manager("model")
    assert isinstance(pin, PinDialog) and tab.manager is None
    pin.pin_edit.setText("2468")
    pin.submit()
    qtbot.waitUntil(lambda: tab.manager is not None, timeout=10_000)
    page = tab.manager.page("model")
    assert isinstance(page, ModelPage) and tab.manager.current_key() == "model"
    qtbot.waitUntil(lambda: page.shown is not None, timeout=10_000)
    assert page.overview_tab.encoder_name.text() == BUILTIN
    # an empty gallery cannot be trained on, and the page says why
    assert page.finetune_tab.readiness.kind == "warn"
    assert not page.finetune_tab.start_button.isEnabled()
    # the fake live engine is not the registry's encoder: the page points that out
    assert "still running fake-v1" in page.overview_tab.stale.text()
    tab.manager.reject()


@pytest.mark.slow
def test_a_fine_tune_runs_from_the_page_off_the_ui_thread(registry, model_gallery, open_page,
                                                          qtbot):
    page = open_page(registry, model_gallery)
    service = page.service
    threads = []
    fine_tune = service.fine_tune

    def recorded(*args, cancel=None, progress=None, **kwargs):
        threads.append(threading.get_ident())
        return (yield from fine_tune(*args, cancel=cancel, progress=progress, **kwargs))

    service.fine_tune = recorded
    tab = page.tab("finetune")
    tab.epochs_spin.setValue(3)
    tab.lr_box.setCurrentText("0.003")
    tab.train_box.setCurrentIndex(tab.train_box.findData("all"))
    tab.mining_box.setCurrentIndex(tab.mining_box.findData("all"))
    tab.name_edit.setText("office-1")
    # Showing the tab loads torch's optimizer machinery in the background (once per
    # process, seconds); the heartbeat below measures the fine-tune itself.
    qtbot.waitUntil(lambda: page.warmup_worker is None or not page.warmup_worker.is_running,
                    timeout=60_000)

    steps = []
    gaps = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    clicked = [False]

    def beat():  # counts while the fine-tune's worker runs, once the start click returned
        now = clock.elapsed()
        if clicked[0] and tab.worker is not None and tab.worker.is_running:
            gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    before = clock.elapsed()
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    click_ms = clock.elapsed() - before
    last[0], clicked[0] = clock.elapsed(), True
    worker = tab.worker
    assert worker is not None and page.jobs.kind == "train"
    worker.yielded.connect(lambda e: steps.append(e) if type(e).__name__ == "StepReport"
                           else None)
    assert not tab.start_button.isEnabled() and tab.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    heartbeat.stop()

    assert threads and threads[0] != threading.get_ident()  # ran in a worker thread
    assert tab.status.text() == "Finished."
    summary = tab.summary
    assert summary is not None and summary.name == "office-1"
    assert registry.get("office-1").meta["train"]["mining"] == "all"
    assert registry.active().name == BUILTIN  # saved, not activated
    # the curves got a point for every step and every epoch (and epoch 0 for accuracy)
    points = tab.curves.drawn_points()
    assert points["step_loss"] == len(steps) > 0
    assert points["epoch_loss"] == points["active"] == summary.outcome.result.epochs_run == 3
    assert points["heldout"] == 4
    assert "held-out accuracy" in tab.epoch_line.text()
    # before / after on the same held-out pairs, and the outcome in words
    qtbot.waitUntil(tab.comparison.isVisible, timeout=5_000)
    check = summary.check
    assert check.candidate == "office-1" and check.current == BUILTIN
    assert tab.comparison.table.columnCount() == 3
    assert tab.comparison.roc.plot.curve_count() == 2
    assert tab.result.text().startswith("<b>Saved office-1")
    qtbot.waitUntil(lambda: page.versions_tab.table.rowCount() == 2, timeout=5_000)
    # the UI thread never stalled: the 10 ms heartbeat kept beating through the whole run
    # (a fast machine finishes in well under a second, so count beats against run time)
    assert len(gaps) >= 3 and len(gaps) >= sum(gaps) / 100, (len(gaps), sum(gaps))
    # the click itself only wires and starts the worker (about 50 ms here; generous bound)
    assert click_ms <= 500, f"the start click held the UI thread {click_ms} ms"
    # (in full suite runs the first gap once reached 230-300 ms: two parses of the 68-point
    # landmark model, left running by earlier tests' pipelines, were sharing the GIL; the
    # model is now parsed once per process, see desktop.face.liveness.landmarks68)
    assert max(gaps) <= 200, f"the UI thread stalled {max(gaps)} ms ({sorted(gaps)[-5:]})"


def test_cancel_stops_the_fine_tune_and_saves_nothing(registry, model_gallery, open_page,
                                                      qtbot):
    page = open_page(registry, model_gallery)
    tab = page.tab("finetune")
    tab.epochs_spin.setValue(200)
    tab.train_box.setCurrentIndex(tab.train_box.findData("final"))
    tab.start()
    qtbot.waitUntil(lambda: len(tab.curves.step_x) >= 2, timeout=60_000)
    qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.worker is None, timeout=30_000)
    assert tab.status.text().startswith("Cancelled")
    assert tab.result.kind == "info"
    assert [v.name for v in registry.list()] == [BUILTIN]
    assert tab.progress.value() < 1000
    assert idle(page) and tab.start_button.isEnabled()


def test_too_few_people_are_explained_and_the_core_refuses(registry, tmp_path, open_page,
                                                           qtbot):
    g = Gallery(tmp_path / "small.sqlite3")
    fill_gallery(g, registry, people=3, photos=2)
    person = g.people()[0]
    for t in g.templates(person.id)[1:]:  # leave one person with a single photo
        g.remove_template(t.id)
    page = open_page(registry, g)
    tab = page.tab("finetune")
    assert tab.readiness.kind == "warn"
    assert "2 of the 3 enrolled people" in tab.readiness.text()
    assert "at least 3 people" in tab.readiness.text()
    assert not tab.start_button.isEnabled()
    tab._can_train = True  # the core refuses on its own, with the same message
    tab.start()
    qtbot.waitUntil(lambda: tab.worker is None, timeout=10_000)
    assert tab.result.kind == "error" and "at least 3 people" in tab.result.text()
    assert [v.name for v in registry.list()] == [BUILTIN]
    g.close()


@pytest.mark.slow  # the first user of trained_root pays for its fine-tune
def test_the_guard_refusal_is_shown_with_its_reason(trained, open_page, qtbot):
    registry, g = trained
    registry.activate("good")
    reembed_gallery(g, registry.embedder(device="cpu"))
    page = open_page(registry, g)
    versions = page.tab("versions")
    assert versions.table.rowCount() == 3
    versions.select("worse")
    assert versions.activate_button.isEnabled()
    versions.activate_button.click()
    box = page.confirm_box
    assert box is not None and "worse" in box.text()
    accept(box)
    qtbot.waitUntil(lambda: idle(page), timeout=60_000)
    message = versions.message
    assert message.kind == "error"
    assert "The guard refused" in message.text() and "worse than the active encoder" in \
        message.text()
    assert registry.active().name == "good"
    assert versions.comparison.isVisible()
    assert "does worse than good" in versions.comparison.verdict.text()
    assert not page.ctx.session.paused  # recognition resumed
    assert page.ctx.session.engine.model_id == registry.get("good").model_id


def test_activation_reembeds_the_gallery_and_reloads_the_live_engine(trained, open_page,
                                                                     qtbot):
    registry, g = trained
    page = open_page(registry, g)
    session = page.ctx.session
    good = registry.get("good")
    progress = []
    page.switcher.progress.connect(lambda f, m: progress.append(f))
    paused = []
    page.switcher.phase.connect(lambda _t: paused.append(session.paused))
    accept(page.confirm_activate("good"))
    qtbot.waitUntil(lambda: idle(page), timeout=60_000)
    assert registry.active().name == "good"
    assert g.model_counts() == {good.model_id: PEOPLE * PHOTOS}
    assert session.engine.model_id == good.model_id
    assert progress and progress[-1] == 1.0
    assert paused and all(paused) and not session.paused
    message = page.versions_tab.message
    assert message.kind == "ok"
    assert f"Updated {PEOPLE * PHOTOS} stored face templates" in message.text()
    assert f"The front desk now uses <b>{good.model_id}</b>" in message.text()
    assert "is now in use" in page.versions_tab.comparison.verdict.text()
    qtbot.waitUntil(lambda: page.overview_tab.encoder_name.text() == "good", timeout=5_000)

    # Roll back: one click (and a confirmation), no guard; the gallery follows.
    qtbot.waitUntil(lambda: page.versions_tab.rollback_button.isEnabled(), timeout=5_000)
    assert page.versions_tab.rollback_button.text() == f"Roll back to {BUILTIN}"
    page.versions_tab.rollback_button.click()
    accept(page.confirm_box)
    qtbot.waitUntil(lambda: idle(page), timeout=60_000)
    assert registry.active().name == BUILTIN
    assert g.model_counts() == {BUILTIN: PEOPLE * PHOTOS}
    assert session.engine.model_id == BUILTIN
    assert page.versions_tab.message.text().startswith(f"<b>Rolled back to {BUILTIN}.")


def test_a_switch_finishes_when_the_manager_closes_midway(trained, open_page, qtbot):
    registry, g = trained
    page = open_page(registry, g)
    session = page.ctx.session
    assert page.activate("good")
    page.window().reject()  # the manager closes: the pages' shutdown hooks run
    page.setParent(None)
    page.deleteLater()  # and the page goes; the switch lives on the session
    good = registry.get("good")
    qtbot.waitUntil(lambda: session.engine.model_id == good.model_id, timeout=60_000)
    assert g.model_counts() == {good.model_id: PEOPLE * PHOTOS}
    assert not session.paused


def test_the_head_is_trained_from_the_page_and_the_rule_switched(registry, model_gallery,
                                                                 open_page, qtbot):
    page = open_page(registry, model_gallery)
    rule = page.tab("rule")
    assert rule.threshold_radio.isChecked() and not rule.head_radio.isEnabled()
    rule.features_box.setCurrentIndex(rule.features_box.findData("chi2"))
    qtbot.mouseClick(rule.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: idle(page), timeout=30_000)
    assert rule.head_message.kind == "ok", rule.head_message.text()
    head = load_verifier(model_id=BUILTIN)
    assert head.features == "chi2" and verifier_path(BUILTIN).is_file()
    assert head.metrics["train_positives"] == PEOPLE * PHOTOS * (PHOTOS - 1) // 2
    qtbot.waitUntil(lambda: rule.head_radio.isEnabled(), timeout=5_000)
    assert rule.train_button.text() == "Retrain the head"
    qtbot.waitUntil(lambda: page.overview_tab.roc.plot.curve_count() == 2, timeout=5_000)
    assert rule.table.columnCount() == 3  # the threshold and the head, side by side

    rule.head_radio.click()
    qtbot.waitUntil(lambda: idle(page), timeout=10_000)
    assert registry.rule() == "verifier"
    assert rule.rule_message.kind == "ok" and "verifier-chi2" in rule.rule_message.text()
    assert isinstance(registry.decision_rule(0.36, strict=False), VerifierRule)
    qtbot.waitUntil(lambda: page.overview_tab.rule_name.text().startswith(
        "Verification head: same person when p ≥ 0.50"), timeout=5_000)
    assert "(in use)" in page.overview_tab.table.horizontalHeaderItem(2).text()

    rule.threshold_radio.click()
    qtbot.waitUntil(lambda: idle(page), timeout=10_000)
    assert registry.rule() == "threshold"
    assert type(registry.decision_rule(0.36, strict=False)).__name__ == "ThresholdRule"


def test_the_roc_is_exported_as_png(registry, model_gallery, open_page, qtbot, tmp_path):
    page = open_page(registry, model_gallery)
    roc = page.overview_tab.roc
    assert roc.export_button.isEnabled()
    written = []
    roc.exported.connect(written.append)
    roc.export_png(tmp_path / "roc.png")
    qtbot.waitUntil(lambda: bool(written), timeout=10_000)
    image = load_rgb(tmp_path / "roc.png")
    assert image.shape[2] == 3 and image.shape[0] > 300
    assert (image != 255).any()


def test_rule_figures_and_the_live_rule_without_qt(registry, tmp_path):
    from desktop.ui.checkin.model.service import rule_figures

    # three people, each two descriptors 0.1 apart; people 2 apart: separable at tau
    base = np.eye(3, 128, dtype=np.float32) * np.sqrt(2.0)
    emb = np.concatenate([base, base + 0.1 / np.sqrt(128)])
    labels = np.array([0, 1, 2, 0, 1, 2])
    fig = rule_figures(emb, labels, tau=0.36)
    assert fig.same_pairs == 3 and fig.different_pairs == 3 and fig.people == 3
    assert fig.threshold.accuracy == 1.0 and fig.threshold.roc_auc == 1.0
    assert fig.head is None
    rule = registry.decision_rule(0.3, strict=False)
    assert rule.accept(0.2, emb[0], emb[3])[0] and not rule.accept(0.4, emb[0], emb[1])[0]
    # the head chosen, but none for the live engine's encoder: the threshold decides
    head = fit_verifier(emb, labels, "abs", BUILTIN)
    head.save()
    registry.set_rule("verifier")
    assert isinstance(registry.decision_rule(0.3, strict=False), VerifierRule)
    fallback = registry.decision_rule(0.3, model_id="another@1234", strict=False)
    assert type(fallback).__name__ == "ThresholdRule" and fallback.tau == 0.3


def test_new_templates_of_another_encoder_are_pointed_out(registry, model_gallery, open_page):
    chip = np.zeros((150, 150, 3), np.uint8)
    model_gallery.enrol("Newcomer", [NewTemplate(chip, np.ones(128, np.float32), "other@1",
                                                 "", "file")])
    page = open_page(registry, model_gallery)
    assert "1 stored face templates were made by another encoder" in \
        page.overview_tab.stale.text()


def test_a_switch_without_qt_reembeds_every_template(trained):
    """The core path the page drives (no Qt): a guarded switch, then the re-embedding."""
    registry, g = trained
    messages = []
    gen = make_service(registry).switch(g, "good", 0.36,
                                        progress=lambda f, m="": messages.append(m))
    phases = []
    while True:
        try:
            phases.append(next(gen).message)
        except StopIteration as stop:
            report = stop.value
            break
    n = PEOPLE * PHOTOS
    assert phases == ["Checking good against the encoder in use on people set aside during "
                      "training…"]
    assert report.action == "activate" and report.reembed.done == n
    assert report.check.allowed and report.version.name == "good"
    assert f"{n}/{n} templates" in messages
    assert reembed_gallery(g, registry.embedder(device="cpu")).total == 0
