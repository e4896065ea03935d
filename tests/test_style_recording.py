"""Recording a job's iterations and saving G every N iterations (no Qt, no VGG)."""

import numpy as np

from desktop.style.recording import Autosave, Recorder, recorded
from desktop.style.settings import IterationReport, StyleSettings


def reports(n):
    for i in range(1, n + 1):
        image = np.full((4, 6, 3), i, np.uint8)
        yield IterationReport(i, n, image, content=float(i), style=100.0 / i, tv=0.0,
                              total=i + 100.0 / i, seconds=0.01 * i)


def test_every_iteration_is_recorded_and_every_nth_saved(tmp_path):
    saved = []

    def save(path, image, settings, extra):
        saved.append((path.name, int(image[0, 0, 0]), extra["iteration"]))

    rec = Recorder()
    out = list(recorded(reports(7), StyleSettings(), rec, Autosave(tmp_path, 3, save, "run")))
    assert [r.iteration for r in out] == list(range(1, 8))
    assert [r.step for r in rec.rows] == list(range(1, 8))
    assert rec.rows[3].losses() == {"content": 4.0, "style": 25.0, "tv": 0.0, "total": 29.0}
    assert saved == [("run-00003.png", 3, 3), ("run-00006.png", 6, 6)]
    assert rec.saved == [tmp_path / "run-00003.png", tmp_path / "run-00006.png"]
    assert rec.last is out[-1]
    assert rec.rows_since(5) == rec.rows[5:]
    assert abs(rec.seconds_per_iteration(window=2) - 0.065) < 1e-9


def test_a_failing_autosave_stops_saving_but_not_painting(tmp_path):
    calls = []

    def save(path, image, settings, extra):
        calls.append(path)
        raise OSError(28, "No space left on device")

    rec = Recorder()
    out = list(recorded(reports(6), StyleSettings(), rec, Autosave(tmp_path, 2, save)))
    assert len(out) == 6 and len(rec.rows) == 6
    assert len(calls) == 1 and rec.saved == []
    assert "No space left" in str(rec.save_errors[0])
