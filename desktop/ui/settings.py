"""Persistent UI settings: window geometry and last-used choices, through QSettings.

Settings live in an INI file in the user config folder (``FACESTYLE_HOME/config`` when
that variable is set), so tests and portable installs never touch the user's own.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

from desktop.paths import ensure_writable, user_dirs
from desktop.resources import default


def settings_path() -> str:
    return str(ensure_writable(user_dirs().config) / "settings.ini")


def app_settings() -> QSettings:
    """A QSettings bound to the app's INI file. Cheap; make one where you need it."""
    return QSettings(settings_path(), QSettings.Format.IniFormat)


def read(settings: QSettings, key: str, fallback: Any = None, type_: type | None = None) -> Any:
    """Read ``section/key``; absent keys fall back to resources/default_settings.json, then
    to ``fallback``. ``type_`` converts INI strings back to int, float or bool."""
    section, _, name = key.partition("/")
    if not settings.contains(key):
        return default(section, name, fallback)
    value = settings.value(key)
    if type_ is bool and isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    if type_ is not None and value is not None:
        try:
            return type_(value)
        except (TypeError, ValueError):
            return default(section, name, fallback)
    return value
