"""The check-in log (a mixin of :class:`desktop.store.Gallery`)."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from datetime import date, datetime, timedelta
from typing import Any

from desktop.store.database import DAY_S, TimeLike, to_timestamp, where_clause
from desktop.store.errors import PersonNotFoundError, StoreError
from desktop.store.records import CheckIn, WithheldCheckIn

log = logging.getLogger(__name__)


class CheckinLogMixin:
    """Recording and querying check-ins, retention, CSV export (needs :class:`Database`)."""

    # ------------------------------------------------------------------ check-ins

    _CHECKIN_SQL = """
        SELECT c.id, c.person_id, COALESCE(p.name, c.person_name), c.at, c.d, c.camera,
               c.rule, c.score, c.model_id, p.employee_id
        FROM checkins c LEFT JOIN people p ON p.id = c.person_id
    """

    def _insert_checkin(self, conn: sqlite3.Connection, person_id: int, d: float, camera: str,
                        rule: str, score: float | None, model_id: str, at: float,
                        uid: str | None = None) -> CheckIn:
        """Insert one check-in. ``uid`` is the idempotency key of a desk's check-in (the
        shared gallery keeps it; the SQLite file has no other writer to dedupe)."""
        row = conn.execute("SELECT name, employee_id FROM people WHERE id = ?",
                           (int(person_id),)).fetchone()
        if row is None:
            raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
        if not math.isfinite(float(d)):
            raise ValueError("a check-in needs a finite distance d")
        rule = str(getattr(rule, "name", rule))  # a DecisionRule or its name
        new_id = self._store_checkin(
            conn, (int(person_id), row[0], at, float(d), camera, rule,
                   None if score is None else float(score), model_id), uid)
        return CheckIn(new_id, int(person_id), row[0], at, float(d), camera, rule,
                       None if score is None else float(score), model_id, row[1])

    def _store_checkin(self, conn: sqlite3.Connection, values: tuple, uid: str | None) -> int:
        """INSERT one row (person_id, person_name, at, d, camera, rule, score, model_id)."""
        return self._insert_id(
            conn, "INSERT INTO checkins(person_id, person_name, at, d, camera, rule, score,"
            " model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)

    def record_checkin(self, person_id: int, d: float, *, camera: str = "", rule: str = "",
                       score: float | None = None, model_id: str = "",
                       at: TimeLike | None = None, uid: str | None = None) -> CheckIn:
        """Record a check-in unconditionally (see :meth:`record_checkin_if_due`)."""
        ts = time.time() if at is None else to_timestamp(at)
        with self._write() as conn:
            return self._insert_checkin(conn, person_id, d, camera, rule, score, model_id, ts,
                                        uid)

    def record_checkin_if_due(self, person_id: int, d: float, *, cooldown_s: float,
                              camera: str = "", rule: str = "", score: float | None = None,
                              model_id: str = "", at: TimeLike | None = None,
                              uid: str | None = None) -> CheckIn | None:
        """Record a check-in unless the person checked in less than ``cooldown_s`` ago.

        The check and the insert are one transaction, so two threads or processes
        cannot both record. Returns the new check-in, or None inside the cooldown.

        Raises:
            PersonNotFoundError: the person was deleted meanwhile.
        """
        ts = time.time() if at is None else to_timestamp(at)
        with self._write() as conn:
            last = conn.execute("SELECT max(at) FROM checkins WHERE person_id = ?",
                                (int(person_id),)).fetchone()[0]
            if last is not None and ts - last < cooldown_s:
                return None
            return self._insert_checkin(conn, person_id, d, camera, rule, score, model_id, ts,
                                        uid)

    def last_checkin(self, person_id: int) -> CheckIn | None:
        """The person's most recent check-in, or None."""
        with self._read() as conn:
            row = conn.execute(self._CHECKIN_SQL + " WHERE c.person_id = ? "
                               "ORDER BY c.at DESC, c.id DESC LIMIT 1", (int(person_id),)
                               ).fetchone()
        return CheckIn(*row) if row else None

    def last_checkin_times(self) -> dict[int, float]:
        """person id -> Unix time of their latest check-in (to prime a cooldown cache)."""
        with self._read() as conn:
            return {int(pid): float(at) for pid, at in conn.execute(
                "SELECT person_id, max(at) FROM checkins WHERE person_id IS NOT NULL "
                "GROUP BY person_id")}

    def checkins_between(self, start: TimeLike | None = None, end: TimeLike | None = None, *,
                         person_id: int | None = None, newest_first: bool = False,
                         limit: int | None = None) -> list[CheckIn]:
        """Check-ins with ``start <= at < end`` (either bound may be None).

        Naive datetimes and dates are local time (a date means its local midnight).
        """
        return self._rows_between(self._CHECKIN_SQL, "c", CheckIn, start, end, person_id,
                                  newest_first, limit)

    def _rows_between(self, select: str, alias: str, make: Any, start: TimeLike | None,
                      end: TimeLike | None, person_id: int | None, newest_first: bool,
                      limit: int | None) -> list[Any]:
        """``make(*row)`` for the rows of ``select`` (its table named ``alias``) with
        ``start <= at < end`` (and the person), by time."""
        where, args = where_clause(
            (f"{alias}.at >= ?", None if start is None else to_timestamp(start)),
            (f"{alias}.at < ?", None if end is None else to_timestamp(end)),
            (f"{alias}.person_id = ?", None if person_id is None else int(person_id)))
        order = "DESC" if newest_first else "ASC"
        sql = select + where + f" ORDER BY {alias}.at {order}, {alias}.id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._read() as conn:
            return [make(*r) for r in conn.execute(sql, args)]

    def checkins_on(self, day: date, *, newest_first: bool = False) -> list[CheckIn]:
        """Check-ins during one local calendar day."""
        if isinstance(day, datetime):
            day = day.date()
        return self.checkins_between(day, day + timedelta(days=1), newest_first=newest_first)

    # ------------------------------------------------------------------ withheld check-ins

    _WITHHELD_SQL = """
        SELECT w.id, w.person_id, COALESCE(p.name, w.person_name), w.at, w.d, w.camera,
               w.reason, w.detail, w.model_id, p.employee_id
        FROM withheld_checkins w LEFT JOIN people p ON p.id = w.person_id
    """

    def record_withheld(self, person_id: int, d: float, *, reason: str, detail: str = "",
                        camera: str = "", model_id: str = "",
                        at: TimeLike | None = None) -> WithheldCheckIn:
        """Keep a check-in that liveness withheld (``reason``: a code such as
        ``flat_motion``; ``detail``: JSON text with the figures). No cooldown applies.

        Raises:
            PersonNotFoundError: the person was deleted meanwhile.
        """
        ts = time.time() if at is None else to_timestamp(at)
        if not math.isfinite(float(d)):
            raise ValueError("a withheld check-in needs a finite distance d")
        if not reason:
            raise ValueError("a withheld check-in needs a reason")
        with self._write() as conn:
            row = conn.execute("SELECT name, employee_id FROM people WHERE id = ?",
                               (int(person_id),)).fetchone()
            if row is None:
                raise PersonNotFoundError(f"No person with id {person_id} in the gallery.")
            new_id = self._insert_id(
                conn, "INSERT INTO withheld_checkins(person_id, person_name, at, d, camera,"
                " reason, detail, model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (int(person_id), row[0], ts, float(d), camera, str(reason), str(detail),
                 model_id))
        return WithheldCheckIn(new_id, int(person_id), row[0], ts, float(d),
                               camera, str(reason), str(detail), model_id, row[1])

    def withheld_between(self, start: TimeLike | None = None, end: TimeLike | None = None, *,
                         person_id: int | None = None, newest_first: bool = False,
                         limit: int | None = None) -> list[WithheldCheckIn]:
        """Withheld check-ins with ``start <= at < end`` (as :meth:`checkins_between`)."""
        return self._rows_between(self._WITHHELD_SQL, "w", WithheldCheckIn, start, end,
                                  person_id, newest_first, limit)

    def count_checkins(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM checkins").fetchone()[0])

    def export_checkins_csv(self, dest: Any, start: TimeLike | None = None,
                            end: TimeLike | None = None) -> int:
        """Write check-ins in ``[start, end)`` as CSV to a path or text stream; returns rows.

        See :func:`desktop.store.export.write_checkins_csv` for the columns.
        """
        from desktop.store.export import write_checkins_csv

        return write_checkins_csv(self.checkins_between(start, end), dest)

    def delete_checkin(self, checkin_id: int) -> None:
        """Delete one check-in (e.g. a mistaken one); StoreError when there is none."""
        with self._write() as conn:
            n = conn.execute("DELETE FROM checkins WHERE id = ?", (int(checkin_id),)).rowcount
        if not n:
            raise StoreError(f"No check-in with id {checkin_id}.")

    def delete_checkins_before(self, cutoff: TimeLike) -> int:
        """Delete check-ins (and withheld ones) strictly older than ``cutoff``; returns
        how many check-ins."""
        with self._write() as conn:
            n = conn.execute("DELETE FROM checkins WHERE at < ?",
                             (to_timestamp(cutoff),)).rowcount
            conn.execute("DELETE FROM withheld_checkins WHERE at < ?", (to_timestamp(cutoff),))
        if n:
            self._checkpoint()
        return int(n)

    def apply_retention(self, days: float | None = None, *, now: TimeLike | None = None) -> int:
        """Delete check-ins older than ``days`` (default: the ``retention_days`` setting).

        ``days`` None/0/negative keeps everything. Returns how many were deleted.
        """
        days = self.get_setting("retention_days") if days is None else days
        if days is None or float(days) <= 0:
            return 0
        ref = time.time() if now is None else to_timestamp(now)
        n = self.delete_checkins_before(ref - float(days) * DAY_S)
        self.set_setting("_last_retention_at", ref)
        if n:
            log.info("retention: deleted %d check-ins older than %g days", n, float(days))
        return n
