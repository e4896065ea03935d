"""Rolling backups of the gallery database, and restoring one over a broken file.

Backups live in a ``backups`` folder beside the database (created 0700), one file each,
named ``<stem>-<UTC time>-<reason>.sqlite3`` (0600). They are consistent snapshots made
with SQLite's online backup API, so a backup taken while the app runs is never torn.
Only the newest ``keep`` are kept.

A broken database is never deleted: :func:`restore_backup` renames it (and its ``-wal`` /
``-shm`` companions) to ``<name>.broken-<UTC time>`` beside the original before copying
the chosen backup into place.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from desktop.store.errors import BackupError, BackupInfo

BACKUP_DIR_NAME = "backups"
DEFAULT_KEEP = 7
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?"
                      r"-(?P<reason>[a-z0-9.-]+)\.sqlite3$")


def backup_dir(db_path: Path) -> Path:
    return Path(db_path).parent / BACKUP_DIR_NAME


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) owner-only (0700); tighten it if we own it."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        _chmod(folder, 0o700)
    return path


def create_private_file(path: Path) -> bool:
    """Create an empty owner-only (0600) file if none exists. True when it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    _chmod(path, 0o600)  # the umask could have removed bits, never added; be explicit
    return True


def _chmod(path: Path, mode: int) -> None:
    if os.name == "posix":
        with contextlib.suppress(OSError):
            os.chmod(path, mode)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def list_backups(db_path: Path) -> list[BackupInfo]:
    """Backups of ``db_path``, newest first (unreadable folder: an empty list)."""
    db_path = Path(db_path)
    folder = backup_dir(db_path)
    out = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _NAME_RE.match(entry.name)
        if not m or m["stem"] != db_path.stem:
            continue
        try:
            created = datetime.strptime(m["stamp"], _STAMP).replace(tzinfo=UTC)
            size = entry.stat().st_size
        except (ValueError, OSError):
            continue
        out.append((created, int(m["n"] or 0), BackupInfo(entry, created, m["reason"], size)))
    out.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [info for _, _, info in out]


def _new_backup_path(db_path: Path, reason: str, now: datetime) -> Path:
    folder = make_private_dir(backup_dir(db_path))
    safe = re.sub(r"[^a-z0-9.-]+", "-", reason.lower()).strip("-") or "manual"
    stamp = now.strftime(_STAMP)
    for n in range(1000):
        suffix = f"-{n}" if n else ""
        path = folder / f"{db_path.stem}-{stamp}{suffix}-{safe}.sqlite3"
        if create_private_file(path):
            return path
    raise BackupError(f"Too many backups made at {stamp} in {folder}.")


def backup_connection(conn: sqlite3.Connection, db_path: Path, reason: str,
                      keep: int = DEFAULT_KEEP, now: datetime | None = None) -> BackupInfo:
    """Snapshot the database behind ``conn`` into a new backup file, then prune to ``keep``.

    Raises:
        BackupError: the backup folder or file cannot be written.
    """
    db_path = Path(db_path)
    now = now or _utcnow()
    try:
        path = _new_backup_path(db_path, reason, now)
    except OSError as exc:
        raise BackupError(f"Cannot write a backup beside {db_path}: {exc.strerror or exc}",
                          "Check the permissions of the data folder and the free disk space."
                          ) from exc
    try:
        target = sqlite3.connect(path)
        try:
            conn.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
        finally:
            target.close()
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise BackupError(f"Backup of {db_path} failed: {exc}",
                          "Check the free disk space.") from exc
    prune_backups(db_path, keep)
    m = _NAME_RE.match(path.name)
    return BackupInfo(path, now.replace(microsecond=0), m["reason"] if m else reason,
                      path.stat().st_size)


def prune_backups(db_path: Path, keep: int = DEFAULT_KEEP) -> list[Path]:
    """Delete all but the newest ``keep`` backups (keep >= 1). Returns the deleted paths."""
    keep = max(1, int(keep))
    removed = []
    for info in list_backups(db_path)[keep:]:
        try:
            info.path.unlink()
            removed.append(info.path)
        except OSError:
            pass
    return removed


def check_backup(path: Path) -> int:
    """Open a backup read-only, verify it, and return its schema version.

    Raises:
        BackupError: the file is missing, not a database, damaged or not a gallery.
    """
    from desktop.store.schema import REQUIRED_TABLES

    path = Path(path)
    if not path.is_file():
        raise BackupError(f"The backup {path} does not exist.")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
            if not row or row[0] != "ok":
                raise BackupError(f"The backup {path.name} is damaged ({row[0] if row else '?'}).",
                                  "Choose an older backup.")
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables >= REQUIRED_TABLES:
                raise BackupError(f"{path.name} is not a facestyle gallery backup.")
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"The backup {path.name} cannot be read: {exc}",
                          "Choose an older backup.") from exc


def move_aside(db_path: Path, now: datetime | None = None) -> Path | None:
    """Rename a database and its -wal/-shm files to ``<name>.broken-<time>``; never delete.

    Returns the new path of the main file (None when there was no file).
    """
    db_path = Path(db_path)
    stamp = (now or _utcnow()).strftime(_STAMP)
    target = db_path.with_name(f"{db_path.name}.broken-{stamp}")
    n = 1
    while target.exists():
        target = db_path.with_name(f"{db_path.name}.broken-{stamp}-{n}")
        n += 1
    moved = None
    for suffix in ("", "-wal", "-shm", "-journal"):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            dst = Path(f"{target}{suffix}")
            try:
                os.replace(src, dst)
            except OSError as exc:
                raise BackupError(f"Cannot move {src} aside: {exc.strerror or exc}",
                                  "Close other programs using it and check permissions."
                                  ) from exc
            if suffix == "":
                moved = dst
    return moved


def restore_backup(db_path: Path, backup: Path | BackupInfo | None = None) -> Path | None:
    """Replace the database at ``db_path`` by a backup (default: the newest good one).

    The current file, if any, is moved aside (see :func:`move_aside`), never deleted.
    The gallery must not be open in this process. Returns where the old file went.

    Raises:
        BackupError: no backup exists, the chosen one is damaged, or files cannot be moved.
    """
    db_path = Path(db_path)
    if backup is None:
        candidates = list_backups(db_path)
        if not candidates:
            raise BackupError(f"There is no backup of {db_path.name} to restore.",
                              f"Backups are kept in {backup_dir(db_path)}.")
        errors = []
        for info in candidates:
            try:
                check_backup(info.path)
                backup = info.path
                break
            except BackupError as exc:
                errors.append(exc.message)
        else:
            raise BackupError("No backup of the gallery can be read.", " ".join(errors))
    path = backup.path if isinstance(backup, BackupInfo) else Path(backup)
    check_backup(path)
    moved = move_aside(db_path)
    make_private_dir(db_path.parent)
    create_private_file(db_path)
    try:
        src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(db_path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Restoring {path.name} failed: {exc}") from exc
    _chmod(db_path, 0o600)
    return moved
