"""Running a style job while recording it: every iteration's losses, and G saved every N.

The Style tab shows only the newest G (a slow UI skips iterations rather than fall
behind), but the loss plot and the "save every N iterations" option need every
iteration. :func:`recorded` wraps the loop's reports on the worker's side: it appends one
:class:`LossRow` per iteration to a :class:`Recorder` (which the UI reads at its own
pace) and writes G to the autosave folder every N iterations, then passes the report on.
No Qt here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from desktop.style.settings import IterationReport, StyleSettings

#: ``save(path, image, settings, extra)``: writes G as PNG with its settings.
SaveFn = Callable[[Path, np.ndarray, StyleSettings, dict[str, Any]], Any]


@dataclass(frozen=True)
class LossRow:
    """One iteration's numbers (weighted loss terms; seconds of that iteration alone)."""

    step: int  # 1-based count over the whole job (over all scales when coarse to fine)
    iteration: int
    content: float
    style: float
    tv: float
    total: float
    seconds: float
    scale_index: int = 0  # coarse-to-fine scale (J is measured on G at that scale's size)
    size: tuple[int, int] = (0, 0)  # G's (height, width) at that scale

    def losses(self) -> dict[str, float]:
        return {"content": self.content, "style": self.style, "tv": self.tv,
                "total": self.total}


@dataclass
class Autosave:
    """Save G every ``every`` iterations into ``folder`` as ``<stem>-<step>.png``."""

    folder: Path
    every: int
    save: SaveFn
    stem: str = field(default_factory=lambda: time.strftime("style-%Y%m%d-%H%M%S"))

    def path(self, step: int) -> Path:
        return self.folder / f"{self.stem}-{step:05d}.png"


class Recorder:
    """What a running job has done so far; written by the worker thread, read by the UI.

    ``rows_since(n)`` returns the rows after the first ``n`` (appends are atomic, so a
    reader never sees half a row).
    """

    def __init__(self) -> None:
        self.rows: list[LossRow] = []
        self.saved: list[Path] = []
        self.save_errors: list[Exception] = []
        self.last: IterationReport | None = None
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def rows_since(self, n: int) -> list[LossRow]:
        with self._lock:
            return self.rows[n:]

    def add(self, row: LossRow) -> None:
        with self._lock:
            self.rows.append(row)

    def seconds_per_iteration(self, window: int = 10) -> float | None:
        """Mean own time of the last ``window`` iterations of the current scale, its
        first iteration left out once there are others: the pace the ETA uses too, so the
        status line's it/s and ETA agree (None before the first iteration)."""
        with self._lock:
            rows = list(self.rows)
        if not rows:
            return None
        return _scale_pace(rows, rows[-1].scale_index, window)

    def eta_seconds(self, report: IterationReport, window: int = 10) -> float | None:
        """Seconds until the job's last iteration, from the pace so far (None before the
        first iteration). See :func:`eta_from_rows`."""
        with self._lock:
            rows = list(self.rows)
        return eta_from_rows(rows, report, window)


def _scale_pace(rows: list[LossRow], scale: int, window: int) -> float | None:
    """Mean seconds per iteration of the last ``window`` rows of ``scale``, leaving out
    the scale's first iteration (L-BFGS's first steps often evaluate J twice) when
    there are others."""
    mine = [r.seconds for r in rows if r.scale_index == scale]
    if len(mine) > 1:
        mine = mine[1:]
    mine = mine[-window:]
    return sum(mine) / len(mine) if mine else None


def eta_waits_for_next_scale(report: IterationReport) -> bool:
    """True during the first scale of a job whose later scales are larger: one pace
    measured cannot price them (see :func:`eta_from_rows`), so no ETA is known yet."""
    if report.scale_index != 0 or not report.scales:
        return False
    h, w, _ = report.scales[0]
    return any(sh * sw > h * w for sh, sw, _ in report.scales[1:])


def eta_from_rows(rows: list[LossRow], report: IterationReport, window: int = 10
                  ) -> float | None:
    """Seconds left in a job whose latest report is ``report``, given its ``rows``.

    The rest of the current scale runs at its recent pace. A later, larger scale costs
    ``a + b * pixels`` per iteration, the line through the pace of the scale before this
    one and this one's: an iteration's cost is not proportional to its pixels (at 128 px
    fixed costs weigh; measured on 2 AVX2 cores: 0.22 s at 128 px, 0.5 s at 256 px,
    1.4-1.6 s at 512 px), so pixels alone would put the ETA 2-3x too far during the first
    scale. With one scale measured that line is unknown: during the first scale of a job
    whose later scales are larger the ETA is None (pixels alone said 29 minutes at 128 px
    on 2 AVX2 cores for a job that took 4): :func:`eta_waits_for_next_scale`.
    """
    pace = _scale_pace(rows, report.scale_index, window)
    if pace is None or eta_waits_for_next_scale(report):
        return None
    if not report.scales:
        return max(0, report.total_iterations - report.iteration) * pace
    k = report.scale_index
    h, w, n = report.scales[k]
    pixels = float(h * w)
    slope = pace / pixels  # seconds per pixel-iteration: proportional, no fixed part
    base = 0.0
    if k > 0:
        before = _scale_pace(rows, k - 1, window)
        ph, pw, _ = report.scales[k - 1]
        if before is not None and pixels > ph * pw and pace > before:
            slope = (pace - before) / (pixels - ph * pw)
            base = pace - slope * pixels
    left = max(0, n - report.scale_iteration) * pace
    for sh, sw, sn in report.scales[k + 1:]:
        left += sn * (base + slope * sh * sw)
    return left


def recorded(
    reports: Iterable[IterationReport],
    settings: StyleSettings,
    recorder: Recorder,
    autosave: Autosave | None = None,
) -> Iterator[IterationReport]:
    """Pass ``reports`` through, recording each one and autosaving every N-th G.

    A failed autosave (disk full, folder gone) is kept in ``recorder.save_errors`` and
    stops further autosaves; it never stops the painting.
    """
    for step, report in enumerate(reports, start=1):
        recorder.add(LossRow(step, report.iteration, report.content, report.style, report.tv,
                             report.total, report.seconds, report.scale_index, report.size))
        recorder.last = report
        if autosave is not None and autosave.every > 0 and step % autosave.every == 0:
            path = autosave.path(step)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                autosave.save(path, report.image, settings,
                              {"iteration": step, "losses": report.losses()})
                recorder.saved.append(path)
            except Exception as exc:  # reported to the user by the UI
                recorder.save_errors.append(exc)
                autosave = None
        yield report
