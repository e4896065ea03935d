"""The store's behaviour, run against both backends: the SQLite file and a real
PostgreSQL server (started by the tests; see tests/postgres_server.py)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import date, datetime

import numpy as np
import pytest
from store_fakes import FakeEngine, chip_for, make_photo

from desktop.store import (
    DuplicatePersonError,
    Gallery,
    NewTemplate,
    PersonNotFoundError,
    PinError,
    PinLockedError,
    StoreError,
)
from desktop.store.enrol import enrol_from_images
from desktop.store.reembed import reembed_gallery

pytest_plugins = ["postgres_server"]


def tpl(engine: FakeEngine, identity: int, variant: int = 0, source: str = "file") -> NewTemplate:
    chip = chip_for(identity, variant)
    return NewTemplate(chip, engine.expected(chip), engine.model_id, "1", source)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        g = Gallery(tmp_path / "gallery.sqlite3")
    else:
        from desktop.store.postgres import PostgresGallery

        g = PostgresGallery(request.getfixturevalue("pg_url"))
    yield g
    g.close()


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine("fake-v1")


def test_enrol_roundtrip_and_lookups(store, engine):
    p = store.enrol("  Ada   Lovelace ", [tpl(engine, 1, 0, "webcam"), tpl(engine, 1, 1)],
                    employee_id=" E-7 ")
    assert (p.name, p.employee_id, p.n_templates) == ("Ada Lovelace", "E-7", 2)
    ts = store.templates(p.id, with_chips=True)
    assert [t.source for t in ts] == ["webcam", "file"]
    np.testing.assert_array_equal(ts[1].embedding, engine.expected(chip_for(1, 1)))
    assert np.abs(store.template_chip(ts[0].id).astype(int) - chip_for(1, 0)).max() <= 2
    assert store.templates(p.id)[0].chip_jpeg == b""
    assert store.person_by_name("ada LOVELACE").id == p.id == store.person(p.id).id
    assert store.model_counts() == {"fake-v1": 2}
    assert [n.person_id for n in store.nearest_people("fake-v1", engine.expected(chip_for(1)))] \
        == [p.id]


def test_validation_and_duplicates_save_nothing(store, engine):
    with pytest.raises(ValueError, match="NaN"):
        store.enrol("Ada", [tpl(engine, 1), NewTemplate(chip_for(1), np.full(128, np.nan), "m")])
    assert store.people() == [] and store.templates() == []
    store.enrol("Ada", [tpl(engine, 1)], employee_id="E1")
    with pytest.raises(DuplicatePersonError, match="already enrolled"):
        store.enrol("ADA", [tpl(engine, 2)])
    with pytest.raises(DuplicatePersonError, match="E1"):
        store.enrol("Bob", [tpl(engine, 2)], employee_id="E1")
    twin = store.enrol("Ada", [tpl(engine, 2)], allow_duplicate_name=True)
    assert len(store.find_people("ada")) == 2
    with pytest.raises(StoreError, match="Several people"):
        store.person_by_name("Ada")
    assert store.rename_person(twin.id, "Ada B").name == "Ada B"
    assert [p.name for p in store.people()] == ["Ada", "Ada B"]


def test_templates_revision_rename(store, engine):
    r0 = store.revision()
    p = store.enrol("Ada", [tpl(engine, 1)])
    r1 = store.revision()
    ids = store.add_templates(p.id, [tpl(engine, 1, 1), tpl(engine, 1, 2)])
    r2 = store.revision()
    store.remove_template(ids[0])
    assert r0 < r1 < r2 < store.revision() and store.person(p.id).n_templates == 2
    assert store.rename_person(p.id, "Ada King", employee_id="E9").employee_id == "E9"
    assert store.rename_person(p.id, employee_id=None).employee_id is None
    with pytest.raises(PersonNotFoundError):
        store.add_templates(999, [tpl(engine, 1)])


@pytest.mark.parametrize("keep", [True, False])
def test_delete_person_keeps_or_drops_history(store, engine, keep):
    ada = store.enrol("Ada", [tpl(engine, 1), tpl(engine, 1, 1)])
    bob = store.enrol("Bob", [tpl(engine, 2)])
    store.record_checkin(ada.id, 0.1, camera="front", rule="threshold(tau=0.36)")
    store.record_checkin(bob.id, 0.2)
    res = store.delete_person(ada.id, keep_history=keep)
    assert res.templates_deleted == 2 and [p.name for p in store.people()] == ["Bob"]
    rows = store.checkins_between()
    if keep:
        assert res.checkins_kept == 1
        gone = [c for c in rows if c.person_id is None]
        assert len(gone) == 1 and gone[0].name == "Ada" and gone[0].camera == "front"
    else:
        assert res.checkins_deleted == 1 and [c.name for c in rows] == ["Bob"]


def test_matcher_only_active_encoder_and_settings(store, engine):
    ada = store.enrol("Ada", [tpl(engine, 1)])
    other = FakeEngine("fake-v2")
    store.enrol("Bob", [NewTemplate(chip_for(2), other.expected(chip_for(2)), "fake-v2")])
    m = store.matcher("fake-v1")
    assert len(m) == 1 and m.revision == store.revision()
    r = m.identify_one(engine.expected(chip_for(1)))
    assert r.accepted and r.person_id == ada.id and r.d == pytest.approx(0.0, abs=1e-9)
    assert store.count_stale("fake-v1") == 1
    store.set_setting("tau", 0.2)
    store.set_setting("camera", {"source": "clip.mp4"})
    assert store.matcher("fake-v1").tau == 0.2
    assert store.settings()["camera"] == {"source": "clip.mp4"}
    store.set_setting("tau", None)
    assert store.get_setting("tau") == pytest.approx(0.36)


def test_reembed_switches_encoder(store, engine):
    store.enrol("Ada", [tpl(engine, 1), tpl(engine, 1, 1)])
    new = FakeEngine("fake-v2")
    report = reembed_gallery(store, new, batch_size=1)
    assert (report.total, report.done) == (2, 2) and store.model_counts() == {"fake-v2": 2}
    near = store.nearest_people("fake-v2", new.expected(chip_for(1)))
    assert near[0].name == "Ada" and near[0].d == pytest.approx(0.0, abs=1e-9)


def test_pin_and_lockout(store):
    assert not store.has_pin() and not store.verify_pin("1234")
    with pytest.raises(PinError, match="at least"):
        store.set_pin("12")
    store.set_pin("2468")
    assert store.verify_pin("2468") and not store.verify_pin("2469")
    with pytest.raises(PinError, match="wrong"):
        store.set_pin("9999", current_pin="0000")
    t0 = 1_000_000.0
    for _ in range(3):  # with the two wrong ones above: five in a row
        assert not store.verify_pin("0000", now=t0)
    with pytest.raises(PinLockedError):
        store.verify_pin("2468", now=t0 + 1)
    assert store.verify_pin("2468", now=t0 + 31)
    store.clear_pin()
    assert not store.has_pin()


def test_cooldown_queries_retention_and_csv(store, engine):
    ada = store.enrol("=Ada", [tpl(engine, 1)], employee_id="E1")
    t0 = datetime(2024, 3, 5, 9, 0).timestamp()
    hour = 3600.0
    assert store.record_checkin_if_due(ada.id, 0.1, cooldown_s=4 * hour, at=t0) is not None
    assert store.record_checkin_if_due(ada.id, 0.1, cooldown_s=4 * hour, at=t0 + hour) is None
    again = store.record_checkin_if_due(ada.id, 0.15, cooldown_s=4 * hour, at=t0 + 4 * hour)
    assert store.last_checkin(ada.id).id == again.id
    assert store.last_checkin_times() == {ada.id: t0 + 4 * hour}
    assert len(store.checkins_on(date(2024, 3, 5))) == 2
    assert len(store.checkins_between(t0 + 1, None)) == 1
    buf = io.StringIO()
    assert store.export_checkins_csv(buf) == 2
    assert list(csv.reader(io.StringIO(buf.getvalue())))[1][2] == "'=Ada"
    now = t0 + 400 * 86400
    store.record_checkin(ada.id, 0.1, at=now)
    assert store.apply_retention(365, now=now) == 2 and store.count_checkins() == 1
    store.delete_checkin(store.checkins_between()[0].id)
    with pytest.raises(StoreError, match="No check-in"):
        store.delete_checkin(12345)


def test_cooldown_is_atomic_across_connections(store, engine):
    pid = store.enrol("Ada", [tpl(engine, 1)]).id
    results = []
    barrier = threading.Barrier(6)

    def worker():
        barrier.wait()
        results.append(store.record_checkin_if_due(pid, 0.1, cooldown_s=3600))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1 and store.count_checkins() == 1


def test_enrol_from_images(store, engine, tmp_path):
    photos = [make_photo(tmp_path, f"a{i}.png", 3, variant=i) for i in range(2)]
    result = enrol_from_images(store, engine, "Cy", photos)
    assert result.created and len(result.template_ids) == 2
    lookalike = make_photo(tmp_path, "b.png", 3, variant=5)
    with pytest.raises(StoreError, match="looks like Cy"):
        enrol_from_images(store, engine, "Dee", [lookalike])


def test_daily_maintenance_applies_retention_once_a_day(store, engine):
    ada = store.enrol("Ada", [tpl(engine, 1)])
    now = time.time()
    store.record_checkin(ada.id, 0.1, at=now - 400 * 86400)
    store.set_setting("retention_days", 30)
    assert store.daily_maintenance(now=now + 2 * 86400).checkins_deleted == 1
    assert store.daily_maintenance(now=now + 2 * 86400 + 60).checkins_deleted is None


# -- check-ins withheld by liveness ----------------------------------------------------
def test_withheld_check_ins_are_kept_listed_and_not_counted(store, engine):
    ada = store.enrol("Ada", [tpl(engine, 1)], employee_id="E1")
    now = time.time()
    detail = json.dumps({"liveness": {"verdict": "spoof"}})
    w = store.record_withheld(ada.id, 0.12, reason="flat_motion", detail=detail,
                              camera="front", model_id="fake-v1", at=now - 60)
    store.record_withheld(ada.id, 0.15, reason="no_response", at=now)
    assert (w.name, w.employee_id, w.reason, w.camera) == ("Ada", "E1", "flat_motion", "front")
    rows = store.withheld_between(now - 3600, now + 1, newest_first=True)
    assert [r.reason for r in rows] == ["no_response", "flat_motion"]
    assert json.loads(rows[1].detail)["liveness"]["verdict"] == "spoof"
    assert [r.reason for r in store.withheld_between(now - 3600, now - 1)] == ["flat_motion"]
    assert store.count_checkins() == 0 and store.last_checkin(ada.id) is None
    with pytest.raises(PersonNotFoundError):
        store.record_withheld(999, 0.1, reason="flat_motion")
    with pytest.raises(ValueError, match="reason"):
        store.record_withheld(ada.id, 0.1, reason="")


@pytest.mark.parametrize("keep", [True, False])
def test_withheld_rows_follow_the_persons_history_and_retention(store, engine, keep):
    ada = store.enrol("Ada", [tpl(engine, 1)])
    bob = store.enrol("Bob", [tpl(engine, 2)])
    now = time.time()
    store.record_withheld(ada.id, 0.1, reason="flat_motion", at=now)
    store.record_withheld(bob.id, 0.1, reason="flat_motion", at=now - 40 * 86400)
    store.delete_person(ada.id, keep_history=keep)
    names = sorted((r.name, r.person_id is None) for r in store.withheld_between())
    assert names == ([("Ada", True), ("Bob", False)] if keep else [("Bob", False)])
    store.delete_checkins_before(now - 30 * 86400)
    assert [r.name for r in store.withheld_between()] == (["Ada"] if keep else [])
