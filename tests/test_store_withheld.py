"""Check-ins withheld by liveness in the store, on both backends (the SQLite file and a
PostgreSQL server started by the tests): kept with their reason, listed by period, never
counted as check-ins, deleted with a person's history and by retention; an old (schema 1)
gallery file gains the table when opened; a migration to the server copies them."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from store_fakes import FakeEngine, chip_for

from desktop.store import Gallery, NewTemplate, PersonNotFoundError, list_backups
from desktop.store import schema as schema_mod

pytest_plugins = ["postgres_server"]


def tpl(engine: FakeEngine, identity: int) -> NewTemplate:
    chip = chip_for(identity, 0)
    return NewTemplate(chip, engine.expected(chip), engine.model_id, "1", "file")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        g = Gallery(tmp_path / "gallery.sqlite3")
    else:
        from desktop.store.postgres import PostgresGallery

        g = PostgresGallery(request.getfixturevalue("pg_url"))
    yield g
    g.close()


def test_withheld_check_ins_are_kept_listed_and_not_counted(store):
    engine = FakeEngine("fake-v1")
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
def test_withheld_rows_follow_the_persons_history_and_retention(store, keep):
    engine = FakeEngine("fake-v1")
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


def test_a_schema_1_gallery_file_gains_the_table_when_opened(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite3"
    with monkeypatch.context() as m:
        m.setattr(schema_mod, "MIGRATIONS", schema_mod.MIGRATIONS[:1])
        with Gallery(path, maintenance=False) as g:  # as version 1 made it
            g.enrol("Ada", [tpl(FakeEngine("fake-v1"), 1)])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with Gallery(path) as g:
        [ada] = g.people()
        g.record_withheld(ada.id, 0.2, reason="moving_surround")
        assert [r.reason for r in g.withheld_between()] == ["moving_surround"]
    assert any(b.reason == "pre-migration-v1-to-v2" for b in list_backups(path))


def test_migrating_to_the_server_copies_the_withheld_check_ins(tmp_path, pg_url):
    from desktop.store.migrate import copy_gallery
    from desktop.store.postgres import PostgresGallery

    with Gallery(tmp_path / "desk.sqlite3") as source:
        ada = source.enrol("Ada", [tpl(FakeEngine("fake-v1"), 1)])
        source.record_withheld(ada.id, 0.2, reason="flat_motion", camera="front")
        with PostgresGallery(pg_url) as target:
            copy_gallery(source, target)
            [row] = target.withheld_between()
            assert (row.name, row.reason, row.camera) == ("Ada", "flat_motion", "front")
            again = target.record_withheld(ada.id, 0.3, reason="no_response")
            assert again.id > row.id  # the id sequence moved past the copied rows
