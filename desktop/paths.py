"""User folders: data (gallery database), cache (converted weights), logs and config.

The platform's standard places are used (XDG on Linux, ``~/Library`` on macOS,
``%LOCALAPPDATA%`` on Windows). ``FACESTYLE_HOME`` overrides all of them with
sub-folders of one directory, for tests and portable installs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from desktop import APP_NAME
from desktop.errors import UserDirError

HOME_ENV = "FACESTYLE_HOME"


@dataclass(frozen=True)
class UserDirs:
    """The four folders the app writes to. None of them is created by constructing this."""

    data: Path
    cache: Path
    logs: Path
    config: Path

    def as_dict(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in ("data", "cache", "logs", "config")}


def _platform_dirs() -> UserDirs:
    home = Path.home()
    if sys.platform == "darwin":
        lib = home / "Library"
        return UserDirs(
            data=lib / "Application Support" / APP_NAME,
            cache=lib / "Caches" / APP_NAME,
            logs=lib / "Logs" / APP_NAME,
            config=lib / "Preferences" / APP_NAME,
        )
    if os.name == "nt":
        local = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        base = local / APP_NAME
        return UserDirs(base / "data", base / "cache", base / "logs", base / "config")

    def xdg(var: str, default: Path) -> Path:
        value = os.environ.get(var)
        return Path(value) if value and os.path.isabs(value) else default

    state = xdg("XDG_STATE_HOME", home / ".local" / "state")
    return UserDirs(
        data=xdg("XDG_DATA_HOME", home / ".local" / "share") / APP_NAME,
        cache=xdg("XDG_CACHE_HOME", home / ".cache") / APP_NAME,
        logs=state / APP_NAME / "logs",
        config=xdg("XDG_CONFIG_HOME", home / ".config") / APP_NAME,
    )


def user_dirs() -> UserDirs:
    """The folders for this process: ``FACESTYLE_HOME`` sub-folders, or the platform's own."""
    override = os.environ.get(HOME_ENV)
    if override:
        base = Path(override).expanduser()
        return UserDirs(base / "data", base / "cache", base / "logs", base / "config")
    return _platform_dirs()


def ensure_writable(path: Path) -> Path:
    """Create ``path`` (a folder) if needed and prove it can be written, or raise.

    Raises:
        UserDirError: with the folder's name and the reason, when it cannot be created or
            a file cannot be written inside it.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        hint = (
            f"Check the permissions of {path}, or set {HOME_ENV} to a folder you can write."
        )
        raise UserDirError(f"Cannot write to {path}: {exc.strerror or exc}", hint) from exc
    return path


def ensure_user_dirs() -> UserDirs:
    """:func:`user_dirs`, with every folder created and checked writable."""
    dirs = user_dirs()
    for folder in (dirs.data, dirs.cache, dirs.logs, dirs.config):
        ensure_writable(folder)
    return dirs
