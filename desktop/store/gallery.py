"""The gallery database: people, face templates, check-ins, settings and the manager PIN.

One SQLite file (default ``user_dirs().data / "gallery.sqlite3"``), opened by
:class:`Gallery`. What it guarantees:

* **Owner-only files**: the database is created 0600 (SQLite gives its ``-wal``/``-shm``
  files the same mode), a folder it creates is 0700, and the default data folder is
  tightened to 0700. Backups are 0600 in a 0700 ``backups`` folder.
* **Atomic writes**: every public write is one transaction (``BEGIN IMMEDIATE`` ...
  ``COMMIT``); an enrolment (person + all templates) can never be half-saved, even if the
  process is killed (WAL journal, ``synchronous=FULL``).
* **Never an empty gallery over a broken one**: a file that is not a database, is damaged
  or is not a facestyle gallery raises :class:`GalleryCorruptError` listing the backups;
  nothing is written to it. :func:`desktop.store.restore_backup` moves it aside and puts
  a backup in its place.
* **Versioned schema**: ``PRAGMA user_version`` with numbered migrations
  (:mod:`desktop.store.schema`); a backup is taken before migrating; a database from a
  newer facestyle is refused (:class:`SchemaTooNewError`), never downgraded.
* **Backups**: rolling, one per day at most (on open and from :meth:`daily_maintenance`),
  plus before migrations; the newest ``backup_keep`` (default 7) are kept.
* **Deleted means deleted**: ``secure_delete`` is on and the WAL is checkpointed after a
  person is deleted, so their templates and chips are overwritten in the file (older
  backups still hold them until they roll out).

Thread safety: one :class:`Gallery` holds **one connection guarded by a re-entrant lock**;
every public method takes the lock for its duration, so a Gallery can be shared by the UI
thread and worker threads. Every call is short (milliseconds): expensive work such as
embedding faces or JPEG encoding happens before the lock is taken, and re-embedding
commits in small batches. Other processes (the CLI while the app runs) can use the same
file at the same time; SQLite's locks serialise writers (WAL readers never block) and a
writer waits up to ``busy_timeout_s`` before :class:`GalleryBusyError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from desktop.paths import user_dirs
from desktop.resources import default as default_setting
from desktop.store import backups as _backups
from desktop.store import schema
from desktop.store.chips import (
    blob_to_embedding,
    blobs_to_matrix,
    decode_chip,
    embedding_to_blob,
    encode_chip,
)
from desktop.store.errors import (
    AmbiguousNameError,
    BackupInfo,
    DuplicatePersonError,
    GalleryBusyError,
    GalleryCorruptError,
    GalleryUnreadableError,
    MigrationError,
    PersonNotFoundError,
    PinError,
    SchemaTooNewError,
    StoreError,
)
from desktop.store.pin import PinHash, hash_pin, verify_pin
from desktop.store.records import (
    SOURCES,
    CheckIn,
    DeleteResult,
    GalleryEmbeddings,
    NewTemplate,
    Person,
    Template,
)

if TYPE_CHECKING:
    from desktop.face.matching import DecisionRule, Matcher

log = logging.getLogger(__name__)

DB_FILENAME = "gallery.sqlite3"
DAY_S = 86_400.0
MAX_NAME_LENGTH = 200

#: Settings the check-in side reads, with their shipped defaults
#: (``resources/default_settings.json``, section ``checkin``).
CHECKIN_SETTINGS = ("tau", "margin", "cooldown_hours", "retention_days")

_UNCHANGED: Any = object()
TimeLike = float | int | datetime | date


def default_db_path() -> Path:
    """``user_dirs().data / "gallery.sqlite3"`` (FACESTYLE_HOME respected)."""
    return user_dirs().data / DB_FILENAME


def clean_name(name: str) -> str:
    """A display name with surrounding/duplicate whitespace removed, or ValueError."""
    if not isinstance(name, str):
        raise ValueError("a name must be text")
    cleaned = re.sub(r"\s+", " ", name).strip()
    if not cleaned:
        raise ValueError("a name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValueError(f"a name can have at most {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise ValueError("a name cannot contain control characters")
    return cleaned


def to_timestamp(value: TimeLike) -> float:
    """Unix seconds from a number, a datetime (naive = local time) or a date (local
    midnight at its start)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time()).timestamp()
    return float(value)


