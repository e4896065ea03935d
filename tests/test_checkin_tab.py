"""The Check-in tab end to end with a fake face engine on generated clips: live names and
d, one check-in inside the cooldown, camera faults and recovery, a damaged gallery, stale
templates, and a responsive UI thread while inference runs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from checkin_fakes import BusyEngine, CaptureSequence, FrameCapture, enrol_fake, walking
from live_fakes import FakeEngine
from PySide6.QtWidgets import QApplication, QLabel

from desktop.store import Gallery
from desktop.ui.checkin import live
from desktop.ui.checkin.overlay import d_text, d_tooltip, face_title
from desktop.ui.checkin_tab import describe_problem
from desktop.ui.heartbeat import Heartbeat

pytest_plugins = ["conftest_checkin"]


def named(tab, name):
    return any(f.name == name for f in tab.view.faces)


def test_tab_names_faces_on_a_video_file_and_checks_in_once(make_tab, gallery, clip, qtbot):
    pid = enrol_fake(gallery, "ann", "Ann Lee")
    tab = make_tab(source=str(clip), loop_files=True)
    assert tab.view.notice in ("Starting…", "Loading face models…")
    qtbot.waitUntil(lambda: named(tab, "Ann Lee"), timeout=15_000)
    face = next(f for f in tab.view.faces if f.name == "Ann Lee")
    assert face.d is not None and face.d < 0.36
    assert d_text(face.d).startswith("d = 0.")
    assert tab.view.notice == ""
    # One check-in: the banner, the side panel and the gallery agree.
    qtbot.waitUntil(lambda: len(tab.events) == 1, timeout=10_000)
    assert tab.events[0].person == "Ann Lee" and tab.events[0].person_id == pid
    assert tab.view.welcome.isVisible() and "Welcome, Ann Lee!" in tab.view.welcome.text()
    assert tab.panel.names() == ["Ann Lee"]
    # The clip loops: Ann walks in again and again, inside the 4 h cooldown.
    camera = tab.session.camera
    qtbot.waitUntil(lambda: camera.frames_read >= 150, timeout=20_000)
    qtbot.waitUntil(lambda: named(tab, "Ann Lee"), timeout=5_000)
    assert len(tab.events) == 1
    assert gallery.count_checkins() == 1
    assert tab.panel.names() == ["Ann Lee"]
    # Status fields and the snapshot hook for the Style tab.
    tab._update_status()
    assert tab.status_fields["camera_fps"].startswith("Camera ") and "—" not in \
        tab.status_fields["camera_fps"]
    assert tab.status_fields["inference_fps"].startswith("Recognition ")
    assert tab.status_fields["face_device"] == "Faces on CPU"
    frame = tab.latest_frame()
    assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8


def test_a_stranger_stays_unknown_and_empty_gallery_says_so(make_tab, clip, qtbot):
    tab = make_tab(source=str(clip), loop_files=True)
    qtbot.waitUntil(lambda: bool(tab.view.faces) and tab.view.faces[0].votes > 0,
                    timeout=15_000)
    assert tab.view.faces[0].name is None and tab.view.faces[0].d is None  # no one to compare
    assert face_title(tab.view.faces[0]) == "Unknown"
    qtbot.waitUntil(lambda: tab.view.notice.startswith("No one is enrolled"), timeout=5_000)
    assert tab.events == []


def test_camera_unplugged_mid_stream_shows_a_banner_and_recovers(make_tab, qtbot):
    frames = walking("bob", 30)
    first = FrameCapture(frames, fail_after=25)
    second = FrameCapture(frames)
    tab = make_tab(source="0", capture_factory=CaptureSequence(first, second))
    banner = tab.view.source_banner
    qtbot.waitUntil(lambda: tab.view.frame_index >= 5, timeout=10_000)
    assert not banner.isVisible()
    qtbot.waitUntil(banner.isVisible, timeout=10_000)
    assert banner.title.text() == "The camera stopped"
    assert "camera 0" in banner.detail.text()
    assert banner.countdown.text().startswith("Retrying")
    assert "retrying" in tab.source_label.text()
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=10_000)
    assert second.reads > 0
    index = tab.view.frame_index
    qtbot.waitUntil(lambda: tab.view.frame_index > index + 5, timeout=10_000)
    assert "live" in tab.source_label.text()


def test_no_camera_gives_a_banner_with_a_way_out(make_tab, qtbot, clip, monkeypatch):
    class Closed:
        def isOpened(self):
            return False

        def release(self):
            pass

    tab = make_tab(source="0", capture_factory=lambda src: Closed())
    banner = tab.view.source_banner
    qtbot.waitUntil(banner.isVisible, timeout=10_000)
    assert banner.title.text() == "No camera found"
    assert banner.choose_button.text() == "Choose camera or video file…"
    # "Choose camera or video file…" leads to the source dialog; pick the clip.
    dialog = tab.choose_source()
    dialog.file_edit.setText(str(clip))
    dialog.file_radio.setChecked(True)
    tab.session.capture_factory = None
    dialog._accept()
    assert tab.source == str(clip)
    qtbot.waitUntil(lambda: tab.view.frame_index >= 0 and not banner.isVisible(),
                    timeout=10_000)


def test_end_of_file_counts_down_and_plays_again(make_tab, qtbot, tmp_path, monkeypatch):
    from checkin_fakes import write_clip

    monkeypatch.setattr(live, "REPLAY_DELAY_S", 1.0)
    short = write_clip(tmp_path / "short.avi", walking("ann", 10))
    tab = make_tab(source=str(short))
    banner = tab.view.source_banner
    qtbot.waitUntil(banner.isVisible, timeout=10_000)
    assert banner.title.text() == "The video ended"
    assert banner.countdown.text().startswith("Playing again")
    first_camera = tab.session.camera
    qtbot.waitUntil(lambda: tab.session.camera is not first_camera, timeout=5_000)
    qtbot.waitUntil(lambda: not banner.isVisible() or tab.session.camera.frames_read > 0,
                    timeout=5_000)
    assert tab.session.camera.frames_read > 0


def test_a_missing_video_file_is_retried_with_growing_delays(make_tab, qtbot, tmp_path):
    tab = make_tab(source=str(tmp_path / "nowhere.mp4"))
    banner = tab.view.source_banner
    qtbot.waitUntil(banner.isVisible, timeout=10_000)
    assert banner.title.text() == "Cannot play video file nowhere.mp4"
    assert "not found" in banner.detail.text()
    assert banner.countdown.text().startswith("Trying again")
    first = banner.seconds_left()
    assert 1.0 <= first <= live.REOPEN_FIRST_S


def test_ui_thread_stays_responsive_while_inference_runs(make_tab, gallery, clip, qtbot):
    """A 10 ms heartbeat on the UI thread never waits more than 100 ms while the
    pipeline does real CPU work (torch, GIL released) on every frame."""
    enrol_fake(gallery, "ann", "Ann")
    tab = make_tab(source=str(clip), loop_files=True, engine_factory=BusyEngine)
    qtbot.waitUntil(lambda: tab.session.pipeline_running and bool(tab.view.faces),
                    timeout=20_000)
    painted = tab.view.paints
    results = tab.session.pipeline.stats().frames
    beat = Heartbeat(10).start()
    qtbot.wait(3000)
    beat.stop()
    processed = tab.session.pipeline.stats().frames - results
    assert processed >= 10, "the pipeline did not run during the heartbeat"
    assert tab.view.paints - painted >= 30, "the video was not repainted"
    assert len(beat.gaps) >= 100
    assert beat.max_gap_ms <= 100, f"the UI thread stalled {sorted(beat.gaps)[-5:]} ms"


def test_damaged_gallery_offers_the_latest_backup(make_tab, gallery_path, qtbot):
    g = Gallery(gallery_path)
    enrol_fake(g, "ann", "Ann")
    g.backup("manual")
    g.close()
    gallery_path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        p = gallery_path.with_name(gallery_path.name + suffix)
        if p.exists():
            p.unlink()
    tab = make_tab(source="0", capture_factory=lambda s: FrameCapture(walking("ann", 5)))
    qtbot.waitUntil(lambda: tab.opener.dialog is not None, timeout=10_000)
    dialog = tab.opener.dialog
    assert "damaged" in dialog.text() or "not a" in dialog.text()
    assert "latest backup" in dialog.informativeText()
    assert tab.gallery is None
    dialog.restore_button.click()
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    assert [p.name for p in tab.gallery.people()] == ["Ann"]
    broken = list(gallery_path.parent.glob("gallery.sqlite3.broken-*"))
    assert broken and broken[0].read_bytes().startswith(b"this is not a database")


def test_damaged_gallery_without_backup_never_becomes_empty_silently(make_tab, gallery_path,
                                                                     qtbot):
    gallery_path.write_bytes(b"garbage" * 500)
    tab = make_tab(source="0", capture_factory=lambda s: FrameCapture(walking("ann", 5)))
    qtbot.waitUntil(lambda: tab.opener.dialog is not None, timeout=10_000)
    dialog = tab.opener.dialog
    assert dialog.restore_button is None
    assert "no backup" in dialog.informativeText().lower()
    dialog.continue_button.click()
    qtbot.waitUntil(lambda: tab.gallery_error is not None, timeout=5_000)
    assert tab.gallery is None and not tab.manage_button.isEnabled()
    assert gallery_path.read_bytes() == b"garbage" * 500  # untouched
    assert tab.open_manager() is None


def test_templates_of_another_encoder_are_reembedded(make_tab, gallery, clip, qtbot):
    enrol_fake(gallery, "ann", "Ann", model_id="fake-v0")
    assert gallery.count_stale(FakeEngine.model_id) == 1
    tab = make_tab(source=str(clip), loop_files=True)
    qtbot.waitUntil(lambda: gallery.count_stale(FakeEngine.model_id) == 0, timeout=15_000)
    qtbot.waitUntil(lambda: not tab._reembedding, timeout=5_000)
    assert gallery.model_counts() == {FakeEngine.model_id: 1}
    qtbot.waitUntil(lambda: named(tab, "Ann"), timeout=15_000)


def test_problem_texts_and_tooltips():
    from desktop.face.camera import SourceState

    s = SourceState("retrying", "retrying in 1 s: cannot open camera 0", "camera 0", 1.0, 1)
    assert describe_problem(s, False)[0] == "No camera found"
    assert describe_problem(s, True)[0] == "The camera stopped"
    assert describe_problem(SourceState("ended", "", "video file a.mp4"), True)[0] == \
        "The video ended"
    assert d_tooltip(0.36) == "squared L2 distance, lower is closer; tau = 0.36"
    assert d_text(0.2149) == "d = 0.21" and d_text(float("inf")) == "" and d_text(None) == ""


def test_shutdown_is_quick_even_while_running(make_tab, clip, qtbot):
    tab = make_tab(source=str(clip), loop_files=True, engine_factory=BusyEngine)
    qtbot.waitUntil(lambda: tab.session.pipeline_running, timeout=20_000)
    start = time.monotonic()
    tab.shutdown()
    QApplication.processEvents()
    elapsed = time.monotonic() - start
    assert tab.session.camera.state.status == "stopped"
    assert elapsed < 5.0  # bounded by the waits in shutdown, not a speed claim


@pytest.mark.parametrize("spec", ["0", "rtsp://cam.local/live"])
def test_source_dialog_validates(qtbot, spec, tmp_path):
    from desktop.ui.checkin.source_dialog import SourceDialog

    d = SourceDialog(spec)
    qtbot.addWidget(d)
    assert d.source() == spec
    d.file_radio.setChecked(True)
    d.file_edit.setText(str(tmp_path / "missing.mp4"))
    assert d.source() is None and "existing video file" in d.message.text()
    d.url_radio.setChecked(True)
    d.url_edit.setText("not a url")
    assert d.source() is None


def test_the_last_source_is_remembered(make_tab, clip, tmp_path, qtbot):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    first = make_tab(autostart=False)
    first.restore_state(settings)
    assert first.source == "0"  # the shipped default: camera 0
    first.start()
    first.set_source(str(clip))
    first.save_state(settings)
    settings.sync()
    second = make_tab(autostart=False)
    second.restore_state(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert second.source == str(clip)
    second.start()
    qtbot.waitUntil(lambda: second.view.frame_index >= 0, timeout=10_000)
    assert "short" not in second.source_label.text() and "ann.avi" in second.source_label.text()


def test_cancelled_reembedding_keeps_old_templates_unused(gallery, qtbot):
    from PySide6.QtWidgets import QPushButton, QWidget

    from desktop.ui.checkin.startup import ReembedRunner

    for i in range(70):
        enrol_fake(gallery, "ann", f"Ann {i}", model_id="fake-v0")
    parent = QWidget()
    qtbot.addWidget(parent)
    runner = ReembedRunner(parent)
    done = []
    runner.done.connect(done.append)
    engine = BusyEngine(torch_ms=300)
    assert runner.start(gallery, engine)
    assert runner.progress is not None and runner.progress.isVisible()
    qtbot.waitUntil(lambda: runner.progress is None or runner.progress.value() > 0,
                    timeout=20_000)
    runner.progress.findChild(QPushButton).click()  # the dialog's Cancel button
    qtbot.waitUntil(lambda: done == [None], timeout=20_000)
    stale = gallery.count_stale(engine.model_id)
    assert 0 < stale < 70  # finished batches saved, the rest left for next time
    assert gallery.model_counts() == {"fake-v0": stale, engine.model_id: 70 - stale}


def test_main_window_gets_a_check_in_menu_and_status_fields(qtbot):
    from desktop.ui.main_window import MainWindow

    window = MainWindow(initial_tab="checkin")
    qtbot.addWidget(window)
    window.show()
    tab = window.tab("checkin")
    qtbot.waitUntil(lambda: tab._started, timeout=5_000)
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Check-in", "&Help"]
    labels = {name: window.findChild(QLabel, f"status_{name}") for name in
              ("camera_fps", "inference_fps")}
    assert labels["camera_fps"].text().startswith("Camera")
    assert labels["inference_fps"].text().startswith("Recognition")
    window.close()


def test_a_failing_pipeline_restarts_and_recovers(make_tab, gallery, clip, qtbot):
    from checkin_fakes import CheckinEngine

    class Flaky(CheckinEngine):
        def __init__(self):
            super().__init__()
            self.failures = 0

        def detect_boxes(self, image):
            if self.failures < 3:
                self.failures += 1
                raise RuntimeError("the detector hiccuped")
            return super().detect_boxes(image)

    enrol_fake(gallery, "ann", "Ann")
    engines = []
    tab = make_tab(source=str(clip), loop_files=True,
                   engine_factory=lambda: engines.append(Flaky()) or engines[-1])
    errors = []
    tab.session.pipeline_error.connect(errors.append)
    qtbot.waitUntil(lambda: len(errors) >= 3, timeout=15_000)
    assert "hiccuped" in str(errors[0])
    qtbot.waitUntil(lambda: named(tab, "Ann"), timeout=15_000)
    assert engines[0].failures == 3
