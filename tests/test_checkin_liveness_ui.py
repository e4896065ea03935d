"""Liveness in the Check-in tab: the Settings page's choice reaches the live pipeline,
face labels show the prompt and the refusal, the log page lists withheld check-ins, and
the enrolment capture refuses a face that liveness refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
from checkin_fakes import FrameCapture, enrol_fake, unlock, walking
from PySide6.QtWidgets import QLabel

from desktop.face.camera import Frame
from desktop.face.liveness import LivenessStatus
from desktop.face.pipeline import FaceResult
from desktop.face.types import Face
from desktop.ui.checkin.enrol_work import LIVENESS_CHECKING, liveness_check
from desktop.ui.checkin.overlay import face_colour, face_detail, face_title, is_unknown
from desktop.ui.checkin.settings_page import LIVENESS_EXPLAINED
from desktop.ui.checkin.shots import ShotCheck

pytest_plugins = ["conftest_checkin"]


def still_camera(frames):
    return lambda source: FrameCapture(frames)


def open_manager(tab, qtbot, pin="2468"):
    unlock(qtbot, tab.open_manager(), pin)
    qtbot.waitUntil(lambda: tab.manager is not None, timeout=5_000)
    return tab.manager


def face(name=None, status=None, withheld=None, d=0.2) -> FaceResult:
    return FaceResult((10, 10, 80, 80), 1, name, d, 1 if name else None, 3, None, True, False,
                      status, withheld)


def test_labels_say_the_prompt_the_refusal_and_that_liveness_is_being_checked():
    asking = LivenessStatus("challenge", prompt="Blink, please", seconds_left=4.6)
    f = face("Ann", asking)
    assert face_title(f) == "Blink, please" and face_detail(f) == "Ann · 5 s"
    refused = face(None, LivenessStatus("spoof", reason_code="flat_motion"), withheld="Ann")
    assert face_title(refused) == "Unknown"
    assert face_detail(refused) == "photo suspected · check-in withheld"
    assert face_colour(refused) != face_colour(face(None, None))
    assert not is_unknown(refused)  # not offered for enrolment as an Unknown face
    checking = face("Ann", LivenessStatus("checking"))
    assert face_title(checking) == "Ann" and face_detail(checking).endswith("checking liveness")
    assert face_detail(face("Ann")) == "d = 0.20"  # liveness off: as before


def test_settings_page_sets_liveness_and_the_live_view_follows(make_tab, qtbot, gallery):
    enrol_fake(gallery, "ann", "Ann")
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None and tab.session.pipeline is not None,
                    timeout=10_000)
    assert tab.session.liveness == "off" and tab.session.pipeline.liveness is None
    page = open_manager(tab, qtbot).show_page("settings")
    assert page.liveness_combo.currentData() == "off"
    page.liveness_combo.setCurrentIndex(page.liveness_combo.findData("passive"))
    assert page.save() == {"liveness": "passive"}
    assert tab.gallery.get_setting("liveness") == "passive"
    assert tab.session.liveness == "passive"
    qtbot.waitUntil(lambda: tab.session.pipeline.liveness is not None, timeout=10_000)
    page.restore_defaults()
    assert page.liveness_combo.currentData() == "challenge"  # the shipped default
    notes = [label.text() for label in page.findChildren(QLabel)]
    assert LIVENESS_EXPLAINED in notes and "3-D mask" in LIVENESS_EXPLAINED


def test_an_unknown_stored_setting_means_off(make_tab, qtbot, gallery):
    gallery.set_setting("liveness", "sometimes")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    assert tab.session.liveness == "off"


def test_log_page_lists_withheld_check_ins_with_the_reason(make_tab, qtbot, gallery):
    ann = enrol_fake(gallery, "ann", "Ann")
    today = datetime.combine(date.today(), datetime.min.time())
    gallery.record_checkin(ann, 0.12, at=today + timedelta(hours=9))
    gallery.record_withheld(ann, 0.1, reason="flat_motion", camera="desk",
                            at=today + timedelta(hours=8))
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    page = open_manager(tab, qtbot).show_page("log")
    assert page.table.rowCount() == 1  # the check-in alone
    assert page.withheld_table.rowCount() == 1 and not page.withheld_table.isHidden()
    assert page.withheld_table.item(0, 5).text() == "photo suspected"
    assert page.summary.text().endswith("1 withheld by liveness")
    page.show_day(date.today() - timedelta(days=1))
    assert page.withheld_table.isHidden()


class ScriptedMonitor:
    """A liveness monitor answering a fixed state; counts frames and resets."""

    def __init__(self, status: LivenessStatus) -> None:
        self.answer = status
        self.observed = 0
        self.resets = 0

    def observe(self, image, index, scene_time, tracks) -> None:
        self.observed += 1

    def status(self, track_id):
        return self.answer

    def reset(self) -> None:
        self.resets += 1


def test_enrolment_takes_a_shot_only_of_a_face_judged_live():
    frame = Frame(np.zeros((120, 160, 3), np.uint8), 3, 0.1, 0.1)
    good = ShotCheck(True, "Good shot.", Face(box=(40, 20, 80, 80), score=1.0))
    checking = ScriptedMonitor(LivenessStatus("checking"))
    held = liveness_check(checking, frame, good)
    assert not held.ok and held.reason == LIVENESS_CHECKING and "liveness_pending" in held.codes
    spoof = liveness_check(ScriptedMonitor(LivenessStatus("spoof", reason_code="flat_motion")),
                           frame, good)
    assert not spoof.ok and spoof.reason.startswith("Photo suspected")
    asked = ScriptedMonitor(LivenessStatus("challenge", prompt="Blink, please"))
    assert liveness_check(asked, frame, good).reason == "Blink, please"
    assert liveness_check(ScriptedMonitor(LivenessStatus("live")), frame, good).ok
    nobody = ShotCheck(False, "No face found. Look at the camera.", None, codes=("no_face",))
    assert liveness_check(checking, frame, nobody) is nobody and checking.resets == 1
