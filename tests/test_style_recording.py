"""Recording a job's iterations and saving G every N iterations (no Qt, no VGG)."""

import numpy as np
import pytest

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


def _row(step, seconds, scale=0, size=(0, 0)):
    from desktop.style.recording import LossRow

    return LossRow(step, step, 0.0, 0.0, 0.0, 0.0, seconds, scale, size)


def _report(scale_index, scale_iteration, scales, iteration, total):
    image = np.zeros((4, 6, 3), np.uint8)
    return IterationReport(iteration, total, image, 0.0, 0.0, 0.0, 0.0, 0.1,
                           scale_index=scale_index, scales=scales,
                           scale_iteration=scale_iteration)


def test_eta_of_one_scale_is_the_recent_pace_without_the_first_iteration():
    from desktop.style.recording import eta_from_rows

    rows = [_row(1, 2.0)] + [_row(i, 0.5) for i in range(2, 11)]
    report = _report(0, 0, [], 10, 50)
    assert eta_from_rows(rows, report) == pytest.approx(40 * 0.5)
    assert eta_from_rows([], report) is None


def test_eta_extrapolates_a_larger_scale_from_the_two_paces_measured():
    from desktop.style.recording import eta_from_rows

    scales = [(96, 128, 50), (192, 256, 50), (384, 512, 200)]
    coarse = [_row(1, 0.9, 0)] + [_row(i, 0.2, 0) for i in range(2, 51)]
    # during the first scale one pace cannot price the larger scales: not known yet
    assert eta_from_rows(coarse[:4], _report(0, 4, scales, 4, 300)) is None
    single = [(384, 512, 300)]  # a job of one scale has its ETA from the first pace
    assert eta_from_rows(coarse[:4], _report(0, 4, single, 4, 300)) == pytest.approx(
        0.2 * 296)
    middle = coarse + [_row(50 + i, 0.5, 1) for i in range(1, 11)]
    # 0.2 s at 12,288 px and 0.5 s at 49,152 px: 0.5 + 0.3 x 4 = 1.7 s at 196,608 px
    eta = eta_from_rows(middle, _report(1, 10, scales, 60, 300))
    assert eta == pytest.approx(40 * 0.5 + 200 * 1.7)
    assert eta < 40 * 0.5 + 200 * 0.5 * 4  # below the proportional estimate


def test_recorder_eta_uses_its_rows():
    rec = Recorder()
    for i in range(1, 6):
        rec.add(_row(i, 1.0 if i == 1 else 0.25))
    assert rec.eta_seconds(_report(0, 0, [], 5, 9)) == pytest.approx(4 * 0.25)
    # the it/s shown beside the ETA is the same pace (the slow first iteration left out)
    assert rec.seconds_per_iteration() == pytest.approx(0.25)
    rec.add(_row(6, 3.0, scale=1))  # a new scale's first iteration: all there is of it
    assert rec.seconds_per_iteration() == pytest.approx(3.0)
