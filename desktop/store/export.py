"""Check-in log export to CSV.

Columns: ``time`` (local, ISO 8601 with UTC offset), ``date`` (local), ``name``,
``employee_id``, ``person_id`` (empty when the person was deleted and the history kept),
``d`` (squared distance, 4 decimals), ``camera``, ``rule`` (the decision rule that
accepted the match), ``score``, ``model_id``.

Text cells that a spreadsheet would run as a formula (starting with ``= + - @`` or a tab /
carriage return) are prefixed with a single quote, so a name such as ``=HYPERLINK(...)``
cannot execute when the file is opened in Excel or LibreOffice. Files are written as
UTF-8 with a byte-order mark, which Excel needs to show accented names correctly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from desktop.store.errors import StoreError
from desktop.store.records import CheckIn

COLUMNS = ("time", "date", "name", "employee_id", "person_id", "d", "camera", "rule", "score",
           "model_id")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str | None) -> str:
    """``text`` defused for spreadsheets (see module docstring); None -> ''."""
    if text is None:
        return ""
    text = str(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def checkin_row(c: CheckIn) -> list[str]:
    when = c.when
    return [
        when.isoformat(timespec="seconds"),
        when.date().isoformat(),
        safe_cell(c.name),
        safe_cell(c.employee_id),
        "" if c.person_id is None else str(c.person_id),
        f"{c.d:.4f}",
        safe_cell(c.camera),
        safe_cell(c.rule),
        "" if c.score is None else f"{c.score:.4f}",
        safe_cell(c.model_id),
    ]


def write_checkins_csv(checkins: Iterable[CheckIn], dest: str | os.PathLike[str] | TextIO
                       | Any) -> int:
    """Write ``checkins`` as CSV to a path (UTF-8 with BOM, written atomically) or an open
    text stream (as is). Returns the number of data rows."""
    if hasattr(dest, "write"):
        return _write(checkins, dest)
    path = Path(dest)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as f:
            n = _write(checkins, f)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise StoreError(f"Cannot write {path}: {exc.strerror or exc}",
                             "Choose another folder or file name.") from exc
        raise
    return n


def _write(checkins: Iterable[CheckIn], stream: TextIO | io.StringIO) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for c in checkins:
        writer.writerow(checkin_row(c))
        n += 1
    return n
