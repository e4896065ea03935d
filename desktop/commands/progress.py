"""A terminal progress bar with rate and ETA, for long CLI commands (stderr only)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressBar:
    """``bar.update(done, note)`` redraws ``label [#####.....] done/total rate ETA note``.

    On a terminal it redraws in place; otherwise it prints a line at most every 5 s.
    """

    def __init__(self, total: int, label: str = "", unit: str = "it",
                 stream: TextIO | None = None, width: int = 28) -> None:
        self.total = max(1, int(total))
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self._last_line = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int, note: str = "") -> None:
        now = time.monotonic()
        if not self._tty and done < self.total and now - self._last_line < 5.0:
            return
        self._last_line = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        eta_text = format_seconds(eta) if eta == eta else "--:--"
        line = (f"{self.label} [{bar}] {done}/{self.total} {rate:.2f} {self.unit}/s "
                f"ETA {eta_text} {note}").rstrip()
        if self._tty:
            self.stream.write("\r" + line.ljust(100)[:160])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