@dataclass(frozen=True)
class MaintenanceReport:
    backup: BackupInfo | None  # the backup made now, if one was due
    checkins_deleted: int | None  # None when retention was not due or is off


_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_VTAB", "SQLITE_CORRUPT_SEQUENCE",
            "SQLITE_CORRUPT_INDEX", "SQLITE_IOERR_SHORT_READ"}
_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY",
         "SQLITE_BUSY_TIMEOUT", "SQLITE_LOCKED_SHAREDCACHE"}


class Gallery:
    """The gallery database (see the module docstring for the guarantees).

    Args:
        path: the database file (default :func:`default_db_path`).
        create: create a new empty gallery when the file does not exist (else
            :class:`GalleryUnreadableError`).
        backup_keep: how many rolling backups to keep.
        busy_timeout_s: how long a write waits for another process's lock.
        maintenance: run :meth:`daily_maintenance` on open (backup and retention if due).

    Raises:
        GalleryCorruptError: not a database, damaged, or not a facestyle gallery.
        GalleryUnreadableError: missing (with ``create=False``) or not accessible.
        SchemaTooNewError: written by a newer facestyle.
        GalleryBusyError: locked by another program for longer than ``busy_timeout_s``.
    """

    def __init__(self, path: str | Path | None = None, *, create: bool = True,
                 backup_keep: int = _backups.DEFAULT_KEEP, busy_timeout_s: float = 5.0,
                 maintenance: bool = True) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path = self.path.expanduser().absolute()
        self.backup_keep = max(1, int(backup_keep))
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        existed = self.path.exists()
        if not existed and not create:
            raise GalleryUnreadableError(f"There is no gallery at {self.path}.",
                                         "Enrol someone first, or check the path.",
                                         path=self.path, backups=self.backups())
        try:
            self._prepare_files(existed)
        except OSError as exc:
            raise GalleryUnreadableError(
                f"Cannot create the gallery at {self.path}: {exc.strerror or exc}",
                "Check the folder's permissions, or choose another location.",
                path=self.path, backups=self.backups()) from exc
        try:
            with self._errors():
                self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s,
                                             isolation_level=None, check_same_thread=False)
                self._configure(existed)
                self._migrate()
                self._check_tables()
        except BaseException:
            self.close()
            raise
        if maintenance:
            try:
                self.daily_maintenance()
            except StoreError as exc:  # a backup failure must not stop the app
                log.warning("gallery maintenance failed: %s", exc)

    # ------------------------------------------------------------------ lifecycle

    def _prepare_files(self, existed: bool) -> None:
        parent = self.path.parent
        _backups.make_private_dir(parent)
        if parent == default_db_path().parent:
            _backups._chmod(parent, 0o700)
        if not existed:
            _backups.create_private_file(self.path)

    def _configure(self, existed: bool) -> None:
        conn = self._c
        if existed:
            row = conn.execute("PRAGMA quick_check").fetchone()
            if not row or row[0] != "ok":
                raise self._corrupt(f"integrity check failed: {row[0] if row else 'no answer'}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("gallery journal mode is %s, not WAL", mode)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")

    def _migrate(self) -> None:
        conn = self._c
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        target = schema.current_version()
        if version > target:
            raise SchemaTooNewError(
                f"The gallery {self.path} was written by a newer facestyle "
                f"(schema {version}; this version reads up to {target}).",
                "Update facestyle. The file was not changed.")
        if version == target:
            return
        if version == 0:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            if tables:
                raise self._corrupt("it is a SQLite database but not a facestyle gallery",
                                    not_gallery=True)
        info = None
        if version > 0:
            info = _backups.backup_connection(conn, self.path,
                                              f"pre-migration-v{version}-to-v{target}",
                                              keep=self.backup_keep)
            log.info("backed up the gallery to %s before migrating", info.path)
        for step in range(version, target):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in schema.MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                code = getattr(exc, "sqlite_errorname", "") or ""
                if code in _CORRUPT or code in _BUSY:
                    raise  # translated by _errors()
                raise MigrationError(
                    f"Upgrading the gallery {self.path} from schema {step} to {step + 1} "
                    f"failed ({exc}); it was left at schema {step}, unchanged.",
                    "Report this as a bug." + (f" A backup was made first: {info.path}"
                                               if info else "")) from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            log.info("gallery schema migrated to version %d", step + 1)

    def _check_tables(self) -> None:
        tables = {r[0] for r in self._c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = schema.REQUIRED_TABLES - tables
        if missing:
            raise self._corrupt(f"tables are missing: {', '.join(sorted(missing))}")

    def close(self) -> None:
        """Close the connection (checkpointing the WAL into the main file). Idempotent."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("The gallery is closed.")
        return self._conn

    # ------------------------------------------------------------------ error handling

    def _corrupt(self, detail: str, not_gallery: bool = False) -> GalleryCorruptError:
        what = ("is not a facestyle gallery" if not_gallery
                else "is damaged and cannot be read")
        found = self.backups()
        hint = (f"Restore the latest backup ({found[0].describe()}); the damaged file is "
                "kept beside it." if found else
                "No backup was found. The file was not changed; move it away to start a new "
                "gallery, or recover it with SQLite tools.")
        return GalleryCorruptError(f"The gallery {self.path} {what} ({detail}).", hint,
                                   path=self.path, backups=found)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate sqlite3 errors into the store's errors for the user."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorname", "") or ""
            text = str(exc)
            if code in _CORRUPT or "malformed" in text or "not a database" in text:
                raise self._corrupt(text) from exc
            if code in _BUSY or "locked" in text:
                raise GalleryBusyError(
                    f"The gallery {self.path} is in use by another program ({text}).",
                    "Close other facestyle windows or commands and try again.") from exc
            if code.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY",
                                "SQLITE_AUTH", "SQLITE_IOERR")):
                raise GalleryUnreadableError(
                    f"Cannot use the gallery {self.path} ({text}).",
                    "Check the file's permissions and that its disk is present and not full.",
                    path=self.path, backups=self.backups()) from exc
            if code == "SQLITE_FULL":
                raise StoreError(f"The disk holding {self.path} is full.",
                                 "Free some space and try again; nothing was saved.") from exc
            raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._c

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all or nothing."""
        with self._lock, self._errors():
            conn = self._c
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ people

    _PERSON_SQL = """
        SELECT p.id, p.name, p.employee_id, p.created_at, p.updated_at,
               (SELECT count(*) FROM templates t WHERE t.person_id = p.id),
               (SELECT max(c.at) FROM checkins c WHERE c.person_id = p.id)
        FROM people p
    """

    def people(self) -> list[Person]:
        """Everyone enrolled, by name (case-insensitive), with template counts."""
        with self._read() as conn:
            rows = conn.execute(self._PERSON_SQL + " ORDER BY p.name COLLATE NOCASE, p.id")
            return [Person(*r) for r in rows]

    def person(self, person_id: int) -> Person:
        with self._read() as conn:
            row = conn.execute(self._PERSON_SQL + " WHERE p.id = ?", (int(person_id),)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
        return Person(*row)

    def find_people(self, name: str) -> list[Person]:
        """People whose display name equals ``name`` (case-insensitive, spaces trimmed)."""
        try:
            key = clean_name(name)
        except ValueError:
            return []
        with self._read() as conn:
            rows = conn.execute(self._PERSON_SQL + " WHERE p.name = ? COLLATE NOCASE ORDER BY p.id",
                                (key,))
            return [Person(*r) for r in rows]

    def person_by_name(self, name: str) -> Person:
        """The one person called ``name``; raises when none or several."""
        found = self.find_people(name)
        if not found:
            raise PersonNotFoundError(f"No one called '{name}' is enrolled.",
                                      "'facestyle gallery list' shows who is.")
        if len(found) > 1:
            ids = ", ".join(str(p.id) for p in found)
            raise AmbiguousNameError(f"Several people are called '{name}' (ids {ids}).",
                                     "Choose one by id.")
        return found[0]

    def _check_unique(self, conn: sqlite3.Connection, name: str, employee_id: str | None,
                      allow_duplicate_name: bool, exclude_id: int | None = None) -> None:
        skip = -1 if exclude_id is None else int(exclude_id)
        if not allow_duplicate_name:
            row = conn.execute("SELECT id FROM people WHERE name = ? COLLATE NOCASE AND id != ?",
                               (name, skip)).fetchone()
            if row:
                raise DuplicatePersonError(
                    f"'{name}' is already enrolled (id {row[0]}).",
                    "Add photos to that person instead, or use a different name.")
        if employee_id is not None:
            row = conn.execute("SELECT name FROM people WHERE employee_id = ? AND id != ?",
                               (employee_id, skip)).fetchone()
            if row:
                raise DuplicatePersonError(
                    f"Employee id '{employee_id}' already belongs to {row[0]}.")

    @staticmethod
    def _template_rows(templates: Sequence[NewTemplate]) -> list[tuple]:
        """Validate and encode templates before any lock is taken (JPEG is the slow part)."""
        rows = []
        for t in templates:
            if t.source not in SOURCES:
                raise ValueError(f"template source must be one of {SOURCES}, got {t.source!r}")
            if not t.model_id:
                raise ValueError("a template needs the model_id of the encoder that made it")
            rows.append((embedding_to_blob(t.embedding), str(t.model_id), str(t.model_version),
                         encode_chip(t.chip), t.source))
        return rows

    def _insert_template(self, conn: sqlite3.Connection, person_id: int, row: tuple,
                         now: float) -> int:
        cur = conn.execute(
            "INSERT INTO templates(person_id, embedding, model_id, model_version, chip_jpeg,"
            " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (person_id, *row, now))
        return int(cur.lastrowid)

    def enrol(self, name: str, templates: Sequence[NewTemplate], *,
              employee_id: str | None = None, allow_duplicate_name: bool = False) -> Person:
        """Create a person with their templates, in ONE transaction (all or nothing).

        Raises:
            ValueError: no templates, a bad name, chip or embedding.
            DuplicatePersonError: the name (unless ``allow_duplicate_name``) or the
                employee id is taken.
        """
        name = clean_name(name)
        employee_id = _clean_employee_id(employee_id)
        if not templates:
            raise ValueError("an enrolment needs at least one face template")
        rows = self._template_rows(templates)
        now = time.time()
        with self._write() as conn:
            self._check_unique(conn, name, employee_id, allow_duplicate_name)
            cur = conn.execute("INSERT INTO people(name, employee_id, created_at, updated_at)"
                               " VALUES (?, ?, ?, ?)", (name, employee_id, now, now))
            person_id = int(cur.lastrowid)
            for row in rows:
                self._insert_template(conn, person_id, row, now)
        log.info("enrolled %s (id %d) with %d templates", name, person_id, len(rows))
        return self.person(person_id)

    def add_templates(self, person_id: int, templates: Sequence[NewTemplate]) -> list[int]:
        """Add templates to an existing person in one transaction; returns their ids."""
        rows = self._template_rows(templates)
        now = time.time()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM people WHERE id = ?", (int(person_id),)).fetchone() \
                    is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            ids = [self._insert_template(conn, int(person_id), row, now) for row in rows]
            conn.execute("UPDATE people SET updated_at = ? WHERE id = ?", (now, int(person_id)))
        return ids

    def remove_template(self, template_id: int) -> None:
        """Delete one template (and its chip). A person may be left with none."""
        with self._write() as conn:
            row = conn.execute("SELECT person_id FROM templates WHERE id = ?",
                               (int(template_id),)).fetchone()
            if row is None:
                raise StoreError(f"No template with id {template_id}.")
            conn.execute("DELETE FROM templates WHERE id = ?", (int(template_id),))
            conn.execute("UPDATE people SET updated_at = ? WHERE id = ?", (time.time(), row[0]))
        self._checkpoint()

    def rename_person(self, person_id: int, name: str | None = None, *,
                      employee_id: str | None = _UNCHANGED,
                      allow_duplicate_name: bool = False) -> Person:
        """Change a person's display name and/or employee id (None clears it)."""
        with self._write() as conn:
            row = conn.execute("SELECT name, employee_id FROM people WHERE id = ?",
                               (int(person_id),)).fetchone()
            if row is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            new_name = clean_name(name) if name is not None else row[0]
            new_emp = row[1] if employee_id is _UNCHANGED else _clean_employee_id(employee_id)
            self._check_unique(conn, new_name, new_emp,
                               allow_duplicate_name or new_name.lower() == row[0].lower(),
                               exclude_id=person_id)
            conn.execute("UPDATE people SET name = ?, employee_id = ?, updated_at = ? "
                         "WHERE id = ?", (new_name, new_emp, time.time(), int(person_id)))
        return self.person(person_id)

    def delete_person(self, person_id: int, *, keep_history: bool) -> DeleteResult:
        """Delete a person with all their templates and chips, in one transaction.

        ``keep_history=True`` keeps their check-ins (shown under the name they had, with
        ``person_id`` None); False deletes them too. Deleted rows are overwritten in the
        file (secure_delete + WAL checkpoint); rolling backups still hold them until
        they expire.
        """
        with self._write() as conn:
            row = conn.execute("SELECT name FROM people WHERE id = ?", (int(person_id),)).fetchone()
            if row is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            n_tpl = conn.execute("SELECT count(*) FROM templates WHERE person_id = ?",
                                 (int(person_id),)).fetchone()[0]
            n_chk = conn.execute("SELECT count(*) FROM checkins WHERE person_id = ?",
                                 (int(person_id),)).fetchone()[0]
            # freeze the current name on kept rows, so history shows who it was
            conn.execute("UPDATE checkins SET person_name = ? WHERE person_id = ?",
                         (row[0], int(person_id)))
            if not keep_history:
                conn.execute("DELETE FROM checkins WHERE person_id = ?", (int(person_id),))
            conn.execute("DELETE FROM templates WHERE person_id = ?", (int(person_id),))
            conn.execute("DELETE FROM people WHERE id = ?", (int(person_id),))
        self._checkpoint()
        log.info("deleted person %d (%d templates, history %s)", person_id, n_tpl,
                 "kept" if keep_history else "deleted")
        return DeleteResult(int(person_id), row[0], int(n_tpl),
                            0 if keep_history else int(n_chk), int(n_chk) if keep_history else 0)

    def _checkpoint(self) -> None:
        """Move committed pages into the main file and truncate the WAL (best effort)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ templates

    def templates(self, person_id: int | None = None, *, model_id: str | None = None,
                  with_chips: bool = False) -> list[Template]:
        """Stored templates, optionally of one person and/or one encoder, oldest first."""
        where, args = _where(("person_id = ?", None if person_id is None else int(person_id)),
                             ("model_id = ?", model_id))
        chip = "chip_jpeg" if with_chips else "x''"
        sql = (f"SELECT id, person_id, embedding, model_id, model_version, source, created_at,"
               f" {chip} FROM templates{where} ORDER BY id")
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [Template(r[0], r[1], blob_to_embedding(r[2]), r[3], r[4], r[5], r[6], r[7])
                for r in rows]

    def template_chip(self, template_id: int) -> np.ndarray:
        """The stored aligned chip of a template, (150, 150, 3) uint8 RGB."""
        with self._read() as conn:
            row = conn.execute("SELECT chip_jpeg FROM templates WHERE id = ?",
                               (int(template_id),)).fetchone()
        if row is None:
            raise StoreError(f"No template with id {template_id}.")
        return decode_chip(row[0])

    def model_counts(self) -> dict[str, int]:
        """Number of templates per encoder model_id."""
        with self._read() as conn:
            return dict(conn.execute(
                "SELECT model_id, count(*) FROM templates GROUP BY model_id ORDER BY model_id"))

    def count_stale(self, model_id: str) -> int:
        """Templates made by an encoder other than ``model_id`` (to be re-embedded)."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM templates WHERE model_id != ?",
                                    (model_id,)).fetchone()[0])

    def stale_template_ids(self, model_id: str) -> list[int]:
        with self._read() as conn:
            return [r[0] for r in conn.execute(
                "SELECT id FROM templates WHERE model_id != ? ORDER BY id", (model_id,))]

    def stale_chips(self, template_ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        """(template id, its current model_id, chip JPEG) for the given ids still present."""
        if not template_ids:
            return []
        marks = ",".join("?" * len(template_ids))
        with self._read() as conn:
            return [tuple(r) for r in conn.execute(
                f"SELECT id, model_id, chip_jpeg FROM templates WHERE id IN ({marks}) "
                "ORDER BY id", [int(t) for t in template_ids])]

    def replace_embeddings(self, updates: Iterable[tuple[int, str, np.ndarray]],
                           model_id: str, model_version: str = "") -> int:
        """Set new embeddings from encoder ``model_id`` in ONE transaction.

        ``updates`` holds (template id, the model_id it was read with, new embedding); a
        template changed or deleted since it was read is skipped. Returns rows updated.
        """
        rows = [(embedding_to_blob(e), model_id, model_version, int(tid), old)
                for tid, old, e in updates]
        n = 0
        with self._write() as conn:
            for row in rows:
                n += conn.execute("UPDATE templates SET embedding = ?, model_id = ?, "
                                  "model_version = ? WHERE id = ? AND model_id = ?",
                                  row).rowcount
        return n

    def embeddings(self, model_id: str) -> GalleryEmbeddings:
        """Every template of encoder ``model_id``, as arrays for the matcher."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT t.id, t.person_id, t.embedding FROM templates t "
                "WHERE t.model_id = ? ORDER BY t.person_id, t.id", (model_id,)).fetchall()
            names = dict(conn.execute(
                "SELECT id, name FROM people WHERE id IN "
                "(SELECT person_id FROM templates WHERE model_id = ?)", (model_id,)))
            revision = self._revision(conn)
        return GalleryEmbeddings(
            model_id=model_id,
            embeddings=blobs_to_matrix([r[2] for r in rows]),
            person_ids=np.array([r[1] for r in rows], dtype=np.int64),
            template_ids=np.array([r[0] for r in rows], dtype=np.int64),
            names=names, revision=revision)

    def matcher(self, model_id: str, *, tau: float | None = None, margin: float | None = None,
                rule: DecisionRule | None = None) -> Matcher:
        """A :class:`~desktop.face.matching.Matcher` over this encoder's templates only.

        ``tau`` and ``margin`` default to the gallery's settings. The matcher's
        ``revision`` attribute records :meth:`revision` at load time.
        """
        from desktop.face.matching import Matcher

        g = self.embeddings(model_id)
        m = Matcher(g.embeddings, g.person_ids, g.names, g.template_ids,
                    tau=float(self.get_setting("tau") if tau is None else tau),
                    margin=float(self.get_setting("margin") if margin is None else margin),
                    rule=rule, model_id=model_id)
        m.revision = g.revision  # type: ignore[attr-defined]
        return m

    @staticmethod
    def _revision(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    def revision(self) -> int:
        """A counter that changes whenever people or templates change (in any process).

        Cheap; poll it to know when to rebuild a matcher.
        """
        with self._read() as conn:
            return self._revision(conn)

    # ------------------------------------------------------------------ check-ins

    _CHECKIN_SQL = """
        SELECT c.id, c.person_id, COALESCE(p.name, c.person_name), c.at, c.d, c.camera,
               c.rule, c.score, c.model_id, p.employee_id
        FROM checkins c LEFT JOIN people p ON p.id = c.person_id
    """

    def _insert_checkin(self, conn: sqlite3.Connection, person_id: int, d: float, camera: str,
                        rule: str, score: float | None, model_id: str, at: float) -> CheckIn:
        row = conn.execute("SELECT name, employee_id FROM people WHERE id = ?",
                           (int(person_id),)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
        if not math.isfinite(float(d)):
            raise ValueError("a check-in needs a finite distance d")
        rule = str(getattr(rule, "name", rule))  # a DecisionRule or its name
        cur = conn.execute(
            "INSERT INTO checkins(person_id, person_name, at, d, camera, rule, score, model_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (int(person_id), row[0], at, float(d), camera, rule,
             None if score is None else float(score), model_id))
        return CheckIn(int(cur.lastrowid), int(person_id), row[0], at, float(d), camera, rule,
                       None if score is None else float(score), model_id, row[1])

    def record_checkin(self, person_id: int, d: float, *, camera: str = "", rule: str = "",
                       score: float | None = None, model_id: str = "",
                       at: TimeLike | None = None) -> CheckIn:
        """Record a check-in unconditionally (see :meth:`record_checkin_if_due`)."""
        ts = time.time() if at is None else to_timestamp(at)
        with self._write() as conn:
            return self._insert_checkin(conn, person_id, d, camera, rule, score, model_id, ts)

    def record_checkin_if_due(self, person_id: int, d: float, *, cooldown_s: float,
                              camera: str = "", rule: str = "", score: float | None = None,
                              model_id: str = "", at: TimeLike | None = None) -> CheckIn | None:
        """Record a check-in unless the person checked in less than ``cooldown_s`` ago.

        The check and the insert are one transaction, so two threads or processes
        cannot both record. Returns the new check-in, or None inside the cooldown.

        Raises:
            PersonNotFoundError: the person was deleted meanwhile.
        """
        ts = time.time() if at is None else to_timestamp(at)
        with self._write() as conn:
            last = conn.execute("SELECT max(at) FROM checkins WHERE person_id = ?",
                                (int(person_id),)).fetchone()[0]
            if last is not None and ts - last < cooldown_s:
                return None
            return self._insert_checkin(conn, person_id, d, camera, rule, score, model_id, ts)

    def last_checkin(self, person_id: int) -> CheckIn | None:
        """The person's most recent check-in, or None."""
        with self._read() as conn:
            row = conn.execute(self._CHECKIN_SQL + " WHERE c.person_id = ? "
                               "ORDER BY c.at DESC, c.id DESC LIMIT 1", (int(person_id),)
                               ).fetchone()
        return CheckIn(*row) if row else None

    def last_checkin_times(self) -> dict[int, float]:
        """person id -> Unix time of their latest check-in (to prime a cooldown cache)."""
        with self._read() as conn:
            return {int(pid): float(at) for pid, at in conn.execute(
                "SELECT person_id, max(at) FROM checkins WHERE person_id IS NOT NULL "
                "GROUP BY person_id")}

    def checkins_between(self, start: TimeLike | None = None, end: TimeLike | None = None, *,
                         person_id: int | None = None, newest_first: bool = False,
                         limit: int | None = None) -> list[CheckIn]:
        """Check-ins with ``start <= at < end`` (either bound may be None).

        Naive datetimes and dates are local time (a date means its local midnight).
        """
        where, args = _where(("c.at >= ?", None if start is None else to_timestamp(start)),
                             ("c.at < ?", None if end is None else to_timestamp(end)),
                             ("c.person_id = ?", None if person_id is None else int(person_id)))
        order = "DESC" if newest_first else "ASC"
        sql = self._CHECKIN_SQL + where + f" ORDER BY c.at {order}, c.id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._read() as conn:
            return [CheckIn(*r) for r in conn.execute(sql, args)]

    def checkins_on(self, day: date, *, newest_first: bool = False) -> list[CheckIn]:
        """Check-ins during one local calendar day."""
        if isinstance(day, datetime):
            day = day.date()
        return self.checkins_between(day, day + timedelta(days=1), newest_first=newest_first)

    def count_checkins(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM checkins").fetchone()[0])

    def export_checkins_csv(self, dest: Any, start: TimeLike | None = None,
                            end: TimeLike | None = None) -> int:
        """Write check-ins in ``[start, end)`` as CSV to a path or text stream; returns rows.

        See :func:`desktop.store.export.write_checkins_csv` for the columns.
        """
        from desktop.store.export import write_checkins_csv

        return write_checkins_csv(self.checkins_between(start, end), dest)

    def delete_checkins_before(self, cutoff: TimeLike) -> int:
        """Delete check-ins strictly older than ``cutoff``; returns how many."""
        with self._write() as conn:
            n = conn.execute("DELETE FROM checkins WHERE at < ?",
                             (to_timestamp(cutoff),)).rowcount
        if n:
            self._checkpoint()
        return int(n)

    def apply_retention(self, days: float | None = None, *, now: TimeLike | None = None) -> int:
        """Delete check-ins older than ``days`` (default: the ``retention_days`` setting).

        ``days`` None/0/negative keeps everything. Returns how many were deleted.
        """
        days = self.get_setting("retention_days") if days is None else days
        if days is None or float(days) <= 0:
            return 0
        ref = time.time() if now is None else to_timestamp(now)
        n = self.delete_checkins_before(ref - float(days) * DAY_S)
        self.set_setting("_last_retention_at", ref)
        if n:
            log.info("retention: deleted %d check-ins older than %g days", n, float(days))
        return n

    # ------------------------------------------------------------------ settings

    def get_setting(self, key: str, default: Any = _UNCHANGED) -> Any:
        """A stored setting (JSON value); else ``default``; else the shipped check-in
        default for ``tau``, ``margin``, ``cooldown_hours`` and ``retention_days``."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return json.loads(row[0])
        if default is not _UNCHANGED:
            return default
        return default_setting("checkin", key)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable setting (None deletes it, restoring the default)."""
        with self._write() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def settings(self) -> dict[str, Any]:
        """The check-in settings (stored or default) plus every other stored public key."""
        out = {k: self.get_setting(k) for k in CHECKIN_SETTINGS}
        with self._read() as conn:
            for key, value in conn.execute("SELECT key, value FROM settings ORDER BY key"):
                if not key.startswith("_"):
                    out[key] = json.loads(value)
        return out

    # ------------------------------------------------------------------ manager PIN

    def has_pin(self) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM manager_pin WHERE id = 1").fetchone() is not None

    def _stored_pin(self) -> PinHash | None:
        with self._read() as conn:
            row = conn.execute("SELECT salt, hash, n, r, p FROM manager_pin WHERE id = 1"
                               ).fetchone()
        return PinHash(*row) if row else None

    def verify_pin(self, pin: str) -> bool:
        """True when ``pin`` is the manager PIN (False when none is set)."""
        stored = self._stored_pin()
        return stored is not None and verify_pin(pin, stored)

    def set_pin(self, new_pin: str, *, current_pin: str | None = None) -> None:
        """Set the manager PIN. Once one exists, ``current_pin`` must match it.

        Raises:
            PinError: the new PIN is too short/long, or ``current_pin`` is wrong.
        """
        if self.has_pin() and (current_pin is None or not self.verify_pin(current_pin)):
            raise PinError("The current PIN is wrong.", "Enter the PIN set when it was first used.")
        h = hash_pin(new_pin)  # slow (scrypt): outside the lock
        with self._write() as conn:
            conn.execute("INSERT INTO manager_pin(id, salt, hash, n, r, p, updated_at) "
                         "VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                         "salt = excluded.salt, hash = excluded.hash, n = excluded.n, "
                         "r = excluded.r, p = excluded.p, updated_at = excluded.updated_at",
                         (h.salt, h.hash, h.n, h.r, h.p, time.time()))

    def clear_pin(self) -> None:
        """Remove the PIN (for a recovery command run by whoever owns the file)."""
        with self._write() as conn:
            conn.execute("DELETE FROM manager_pin")

    # ------------------------------------------------------------------ backups

    def backups(self) -> list[BackupInfo]:
        """This gallery's backups, newest first."""
        return _backups.list_backups(self.path)

    def backup(self, reason: str = "manual") -> BackupInfo:
        """Make a backup now (consistent snapshot, 0600) and prune old ones."""
        with self._lock:
            return _backups.backup_connection(self._c, self.path, reason, keep=self.backup_keep)

    def _is_empty(self) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT (SELECT count(*) FROM people) + "
                                "(SELECT count(*) FROM checkins)").fetchone()[0] == 0

    def daily_maintenance(self, now: TimeLike | None = None) -> MaintenanceReport:
        """Back up if the newest backup is a day old (and the gallery is not empty), and
        apply check-in retention if it was last applied a day ago. Cheap when not due;
        call it at start-up and then, say, hourly."""
        ref = time.time() if now is None else to_timestamp(now)
        made = None
        latest = self.backups()
        if (not latest or ref - latest[0].created.timestamp() >= DAY_S) and not self._is_empty():
            made = self.backup("daily")
        deleted = None
        last = self.get_setting("_last_retention_at", None)
        if last is None or ref - float(last) >= DAY_S:
            deleted = self.apply_retention(now=ref)
        return MaintenanceReport(made, deleted)


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE a AND b`` and its arguments, from the (clause, value) pairs whose value is
    not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    sql = " WHERE " + " AND ".join(c for c, _ in used) if used else ""
    return sql, [v for _, v in used]


def _clean_employee_id(employee_id: str | None) -> str | None:
    if employee_id is None:
        return None
    cleaned = str(employee_id).strip()
    return cleaned or None


def open_gallery(path: str | Path | None = None, **kwargs: Any) -> Gallery:
    """Open (or create) the gallery; see :class:`Gallery` for arguments and errors."""
    return Gallery(path, **kwargs)
