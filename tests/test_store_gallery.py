"""The gallery store: people, templates, check-ins, settings, PIN, CSV, threads."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import stat
import threading
import time
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from store_fakes import FakeEngine, chip_for

from desktop.store import (
    DuplicatePersonError,
    Gallery,
    GalleryBusyError,
    NewTemplate,
    PersonNotFoundError,
    PinError,
    StoreError,
    default_db_path,
)
from desktop.store.chips import decode_chip
from desktop.store.schema import current_version

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def tpl(engine: FakeEngine, identity: int, variant: int = 0, source: str = "file") -> NewTemplate:
    chip = chip_for(identity, variant)
    return NewTemplate(chip, engine.expected(chip), engine.model_id, "1", source)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine("fake-v1")


@pytest.fixture
def gallery(tmp_path):
    g = Gallery(tmp_path / "g" / "gallery.sqlite3")
    yield g
    g.close()


def test_fresh_gallery_schema_and_pragmas(gallery):
    conn = sqlite3.connect(gallery.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current_version() >= 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"people", "templates", "checkins", "settings", "manager_pin"} <= tables
    conn.close()


@posix_only
def test_default_location_and_owner_only_permissions(facestyle_home):
    g = Gallery()
    try:
        assert g.path == default_db_path() == facestyle_home / "data" / "gallery.sqlite3"
        g.enrol("Ada", [tpl(FakeEngine(), 1)])
        for p in (g.path, g.path.with_name(g.path.name + "-wal"),
                  g.path.with_name(g.path.name + "-shm")):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(g.path.parent.stat().st_mode) == 0o700
        info = g.backup("manual")
        assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(info.path.parent.stat().st_mode) == 0o700
    finally:
        g.close()


@posix_only
def test_custom_path_does_not_chmod_existing_folders(tmp_path):
    os.chmod(tmp_path, 0o755)
    Gallery(tmp_path / "mine.sqlite3").close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "mine.sqlite3").stat().st_mode) == 0o600


def test_enrol_roundtrip(gallery, engine):
    p = gallery.enrol("  Ada   Lovelace ", [tpl(engine, 1, 0, "webcam"), tpl(engine, 1, 1)],
                      employee_id=" E-7 ")
    assert p.name == "Ada Lovelace" and p.employee_id == "E-7" and p.n_templates == 2
    ts = gallery.templates(p.id, with_chips=True)
    assert [t.source for t in ts] == ["webcam", "file"]
    assert all(t.model_id == "fake-v1" and t.model_version == "1" for t in ts)
    np.testing.assert_array_equal(ts[1].embedding, engine.expected(chip_for(1, 1)))
    chip = decode_chip(ts[0].chip_jpeg)
    assert chip.shape == (150, 150, 3)
    assert np.abs(chip.astype(int) - chip_for(1, 0)).max() <= 2
    np.testing.assert_array_equal(gallery.template_chip(ts[0].id), chip)
    assert gallery.templates(p.id)[0].chip_jpeg == b""  # chips only when asked
    assert gallery.person_by_name("ada lovelace").id == p.id
    assert gallery.model_counts() == {"fake-v1": 2}


def test_enrol_validation_saves_nothing(gallery, engine):
    with pytest.raises(ValueError, match="at least one"):
        gallery.enrol("Ada", [])
    bad_chip = NewTemplate(np.zeros((10, 10, 3), np.uint8), np.zeros(128), "m")
    with pytest.raises(ValueError, match="chip"):
        gallery.enrol("Ada", [tpl(engine, 1), bad_chip])
    with pytest.raises(ValueError, match="NaN"):
        gallery.enrol("Ada", [NewTemplate(chip_for(1), np.full(128, np.nan), "m")])
    with pytest.raises(ValueError, match="source"):
        gallery.enrol("Ada", [NewTemplate(chip_for(1), np.zeros(128), "m", source="phone")])
    with pytest.raises(ValueError, match="empty"):
        gallery.enrol("   ", [tpl(engine, 1)])
    assert gallery.people() == [] and gallery.templates() == []


def test_duplicates_refused(gallery, engine):
    gallery.enrol("Ada", [tpl(engine, 1)], employee_id="E1")
    with pytest.raises(DuplicatePersonError, match="already enrolled"):
        gallery.enrol("ADA", [tpl(engine, 2)])
    with pytest.raises(DuplicatePersonError, match="E1"):
        gallery.enrol("Bob", [tpl(engine, 2)], employee_id="E1")
    twin = gallery.enrol("Ada", [tpl(engine, 2)], allow_duplicate_name=True)
    assert len(gallery.find_people("ada")) == 2
    with pytest.raises(Exception, match="Several people"):
        gallery.person_by_name("Ada")
    assert gallery.rename_person(twin.id, "Ada B").name == "Ada B"
    assert len(gallery.people()) == 2 and len(gallery.templates()) == 2


def test_rename_add_remove_templates_and_revision(gallery, engine):
    r0 = gallery.revision()
    p = gallery.enrol("Ada", [tpl(engine, 1)])
    r1 = gallery.revision()
    assert r1 > r0
    ids = gallery.add_templates(p.id, [tpl(engine, 1, 1), tpl(engine, 1, 2)])
    assert len(ids) == 2 and gallery.person(p.id).n_templates == 3
    r2 = gallery.revision()
    assert r2 > r1
    gallery.remove_template(ids[0])
    assert gallery.person(p.id).n_templates == 2 and gallery.revision() > r2
    p2 = gallery.rename_person(p.id, "Ada King", employee_id="E9")
    assert (p2.name, p2.employee_id) == ("Ada King", "E9")
    assert gallery.rename_person(p.id, employee_id=None).employee_id is None
    with pytest.raises(PersonNotFoundError):
        gallery.add_templates(999, [tpl(engine, 1)])
    with pytest.raises(PersonNotFoundError):
        gallery.person_by_name("nobody")


@pytest.mark.parametrize("keep", [True, False])
def test_delete_person_history_choice(gallery, engine, keep):
    ada = gallery.enrol("Ada", [tpl(engine, 1), tpl(engine, 1, 1)])
    bob = gallery.enrol("Bob", [tpl(engine, 2)])
    gallery.record_checkin(ada.id, 0.1, camera="front", rule="threshold(tau=0.36)")
    gallery.record_checkin(bob.id, 0.2)
    res = gallery.delete_person(ada.id, keep_history=keep)
    assert res.templates_deleted == 2 and res.name == "Ada"
    assert [p.name for p in gallery.people()] == ["Bob"]
    assert all(t.person_id == bob.id for t in gallery.templates())
    rows = gallery.checkins_between()
    if keep:
        assert res.checkins_kept == 1 and res.checkins_deleted == 0
        kept = [c for c in rows if c.person_id is None]
        assert len(kept) == 1 and kept[0].name == "Ada" and kept[0].camera == "front"
    else:
        assert res.checkins_deleted == 1
        assert [c.name for c in rows] == ["Bob"]
    with pytest.raises(PersonNotFoundError):
        gallery.delete_person(ada.id, keep_history=True)


def test_deleted_biometrics_are_overwritten_in_the_file(gallery, engine):
    t = tpl(engine, 3, 5)
    p = gallery.enrol("Ada", [t])
    blob = np.asarray(t.embedding, "<f4").tobytes()
    jpeg = gallery.templates(p.id, with_chips=True)[0].chip_jpeg
    gallery._checkpoint()

    def file_bytes() -> bytes:
        data = b""
        for suffix in ("", "-wal"):
            f = gallery.path.with_name(gallery.path.name + suffix)
            if f.exists():
                data += f.read_bytes()
        return data

    assert blob in file_bytes() and jpeg in file_bytes()
    gallery.delete_person(p.id, keep_history=False)
    assert blob not in file_bytes() and jpeg not in file_bytes()


def test_renamed_person_shows_current_name_in_history(gallery, engine):
    p = gallery.enrol("Ada", [tpl(engine, 1)])
    gallery.record_checkin(p.id, 0.1)
    gallery.rename_person(p.id, "Ada King")
    assert gallery.checkins_between()[0].name == "Ada King"
    gallery.delete_person(p.id, keep_history=True)
    assert gallery.checkins_between()[0].name == "Ada King"


def test_matcher_uses_only_active_model(gallery, engine):
    ada = gallery.enrol("Ada", [tpl(engine, 1)])
    other = FakeEngine("fake-v2")
    gallery.enrol("Bob", [NewTemplate(chip_for(2), other.expected(chip_for(2)), "fake-v2")])
    m = gallery.matcher("fake-v1")
    assert len(m) == 1 and m.n_people == 1 and m.model_id == "fake-v1"
    r = m.identify_one(engine.expected(chip_for(1)))
    assert r.accepted and r.person_id == ada.id and r.d == pytest.approx(0.0, abs=1e-9)
    assert gallery.count_stale("fake-v1") == 1
    assert m.revision == gallery.revision()
    gallery.set_setting("tau", 0.2)
    assert gallery.matcher("fake-v1").tau == 0.2
    assert gallery.matcher("fake-v1", tau=0.3, margin=0.0).margin == 0.0


def test_settings(gallery):
    assert gallery.get_setting("tau") == pytest.approx(0.36)
    assert gallery.get_setting("cooldown_hours") == 4.0
    assert gallery.get_setting("nothing", 5) == 5
    gallery.set_setting("tau", 0.3)
    gallery.set_setting("camera", {"source": "clip.mp4"})
    s = gallery.settings()
    assert s["tau"] == 0.3 and s["camera"] == {"source": "clip.mp4"} and "margin" in s
    gallery.set_setting("tau", None)
    assert gallery.get_setting("tau") == pytest.approx(0.36)


def test_pin_hashing(gallery, tmp_path):
    assert not gallery.has_pin() and not gallery.verify_pin("1234")
    with pytest.raises(PinError, match="at least"):
        gallery.set_pin("12")
    pin = "correct-horse-93"
    gallery.set_pin(pin)
    assert gallery.has_pin()
    assert gallery.verify_pin(pin)
    assert not gallery.verify_pin("correct-horse-94") and not gallery.verify_pin("")
    row = sqlite3.connect(gallery.path).execute("SELECT salt, hash FROM manager_pin").fetchone()
    assert pin.encode() not in row[0] + row[1] and len(row[0]) == 16 and len(row[1]) == 32
    gallery._checkpoint()
    assert pin.encode() not in gallery.path.read_bytes()
    # same PIN in another gallery: a different salt, so a different hash
    other = Gallery(tmp_path / "other.sqlite3")
    other.set_pin(pin)
    row2 = sqlite3.connect(other.path).execute("SELECT salt, hash FROM manager_pin").fetchone()
    other.close()
    assert row2[0] != row[0] and row2[1] != row[1]
    # changing it needs the current PIN
    with pytest.raises(PinError, match="wrong"):
        gallery.set_pin("9999")
    with pytest.raises(PinError, match="wrong"):
        gallery.set_pin("9999", current_pin="0000")
    gallery.set_pin("9999", current_pin=pin)
    assert gallery.verify_pin("9999") and not gallery.verify_pin(pin)
    gallery.clear_pin()
    assert not gallery.has_pin()


def test_cooldown_and_last_checkin(gallery, engine):
    ada = gallery.enrol("Ada", [tpl(engine, 1)])
    bob = gallery.enrol("Bob", [tpl(engine, 2)])
    t0 = 1_700_000_000.0
    hour = 3600.0
    first = gallery.record_checkin_if_due(ada.id, 0.1, cooldown_s=4 * hour, at=t0, rule="r")
    assert first is not None and first.name == "Ada" and first.at == t0 and first.rule == "r"
    assert gallery.record_checkin_if_due(ada.id, 0.1, cooldown_s=4 * hour, at=t0 + hour) is None
    assert gallery.record_checkin_if_due(ada.id, 0.1, cooldown_s=4 * hour,
                                         at=t0 + 4 * hour - 1) is None
    assert gallery.record_checkin_if_due(bob.id, 0.2, cooldown_s=4 * hour, at=t0 + hour)
    again = gallery.record_checkin_if_due(ada.id, 0.15, cooldown_s=4 * hour, at=t0 + 4 * hour)
    assert again is not None
    assert gallery.last_checkin(ada.id).id == again.id
    assert gallery.last_checkin_times() == {ada.id: t0 + 4 * hour, bob.id: t0 + hour}
    assert gallery.person(ada.id).last_checkin == t0 + 4 * hour
    assert gallery.count_checkins() == 3
    gallery.delete_person(bob.id, keep_history=True)
    with pytest.raises(PersonNotFoundError):
        gallery.record_checkin_if_due(bob.id, 0.2, cooldown_s=0)
    assert gallery.last_checkin(bob.id) is None  # history kept, but no longer theirs


def test_cooldown_is_atomic_across_threads(tmp_path, engine):
    path = tmp_path / "g.sqlite3"
    with Gallery(path) as g:
        pid = g.enrol("Ada", [tpl(engine, 1)]).id
    galleries = [Gallery(path, maintenance=False) for _ in range(2)]  # two connections
    shared = galleries[0]
    results = []
    barrier = threading.Barrier(6)

    def worker(g):
        barrier.wait()
        results.append(g.record_checkin_if_due(pid, 0.1, cooldown_s=3600))

    threads = [threading.Thread(target=worker, args=(g,))
               for g in (shared, shared, shared, galleries[1], galleries[1], galleries[1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert shared.count_checkins() == 1
    for g in galleries:
        g.close()


def test_day_and_range_queries(gallery, engine):
    ada = gallery.enrol("Ada", [tpl(engine, 1)])
    day = date(2024, 3, 5)
    midnight = datetime.combine(day, datetime.min.time())
    times = [midnight - timedelta(seconds=1), midnight, midnight + timedelta(hours=9),
             midnight + timedelta(hours=23, minutes=59, seconds=59), midnight + timedelta(days=1)]
    for t in times:
        gallery.record_checkin(ada.id, 0.1, at=t)
    on_day = gallery.checkins_on(day)
    assert [c.when.replace(tzinfo=None) for c in on_day] == times[1:4]
    assert [c.at for c in gallery.checkins_on(day, newest_first=True)] == \
        sorted((c.at for c in on_day), reverse=True)
    assert len(gallery.checkins_between(midnight + timedelta(hours=1), None)) == 3
    assert len(gallery.checkins_between(None, midnight)) == 1
    assert len(gallery.checkins_between(day, day + timedelta(days=2))) == 4
    assert len(gallery.checkins_between(limit=2, newest_first=True)) == 2
    assert len(gallery.checkins_between(person_id=ada.id)) == 5
    gallery.delete_checkin(on_day[0].id)
    assert [c.id for c in gallery.checkins_on(day)] == [c.id for c in on_day[1:]]
    with pytest.raises(StoreError, match="No check-in"):
        gallery.delete_checkin(on_day[0].id)


def test_retention_applied_daily(gallery, engine):
    ada = gallery.enrol("Ada", [tpl(engine, 1)])
    now = time.time()
    for age_days in (400, 366, 364, 10, 0):
        gallery.record_checkin(ada.id, 0.1, at=now - age_days * 86400)
    assert gallery.apply_retention(365, now=now) == 2
    assert gallery.count_checkins() == 3
    assert gallery.apply_retention(0, now=now) == 0  # 0 keeps everything
    gallery.set_setting("retention_days", 30)
    report = gallery.daily_maintenance(now=now)
    assert report.checkins_deleted is None  # not due: applied today by apply_retention
    report = gallery.daily_maintenance(now=now + 86400)
    assert report.checkins_deleted == 1  # the 364-day-old one; the 10-day one is kept
    assert gallery.count_checkins() == 2
    assert gallery.daily_maintenance(now=now + 86400 + 60).checkins_deleted is None


def test_csv_export(gallery, engine, tmp_path):
    ada = gallery.enrol("=HYPERLINK(\"x\")", [tpl(engine, 1)], employee_id="E1")
    bob = gallery.enrol("Zoë", [tpl(engine, 2)])
    t0 = datetime(2024, 5, 1, 8, 30)
    gallery.record_checkin(ada.id, 0.12345, camera="front", rule="threshold(tau=0.36)",
                           score=0.2, model_id="fake-v1", at=t0)
    gallery.record_checkin(bob.id, 0.2, at=t0 + timedelta(days=1))
    buf = io.StringIO()
    assert gallery.export_checkins_csv(buf, start=t0.date(), end=t0.date() + timedelta(days=1)
                                       ) == 1
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows[0][:6] == ["time", "date", "name", "employee_id", "person_id", "d"]
    assert rows[1][2] == "'=HYPERLINK(\"x\")"  # defused formula
    assert rows[1][1] == "2024-05-01" and rows[1][0].startswith("2024-05-01T08:30:00")
    assert rows[1][3:9] == ["E1", str(ada.id), "0.1235", "front", "threshold(tau=0.36)",
                            "0.2000"]
    out = tmp_path / "log.csv"
    assert gallery.export_checkins_csv(out) == 2
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "Zoë".encode() in raw


def test_busy_database_gives_a_clear_error(gallery, engine):
    p = gallery.enrol("Ada", [tpl(engine, 1)])
    other = sqlite3.connect(gallery.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        slow = Gallery(gallery.path, busy_timeout_s=0.2, maintenance=False)
        assert [x.name for x in slow.people()] == ["Ada"]  # WAL: reading still works
        with pytest.raises(GalleryBusyError, match="in use by another program"):
            slow.record_checkin(p.id, 0.1)
        slow.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert gallery.count_checkins() == 0


def test_shared_gallery_under_concurrent_threads(gallery, engine):
    """UI-like readers and worker-like writers on one Gallery: no errors, nothing lost."""
    people = [gallery.enrol(f"P{i}", [tpl(engine, i)]).id for i in range(4)]
    errors = []

    def writer(k):
        try:
            for j in range(25):
                gallery.record_checkin(people[(k + j) % 4], 0.1, at=1000.0 + k * 100 + j)
            gallery.add_templates(people[k], [tpl(engine, k, 9)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(25):
                gallery.people()
                gallery.matcher("fake-v1").identify(np.zeros((2, 128), np.float32))
                gallery.checkins_between(newest_first=True, limit=10)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gallery.count_checkins() == 100
    assert len(gallery.templates()) == 8


def test_wrong_pins_lock_pin_entry(gallery):
    from desktop.store import PinLockedError

    gallery.set_pin("2468")
    t0 = 1_000_000.0
    for _ in range(4):
        assert not gallery.verify_pin("0000", now=t0)
    assert gallery.pin_lockout_remaining(t0) == 0
    assert not gallery.verify_pin("0000", now=t0)  # the 5th: locked for 30 s
    assert gallery.pin_lockout_remaining(t0) == pytest.approx(30.0)
    with pytest.raises(PinLockedError, match="Try again in 29 seconds") as info:
        gallery.verify_pin("2468", now=t0 + 1)  # even the right PIN waits
    assert info.value.retry_after == pytest.approx(29.0)
    assert not gallery.verify_pin("1111", now=t0 + 31)  # 6th wrong: 60 s
    assert gallery.pin_lockout_remaining(t0 + 31) == pytest.approx(60.0)
    # the count survives reopening the gallery
    again = Gallery(gallery.path, maintenance=False)
    assert again.pin_lockout_remaining(t0 + 31) == pytest.approx(60.0)
    assert again.verify_pin("2468", now=t0 + 100)  # right PIN after the wait resets it
    assert again.pin_lockout_remaining(t0 + 100) == 0
    for _ in range(4):
        assert not again.verify_pin("0000", now=t0 + 200)
    assert again.pin_lockout_remaining(t0 + 200) == 0  # back to 5 free attempts
    again.close()
