"""The manager side of the Check-in tab: the PIN (set on first use, wrong PIN refused,
lockout), enrolment through the dialog (camera shots with reasons, photos, review,
look-alike warning, one transaction), enrolling an Unknown face from the live view, and
the People, Check-in log and Settings pages."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta

import cv2
import numpy as np
import pytest
from checkin_fakes import (
    CheckinEngine,
    FrameCapture,
    enrol_fake,
    face_patch,
    frame_with,
    unlock,
    walking,
    write_clip,
)
from live_fakes import FakeEngine
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from desktop.store import NewTemplate
from desktop.ui.checkin.manager import PAGES
from desktop.ui.checkin.overlay import is_unknown
from desktop.ui.checkin.people_page import DELETE, KEEP
from desktop.ui.checkin.pin import PinDialog
from desktop.ui.checkin.shots import check_shot

pytest_plugins = ["conftest_checkin"]


def still_camera(frames):
    """A capture factory for a camera showing ``frames`` in a loop."""
    return lambda source: FrameCapture(frames)


def open_manager(tab, qtbot, pin="2468"):
    dialog = tab.open_manager()
    assert isinstance(dialog, PinDialog)
    unlock(qtbot, dialog, pin)
    qtbot.waitUntil(lambda: tab.manager is not None, timeout=5_000)
    return tab.manager


def test_pin_is_set_on_first_use_and_a_wrong_pin_is_refused(make_tab, qtbot):
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    assert not tab.gallery.has_pin()
    first = tab.open_manager()
    assert first.create and first.windowTitle() == "Set the manager PIN"
    unlock(qtbot, first, "2468", again="2469")  # typed differently
    assert "differ" in first.message.text() and tab.manager is None
    unlock(qtbot, first, "24", again="24")  # too short
    assert "at least 4" in first.message.text() and tab.manager is None
    unlock(qtbot, first, "2468")
    qtbot.waitUntil(lambda: tab.manager is not None, timeout=5_000)
    assert tab.gallery.has_pin() and tab.gallery.verify_pin("2468")
    tab.manager.reject()
    qtbot.waitUntil(lambda: tab.manager is None, timeout=5_000)

    again = tab.open_manager()
    assert not again.create
    unlock(qtbot, again, "1111")
    assert tab.manager is None and again.isVisible()
    assert again.message.text() == "Wrong PIN. Try again."
    unlock(qtbot, again, "2468")
    qtbot.waitUntil(lambda: tab.manager is not None, timeout=5_000)
    assert tab.manager.page_keys() == [p.key for p in PAGES]
    assert tab.manager.page_keys() == ["people", "enrol", "log", "settings", "model"]


def test_repeated_wrong_pins_lock_entry_for_a_while(gallery, qtbot, monkeypatch):
    from types import SimpleNamespace

    from desktop.store import preferences

    gallery.set_pin("9999")
    now = [1_800_000_000.0]
    monkeypatch.setattr(preferences, "time", SimpleNamespace(time=lambda: now[0]))
    dialog = PinDialog(gallery, create=False)
    qtbot.addWidget(dialog)
    for _ in range(preferences.PIN_FREE_ATTEMPTS - 1):
        unlock(qtbot, dialog, "0000")
        assert dialog.message.text() == "Wrong PIN. Try again." and dialog.pin_edit.isEnabled()
    unlock(qtbot, dialog, "0000")
    assert dialog.seconds_locked() == preferences.PIN_FIRST_LOCK_S
    assert not dialog.pin_edit.isEnabled() and not dialog.ok_button.isEnabled()
    assert "Try again in 30 s" in dialog.message.text()
    dialog.pin_edit.setText("9999")
    dialog.submit()  # refused while locked, without even checking
    assert dialog._worker is None and dialog.result() == 0
    # The lockout survives a restart (kept in the gallery) and ends on time.
    again = PinDialog(gallery, create=False)
    qtbot.addWidget(again)
    assert again.locked and not again.pin_edit.isEnabled()
    now[0] += preferences.PIN_FIRST_LOCK_S + 1
    dialog._update_lock()
    assert dialog.pin_edit.isEnabled()
    unlock(qtbot, dialog, "9999")
    assert dialog.result() == 1 and gallery.pin_lockout_remaining() == 0


def test_enrolment_through_the_dialog_then_recognised_live(make_tab, qtbot, tmp_path):
    clip_path = write_clip(tmp_path / "bob.avi", walking("bob", 40, x0=150, step=2))
    tab = make_tab(source=str(clip_path), loop_files=True)
    qtbot.waitUntil(lambda: tab.session.engine is not None and tab.gallery is not None,
                    timeout=15_000)
    tab.gallery.set_pin("2468")
    manager = open_manager(tab, qtbot)
    page = manager.show_page("enrol")
    dialog = page.open_dialog("camera")
    qtbot.waitUntil(lambda: dialog.capturing, timeout=5_000)
    assert tab.session.paused  # live recognition waits while enrolling
    qtbot.waitUntil(lambda: len(dialog.shots) == 5, timeout=20_000)
    qtbot.waitUntil(lambda: not dialog.capturing, timeout=5_000)
    assert all(s.source == "webcam" and s.chip.shape == (150, 150, 3) for s in dialog.shots)
    assert dialog.chip_list.count() == 5
    assert "5 shots taken" in dialog.reason_label.text()
    assert not dialog.save_button.isEnabled()  # no name yet
    # Review: remove one chip.
    dialog.remove_shot(0)
    assert len(dialog.shots) == 4 and dialog.chip_list.count() == 4
    dialog.name_edit.setText("  Bob   Stone ")
    dialog.employee_edit.setText("E-17")
    assert dialog.warnings == [] and dialog.save_button.isEnabled()
    dialog.save()
    assert dialog.saved is not None
    people = tab.gallery.people()
    assert [(p.name, p.employee_id, p.n_templates) for p in people] == [("Bob Stone", "E-17", 4)]
    assert {t.source for t in tab.gallery.templates(people[0].id)} == {"webcam"}
    qtbot.waitUntil(lambda: not tab.session.paused, timeout=5_000)
    qtbot.waitUntil(lambda: any(f.name == "Bob Stone" for f in tab.view.faces), timeout=15_000)
    qtbot.waitUntil(lambda: tab.panel.names() == ["Bob Stone"], timeout=10_000)


def test_refused_shots_say_why(make_tab, qtbot, gallery):
    gallery.set_pin("2468")
    two = frame_with([("ann", 60, 100), ("bob", 400, 100)])
    tab = make_tab(source="0", capture_factory=still_camera([two]))
    qtbot.waitUntil(lambda: tab.session.engine is not None and tab.gallery is not None,
                    timeout=15_000)
    manager = open_manager(tab, qtbot)
    dialog = manager.show_page("enrol").open_dialog("camera")
    qtbot.waitUntil(lambda: dialog.rejections >= 2, timeout=10_000)
    assert dialog.reason_label.text() == ("Two faces in view. Only the person enrolling "
                                          "should be in the picture.")
    assert dialog.shots == []
    dialog.reject()


@pytest.mark.parametrize("change, reason", [
    ("blur", "Too blurry. Hold still."),
    ("small", "Face too small. Come closer."),
    ("turned", "Turn towards the camera."),
    ("tilted", "Keep your head level."),
    ("none", "No face found. Look at the camera."),
])
def test_shot_checks(change, reason):
    engine = CheckinEngine()
    image = frame_with([("ann", 200, 100)])
    if change == "blur":
        image = cv2.GaussianBlur(image, (0, 0), 3)
    elif change == "small":
        image = cv2.resize(image, (320, 180))
    elif change == "none":
        image = frame_with([])
    faces = engine.detect(image)
    clean = frame_with([("ann", 200, 100)])
    assert check_shot(clean, engine.detect(clean)).ok
    if change == "turned":  # nose towards one eye
        faces[0].landmarks[4, 0] = faces[0].landmarks[0, 0]
    elif change == "tilted":  # the whole face rotated by 30 degrees in the image plane
        lm = faces[0].landmarks
        c = lm.mean(axis=0)
        a = np.radians(30)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
        faces[0].landmarks[:] = (lm - c) @ rot.T + c
    check = check_shot(image, faces)
    assert not check.ok and check.reason == reason


def test_import_photos_with_checks_and_the_look_alike_warning(make_tab, qtbot, tmp_path,
                                                              gallery):
    enrol_fake(gallery, "ann", "Ann")
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.session.engine is not None and tab.gallery is not None,
                    timeout=15_000)
    good = tmp_path / "ann2.png"
    Image.fromarray(frame_with([("ann", 250, 120)])).save(good)
    both = tmp_path / "group.png"
    Image.fromarray(frame_with([("ann", 60, 100), ("bob", 400, 100)])).save(both)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    manager = open_manager(tab, qtbot)
    dialog = manager.show_page("enrol").open_dialog("none")
    qtbot.waitUntil(lambda: dialog.matcher_ready, timeout=5_000)
    worker = dialog.import_files([good, both, broken])
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)
    qtbot.waitUntil(lambda: len(dialog.shots) == 1, timeout=5_000)
    assert dialog.shots[0].source == "file" and dialog.shots[0].label == "ann2.png"
    assert "group.png: Two faces in this photo" in dialog.error_label.text()
    assert "broken.jpg" in dialog.error_label.text()
    # The new face is Ann's: the dialog warns and will not save without a tick.
    assert dialog.warnings and dialog.warnings[0].startswith("looks like Ann (already "
                                                             "enrolled), d = ")
    assert dialog.warning_frame.isVisible()
    dialog.name_edit.setText("Annie")
    assert not dialog.save_button.isEnabled()
    dialog.ack_box.setChecked(True)
    assert dialog.save_button.isEnabled()
    dialog.save()
    assert sorted(p.name for p in tab.gallery.people()) == ["Ann", "Annie"]


def test_saving_a_taken_name_is_refused_and_saves_nothing(make_tab, qtbot, gallery):
    enrol_fake(gallery, "ann", "Ann")
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera([frame_with([("bob", 200, 100)])]))
    qtbot.waitUntil(lambda: tab.session.engine is not None and tab.gallery is not None,
                    timeout=15_000)
    manager = open_manager(tab, qtbot)
    dialog = manager.show_page("enrol").open_dialog("camera")
    qtbot.waitUntil(lambda: len(dialog.shots) >= 1, timeout=10_000)
    dialog.stop_capture()
    dialog.name_edit.setText("ann")
    dialog.save()
    assert "already enrolled" in dialog.error_label.text()
    assert dialog.saved is None and [p.name for p in tab.gallery.people()] == ["Ann"]
    dialog.reject()


def test_enrol_an_unknown_face_from_the_live_view(make_tab, qtbot, tmp_path, gallery):
    gallery.set_pin("2468")
    clip_path = write_clip(tmp_path / "stranger.avi",
                           walking("stranger", 40, x0=150, step=2))
    tab = make_tab(source=str(clip_path), loop_files=True)
    qtbot.waitUntil(lambda: any(is_unknown(f) for f in tab.view.faces), timeout=15_000)
    face = tab.view.faces[0]
    geom = tab.view.geometry_for_frame()
    box = geom.map_box(face.box)
    menu = tab.view.context_menu(QPoint(int(box.center().x()), int(box.center().y())))
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts[0] == "Enrol this person…"
    assert "Choose camera or video file…" in texts
    pin_dialog = tab.enrol_track(face.track_id)
    assert isinstance(pin_dialog, PinDialog) and tab.enrol_dialog is None
    unlock(qtbot, pin_dialog, "2468")
    qtbot.waitUntil(lambda: tab.enrol_dialog is not None, timeout=5_000)
    dialog = tab.enrol_dialog
    assert dialog.shots[0].label == "live view"
    qtbot.waitUntil(lambda: len(dialog.shots) >= 3, timeout=15_000)
    dialog.name_edit.setText("Sam Stranger")
    dialog.save()
    qtbot.waitUntil(lambda: any(f.name == "Sam Stranger" for f in tab.view.faces),
                    timeout=15_000)


def test_people_page_rename_remove_photos_and_delete_with_or_without_history(
        make_tab, qtbot, gallery, monkeypatch):
    ann = enrol_fake(gallery, "ann", "Ann")
    bob = enrol_fake(gallery, "bob", "Bob")
    chip = cv2.resize(face_patch("bob"), (150, 150))
    gallery.add_templates(bob, [NewTemplate(chip, FakeEngine().embed(chip[None])[0],
                                            FakeEngine.model_id)])
    gallery.record_checkin(ann, 0.1)
    gallery.record_checkin(bob, 0.1)
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    manager = open_manager(tab, qtbot)
    page = manager.show_page("people")
    assert [p.name for p in page.people] == ["Ann", "Bob"]
    assert page.table.item(0, 0).icon() is not None and not page.table.item(0, 0).icon().isNull()
    page.select(ann)
    assert page.rename_selected("Ann Lee", employee_id="E-1")
    assert [p.name for p in tab.gallery.people()] == ["Ann Lee", "Bob"]
    page.select(bob)
    assert not page.rename_selected("ann lee")  # taken: refused with a message
    assert "already enrolled" in page.status.text()
    assert [p.name for p in tab.gallery.people()] == ["Ann Lee", "Bob"]
    # Remove one of Bob's two photos.
    from desktop.ui.checkin.people_page import PhotosDialog

    photos = PhotosDialog(tab.manager.ctx, tab.gallery.person(bob))
    qtbot.addWidget(photos)
    assert photos.list.count() == 2
    photos.list.item(1).setCheckState(Qt.CheckState.Checked)
    photos.remove_checked()
    assert tab.gallery.person(bob).n_templates == 1
    # Delete Ann keeping her history; delete Bob with his.
    page.refresh()
    page.select(ann)
    monkeypatch.setattr(page, "ask_keep_history", lambda person: KEEP)
    assert page.delete_selected()
    page.select(bob)
    monkeypatch.setattr(page, "ask_keep_history", lambda person: DELETE)
    assert page.delete_selected()
    assert tab.gallery.people() == [] and tab.gallery.templates() == []
    kept = tab.gallery.checkins_between()
    assert [(c.name, c.person_id) for c in kept] == [("Ann Lee", None)]
    monkeypatch.setattr(page, "ask_keep_history", lambda person: None)
    assert not page.delete_selected()  # nothing selected any more


def test_log_page_day_and_range_views_and_csv_export(make_tab, qtbot, gallery, tmp_path):
    ann = enrol_fake(gallery, "ann", "Ann")
    today = datetime.combine(date.today(), datetime.min.time())
    gallery.record_checkin(ann, 0.12, at=today + timedelta(hours=9))
    gallery.record_checkin(ann, 0.15, at=today - timedelta(days=1, hours=-10))
    gallery.record_checkin(ann, 0.2, at=today - timedelta(days=3, hours=-8))
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    assert tab.panel.names() == ["Ann"]
    manager = open_manager(tab, qtbot)
    page = manager.show_page("log")
    assert page.table.rowCount() == 1 and page.table.item(0, 3).text() == "0.120"
    page.show_day(date.today() - timedelta(days=1))
    assert page.table.rowCount() == 1 and page.table.item(0, 3).text() == "0.150"
    page.show_range(date.today() - timedelta(days=6), date.today())
    assert page.table.rowCount() == 3
    assert [page.table.item(r, 3).text() for r in range(3)] == ["0.120", "0.150", "0.200"]
    assert page.summary.text().endswith("3 check-ins by 1 person")
    out = tmp_path / "log.csv"
    assert page.export_to(out) == 3
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [r["d"] for r in rows] == ["0.2000", "0.1500", "0.1200"]
    assert "365 days" in page.retention.text()


def test_settings_page_changes_tau_cooldown_and_retention(make_tab, qtbot, gallery):
    ann = enrol_fake(gallery, "ann", "Ann")
    old = datetime.now() - timedelta(days=40)
    gallery.record_checkin(ann, 0.1, at=old)
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None and tab.session.engine is not None,
                    timeout=10_000)
    manager = open_manager(tab, qtbot)
    page = manager.show_page("settings")
    assert page.tau_spin.value() == pytest.approx(0.36)
    assert page.tau_equiv.text() == "= 0.60 as a plain L2 distance"
    assert page.cooldown_spin.value() == pytest.approx(4.0)
    page.tau_spin.setValue(0.30)
    page.cooldown_spin.setValue(1.5)
    page.retention_spin.setValue(30)
    changed = page.save()
    assert changed == {"tau": 0.3, "cooldown_hours": 1.5, "retention_days": 30}
    assert tab.gallery.get_setting("tau") == 0.3
    assert tab.session.tau == pytest.approx(0.3) and tab.view.tau == pytest.approx(0.3)
    assert tab.session.cooldown_s == pytest.approx(5400)
    assert page.apply_retention_now() == 1
    assert tab.gallery.count_checkins() == 0
    page.restore_defaults()
    assert page.tau_spin.value() == pytest.approx(0.36)
    # The Model page reports the encoder in use, and that the live engine runs another.
    model = manager.show_page("model")
    qtbot.waitUntil(lambda: model.shown is not None, timeout=10_000)
    assert model.overview_tab.encoder_name.text() == "dlib-resnet-v1"
    assert f"still running {FakeEngine.model_id}" in model.overview_tab.stale.text()


def test_adding_a_manager_page_is_one_line(make_tab, qtbot, gallery):
    from desktop.ui.checkin.manager import ManagerDialog, PageSpec

    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    manager = open_manager(tab, qtbot)
    pages = (*PAGES, PageSpec("extra", "Extra", "PySide6.QtWidgets:QLabel"))
    broken = (*PAGES, PageSpec("broken", "Broken", "no.such.module:Page"))
    extra = ManagerDialog(manager.ctx, pages=pages, initial="extra")
    qtbot.addWidget(extra)
    assert extra.current_key() == "extra" and extra.nav.count() == len(PAGES) + 1
    survived = ManagerDialog(manager.ctx, pages=broken)
    qtbot.addWidget(survived)
    assert "could not be opened" in survived.page("broken").text()

