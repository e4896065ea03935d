"""This desk and the shared gallery, in the UI: where the gallery is configured (the
manager's Settings field, kept in the app's settings file without a password), and the
bridge that carries a shared gallery's notices to the UI thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.store.location import from_environment, has_password, is_server_url
from desktop.ui import settings as ui_settings

DATABASE_KEY = "checkin/database"  # the shared gallery's URL, without a password


class SharedGallerySignals(QObject):
    """Carries a shared gallery's notices (``"people"``, ``"settings"``, ``"online"``,
    ``"offline"``) from its listening thread to the UI thread."""

    changed = Signal(str)


def configured_gallery() -> str | None:
    """The gallery this desk uses: ``FACESTYLE_DATABASE`` (or ``--database``, which sets
    it), else the manager's Settings field, else None (the local file)."""
    return from_environment() or stored_database() or None


def stored_database() -> str:
    """The shared gallery's URL saved in the app's settings ("" for the local file)."""
    return str(ui_settings.read(ui_settings.app_settings(), DATABASE_KEY, "", str) or "")


def database_problem(text: str) -> str | None:
    """Why ``text`` cannot be saved as the shared gallery's address, or None."""
    text = text.strip()
    if not text:
        return None
    if not is_server_url(text):
        return "The server must be a postgresql:// address (or empty for this computer)."
    if has_password(text):
        return ("Leave the password out of the address: put it in ~/.pgpass (PGPASSFILE) or "
                "the PGPASSWORD environment variable. Nothing was saved.")
    return None


def store_database(text: str) -> bool:
    """Save the address (empty: the local file); True when it changed."""
    text = text.strip()
    if text == stored_database():
        return False
    settings = ui_settings.app_settings()
    if text:
        settings.setValue(DATABASE_KEY, text)
    else:
        settings.remove(DATABASE_KEY)
    settings.sync()
    return True


def describe_gallery(gallery: Any) -> str:
    """Which gallery this desk uses now, in words."""
    status = getattr(gallery, "sync_status", None)
    if callable(status):
        return f"the shared gallery on {gallery.location} ({status().describe()[16:]})"
    return f"this computer's file {gallery.path}"
