"""A desk's local SQLite file for one shared gallery: the copy of the templates it
matches against, and the queue of check-ins the server has not acknowledged yet.

Why on disk: a desk restarted while the server is away still recognises people from its
last copy, and check-ins queued before a crash or a power cut are sent when the server is
back. The file lives in the user data folder (``desks/<server>-<hash>.sqlite3``, 0600 in a
0700 folder: it holds face embeddings). It holds no chips and no PIN.

Tables: ``people(id, name, employee_id)``, ``templates(id, person_id, model_id,
embedding)`` (the server's ids; embeddings as 512 bytes of little-endian float32),
``state(key, value)`` (``revision``: the server's ``meta.revision`` the copy matches), and
``outbox`` (one queued check-in per row, keyed by its idempotency ``uid``). Several
processes of one desk (the app and ``recognize-video``) may share the file.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.paths import user_dirs
from desktop.store import backups as _backups
from desktop.store.chips import blobs_to_matrix
from desktop.store.location import desk_slug
from desktop.store.records import CheckIn, GalleryEmbeddings

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "employee_id TEXT)",
    "CREATE TABLE IF NOT EXISTS templates (id INTEGER PRIMARY KEY, person_id INTEGER NOT "
    "NULL, model_id TEXT NOT NULL, embedding BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS templates_model ON templates(model_id, person_id, id)",
    "CREATE INDEX IF NOT EXISTS templates_person ON templates(person_id)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value)",
    "CREATE TABLE IF NOT EXISTS outbox (uid TEXT PRIMARY KEY, person_id INTEGER NOT NULL, "
    "person_name TEXT NOT NULL, at REAL NOT NULL, d REAL NOT NULL, camera TEXT NOT NULL, "
    "rule TEXT NOT NULL, score REAL, model_id TEXT NOT NULL, queued_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_at ON outbox(at)",
)


@dataclass(frozen=True)
class QueuedCheckin:
    """A check-in waiting for the server (the row of ``outbox``)."""

    uid: str
    person_id: int
    person_name: str
    at: float
    d: float
    camera: str
    rule: str
    score: float | None
    model_id: str

    def as_checkin(self, employee_id: str | None = None) -> CheckIn:
        """The record the log shows for it meanwhile (id 0: not on the server yet)."""
        return CheckIn(0, self.person_id, self.person_name, self.at, self.d, self.camera,
                       self.rule, self.score, self.model_id, employee_id)


def default_replica_path(url: str) -> Path:
    return user_dirs().data / "desks" / f"{desk_slug(url)}.sqlite3"


class DeskReplica:
    """The local file (see the module docstring). Thread-safe: one connection, a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _backups.make_private_dir(self.path.parent)
        _backups.create_private_file(self.path)
        self._lock = threading.RLock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            moved = _backups.move_aside(self.path)
            log.warning("the desk's local copy %s was unreadable (%s); moved to %s and "
                        "started afresh", self.path, exc, moved)
            _backups.create_private_file(self.path)
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ the copy

    def revision(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key = 'revision'").fetchone()
        return int(row[0]) if row else 0

    def apply(self, revision: int, changed: set[int] | None, people: Sequence[tuple],
              templates: Sequence[tuple]) -> None:
        """Replace the changed people (all when ``changed`` is None) by ``people`` rows
        (id, name, employee_id) and ``templates`` rows (id, person_id, model_id,
        embedding), and record ``revision``; one transaction."""
        with self._write() as conn:
            if changed is None:
                conn.execute("DELETE FROM people")
                conn.execute("DELETE FROM templates")
            elif changed:
                ids = [(int(p),) for p in changed]
                conn.executemany("DELETE FROM people WHERE id = ?", ids)
                conn.executemany("DELETE FROM templates WHERE person_id = ?", ids)
            conn.executemany("INSERT OR REPLACE INTO people(id, name, employee_id) "
                             "VALUES (?, ?, ?)", people)
            conn.executemany("INSERT OR REPLACE INTO templates(id, person_id, model_id, "
                             "embedding) VALUES (?, ?, ?, ?)",
                             [(i, p, m, bytes(e)) for i, p, m, e in templates])
            conn.execute("INSERT INTO state(key, value) VALUES ('revision', ?) ON CONFLICT(key)"
                         " DO UPDATE SET value = excluded.value", (int(revision),))

    def get_state(self, key: str, default: object = None) -> object:
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: object) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) "
                               "DO UPDATE SET value = excluded.value", (key, value))

    def embeddings(self, model_id: str) -> GalleryEmbeddings:
        """Every copied template of encoder ``model_id`` (as ``Gallery.embeddings``)."""
        with self._lock:
            conn = self._conn
            rows = conn.execute("SELECT id, person_id, embedding FROM templates WHERE "
                                "model_id = ? ORDER BY person_id, id", (model_id,)).fetchall()
            names = dict(conn.execute("SELECT id, name FROM people WHERE id IN (SELECT "
                                      "person_id FROM templates WHERE model_id = ?)",
                                      (model_id,)))
            row = conn.execute("SELECT value FROM state WHERE key = 'revision'").fetchone()
        return GalleryEmbeddings(
            model_id=model_id, embeddings=blobs_to_matrix([r[2] for r in rows]),
            person_ids=np.array([r[1] for r in rows], dtype=np.int64),
            template_ids=np.array([r[0] for r in rows], dtype=np.int64),
            names=names, revision=int(row[0]) if row else 0)

    def person(self, person_id: int) -> tuple[str, str | None] | None:
        """(name, employee id) of a copied person, or None."""
        with self._lock:
            row = self._conn.execute("SELECT name, employee_id FROM people WHERE id = ?",
                                     (int(person_id),)).fetchone()
        return (row[0], row[1]) if row else None

    # ------------------------------------------------------------------ the queue

    def enqueue(self, item: QueuedCheckin) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO outbox(uid, person_id, person_name, at, d, "
                         "camera, rule, score, model_id, queued_at) VALUES (?, ?, ?, ?, ?, ?, "
                         "?, ?, ?, ?)", (item.uid, item.person_id, item.person_name, item.at,
                                         item.d, item.camera, item.rule, item.score,
                                         item.model_id, time.time()))

    def pending(self, limit: int | None = None) -> list[QueuedCheckin]:
        """Queued check-ins, oldest first."""
        sql = ("SELECT uid, person_id, person_name, at, d, camera, rule, score, model_id "
               "FROM outbox ORDER BY at, uid")
        with self._lock:
            rows = self._conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [QueuedCheckin(*r) for r in rows]

    def remove(self, uids: Sequence[str]) -> None:
        """Forget check-ins the server acknowledged."""
        with self._write() as conn:
            conn.executemany("DELETE FROM outbox WHERE uid = ?", [(u,) for u in uids])

    def waiting(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def last_queued_at(self, person_id: int) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT max(at) FROM outbox WHERE person_id = ?",
                                     (int(person_id),)).fetchone()
        return None if row is None or row[0] is None else float(row[0])
