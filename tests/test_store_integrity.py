"""Integrity: migrations, backups, corrupt files and restore, kill during enrolment."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_fakes import FakeEngine, chip_for

from desktop.store import (
    BackupError,
    Gallery,
    GalleryBusyError,
    GalleryCorruptError,
    GalleryUnreadableError,
    MigrationError,
    NewTemplate,
    SchemaTooNewError,
    list_backups,
    restore_backup,
)
from desktop.store import schema as schema_mod
from desktop.store.backups import backup_connection, prune_backups

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def tpl(identity: int, variant: int = 0) -> NewTemplate:
    e = FakeEngine()
    return NewTemplate(chip_for(identity, variant), e.expected(chip_for(identity, variant)),
                       e.model_id)


def make_gallery(path: Path, names=("Ada", "Bob")) -> None:
    with Gallery(path) as g:
        for i, name in enumerate(names):
            g.enrol(name, [tpl(i + 1)])


def names_in(path: Path) -> list[str]:
    with Gallery(path, maintenance=False) as g:
        return [p.name for p in g.people()]


# ----------------------------------------------------------------------------- migrations


def test_migration_takes_backup_first_and_bumps_version(tmp_path, monkeypatch):
    path = tmp_path / "gallery.sqlite3"
    make_gallery(path)
    n = schema_mod.current_version()
    before = {b.path for b in list_backups(path)}
    extra = ("ALTER TABLE people ADD COLUMN note TEXT NOT NULL DEFAULT ''",)
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, extra])
    with Gallery(path) as g:
        assert [p.name for p in g.people()] == ["Ada", "Bob"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == n + 1
    assert "note" in [r[1] for r in conn.execute("PRAGMA table_info(people)")]
    conn.close()
    pre = [b for b in list_backups(path) if b.path not in before]
    assert [b.reason for b in pre] == [f"pre-migration-v{n}-to-v{n + 1}"]
    old = sqlite3.connect(pre[0].path)
    assert old.execute("PRAGMA user_version").fetchone()[0] == n
    assert old.execute("SELECT count(*) FROM people").fetchone()[0] == 2
    old.close()


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "gallery.sqlite3"
    make_gallery(path)
    n = schema_mod.current_version()
    broken = ("ALTER TABLE people ADD COLUMN note TEXT", "THIS IS NOT SQL")
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, broken])
    with pytest.raises(MigrationError, match=f"left at schema {n}") as info:
        Gallery(path)
    assert f"pre-migration-v{n}-to-v{n + 1}" in info.value.hint
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == n
    assert "note" not in [r[1] for r in conn.execute("PRAGMA table_info(people)")]
    conn.close()
    monkeypatch.undo()
    assert names_in(path) == ["Ada", "Bob"]


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    make_gallery(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    data = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match="newer facestyle"):
        Gallery(path)
    assert path.read_bytes() == data


def test_other_sqlite_file_is_not_taken_over(tmp_path):
    path = tmp_path / "notes.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (t TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    data = path.read_bytes()
    with pytest.raises(GalleryCorruptError, match="not a facestyle gallery"):
        Gallery(path)
    assert path.read_bytes() == data  # not even switched to WAL
    assert sqlite3.connect(path).execute("SELECT t FROM notes").fetchone() == ("keep me",)


def test_opening_waits_for_another_writer_instead_of_failing(tmp_path):
    """Switching a new file to WAL while another connection writes gets "database is
    locked" at once from SQLite (it does not wait); the gallery retries until it can."""
    import threading

    path = tmp_path / "gallery.sqlite3"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a writer in the middle of its work
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # what SQLite does
        sqlite3.connect(path, timeout=5, isolation_level=None).execute(
            "PRAGMA journal_mode=WAL")
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        gallery = Gallery(path, maintenance=False, busy_timeout_s=10)
    finally:
        timer.join()
        other.close()
    gallery.close()
    assert names_in(path) == []
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with pytest.raises(GalleryBusyError):  # a writer that never finishes: a clear error
        other = sqlite3.connect(tmp_path / "g2.sqlite3", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        Gallery(tmp_path / "g2.sqlite3", maintenance=False, busy_timeout_s=0.3)
    other.close()


def test_two_processes_creating_the_same_gallery(tmp_path):
    """Both open a new file at once: one creates the schema, the other must not fail."""
    path = tmp_path / "gallery.sqlite3"
    script = ("import sys; from desktop.store import Gallery; "
              "Gallery(sys.argv[1], maintenance=False).close(); print('ok')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "ok", err
    assert names_in(path) == []


# ----------------------------------------------------------------------------- corruption


def test_garbage_file_raises_with_backups_and_restore_works(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    make_gallery(path)  # opening a non-empty gallery made a daily backup
    with Gallery(path) as g:
        g.enrol("Cy", [tpl(3)])  # after the backup: lost by a restore, as expected
    backups = list_backups(path)
    assert len(backups) == 1 and backups[0].reason == "daily"
    garbage = b"this is not a database at all " * 500
    path.write_bytes(garbage)
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    with pytest.raises(GalleryCorruptError) as info:
        Gallery(path)
    err = info.value
    assert err.path == path and [b.path for b in err.backups] == [backups[0].path]
    assert "Restore the latest backup" in err.hint
    assert path.read_bytes() == garbage  # nothing written over the broken file
    moved = restore_backup(path, err.latest_backup)
    assert moved is not None and moved.read_bytes() == garbage  # kept, not deleted
    assert moved.name.startswith("gallery.sqlite3.broken-")
    assert names_in(path) == ["Ada", "Bob"]


@pytest.mark.parametrize("damage", ["trashed pages", "truncated"])
def test_damaged_pages_are_detected(tmp_path, damage):
    path = tmp_path / "gallery.sqlite3"
    with Gallery(path) as g:
        for i in range(30):
            g.enrol(f"P{i}", [tpl(i % 16, i)])
        g.backup("manual")
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    if damage == "truncated":
        data = data[:len(data) // 2]  # a copy cut short, a full disk
    else:
        data[2 * page:5 * page] = os.urandom(3 * page)  # header intact, b-tree pages trashed
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryCorruptError) as info:
        Gallery(path)
    assert len(info.value.backups) >= 1
    restore_backup(path)  # newest readable backup
    assert len(names_in(path)) == 30


def test_corrupt_without_backups(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    path.write_bytes(b"\x00garbage" * 200)
    with pytest.raises(GalleryCorruptError) as info:
        Gallery(path)
    assert info.value.backups == [] and "No backup" in info.value.hint
    with pytest.raises(BackupError, match="no backup"):
        restore_backup(path)
    assert path.read_bytes() == b"\x00garbage" * 200


def test_restore_skips_a_damaged_newest_backup(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    make_gallery(path)
    with Gallery(path, maintenance=False) as g:
        good = g.backup("manual")
        g.enrol("Cy", [tpl(3)])
        newest = backup_connection(g._c, path, "manual",
                                   now=datetime.now(UTC) + timedelta(minutes=5))
    newest.path.write_bytes(b"broken backup" * 100)
    assert list_backups(path)[0].path == newest.path
    restore_backup(path)
    assert names_in(path) == ["Ada", "Bob"]  # from `good`
    with pytest.raises(BackupError):
        restore_backup(path, newest.path)
    assert good.path.exists()


def test_missing_or_unreadable(tmp_path):
    with pytest.raises(GalleryUnreadableError, match="no gallery"):
        Gallery(tmp_path / "none.sqlite3", create=False)
    assert not (tmp_path / "none.sqlite3").exists()
    if os.name == "posix" and os.geteuid() != 0:
        path = tmp_path / "locked.sqlite3"
        make_gallery(path)
        os.chmod(path, 0)
        try:
            with pytest.raises(GalleryUnreadableError):
                Gallery(path)
        finally:
            os.chmod(path, 0o600)


# ----------------------------------------------------------------------------- backups


def test_rolling_backups_keep_the_newest(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    make_gallery(path)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with Gallery(path, maintenance=False, backup_keep=3) as g:
        made = [backup_connection(g._c, path, "manual", keep=3, now=t0 + timedelta(hours=i))
                for i in range(6)]
    kept = list_backups(path)
    assert [b.path for b in kept] == [m.path for m in reversed(made[-3:])]
    for b in kept:
        assert sqlite3.connect(b.path).execute("SELECT count(*) FROM people").fetchone()[0] == 2
    assert prune_backups(path, keep=1) == [kept[1].path, kept[2].path]


def test_daily_backup_once_a_day(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    with Gallery(path) as g:
        assert g.backups() == []  # an empty gallery is not backed up
        g.enrol("Ada", [tpl(1)])
        report = g.daily_maintenance()
        assert report.backup is not None and report.backup.reason == "daily"
        assert g.daily_maintenance().backup is None
        later = g.daily_maintenance(now=datetime.now() + timedelta(hours=25))
        assert later.backup is not None
    assert len(list_backups(path)) == 2


# ----------------------------------------------------------------------------- kill


def _run_helper(db: Path, n: int, pause_before: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    return subprocess.Popen([sys.executable, str(HERE / "store_kill_helper.py"), str(db),
                             str(n), str(pause_before)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("pause_before", [0, 1, 2])
def test_kill_during_enrolment_leaves_no_half_person(tmp_path, pause_before):
    db = tmp_path / "gallery.sqlite3"
    make_gallery(db, names=("Ada",))
    proc = _run_helper(db, 3, pause_before)
    try:
        line = proc.stdout.readline().strip()
        assert line == "READY", line + proc.stderr.read()
        # the transaction holds the person row and `pause_before` templates right now
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with Gallery(db, maintenance=False) as g:
        assert [p.name for p in g.people()] == ["Ada"]
        assert len(g.templates()) == 1
        assert g._c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        g.enrol("After Kill", [tpl(5)])  # the file is still writable after the kill
    assert names_in(db) == ["Ada", "After Kill"]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_helper_completes_when_not_killed(tmp_path):
    """The control for the kill test: the same helper does save a whole person."""
    db = tmp_path / "gallery.sqlite3"
    make_gallery(db, names=("Ada",))
    proc = _run_helper(db, 3, -1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "DONE"
    with Gallery(db, maintenance=False) as g:
        half = g.person_by_name("Half Person")
        assert half.n_templates == 3
