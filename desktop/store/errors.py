"""Errors raised by the gallery store, each with a message and a hint for the user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from desktop.errors import FacestyleError


@dataclass(frozen=True)
class BackupInfo:
    """One backup file of a gallery database."""

    path: Path
    created: datetime  # UTC, aware; taken from the file name
    reason: str  # "daily", "pre-migration-v1-to-v2", "manual", "pre-restore"...
    size: int  # bytes

    def describe(self) -> str:
        local = self.created.astimezone()
        return f"{local:%Y-%m-%d %H:%M} ({self.reason}, {self.size / 1024:.0f} KB)"


class StoreError(FacestyleError):
    """Base class for gallery and check-in log errors."""


class GalleryOpenError(StoreError):
    """The gallery database cannot be used. Carries the backups that could replace it.

    The file is left exactly where it was; :func:`desktop.store.restore_backup` moves it
    aside (never deletes it) and puts a backup in its place.
    """

    def __init__(self, message: str, hint: str | None = None, *, path: Path,
                 backups: list[BackupInfo] | None = None) -> None:
        super().__init__(message, hint)
        self.path = Path(path)
        self.backups: list[BackupInfo] = list(backups or [])

    @property
    def latest_backup(self) -> BackupInfo | None:
        return self.backups[0] if self.backups else None


class GalleryCorruptError(GalleryOpenError):
    """The file is not a SQLite database, is damaged, or is not a facestyle gallery."""


class GalleryUnreadableError(GalleryOpenError):
    """The operating system refuses access (permissions, missing folder, read-only disk)."""


class GalleryBusyError(StoreError):
    """Another program holds the database locked for longer than we wait."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer facestyle; it is not opened, to protect it."""


class MigrationError(StoreError):
    """Upgrading the schema failed; the database was left at its previous version."""


class BackupError(StoreError):
    """A backup cannot be made, read or restored."""


class PersonNotFoundError(StoreError):
    """No person with that id or name."""


class AmbiguousNameError(StoreError):
    """Several people share that display name; the caller must choose by id."""


class DuplicatePersonError(StoreError):
    """A person with that name or employee id is already enrolled."""


class PinError(StoreError):
    """The manager PIN is too short, or none is set yet."""


class PinLockedError(PinError):
    """Too many wrong PINs in a row; ``retry_after`` seconds until the next try."""

    def __init__(self, message: str, hint: str | None = None, *,
                 retry_after: float = 0.0) -> None:
        super().__init__(message, hint)
        self.retry_after = float(retry_after)


class EnrolmentError(StoreError):
    """Enrolment refused: images without exactly one face, a look-alike, or no templates.

    ``problems`` holds one plain sentence per refused image or check; ``message`` is the
    ``headline`` followed by those sentences (one per line), so every front end that
    prints ``message`` and ``hint`` shows them.
    """

    def __init__(self, headline: str, hint: str | None = None,
                 problems: list[str] | None = None) -> None:
        self.headline = headline
        self.problems: list[str] = list(problems or [])
        message = "\n".join([headline, *(f"  - {p}" for p in self.problems)])
        super().__init__(message, hint)
