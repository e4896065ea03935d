"""People and their face templates (a mixin of :class:`desktop.store.Gallery`)."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from desktop.store.chips import (
    blob_to_embedding,
    blobs_to_matrix,
    decode_chip,
    embedding_to_blob,
    encode_chip,
)
from desktop.store.database import where_clause
from desktop.store.errors import (
    AmbiguousNameError,
    DuplicatePersonError,
    PersonNotFoundError,
    StoreError,
)
from desktop.store.records import (
    SOURCES,
    DeleteResult,
    GalleryEmbeddings,
    NewTemplate,
    Person,
    Template,
)

if TYPE_CHECKING:
    from desktop.face.matching import DecisionRule, Matcher

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200
_UNCHANGED: Any = object()


def clean_name(name: str) -> str:
    """A display name with surrounding/duplicate whitespace removed, or ValueError."""
    if not isinstance(name, str):
        raise ValueError("a name must be text")
    cleaned = re.sub(r"\s+", " ", name).strip()
    if not cleaned:
        raise ValueError("a name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValueError(f"a name can have at most {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise ValueError("a name cannot contain control characters")
    return cleaned


def _clean_employee_id(employee_id: str | None) -> str | None:
    if employee_id is None:
        return None
    cleaned = str(employee_id).strip()
    return cleaned or None


class PeopleMixin:
    """People, templates, embeddings for the matcher (needs :class:`Database`)."""

    # ------------------------------------------------------------------ people

    _PERSON_SQL = """
        SELECT p.id, p.name, p.employee_id, p.created_at, p.updated_at,
               (SELECT count(*) FROM templates t WHERE t.person_id = p.id),
               (SELECT max(c.at) FROM checkins c WHERE c.person_id = p.id)
        FROM people p
    """

    def people(self) -> list[Person]:
        """Everyone enrolled, by name (case-insensitive), with template counts."""
        with self._read() as conn:
            rows = conn.execute(self._PERSON_SQL + f" ORDER BY {self._ci_order('p.name')}, p.id")
            return [Person(*r) for r in rows]

    def person(self, person_id: int) -> Person:
        with self._read() as conn:
            row = conn.execute(self._PERSON_SQL + " WHERE p.id = ?", (int(person_id),)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
        return Person(*row)

    def find_people(self, name: str) -> list[Person]:
        """People whose display name equals ``name`` (case-insensitive, spaces trimmed)."""
        try:
            key = clean_name(name)
        except ValueError:
            return []
        with self._read() as conn:
            rows = conn.execute(self._PERSON_SQL + f" WHERE {self._ci_equal('p.name')} "
                                "ORDER BY p.id", (key,))
            return [Person(*r) for r in rows]

    def person_by_name(self, name: str) -> Person:
        """The one person called ``name``; raises when none or several."""
        found = self.find_people(name)
        if not found:
            raise PersonNotFoundError(f"No one called '{name}' is enrolled.",
                                      "'facestyle gallery list' shows who is.")
        if len(found) > 1:
            ids = ", ".join(str(p.id) for p in found)
            raise AmbiguousNameError(f"Several people are called '{name}' (ids {ids}).",
                                     "Choose one by id.")
        return found[0]

    def _check_unique(self, conn: sqlite3.Connection, name: str, employee_id: str | None,
                      allow_duplicate_name: bool, exclude_id: int | None = None) -> None:
        skip = -1 if exclude_id is None else int(exclude_id)
        if not allow_duplicate_name:
            row = conn.execute(f"SELECT id FROM people WHERE {self._ci_equal('name')} "
                               "AND id != ?", (name, skip)).fetchone()
            if row:
                raise DuplicatePersonError(
                    f"'{name}' is already enrolled (id {row[0]}).",
                    "Add photos to that person instead, or use a different name.")
        if employee_id is not None:
            row = conn.execute("SELECT name FROM people WHERE employee_id = ? AND id != ?",
                               (employee_id, skip)).fetchone()
            if row:
                raise DuplicatePersonError(
                    f"Employee id '{employee_id}' already belongs to {row[0]}.")

    @staticmethod
    def _template_rows(templates: Sequence[NewTemplate]) -> list[tuple]:
        """Validate and encode templates before any lock is taken (JPEG is the slow part)."""
        rows = []
        for t in templates:
            if t.source not in SOURCES:
                raise ValueError(f"template source must be one of {SOURCES}, got {t.source!r}")
            if not t.model_id:
                raise ValueError("a template needs the model_id of the encoder that made it")
            rows.append((embedding_to_blob(t.embedding), str(t.model_id), str(t.model_version),
                         encode_chip(t.chip), t.source))
        return rows

    def _insert_template(self, conn: sqlite3.Connection, person_id: int, row: tuple,
                         now: float) -> int:
        return self._insert_id(
            conn, "INSERT INTO templates(person_id, embedding, model_id, model_version, "
            "chip_jpeg, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (person_id, *row, now))

    def enrol(self, name: str, templates: Sequence[NewTemplate], *,
              employee_id: str | None = None, allow_duplicate_name: bool = False) -> Person:
        """Create a person with their templates, in ONE transaction (all or nothing).

        Raises:
            ValueError: no templates, a bad name, chip or embedding.
            DuplicatePersonError: the name (unless ``allow_duplicate_name``) or the
                employee id is taken.
        """
        name = clean_name(name)
        employee_id = _clean_employee_id(employee_id)
        if not templates:
            raise ValueError("an enrolment needs at least one face template")
        rows = self._template_rows(templates)
        now = time.time()
        with self._write() as conn:
            self._check_unique(conn, name, employee_id, allow_duplicate_name)
            person_id = self._insert_id(
                conn, "INSERT INTO people(name, employee_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)", (name, employee_id, now, now))
            for row in rows:
                self._insert_template(conn, person_id, row, now)
        log.info("enrolled %s (id %d) with %d templates", name, person_id, len(rows))
        return self.person(person_id)

    def add_templates(self, person_id: int, templates: Sequence[NewTemplate]) -> list[int]:
        """Add templates to an existing person in one transaction; returns their ids."""
        rows = self._template_rows(templates)
        now = time.time()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM people WHERE id = ?", (int(person_id),)).fetchone() \
                    is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            ids = [self._insert_template(conn, int(person_id), row, now) for row in rows]
            conn.execute("UPDATE people SET updated_at = ? WHERE id = ?", (now, int(person_id)))
        return ids

    def remove_template(self, template_id: int) -> None:
        """Delete one template (and its chip). A person may be left with none."""
        with self._write() as conn:
            row = conn.execute("SELECT person_id FROM templates WHERE id = ?",
                               (int(template_id),)).fetchone()
            if row is None:
                raise StoreError(f"No template with id {template_id}.")
            conn.execute("DELETE FROM templates WHERE id = ?", (int(template_id),))
            conn.execute("UPDATE people SET updated_at = ? WHERE id = ?", (time.time(), row[0]))
        self._checkpoint()

    def rename_person(self, person_id: int, name: str | None = None, *,
                      employee_id: str | None = _UNCHANGED,
                      allow_duplicate_name: bool = False) -> Person:
        """Change a person's display name and/or employee id (None clears it)."""
        with self._write() as conn:
            row = conn.execute("SELECT name, employee_id FROM people WHERE id = ?",
                               (int(person_id),)).fetchone()
            if row is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            new_name = clean_name(name) if name is not None else row[0]
            new_emp = row[1] if employee_id is _UNCHANGED else _clean_employee_id(employee_id)
            self._check_unique(conn, new_name, new_emp,
                               allow_duplicate_name or new_name.lower() == row[0].lower(),
                               exclude_id=person_id)
            conn.execute("UPDATE people SET name = ?, employee_id = ?, updated_at = ? "
                         "WHERE id = ?", (new_name, new_emp, time.time(), int(person_id)))
        return self.person(person_id)

    def delete_person(self, person_id: int, *, keep_history: bool) -> DeleteResult:
        """Delete a person with all their templates and chips, in one transaction.

        ``keep_history=True`` keeps their check-ins (shown under the name they had, with
        ``person_id`` None); False deletes them too. Deleted rows are overwritten in the
        file (secure_delete + WAL checkpoint); rolling backups still hold them until
        they expire.
        """
        with self._write() as conn:
            row = conn.execute("SELECT name FROM people WHERE id = ?", (int(person_id),)).fetchone()
            if row is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            n_tpl = conn.execute("SELECT count(*) FROM templates WHERE person_id = ?",
                                 (int(person_id),)).fetchone()[0]
            n_chk = conn.execute("SELECT count(*) FROM checkins WHERE person_id = ?",
                                 (int(person_id),)).fetchone()[0]
            # freeze the current name on kept rows, so history shows who it was
            for table in ("checkins", "withheld_checkins"):
                conn.execute(f"UPDATE {table} SET person_name = ? WHERE person_id = ?",
                             (row[0], int(person_id)))
                if not keep_history:
                    conn.execute(f"DELETE FROM {table} WHERE person_id = ?", (int(person_id),))
            conn.execute("DELETE FROM templates WHERE person_id = ?", (int(person_id),))
            conn.execute("DELETE FROM people WHERE id = ?", (int(person_id),))
        self._checkpoint()
        log.info("deleted person %d (%d templates, history %s)", person_id, n_tpl,
                 "kept" if keep_history else "deleted")
        return DeleteResult(int(person_id), row[0], int(n_tpl),
                            0 if keep_history else int(n_chk), int(n_chk) if keep_history else 0)

    # ------------------------------------------------------------------ templates

    def templates(self, person_id: int | None = None, *, model_id: str | None = None,
                  with_chips: bool = False) -> list[Template]:
        """Stored templates, optionally of one person and/or one encoder, oldest first."""
        where, args = where_clause(
            ("person_id = ?", None if person_id is None else int(person_id)),
            ("model_id = ?", model_id))
        chip = "chip_jpeg" if with_chips else "NULL"
        sql = (f"SELECT id, person_id, embedding, model_id, model_version, source, created_at,"
               f" {chip} FROM templates{where} ORDER BY id")
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [Template(r[0], r[1], blob_to_embedding(r[2]), r[3], r[4], r[5], r[6],
                         bytes(r[7] or b"")) for r in rows]

    def template_chip(self, template_id: int) -> np.ndarray:
        """The stored aligned chip of a template, (150, 150, 3) uint8 RGB."""
        with self._read() as conn:
            row = conn.execute("SELECT chip_jpeg FROM templates WHERE id = ?",
                               (int(template_id),)).fetchone()
        if row is None:
            raise StoreError(f"No template with id {template_id}.")
        return decode_chip(row[0])

    def model_counts(self) -> dict[str, int]:
        """Number of templates per encoder model_id."""
        with self._read() as conn:
            return dict(conn.execute(
                "SELECT model_id, count(*) FROM templates GROUP BY model_id ORDER BY model_id"))

    def count_stale(self, model_id: str) -> int:
        """Templates made by an encoder other than ``model_id`` (to be re-embedded)."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM templates WHERE model_id != ?",
                                    (model_id,)).fetchone()[0])

    def stale_template_ids(self, model_id: str) -> list[int]:
        with self._read() as conn:
            return [r[0] for r in conn.execute(
                "SELECT id FROM templates WHERE model_id != ? ORDER BY id", (model_id,))]

    def stale_chips(self, template_ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        """(template id, its current model_id, chip JPEG) for the given ids still present."""
        if not template_ids:
            return []
        marks = ",".join("?" * len(template_ids))
        with self._read() as conn:
            return [tuple(r) for r in conn.execute(
                f"SELECT id, model_id, chip_jpeg FROM templates WHERE id IN ({marks}) "
                "ORDER BY id", [int(t) for t in template_ids])]

    def replace_embeddings(self, updates: Iterable[tuple[int, str, np.ndarray]],
                           model_id: str, model_version: str = "") -> int:
        """Set new embeddings from encoder ``model_id`` in ONE transaction.

        ``updates`` holds (template id, the model_id it was read with, new embedding); a
        template changed or deleted since it was read is skipped. Returns rows updated.
        """
        rows = [(embedding_to_blob(e), model_id, model_version, int(tid), old)
                for tid, old, e in updates]
        n = 0
        with self._write() as conn:
            for row in rows:
                n += conn.execute("UPDATE templates SET embedding = ?, model_id = ?, "
                                  "model_version = ? WHERE id = ? AND model_id = ?",
                                  row).rowcount
        return n

    def embeddings(self, model_id: str) -> GalleryEmbeddings:
        """Every template of encoder ``model_id``, as arrays for the matcher."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT t.id, t.person_id, t.embedding FROM templates t "
                "WHERE t.model_id = ? ORDER BY t.person_id, t.id", (model_id,)).fetchall()
            names = dict(conn.execute(
                "SELECT id, name FROM people WHERE id IN "
                "(SELECT person_id FROM templates WHERE model_id = ?)", (model_id,)))
            revision = self._revision(conn)
        return GalleryEmbeddings(
            model_id=model_id,
            embeddings=blobs_to_matrix([r[2] for r in rows]),
            person_ids=np.array([r[1] for r in rows], dtype=np.int64),
            template_ids=np.array([r[0] for r in rows], dtype=np.int64),
            names=names, revision=revision)

    def matcher(self, model_id: str, *, tau: float | None = None, margin: float | None = None,
                rule: DecisionRule | None = None) -> Matcher:
        """A :class:`~desktop.face.matching.Matcher` over this encoder's templates only.

        ``tau`` and ``margin`` default to the gallery's settings. The matcher's
        ``revision`` attribute records :meth:`revision` at load time.
        """
        from desktop.face.matching import Matcher

        g = self.embeddings(model_id)
        return Matcher(g.embeddings, g.person_ids, g.names, g.template_ids,
                       tau=float(self.get_setting("tau") if tau is None else tau),
                       margin=float(self.get_setting("margin") if margin is None else margin),
                       rule=rule, model_id=model_id, revision=g.revision)

    def nearest_people(self, model_id: str, query: np.ndarray, k: int = 3) -> list[Any]:
        """The ``k`` people whose best template of encoder ``model_id`` is nearest to
        ``query`` (128,): :class:`~desktop.face.matching.Neighbour` list, nearest first."""
        return self.matcher(model_id).nearest_people(query, k=k)

    @staticmethod
    def _revision(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    def revision(self) -> int:
        """A counter that changes whenever people or templates change (in any process).

        Cheap; poll it to know when to rebuild a matcher.
        """
        with self._read() as conn:
            return self._revision(conn)
