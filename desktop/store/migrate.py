"""Copying a whole gallery between stores: a SQLite file to a PostgreSQL server
(``facestyle gallery migrate --to URL``) and back (``--from URL``).

Everything is copied with its ids: people, templates (embeddings, encoder versions and
chips), the check-in log, the check-ins liveness withheld, settings and the manager PIN's
hash. The target must be empty; the copy is one transaction on the target (all or
nothing), read from the source in batches. Afterwards the counts (people, templates per
encoder, check-ins, settings, PIN) are compared on both sides and a difference raises
:class:`MigrationError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desktop.store.errors import MigrationError
from desktop.tasks import ProgressCallback, no_progress

#: table -> columns copied (in this order: people before what refers to them).
TABLES: dict[str, tuple[str, ...]] = {
    "people": ("id", "name", "employee_id", "created_at", "updated_at"),
    "templates": ("id", "person_id", "embedding", "model_id", "model_version", "chip_jpeg",
                  "source", "created_at"),
    "checkins": ("id", "person_id", "person_name", "at", "d", "camera", "rule", "score",
                 "model_id"),
    "withheld_checkins": ("id", "person_id", "person_name", "at", "d", "camera", "reason",
                          "detail", "model_id"),
    "settings": ("key", "value"),
    "manager_pin": ("id", "salt", "hash", "n", "r", "p", "updated_at"),
}
_KEY = {"settings": "key"}
BATCH = 500


@dataclass(frozen=True)
class GalleryCounts:
    people: int
    templates: dict[str, int]  # per encoder model_id
    checkins: int
    settings: int
    pin: int

    def describe(self) -> str:
        models = ", ".join(f"{n} from {m}" for m, n in self.templates.items()) or "none"
        return (f"{self.people} people, {sum(self.templates.values())} templates ({models}), "
                f"{self.checkins} check-ins, {self.settings} settings, "
                f"{'a' if self.pin else 'no'} manager PIN")


def count(gallery: Any) -> GalleryCounts:
    """What :func:`copy_gallery` compares."""
    with gallery._read() as conn:
        n = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}
        models = {str(m): int(c) for m, c in conn.execute(
            "SELECT model_id, count(*) FROM templates GROUP BY model_id ORDER BY model_id")}
    return GalleryCounts(n["people"], models, n["checkins"], n["settings"], n["manager_pin"])


def copy_gallery(source: Any, target: Any, *, progress: ProgressCallback = no_progress,
                 batch: int = BATCH) -> GalleryCounts:
    """Copy ``source`` into the empty ``target`` (each a Gallery or a PostgresGallery);
    returns the verified counts.

    Raises:
        MigrationError: the target is not empty (nothing is copied), or the counts
            differ after the copy (the message says what; the source is never changed).
    """
    before = count(target)
    if before.people or before.templates or before.checkins:
        raise MigrationError(
            f"The target gallery {target.path} is not empty ({before.describe()}).",
            "Migrate into a new, empty database or file; nothing was copied.")
    expected = count(source)
    total = max(1, expected.people + sum(expected.templates.values()) + expected.checkins)
    done = 0
    with target._write() as out:
        for table in ("settings", "manager_pin"):  # small; replace what a new one holds
            out.execute(f"DELETE FROM {table}")
        for table, columns in TABLES.items():
            key = _KEY.get(table, "id")
            marks = ", ".join("?" * len(columns))
            insert = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})"
            last: Any = None
            while True:
                with source._read() as conn:
                    where = "" if last is None else f" WHERE {key} > ?"
                    rows = conn.execute(
                        f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {key} "
                        f"LIMIT {int(batch)}", () if last is None else (last,)).fetchall()
                if not rows:
                    break
                out.executemany(insert, [tuple(_plain(v) for v in r) for r in rows])
                last = rows[-1][columns.index(key)]
                if table in ("people", "templates", "checkins"):
                    done += len(rows)
                    progress(done / total, f"{table}: {done}/{total} rows")
        target._after_bulk_copy(out)
    target._fill_vectors()
    got = count(target)
    if got != expected:
        raise MigrationError(
            f"The copy does not match: the source has {expected.describe()}, the target "
            f"{got.describe()}.", "Report this as a bug; the source was not changed.")
    return got


def _plain(value: Any) -> Any:
    """bytes for memoryview/bytearray (SQLite and psycopg both take bytes)."""
    return bytes(value) if isinstance(value, memoryview | bytearray) else value
