"""The Check-in tab with the real face engine on faces-dev (skipped without the shared data):
the clip as the camera, one-shot enrolment of Lin-Manuel Miranda and Alex Lacamoire,
names and d on the live view, one check-in, enrolment photos through the dialog, and the
UI thread's heartbeat while the real models run."""

from __future__ import annotations

import pytest
from checkin_fakes import unlock

from desktop.store import Gallery
from desktop.ui.heartbeat import Heartbeat

pytest_plugins = ["conftest_checkin"]
pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

LIN, ALEX = "Lin-Manuel Miranda", "Alex Lacamoire"


@pytest.fixture(scope="module")
def engine():
    api = pytest.importorskip("desktop.face.api")
    return api.FaceEngine().warm_up()


@pytest.fixture
def video(shared_data):
    return shared_data / "faces-dev" / "video"


def enrol_both(gallery: Gallery, engine, video) -> None:
    from desktop.store.enrol import enrol_from_images

    enrol_from_images(gallery, engine, LIN, [video / "lin-manuel-miranda.png"])
    enrol_from_images(gallery, engine, ALEX, [video / "alex-lacamoire.png"])


def test_the_clip_as_camera_names_lin_manuel_and_checks_him_in_once(make_tab, gallery, engine,
                                                                    video, qtbot):
    enrol_both(gallery, engine, video)
    tab = make_tab(source=str(video / "short_hamilton_clip.mp4"), engine_factory=lambda: engine)
    qtbot.waitUntil(lambda: any(f.name == LIN for f in tab.view.faces), timeout=60_000)
    face = next(f for f in tab.view.faces if f.name == LIN)
    assert 0.0 < face.d <= 0.36
    qtbot.waitUntil(lambda: any(e.person == LIN for e in tab.events), timeout=60_000)
    assert "Welcome" in tab.view.welcome.text()
    qtbot.waitUntil(lambda: tab.session.camera.state.status == "ended", timeout=60_000)
    lin = [c for c in gallery.checkins_between() if c.name == LIN]
    assert len(lin) == 1 and lin[0].d <= 0.36
    assert LIN in tab.panel.names()


def test_enrolment_photos_through_the_dialog(make_tab, gallery, engine, video, shared_data,
                                             qtbot):
    from desktop.store.enrol import enrol_from_images

    enrol_from_images(gallery, engine, LIN, [video / "lin-manuel-miranda.png"])
    tab = make_tab(source=str(video / "short_hamilton_clip.mp4"), engine_factory=lambda: engine)
    qtbot.waitUntil(lambda: tab.session.engine is not None and tab.gallery is not None,
                    timeout=30_000)
    pin = tab.open_manager()
    unlock(qtbot, pin, "2468")
    qtbot.waitUntil(lambda: tab.manager is not None, timeout=5_000)
    dialog = tab.manager.show_page("enrol").open_dialog("none")
    qtbot.waitUntil(lambda: dialog.matcher_ready, timeout=10_000)
    images = shared_data / "faces-dev" / "images"
    worker = dialog.import_files([video / "alex-lacamoire.png", images / "two_people.jpg"])
    qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)
    qtbot.waitUntil(lambda: len(dialog.shots) == 1, timeout=5_000)
    assert "two_people.jpg: Two faces in this photo" in dialog.error_label.text()
    assert dialog.warnings == []  # Alex looks like no one enrolled
    dialog.name_edit.setText(ALEX)
    dialog.save()
    assert sorted(p.name for p in gallery.people()) == [ALEX, LIN]
    # Lin again under another name: the look-alike warning blocks a silent duplicate.
    again = tab.manager.show_page("enrol").open_dialog("none")
    qtbot.waitUntil(lambda: again.matcher_ready, timeout=10_000)
    worker = again.import_files([video / "lin-manuel-miranda.png"])
    qtbot.waitUntil(lambda: not worker.is_running and len(again.shots) == 1, timeout=60_000)
    assert again.warnings[0].startswith(f"looks like {LIN} (already enrolled), d = 0.0")
    again.name_edit.setText("L. M. Miranda")
    assert not again.save_button.isEnabled()
    again.reject()


def test_ui_heartbeat_while_the_real_engine_runs(make_tab, gallery, engine, video, qtbot):
    enrol_both(gallery, engine, video)
    tab = make_tab(source=str(video / "short_hamilton_clip.mp4"), engine_factory=lambda: engine,
                   loop_files=True)
    qtbot.waitUntil(lambda: tab.session.pipeline_running and bool(tab.view.faces),
                    timeout=60_000)
    before = tab.session.pipeline.stats().frames
    beat = Heartbeat(10).start()
    qtbot.wait(4000)
    beat.stop()
    assert tab.session.pipeline.stats().frames - before >= 5
    assert beat.max_gap_ms <= 100, f"the UI thread stalled {sorted(beat.gaps)[-5:]} ms"


def test_enrolment_from_the_clip_as_camera_finds_good_shots_of_lin_manuel(engine, video):
    """The camera enrolment's judge, over the clip's frames: the close-up gives good shots
    (80 px limit; at 100 px the clip's 80-96 px faces were nearly all "too small"), and
    each good shot's descriptor is Lin-Manuel Miranda's (his photo within tau)."""
    import cv2
    import numpy as np

    from desktop.face.camera import Frame
    from desktop.imageio import load_rgb
    from desktop.ui.checkin.enrol_work import capture_loop

    capture = cv2.VideoCapture(str(video / "short_hamilton_clip.mp4"))
    close_up = []
    for index in range(200):
        ok, bgr = capture.read()
        assert ok
        if index >= 100 and index % 5 == 0:  # the close-up, every 5th frame
            close_up.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(close_up) == 20
    stream = iter(Frame(image=f, index=i, timestamp=float(i), wall_time=float(i))
                  for i, f in enumerate(close_up))
    updates = []
    for update in capture_loop(lambda: next(stream, None), engine, idle_s=0.0):
        updates.append(update)
        if len(updates) == len(close_up):
            break
    good = [u for u in updates if u.check.ok]
    assert len(good) >= 3, [u.check.reason for u in updates]
    [photo] = engine.analyze(load_rgb(video / "lin-manuel-miranda.png"))
    for update in good:
        d = float(np.sum((update.descriptor - photo.descriptor) ** 2))
        assert d <= 0.36, d
