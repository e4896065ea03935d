"""A heartbeat on the UI thread: how long the event loop went without running a timer.

    beat = Heartbeat(10).start()
    ...                                  # the app works; the event loop runs
    beat.stop()
    beat.max_gap_ms                      # 10 when the UI thread was never blocked

Used by the tests and ``bench/checkin_ui_heartbeat.py`` to show that live recognition
never freezes the window.
"""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer


class Heartbeat(QObject):
    """Records the milliseconds between ticks of a ``interval_ms`` timer (``gaps``)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gaps: list[int] = []
        self._clock = QElapsedTimer()
        self._last = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)

    def start(self) -> Heartbeat:
        self.gaps = []
        self._clock.start()
        self._last = 0
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = self._clock.elapsed()
        self.gaps.append(int(now - self._last))
        self._last = now

    @property
    def max_gap_ms(self) -> int:
        return max(self.gaps, default=0)

    def percentile(self, q: float) -> int:
        """The ``q`` quantile (0-1) of the gaps, in ms."""
        if not self.gaps:
            return 0
        ordered = sorted(self.gaps)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
