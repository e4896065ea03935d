"""The gallery on a PostgreSQL server: the same API and behaviour as the SQLite
:class:`desktop.store.Gallery` (people, templates, encoder versions, chips, the check-in
log, settings, the manager PIN, retention), shared by every desk pointed at the server.

What differs, and why:

* no automatic backups (:meth:`backups` is empty): the server's administrator backs it
  up (``pg_dump``), or ``facestyle gallery migrate --from URL`` copies it to a file;
* a check-in carries an idempotency key (``uid``): a desk resends queued check-ins until
  the server acknowledges them, and a copy that already arrived is ignored;
* with pgvector on the server, :meth:`nearest_people` searches on the server (exact
  ``<->`` over ``vector(128)``) instead of loading every template; the d it reports is
  re-scored here in float64 from the stored float32 embeddings, like the matcher's.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from desktop.store.checkin_log import CheckinLogMixin
from desktop.store.chips import blob_to_embedding, check_embedding, embedding_to_blob
from desktop.store.database import DAY_S, TimeLike, to_timestamp
from desktop.store.people import PeopleMixin
from desktop.store.postgres.database import PgConnection, PostgresDatabase, vector_text
from desktop.store.preferences import SettingsMixin

log = logging.getLogger(__name__)

#: Change-feed rows older than this are pruned; a desk away longer reloads everything.
CHANGES_KEEP_DAYS = 30.0


@dataclass(frozen=True)
class SharedMaintenanceReport:
    backup: None  # the server is backed up by its administrator
    checkins_deleted: int | None
    changes_pruned: int


class PostgresGallery(PeopleMixin, CheckinLogMixin, SettingsMixin, PostgresDatabase):
    """The gallery on a PostgreSQL server (see the module docstring).

    Args:
        url: a libpq URL, ``postgresql://user@host:port/dbname?sslmode=...``; every
            parameter passes through to libpq (TLS included). The password comes from
            the URL, ``PGPASSFILE`` or ``PGPASSWORD``.
        pool_size: most connections held open at once.
        connect_timeout_s: how long to wait for the server before
            :class:`~desktop.store.postgres.database.GalleryOfflineError`.
        maintenance: apply check-in retention on open if due (as the SQLite gallery).

    Raises:
        GalleryOfflineError: the server cannot be reached or refused the login.
        SchemaTooNewError: written by a newer facestyle.
        SharedGalleryError: the database holds something else, or rights are missing.
    """

    def __init__(self, url: str, *, pool_size: int = 4, connect_timeout_s: float = 5.0,
                 maintenance: bool = True, **kwargs: Any) -> None:
        super().__init__(url, pool_size=pool_size, connect_timeout_s=connect_timeout_s,
                         **kwargs)
        if maintenance:
            try:
                self.daily_maintenance()
            except Exception as exc:  # retention must not stop a desk from opening
                log.warning("shared gallery maintenance failed: %s", exc)

    # ------------------------------------------------------------------ writes

    def _insert_template(self, conn: PgConnection, person_id: int, row: tuple,
                         now: float) -> int:
        if not self.has_vector:
            return super()._insert_template(conn, person_id, row, now)
        return self._insert_id(
            conn, "INSERT INTO templates(person_id, embedding, model_id, model_version, "
            "chip_jpeg, source, created_at, embedding_vec) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "?::vector)", (person_id, *row, now, vector_text(blob_to_embedding(row[0]))))

    def replace_embeddings(self, updates: Iterable[tuple[int, str, np.ndarray]],
                           model_id: str, model_version: str = "") -> int:
        if not self.has_vector:
            return super().replace_embeddings(updates, model_id, model_version)
        rows = []
        for tid, old, e in updates:
            arr = check_embedding(e)
            rows.append((embedding_to_blob(arr), vector_text(arr), model_id, model_version,
                         int(tid), old))
        n = 0
        with self._write() as conn:
            for row in rows:
                n += conn.execute("UPDATE templates SET embedding = ?, embedding_vec = "
                                  "?::vector, model_id = ?, model_version = ? WHERE id = ? "
                                  "AND model_id = ?", row).rowcount
        return n

    def _store_checkin(self, conn: PgConnection, values: tuple, uid: str | None) -> int:
        """Insert with the idempotency key; a key already stored returns its row's id."""
        key = str(uuid.UUID(str(uid))) if uid else str(uuid.uuid4())
        row = conn.execute(
            "INSERT INTO checkins(person_id, person_name, at, d, camera, rule, score, "
            "model_id, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid) DO NOTHING "
            "RETURNING id", (*values, key)).fetchone()
        if row is None:
            row = conn.execute("SELECT id FROM checkins WHERE uid = ?", (key,)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ look-ups

    def nearest_people(self, model_id: str, query: np.ndarray, k: int = 3) -> list[Any]:
        """The ``k`` people whose best template of encoder ``model_id`` is nearest to
        ``query`` (128,), as :class:`~desktop.face.matching.Neighbour` (d exact, float64).

        On the server with pgvector; without it, through the matcher as on SQLite.
        """
        if not self.has_vector:
            return super().nearest_people(model_id, query, k)
        from desktop.face.matching import Neighbour

        q = check_embedding(query)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT t.person_id, p.name, t.id, t.embedding FROM ("
                " SELECT DISTINCT ON (person_id) id, person_id, embedding,"
                "  embedding_vec <-> ?::vector AS dist FROM templates WHERE model_id = ?"
                "  ORDER BY person_id, dist) t JOIN people p ON p.id = t.person_id"
                " ORDER BY t.dist, t.person_id LIMIT ?",
                (vector_text(q), model_id, int(k))).fetchall()
        q64 = q.astype(np.float64)
        out = [Neighbour(int(pid), str(name), float(np.sum((blob_to_embedding(b) - q64) ** 2)),
                         int(tid)) for pid, name, tid, b in rows]
        return sorted(out, key=lambda n: (n.d, n.person_id))

    # ------------------------------------------------------------------ change feed

    def changes_since(self, revision: int) -> tuple[int, set[int] | None]:
        """(current revision, ids of the people changed after ``revision``); None instead
        of the set when the feed no longer reaches back that far (reload everything)."""
        with self._read() as conn:
            return read_changes(conn, revision)

    def daily_maintenance(self, now: TimeLike | None = None) -> SharedMaintenanceReport:
        """Check-in retention when due (once a day, whichever desk comes first) and
        pruning of the change feed. No backup: the server's administrator makes them."""
        ref = time.time() if now is None else to_timestamp(now)
        deleted = None
        last = self.get_setting("_last_retention_at", None)
        if last is None or ref - float(last) >= DAY_S:
            deleted = self.apply_retention(now=ref)
        with self._write() as conn:
            cutoff = ref - CHANGES_KEEP_DAYS * DAY_S
            gone = conn.execute("DELETE FROM gallery_changes WHERE at < ? RETURNING revision",
                                (cutoff,)).fetchall()
            if gone:
                conn.execute("INSERT INTO meta(key, value) VALUES ('changes_pruned_to', ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, "
                             "excluded.value)", (max(r[0] for r in gone),))
        return SharedMaintenanceReport(None, deleted, len(gone))


def read_changes(conn: Any, revision: int) -> tuple[int, set[int] | None]:
    """See :meth:`PostgresGallery.changes_since`; ``conn`` takes ``?`` SQL."""
    current, pruned = conn.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'revision'),"
        " (SELECT value FROM meta WHERE key = 'changes_pruned_to')").fetchone()
    current = int(current)
    if revision == current:
        return current, set()
    if revision <= 0 or revision > current or (pruned is not None and revision < int(pruned)):
        return current, None
    rows = conn.execute("SELECT DISTINCT person_id FROM gallery_changes WHERE revision > ? "
                        "AND revision <= ?", (int(revision), current)).fetchall()
    return current, {int(r[0]) for r in rows}
