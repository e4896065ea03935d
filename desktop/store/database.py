"""The connection under :class:`desktop.store.Gallery`: opening, checks, migrations,
transactions, error translation and backups (see :mod:`desktop.store.gallery`)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

from desktop.paths import user_dirs
from desktop.store import backups as _backups
from desktop.store import schema
from desktop.store.errors import (
    BackupInfo,
    GalleryBusyError,
    GalleryCorruptError,
    GalleryUnreadableError,
    MigrationError,
    SchemaTooNewError,
    StoreError,
)

log = logging.getLogger(__name__)

DB_FILENAME = "gallery.sqlite3"
DAY_S = 86_400.0
TimeLike = float | int | datetime | date


def default_db_path() -> Path:
    """``user_dirs().data / "gallery.sqlite3"`` (FACESTYLE_HOME respected)."""
    return user_dirs().data / DB_FILENAME


def to_timestamp(value: TimeLike) -> float:
    """Unix seconds from a number, a datetime (naive = local time) or a date (local
    midnight at its start)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time()).timestamp()
    return float(value)


def where_clause(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE a AND b`` and its arguments, from the (clause, value) pairs whose value is
    not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    sql = " WHERE " + " AND ".join(c for c, _ in used) if used else ""
    return sql, [v for _, v in used]


_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_VTAB", "SQLITE_CORRUPT_SEQUENCE",
            "SQLITE_CORRUPT_INDEX", "SQLITE_IOERR_SHORT_READ"}
_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY",
         "SQLITE_BUSY_TIMEOUT", "SQLITE_LOCKED_SHAREDCACHE"}


def _is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (SQLite's busy/locked codes, or the message)."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    return code in _BUSY or "locked" in str(exc)


class StoreConnection:
    """What both backends' connection layers share (SQLite's :class:`Database`, and
    :class:`desktop.store.postgres.database.PostgresDatabase`)."""

    def close(self) -> None:  # pragma: no cover - each backend closes its own
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _insert_id(conn: Any, sql: str, args: Any) -> int:
        """Run one ``INSERT`` and return the new row's id."""
        return int(conn.execute(sql + " RETURNING id", args).fetchall()[0][0])


class Database(StoreConnection):
    """One SQLite connection behind a re-entrant lock; see :class:`Gallery` for arguments."""

    def __init__(self, path: str | Path | None = None, *, create: bool = True,
                 backup_keep: int = _backups.DEFAULT_KEEP, busy_timeout_s: float = 5.0
                 ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path = self.path.expanduser().absolute()
        self.backup_keep = max(1, int(backup_keep))
        self._busy_timeout_s = float(busy_timeout_s)
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

    # ------------------------------------------------------------------ lifecycle

    def _prepare_files(self, existed: bool) -> None:
        parent = self.path.parent
        _backups.make_private_dir(parent)
        if parent == default_db_path().parent:
            _backups._chmod(parent, 0o700)
        if not existed:
            _backups.create_private_file(self.path)

    def _configure(self, existed: bool) -> None:
        """Check the file, refuse what is not ours, then set the connection's pragmas.

        Nothing is written before the file is known to be a healthy facestyle gallery
        (or a new, empty one) of a schema this code can read.
        """
        conn = self._c
        if existed:
            row = conn.execute("PRAGMA quick_check").fetchone()
            if not row or row[0] != "ok":
                raise self._corrupt(f"integrity check failed: {row[0] if row else 'no answer'}")
        # one statement, one snapshot: another process may be creating the schema now
        version, n_objects = conn.execute(
            "SELECT (SELECT user_version FROM pragma_user_version),"
            " (SELECT count(*) FROM sqlite_master)").fetchone()
        if version > schema.current_version():
            raise SchemaTooNewError(
                f"The gallery {self.path} was written by a newer facestyle (schema "
                f"{version}; this version reads up to {schema.current_version()}).",
                "Update facestyle. The file was not changed.")
        if version == 0 and n_objects:
            raise self._corrupt("it is a SQLite database but not a facestyle gallery",
                                not_gallery=True)
        mode = self._switch_to_wal(conn)
        if str(mode).lower() != "wal":
            log.warning("gallery journal mode is %s, not WAL", mode)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")

    def _switch_to_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode=WAL``, retried while another process holds a write lock.

        The switch upgrades a read lock to an exclusive one inside one statement, and SQLite
        answers "database is locked" at once, without waiting, when another connection is
        writing then (deadlock avoidance): two processes opening a new gallery together
        hit this. So it is retried, with growing pauses, for up to ``busy_timeout_s``.
        """
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.005
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _migrate(self) -> None:
        """Run the missing migrations, each in its own transaction with its version bump.

        The version is re-read inside each transaction, so two processes opening a new or
        old gallery at once do not both run the same step.
        """
        conn = self._c
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        target = schema.current_version()
        if version == target:
            return
        info = None
        if version > 0:
            info = _backups.backup_connection(conn, self.path,
                                              f"pre-migration-v{version}-to-v{target}",
                                              keep=self.backup_keep)
            log.info("backed up the gallery to %s before migrating", info.path)
        for step in range(version, target):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) > step:
                    conn.execute("COMMIT")  # another process did this step meanwhile
                    continue
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
            if _is_busy(exc):
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

    # ------------------------------------------------------------------ SQL dialect
    # The mixins' SQL is shared with the PostgreSQL backend; these few pieces differ.

    @staticmethod
    def _ci_equal(column: str) -> str:
        """``column`` equals the next parameter, ignoring (ASCII) case."""
        return f"{column} = ? COLLATE NOCASE"

    @staticmethod
    def _ci_order(column: str) -> str:
        """``column`` as an ORDER BY term that ignores (ASCII) case."""
        return f"{column} COLLATE NOCASE"

    def _after_bulk_copy(self, conn: Any) -> None:
        """After rows were inserted with their ids (nothing to do: SQLite's next id is
        the largest plus one)."""

    def _fill_vectors(self) -> int:
        """No vector column here (see the PostgreSQL backend)."""
        return 0

    def _checkpoint(self) -> None:
        """Move committed pages into the main file and truncate the WAL (best effort)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
