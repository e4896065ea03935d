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

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.store import backups as _backups
from desktop.store.checkin_log import CheckinLogMixin
from desktop.store.database import (
    DAY_S,
    DB_FILENAME,
    Database,
    TimeLike,
    default_db_path,
    to_timestamp,
)
from desktop.store.errors import BackupInfo, StoreError
from desktop.store.people import PeopleMixin, clean_name
from desktop.store.preferences import CHECKIN_SETTINGS, SettingsMixin

log = logging.getLogger(__name__)

__all__ = ["CHECKIN_SETTINGS", "DB_FILENAME", "Gallery", "MaintenanceReport", "clean_name",
           "default_db_path", "open_gallery", "to_timestamp"]


@dataclass(frozen=True)
class MaintenanceReport:
    backup: BackupInfo | None  # the backup made now, if one was due
    checkins_deleted: int | None  # None when retention was not due or is off


class Gallery(PeopleMixin, CheckinLogMixin, SettingsMixin, Database):
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
        super().__init__(path, create=create, backup_keep=backup_keep,
                         busy_timeout_s=busy_timeout_s)
        if maintenance:
            try:
                self.daily_maintenance()
            except StoreError as exc:  # a backup failure must not stop the app
                log.warning("gallery maintenance failed: %s", exc)

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


def open_gallery(path: str | Path | None = None, *, live: bool = False, **kwargs: Any) -> Any:
    """Open (or create) the gallery at ``path``: a SQLite file (see :class:`Gallery` for
    arguments and errors) or a ``postgresql://`` URL (the shared gallery). None means
    ``FACESTYLE_DATABASE`` when set, else the default file (:mod:`desktop.store.location`).

    For a server, ``live=True`` gives a desk's :class:`~desktop.store.postgres.SharedGallery`
    (change notifications, local copy, offline queue), else a plain
    :class:`~desktop.store.postgres.PostgresGallery`; of ``kwargs`` only ``maintenance``
    applies to a server.
    """
    from desktop.store.location import is_server_url, resolve

    where = resolve(path)
    if is_server_url(where):
        server_kwargs = {k: v for k, v in kwargs.items() if k == "maintenance"}
        if live:
            from desktop.store.postgres.desk import SharedGallery

            return SharedGallery(str(where), **server_kwargs)
        from desktop.store.postgres.gallery import PostgresGallery

        return PostgresGallery(str(where), **server_kwargs)
    return Gallery(where, **kwargs)
