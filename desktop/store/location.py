"""Where the gallery lives: a SQLite file on this computer (the default) or a PostgreSQL
server shared by several desks.

A location is given as ``--database`` on a command, the ``FACESTYLE_DATABASE``
environment variable, or (in the app) the manager's Settings field, in that order of
precedence; without any, the SQLite file in the user data folder is used. A server is
named by a libpq URL, ``postgresql://USER@HOST:PORT/DBNAME?sslmode=verify-full&...``:
every libpq parameter (TLS included) passes through unchanged. The password comes from
the URL, ``PGPASSFILE`` (``~/.pgpass``) or ``PGPASSWORD``; the app never stores one.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_VAR = "FACESTYLE_DATABASE"
SCHEMES = ("postgresql://", "postgres://")


def is_server_url(location: object) -> bool:
    """True when ``location`` names a PostgreSQL server rather than a SQLite file."""
    return isinstance(location, str) and location.strip().lower().startswith(SCHEMES)


def from_environment() -> str | None:
    """``FACESTYLE_DATABASE`` when set and not blank."""
    value = os.environ.get(ENV_VAR, "").strip()
    return value or None


def resolve(location: str | os.PathLike[str] | None) -> str | Path:
    """The server URL or the SQLite path to use for ``location`` (None: the environment
    variable, else the default SQLite file)."""
    from desktop.store.database import default_db_path

    if location is None or (isinstance(location, str) and not location.strip()):
        location = from_environment()
    if location is None:
        return default_db_path()
    if is_server_url(location):
        return str(location).strip()
    return Path(location).expanduser()


def has_password(url: str) -> bool:
    """True when the URL carries a password (``user:secret@host``)."""
    return urlsplit(url).password is not None


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def describe(location: str | Path) -> str:
    """``host:port/dbname`` for a server, the path for a file (for the status bar)."""
    if not is_server_url(location):
        return str(location)
    parts = urlsplit(str(location))
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    db = parts.path.lstrip("/") or (parts.username or "")
    return f"{host}{port}/{db}"


def desk_slug(url: str) -> str:
    """A file-name-safe name for the desk's local copy of the server at ``url``: the
    server's address and a short hash of the URL without its password."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", describe(url)).strip("-")[:60] or "server"
    digest = hashlib.sha256(redact(url).encode()).hexdigest()[:10]
    return f"{safe}-{digest}"
