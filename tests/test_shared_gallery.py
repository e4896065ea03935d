"""The shared gallery across desks, against a real PostgreSQL server started by the
tests: live sync, the local copy, the offline queue, migration, the CLI, and real
processes enrolling and checking in while the server is stopped and restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from store_fakes import FakeEngine, chip_for

from desktop import cli
from desktop.store import Gallery, NewTemplate, open_gallery
from desktop.store.location import describe, has_password, redact, resolve
from desktop.store.migrate import count
from desktop.store.postgres import PostgresGallery, SharedGallery
from desktop.store.postgres.database import GalleryOfflineError

pytest_plugins = ["postgres_server"]
HERE = Path(__file__).parent
ENGINE = FakeEngine("fake-v1")


def tpl(identity: int, variant: int = 0) -> NewTemplate:
    chip = chip_for(identity, variant)
    return NewTemplate(chip, ENGINE.expected(chip), ENGINE.model_id)


def wait_for(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def server_rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_locations():
    url = "postgresql://desk:s3cret@db.example:6543/gallery?sslmode=verify-full"
    assert has_password(url) and "s3cret" not in redact(url)
    assert redact(url).startswith("postgresql://desk:***@db.example:6543/gallery")
    assert describe(url) == "db.example:6543/gallery"
    os.environ["FACESTYLE_DATABASE"] = url
    try:
        assert resolve(None) == url
    finally:
        del os.environ["FACESTYLE_DATABASE"]
    assert isinstance(resolve(None), Path)


def test_enrolment_reaches_another_desk_and_its_matcher(pg_url, tmp_path):
    a = SharedGallery(pg_url, replica_path=tmp_path / "a.sqlite3")
    b = SharedGallery(pg_url, replica_path=tmp_path / "b.sqlite3")
    try:
        heard = []
        b.add_change_listener(heard.append)
        before = b.revision()
        ada = a.enrol("Ada", [tpl(1), tpl(1, 1)])
        assert len(a.matcher("fake-v1")) == 2  # its own enrolment, at once
        wait_for(lambda: b.revision() != before, what="desk B's copy")
        assert "people" in heard
        match = b.matcher("fake-v1").identify_one(ENGINE.expected(chip_for(1)))
        assert match.accepted and match.person_id == ada.id and match.name == "Ada"
        a.rename_person(ada.id, "Ada King")
        wait_for(lambda: b.embeddings("fake-v1").names.get(ada.id) == "Ada King",
                 what="the rename")
        a.delete_person(ada.id, keep_history=True)
        wait_for(lambda: len(b.matcher("fake-v1")) == 0, what="the deletion")
        a.set_setting("tau", 0.25)
        wait_for(lambda: "settings" in heard, what="the settings notice")
        assert b.get_setting("tau") == 0.25
    finally:
        a.close()
        b.close()


def test_offline_queue_delivers_exactly_once(pg_server, pg_url, tmp_path):
    desk = SharedGallery(pg_url, replica_path=tmp_path / "desk.sqlite3")
    try:
        ada = desk.enrol("Ada", [tpl(1)])
        first = desk.record_checkin_if_due(ada.id, 0.1, cooldown_s=3600, camera="front")
        assert first is not None and first.id > 0
        today = desk.checkins_on(first.when.date())
        pg_server.stop()
        wait_for(lambda: not desk.online, what="offline")
        assert desk.sync_status().describe().startswith("Shared gallery: offline since ")
        # recognition goes on from the local copy; check-ins queue; cooldown still holds
        assert desk.matcher("fake-v1").identify_one(ENGINE.expected(chip_for(1))).accepted
        assert desk.record_checkin_if_due(ada.id, 0.1, cooldown_s=3600) is None
        queued = [desk.record_checkin(ada.id, 0.1, camera="front", at=time.time() + i)
                  for i in range(3)]
        assert all(c.id == 0 for c in queued)
        status = desk.sync_status()
        assert status.waiting == 3 and status.describe().endswith("3 check-ins waiting")
        assert len(desk.checkins_on(first.when.date())) == len(today) + 3  # shown meanwhile
        with pytest.raises(GalleryOfflineError, match="offline"):
            desk.people()  # fails at once, no connect timeout
        pg_server.start()
        wait_for(lambda: desk.online and desk.sync_status().waiting == 0, what="delivery")
        rows = server_rows(pg_url, "SELECT uid, count(*) FROM checkins GROUP BY uid")
        assert len(rows) == 4 and all(n == 1 for _, n in rows)
        assert desk.count_checkins() == 4
    finally:
        if not pg_server.running:
            pg_server.start()
        desk.close()


def test_resent_key_is_stored_once(pg_url):
    with PostgresGallery(pg_url) as g:
        pid = g.enrol("Ada", [tpl(1)]).id
        key = str(uuid.uuid4())
        one = g.record_checkin(pid, 0.1, uid=key)
        two = g.record_checkin(pid, 0.1, uid=key)  # the answer to the first was lost
        assert one.id == two.id and g.count_checkins() == 1


def test_desk_starts_offline_from_its_local_copy(pg_server, pg_url, tmp_path):
    replica = tmp_path / "desk.sqlite3"
    with SharedGallery(pg_url, replica_path=replica) as desk:
        pid = desk.enrol("Ada", [tpl(1)]).id
    pg_server.stop()
    try:
        with pytest.raises(GalleryOfflineError):
            SharedGallery(pg_url, replica_path=tmp_path / "new-desk.sqlite3")
        desk = SharedGallery(pg_url, replica_path=replica, connect_timeout_s=1)
        try:
            assert not desk.online and len(desk.matcher("fake-v1")) == 1
            desk.record_checkin(pid, 0.1)
            pg_server.start()
            wait_for(lambda: desk.online and not desk.sync_status().waiting, what="resend")
            assert desk.count_checkins() == 1
        finally:
            desk.close()
    finally:
        if not pg_server.running:
            pg_server.start()


def test_a_replaced_database_is_copied_afresh(pg_url, tmp_path):
    replica = tmp_path / "desk.sqlite3"
    with SharedGallery(pg_url, replica_path=replica, listen=False) as desk:
        desk.enrol("Ada", [tpl(1)])
        desk.enrol("Bob", [tpl(2)])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    with SharedGallery(pg_url, replica_path=replica, listen=False) as desk:
        desk.enrol("Cy", [tpl(3)])  # revision 2 again, on a different gallery
        assert sorted(desk.embeddings("fake-v1").names.values()) == ["Cy"]


def test_migrate_both_ways_keeps_everything(pg_url, tmp_path):
    src = tmp_path / "src.sqlite3"
    with Gallery(src) as g:
        ada = g.enrol("Ada", [tpl(1), tpl(1, 1)], employee_id="E1")
        bob = g.enrol("Bob", [NewTemplate(chip_for(2), FakeEngine("fake-v2").expected(
            chip_for(2)), "fake-v2")])
        g.record_checkin(ada.id, 0.1, camera="front", at=1000.0)
        g.record_checkin(bob.id, 0.2, at=2000.0)
        g.delete_person(bob.id, keep_history=True)
        g.set_setting("tau", 0.3)
        g.set_pin("2468")
        expected = count(g)
    assert cli.main(["gallery", "migrate", "--to", pg_url, "--db", str(src)]) == 0
    with PostgresGallery(pg_url) as server:
        assert count(server) == expected
        assert server.verify_pin("2468") and server.get_setting("tau") == 0.3
        [kept] = [c for c in server.checkins_between() if c.person_id is None]
        assert kept.name == "Bob"
        new = server.enrol("Cy", [tpl(3)])  # ids continue after the copied ones
        assert new.id > ada.id
        np.testing.assert_array_equal(server.templates(ada.id)[0].embedding,
                                      ENGINE.expected(chip_for(1)))
        assert server.nearest_people("fake-v1", ENGINE.expected(chip_for(1)))[0].name == "Ada"
    assert cli.main(["gallery", "migrate", "--to", pg_url, "--db", str(src)]) == 2  # not empty
    back = tmp_path / "back.sqlite3"
    assert cli.main(["gallery", "migrate", "--from", pg_url, "--db", str(back)]) == 0
    with Gallery(back) as g:
        assert [p.name for p in g.people()] == ["Ada", "Cy"] and g.count_checkins() == 2
        assert g.template_chip(g.templates(ada.id)[0].id).shape == (150, 150, 3)


def test_cli_commands_take_a_server_url(pg_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("desktop.commands.gallery.load_engine", lambda: ENGINE)
    from PIL import Image

    photo = tmp_path / "ada.png"
    img = np.full((200, 200, 3), 128, np.uint8)
    img[0, 0, 0] = 60
    img[1, 1] = (90, 16 * 5 + 8, 0)
    Image.fromarray(img).save(photo)
    assert cli.main(["gallery", "enroll", "Ada", str(photo), "--database", pg_url]) == 0
    monkeypatch.setenv("FACESTYLE_DATABASE", pg_url)
    assert cli.main(["gallery", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [p["name"] for p in listed["people"]] == ["Ada"]
    assert cli.main(["gallery", "settings", "--tau", "0.3"]) == 0
    assert cli.main(["checkins", "--all"]) == 0
    assert cli.main(["gallery", "backups"]) == 2
    assert "pg_dump" in capsys.readouterr().err
    with open_gallery(None) as g:
        assert isinstance(g, PostgresGallery) and g.get_setting("tau") == 0.3


def _helper(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    return subprocess.Popen([sys.executable, str(HERE / "shared_gallery_helper.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _last_json(proc: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_desks_enrol_50_each_while_a_third_checks_in(pg_url, tmp_path):
    PostgresGallery(pg_url).close()  # schema made once, so the three race on data only
    stop = tmp_path / "stop"
    checker = _helper("checkin", pg_url, str(tmp_path / "home"), "100000", str(stop))
    enrolers = [_helper("enrol", pg_url, name, "50", str(ident))
                for name, ident in (("north", 6), ("south", 7))]
    results = [_last_json(p) for p in enrolers]
    stop.touch()
    checked = _last_json(checker)
    assert [r["errors"] for r in results] == [[], []]
    assert checked["errors"] == [] and checked["waiting"] == 0 and checked["recorded"]
    names = [r[0] for r in server_rows(pg_url, "SELECT name FROM people")]
    assert len(names) == 100 == len(set(names))
    assert server_rows(pg_url, "SELECT count(*) FROM templates")[0][0] == 200
    uids = [str(r[0]) for r in server_rows(pg_url, "SELECT uid FROM checkins")]
    assert sorted(uids) == sorted(checked["recorded"])  # nothing lost, nothing twice


@pytest.mark.slow
def test_server_stopped_mid_enrolment_leaves_no_half_person(pg_server, pg_url, tmp_path):
    PostgresGallery(pg_url).close()
    go = tmp_path / "go"
    proc = _helper("half", pg_url, str(go))
    try:
        assert proc.stdout.readline().strip() == "READY"
        pg_server.stop("immediate")  # as if the server crashed mid-transaction
        go.touch()
        result = _last_json(proc)
    finally:
        if not pg_server.running:
            pg_server.start()
    assert "Cannot reach the shared gallery" in result["error"]
    assert server_rows(pg_url, "SELECT count(*) FROM people")[0][0] == 0
    assert server_rows(pg_url, "SELECT count(*) FROM templates")[0][0] == 0


@pytest.mark.slow
def test_server_stopped_during_live_checkins(pg_server, pg_url, tmp_path):
    with PostgresGallery(pg_url) as g:
        for i in range(3):
            g.enrol(f"P{i}", [tpl(i)])
    proc = _helper("checkin", pg_url, str(tmp_path / "home"), "60", str(tmp_path / "never"))
    try:
        while int(proc.stdout.readline()) < 15:
            pass
        pg_server.stop()
        while int(proc.stdout.readline()) < 40:  # still recording, into the queue
            pass
        pg_server.start()
        result = _last_json(proc)
    finally:
        if not pg_server.running:
            pg_server.start()
    assert result["errors"] == [] and result["waiting"] == 0 and len(result["recorded"]) == 60
    rows = server_rows(pg_url, "SELECT uid, count(*) FROM checkins GROUP BY uid")
    assert sorted(str(u) for u, _ in rows) == sorted(result["recorded"])
    assert all(n == 1 for _, n in rows)


def test_in_memory_copy_is_patched_person_by_person(pg_url, tmp_path):
    with SharedGallery(pg_url, replica_path=tmp_path / "a.sqlite3", listen=False) as a, \
            SharedGallery(pg_url, replica_path=tmp_path / "b.sqlite3", listen=False) as b:
        ids = [a.enrol(f"P{i}", [tpl(i), tpl(i, 1)]).id for i in range(4)]
        b.sync()
        held = b.embeddings("fake-v1")
        assert b.embeddings("fake-v1") is held  # no reload while nothing changed
        a.delete_person(ids[1], keep_history=False)
        a.rename_person(ids[2], "P2 renamed")
        a.add_templates(ids[3], [tpl(3, 2)])
        a.enrol("Other encoder", [NewTemplate(chip_for(9), ENGINE.expected(chip_for(9)), "v2")])
        assert b.sync()
        patched = b.embeddings("fake-v1")
        fresh = b.replica.embeddings("fake-v1")
        assert patched is not held and patched.revision == fresh.revision
        order = np.lexsort((patched.template_ids, patched.person_ids))
        np.testing.assert_array_equal(patched.template_ids[order], fresh.template_ids)
        np.testing.assert_array_equal(patched.person_ids[order], fresh.person_ids)
        np.testing.assert_array_equal(patched.embeddings[order], fresh.embeddings)
        assert patched.names == fresh.names and patched.names[ids[2]] == "P2 renamed"
