"""Check-ins withheld by liveness across schema versions and stores: an old (schema 1)
gallery file gains the table when opened; a migration to the server copies them. (Their
behaviour on both backends is in test_store_backends.py.)"""

from __future__ import annotations

import sqlite3

from store_fakes import FakeEngine, chip_for

from desktop.store import Gallery, NewTemplate, list_backups
from desktop.store import schema as schema_mod

pytest_plugins = ["postgres_server"]


def tpl(engine: FakeEngine, identity: int) -> NewTemplate:
    chip = chip_for(identity, 0)
    return NewTemplate(chip, engine.expected(chip), engine.model_id, "1", "file")


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
