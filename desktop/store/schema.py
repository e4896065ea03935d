"""The gallery's SQL schema, as numbered migrations (``PRAGMA user_version``).

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; a fresh database runs
them all. Each migration runs inside one transaction together with the ``user_version``
bump, so a failed or interrupted migration leaves the previous version intact (SQLite DDL
is transactional). A backup is taken before migrating an existing database.

Conventions:

* times are REAL Unix seconds (UTC); the UI and the CSV export convert to local time;
* an embedding is 128 little-endian float32 values (512 bytes), f(x) as the encoder gave it;
* ``templates.chip_jpeg`` is the aligned 150x150 RGB chip as a JPEG (quality 95, no
  chroma subsampling), kept at full size so a new encoder can re-embed it;
* ``checkins.person_name`` is the display name at check-in time. When a person is deleted
  but their history kept, ``person_id`` becomes NULL and the row still shows the name;
  while the person exists, queries show their current name;
* ``meta.revision`` goes up on every change to people or templates (triggers), so a live
  matcher (even in another process) can tell cheaply that it must reload;
* ``withheld_checkins`` (version 2) lists check-ins that liveness refused: the face was
  recognised as the person but judged not live. ``reason`` is a stable code
  (``flat_motion``: moved like a flat picture; ``moving_surround``: its surroundings
  moved with it, as a print's margin or a phone's bezel; ``no_response``: no blink or
  head turn when asked); ``detail`` is JSON text with the liveness figures (free form,
  for people reading the log). Names and deletion follow ``checkins``: the name is frozen
  when the person is deleted with history kept (``person_id`` NULL), the rows go when the
  history is deleted, and retention deletes them by ``at`` as it does check-ins. They
  never count as check-ins (no cooldown, no export).
"""

from __future__ import annotations

SCHEMA_V1: tuple[str, ...] = (
    """
    CREATE TABLE people (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
        employee_id TEXT UNIQUE,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    )
    """,
    "CREATE INDEX people_name ON people(name COLLATE NOCASE)",
    """
    CREATE TABLE templates (
        id            INTEGER PRIMARY KEY,
        person_id     INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        embedding     BLOB NOT NULL CHECK (length(embedding) = 512),
        model_id      TEXT NOT NULL,
        model_version TEXT NOT NULL DEFAULT '',
        chip_jpeg     BLOB NOT NULL,
        source        TEXT NOT NULL CHECK (source IN ('webcam', 'file')),
        created_at    REAL NOT NULL
    )
    """,
    "CREATE INDEX templates_person ON templates(person_id)",
    "CREATE INDEX templates_model ON templates(model_id)",
    """
    CREATE TABLE checkins (
        id          INTEGER PRIMARY KEY,
        person_id   INTEGER REFERENCES people(id) ON DELETE SET NULL,
        person_name TEXT NOT NULL,
        at          REAL NOT NULL,
        d           REAL NOT NULL,
        camera      TEXT NOT NULL DEFAULT '',
        rule        TEXT NOT NULL,
        score       REAL,
        model_id    TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX checkins_at ON checkins(at)",
    "CREATE INDEX checkins_person_at ON checkins(person_id, at)",
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """
    CREATE TABLE manager_pin (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        salt       BLOB NOT NULL,
        hash       BLOB NOT NULL,
        n          INTEGER NOT NULL,
        r          INTEGER NOT NULL,
        p          INTEGER NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO meta(key, value) VALUES ('revision', 0)",
    *(
        f"""
        CREATE TRIGGER {table}_{op.lower()}_revision AFTER {op} ON {table}
        BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END
        """
        for table in ("people", "templates")
        for op in ("INSERT", "UPDATE", "DELETE")
    ),
)

#: Version 2: check-ins withheld by liveness (see the module doc). Only adds a table.
WITHHELD_CHECKINS_V2: tuple[str, ...] = (
    """
    CREATE TABLE withheld_checkins (
        id          INTEGER PRIMARY KEY,
        person_id   INTEGER REFERENCES people(id) ON DELETE SET NULL,
        person_name TEXT NOT NULL,
        at          REAL NOT NULL,
        d           REAL NOT NULL,
        camera      TEXT NOT NULL DEFAULT '',
        reason      TEXT NOT NULL,
        detail      TEXT NOT NULL DEFAULT '',
        model_id    TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX withheld_checkins_at ON withheld_checkins(at)",
)

#: Migration steps; ``MIGRATIONS[i]`` upgrades version i to i + 1.
MIGRATIONS: list[tuple[str, ...]] = [SCHEMA_V1, WITHHELD_CHECKINS_V2]

#: Tables every facestyle gallery has (used to tell a gallery from another SQLite file).
REQUIRED_TABLES = frozenset({"people", "templates", "checkins", "settings", "manager_pin",
                             "meta"})


def current_version() -> int:
    """The schema version this code writes."""
    return len(MIGRATIONS)
