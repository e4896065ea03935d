"""The connection pool under :class:`desktop.store.postgres.PostgresGallery`: opening,
schema migrations, transactions and error translation.

The store's mixins (people, check-ins, settings) write their SQL once, with ``?``
placeholders; :class:`PgConnection` hands it to psycopg with ``%s``. Every write is one
transaction that first takes a transaction-scoped advisory lock
(:data:`~desktop.store.postgres.schema.WRITE_LOCK`), so the mixins' check-then-write steps
(a unique name, the check-in cooldown) are as atomic across desks as SQLite's
``BEGIN IMMEDIATE`` makes them across processes. Writes take milliseconds, so desks
rarely wait on each other.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator
from typing import Any

from desktop.store.database import StoreConnection
from desktop.store.errors import (
    BackupError,
    BackupInfo,
    GalleryBusyError,
    MigrationError,
    SchemaTooNewError,
    StoreError,
)
from desktop.store.location import describe, redact
from desktop.store.postgres import schema

log = logging.getLogger(__name__)


class SharedGalleryError(StoreError):
    """The shared gallery's server refused something (rights, a missing database...)."""


class GalleryOfflineError(SharedGalleryError):
    """The shared gallery's server cannot be reached now."""


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """``?`` placeholders -> psycopg's ``%s`` (a literal ``%`` is doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection that takes the store's ``?``-style SQL."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, args: Any = ()) -> Any:
        return self.raw.execute(pg_sql(sql), tuple(args) if args else None)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(pg_sql(sql), rows)


def import_psycopg() -> tuple[Any, Any]:
    """(psycopg, psycopg_pool), or a clear error when they are not installed."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise SharedGalleryError(
            "The PostgreSQL driver (psycopg) is not installed, so a shared gallery "
            "cannot be used.", "Install facestyle with its dependencies: "
            "pip install 'psycopg[binary]' psycopg-pool") from exc
    return psycopg, psycopg_pool


def offline_error(url: str, exc: BaseException) -> GalleryOfflineError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return GalleryOfflineError(
        f"Cannot reach the shared gallery at {describe(url)} ({detail}).",
        "Check that the server is running and reachable from this computer, and the "
        "user name and password (in the URL, ~/.pgpass or PGPASSWORD).")


class PostgresDatabase(StoreConnection):
    """A pool of connections to one server; see :class:`PostgresGallery` for arguments."""

    #: Several desks use this gallery (the app never re-embeds it on its own).
    shared = True

    def __init__(self, url: str, *, pool_size: int = 4, connect_timeout_s: float = 5.0,
                 statement_timeout_s: float = 30.0, application_name: str = "facestyle"
                 ) -> None:
        self._psycopg, _ = import_psycopg()
        self.url = str(url).strip()
        self.path = redact(self.url)  # what messages and "origin" strings show
        self.location = describe(self.url)
        self.connect_timeout_s = float(connect_timeout_s)
        self._conn_kwargs = {
            "connect_timeout": max(1, round(connect_timeout_s)),
            "application_name": application_name,
            "options": f"-c statement_timeout={int(statement_timeout_s * 1000)}",
            # notice a vanished server (a pulled cable) within ~20 s, not hours
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
            "keepalives_count": 2,
        }
        self.has_vector = False
        self._pool: Any = None
        self._closed = False
        self._pool_size = max(1, int(pool_size))
        try:
            self._open()
        except BaseException:
            PostgresDatabase.close(self)
            raise

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        """Connect, migrate the schema, set up pgvector, and open the pool."""
        try:
            with self._connect() as conn:
                self._migrate(conn)
                self.has_vector = self._ensure_vector(conn)
        except self._psycopg.OperationalError as exc:
            raise offline_error(self.url, exc) from exc
        self._pool = self._new_pool()
        if self.has_vector:
            self._fill_vectors()

    def _new_pool(self) -> Any:
        """An open pool (its first connection made), or GalleryOfflineError."""
        pg, psycopg_pool = import_psycopg()
        pool = psycopg_pool.ConnectionPool(
            self.url, min_size=1, max_size=self._pool_size, kwargs=self._conn_kwargs,
            timeout=self.connect_timeout_s, check=psycopg_pool.ConnectionPool.check_connection,
            open=False, name="facestyle")
        try:
            pool.open(wait=True, timeout=self.connect_timeout_s)
        except pg.OperationalError as exc:
            with contextlib.suppress(Exception):
                pool.close(timeout=1.0)
            raise offline_error(self.url, exc) from exc
        return pool

    def _renew_pool(self) -> None:
        """Replace the pool by a fresh one (after the server came back: the old pool's
        connections are dead and its reconnection attempts may be backing off)."""
        fresh = self._new_pool()
        old, self._pool = self._pool, fresh
        if old is not None:
            threading.Thread(target=lambda: old.close(timeout=5.0), daemon=True).start()

    def _connect(self, **kwargs: Any) -> Any:
        """One new connection outside the pool (migrations, LISTEN)."""
        return self._psycopg.connect(self.url, **{**self._conn_kwargs, **kwargs})

    def _migrate(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.MIGRATION_LOCK,))
            ours = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
            others = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_name = ANY(%s)",
                (sorted(schema.REQUIRED_TABLES - {"meta"}),)).fetchone()[0]
            if not ours and others:
                raise SharedGalleryError(
                    f"The database {self.location} holds tables named like a gallery's, "
                    "but is not a facestyle gallery.", "Use an empty database for facestyle.")
            conn.execute(schema.BOOTSTRAP)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            target = schema.current_version()
            if version > target:
                raise SchemaTooNewError(
                    f"The shared gallery {self.location} was written by a newer facestyle "
                    f"(schema {version}; this version reads up to {target}).",
                    "Update facestyle on this desk. Nothing was changed.")
            for step in range(version, target):
                try:
                    with conn.transaction():
                        for statement in schema.MIGRATIONS[step]:
                            conn.execute(statement)
                        conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', "
                                     "%s) ON CONFLICT (key) DO UPDATE SET value = "
                                     "excluded.value", (step + 1,))
                except self._psycopg.OperationalError:
                    raise
                except self._psycopg.Error as exc:
                    raise MigrationError(
                        f"Upgrading the shared gallery {self.location} from schema {step} to "
                        f"{step + 1} failed ({exc}); it was left at schema {step}.",
                        "Report this as a bug.") from exc
                log.info("shared gallery schema migrated to version %d", step + 1)

    def _ensure_vector(self, conn: Any) -> bool:
        """Use pgvector when the server has it (create the extension if we may)."""
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except self._psycopg.OperationalError:
            raise
        except self._psycopg.Error as exc:
            log.info("pgvector is not available on %s (%s); embeddings stay bytea only",
                     self.location, str(exc).strip())
        present = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        if not present:
            return False
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.MIGRATION_LOCK,))
            for statement in schema.VECTOR_STEPS:
                conn.execute(statement)
        return True

    def _fill_vectors(self, batch: int = 2000) -> int:
        """Set ``embedding_vec`` where it is missing (templates written before pgvector
        was installed, or by a desk without it). Returns rows filled."""
        from desktop.store.chips import blob_to_embedding

        done = 0
        while True:
            with self._read() as conn:
                rows = conn.execute("SELECT id, embedding FROM templates WHERE embedding_vec "
                                    "IS NULL ORDER BY id LIMIT ?", (batch,)).fetchall()
            if not rows:
                return done
            with self._write() as conn:
                conn.executemany("UPDATE templates SET embedding_vec = ?::vector WHERE id = ?",
                                 [(vector_text(blob_to_embedding(b)), i) for i, b in rows])
            done += len(rows)

    def close(self) -> None:
        """Close the pool. Idempotent."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.close(timeout=2.0)

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate psycopg errors into the store's errors for the user."""
        pg = self._psycopg
        try:
            yield
        except (pg.errors.LockNotAvailable, pg.errors.QueryCanceled,
                pg.errors.DeadlockDetected) as exc:
            raise GalleryBusyError(
                f"The shared gallery {self.location} is busy ({str(exc).strip()}).",
                "Try again in a moment.") from exc
        except pg.OperationalError as exc:
            raise offline_error(self.url, exc) from exc
        except (pg.errors.InsufficientPrivilege, pg.errors.ReadOnlySqlTransaction) as exc:
            raise SharedGalleryError(
                f"The shared gallery {self.location} refused the change "
                f"({str(exc).strip()}).", "Ask its administrator for write access.") from exc
        except pg.errors.DiskFull as exc:
            raise StoreError(f"The shared gallery's server {self.location} is out of disk "
                             "space.", "Nothing was saved; tell its administrator.") from exc

    @contextlib.contextmanager
    def _connection(self) -> Iterator[PgConnection]:
        pool = self._pool
        if pool is None:
            if self._closed:
                raise StoreError("The gallery is closed.")
            raise GalleryOfflineError(f"The shared gallery at {self.location} is offline.",
                                      "This desk keeps trying to reconnect.")
        with self._errors(), pool.connection() as conn:
            yield PgConnection(conn)

    @contextlib.contextmanager
    def _read(self) -> Iterator[PgConnection]:
        with self._connection() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[PgConnection]:
        """One transaction holding the gallery's write lock: all or nothing."""
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (schema.WRITE_LOCK,))
            yield conn  # the pool commits on success, rolls back on an exception

    # ------------------------------------------------------------------ SQL dialect

    @staticmethod
    def _ci_equal(column: str) -> str:
        return f"lower({column}) = lower(?)"

    @staticmethod
    def _ci_order(column: str) -> str:
        return f"lower({column})"

    def _after_bulk_copy(self, conn: PgConnection) -> None:
        """Move the id sequences past rows inserted with their ids (a migration)."""
        for table in ("people", "templates", "checkins", "withheld_checkins"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")

    def _checkpoint(self) -> None:
        """Nothing to do: the server overwrites deleted rows when it vacuums."""

    # ------------------------------------------------------------------ backups

    def backups(self) -> list[BackupInfo]:
        """None here: the server's administrator backs the shared gallery up."""
        return []

    def backup(self, reason: str = "manual") -> BackupInfo:
        raise BackupError(
            f"The shared gallery on {self.location} is backed up on its server.",
            "Use pg_dump there, or copy it to a file with: facestyle gallery migrate "
            f"--from {self.path} --db COPY.sqlite3")

    def _is_empty(self) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT (SELECT count(*) FROM people) + "
                                "(SELECT count(*) FROM checkins)").fetchone()[0] == 0


def vector_text(embedding: Any) -> str:
    """pgvector's text form of a (128,) embedding, exact for float32 (9 digits)."""
    return "[" + ",".join(f"{float(v):.9g}" for v in embedding) + "]"
