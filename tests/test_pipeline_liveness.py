"""The check-in rule with liveness, on the fake engine's scenes: off is today's behaviour
exactly (the recording made before liveness existed), only a live track checks in, a
refused one is withheld once (in the log, with the reason) and shows as Unknown."""

from __future__ import annotations

import json

import pytest
from live_fakes import Clock, FakeCheckinLog, FakeEngine, FakeMatcher, scene, walk
from pipeline_golden import RECORDING, split_added_fields
from pipeline_golden import run as run_golden

from desktop.face.liveness import LandmarkModel, LivenessSettings, LivenessStatus
from desktop.face.pipeline import CheckinPipeline, PipelineSettings


def golden_without_added_fields(**kwargs) -> dict:
    out = run_golden(**kwargs)
    added = split_added_fields(out)
    assert added and all(a == {"liveness": None, "withheld": None} for a in added)
    return out


def test_liveness_off_reproduces_the_recording_made_before_liveness_existed():
    recorded = json.loads(RECORDING.read_text())
    assert golden_without_added_fields() == recorded  # off is the default
    out = golden_without_added_fields(settings={"liveness": LivenessSettings(mode="off")})
    assert out == recorded
    # the frames' JSON lines keep their keys (no "liveness", no "withheld")
    assert all(set(f["json"]) == {"frame", "faces"} for f in out["frames"])


def test_switching_liveness_on_and_off_again_restores_todays_behaviour():
    recorded = json.loads(RECORDING.read_text())

    def switch_off(pipeline):
        assert pipeline.liveness is not None
        pipeline.update_settings(liveness=LivenessSettings(mode="off"))

    out = golden_without_added_fields(
        settings={"liveness": LivenessSettings(mode="passive")}, prepare=switch_off)
    assert out == recorded


#: No 68-point model (challenges never start): these tests need no 100 MB model file.
NO_LANDMARKS = LandmarkModel.ready(None)


class WithheldLog(FakeCheckinLog):
    def __init__(self) -> None:
        super().__init__()
        self.withheld = []

    def record_withheld(self, event) -> None:
        self.withheld.append(event)


def play(mode: str, status: LivenessStatus | None = None, frames: int = 60):
    """ann walks in front of the fake camera for ``frames`` frames at 30 frames/s; with
    ``status``, the monitor's answer for every track is forced to it."""
    log = WithheldLog()
    clock = Clock()
    pipeline = CheckinPipeline(FakeEngine(), FakeMatcher(), checkin_log=log, clock=clock,
                               settings=PipelineSettings(liveness=LivenessSettings(mode=mode)),
                               landmarks=NO_LANDMARKS)
    if status is not None:
        pipeline.liveness.status = lambda _track_id: status  # type: ignore[union-attr]
    results = []
    for i, people in enumerate(walk("ann", frames)):
        clock.now += 1 / 30
        results.append(pipeline.process(scene(people), i, i / 30))
    return pipeline, log, results


def test_a_flat_fake_face_sliding_sideways_is_never_judged_live_nor_checked_in():
    """The fake faces are flat squares moved in their own plane: no 3-D motion ever, so
    with liveness on they stay 'checking' and do not check in (they would without it)."""
    _, log, results = play("passive")
    assert log.recorded == [] and not any(r.events for r in results)
    named = [f for r in results for f in r.faces if f.name == "ann"]
    assert named and all(f.liveness is not None and not f.liveness.passed for f in named)
    line = results[-1].to_json()["faces"][0]
    assert line["liveness"]["state"] in ("checking", "spoof")
    _, off_log, _ = play("off")
    assert [e.person for e in off_log.recorded] == ["ann"]


def test_a_live_track_checks_in_as_without_liveness():
    live = LivenessStatus("live", how="moves_in_3d", frames=20, decided_frames=20)
    pipeline, log, results = play("passive", live)
    assert [e.person for e in log.recorded] == ["ann"] and log.withheld == []
    assert pipeline.stats().liveness_ms > 0
    assert results[-1].faces[0].checked_in and results[-1].faces[0].name == "ann"


def test_a_refused_track_is_withheld_once_with_the_reason_and_shows_as_unknown():
    spoof = LivenessStatus("spoof", reason_code="flat_motion", frames=30, decided_frames=30,
                           scores={"windows": 6})
    _, log, results = play("challenge", spoof)
    assert log.recorded == []
    [withheld] = log.withheld
    assert (withheld.person, withheld.reason_code, withheld.reason) == \
        ("ann", "flat_motion", "photo suspected")
    assert json.loads(withheld.detail)["liveness"]["verdict"] == "spoof"
    frames = [r for r in results if r.withheld]
    assert len(frames) == 1 and frames[0].to_json()["withheld"][0]["reason"] == "photo suspected"
    face = results[-1].faces[0]
    assert face.name is None and face.withheld == "ann" and face.liveness.reason == \
        "photo suspected"
    assert results[-1].to_json()["faces"][0]["withheld"] == "ann"


def test_a_log_that_cannot_keep_the_withheld_check_in_does_not_stop_the_view():
    class Broken(WithheldLog):
        def record_withheld(self, event) -> None:
            raise OSError("disk full")

    spoof = LivenessStatus("spoof", reason_code="moving_surround")
    pipeline = CheckinPipeline(FakeEngine(), FakeMatcher(), checkin_log=Broken(),
                               settings=PipelineSettings(
                                   liveness=LivenessSettings(mode="passive")))
    pipeline.liveness.status = lambda _t: spoof  # type: ignore[union-attr]
    withheld = []
    for i, people in enumerate(walk("ann", 40)):
        withheld += pipeline.process(scene(people), i, i / 30).withheld
    assert len(withheld) == 1 and withheld[0].recorded is False
    assert "disk full" in withheld[0].detail


@pytest.mark.parametrize("mode", ["passive", "challenge"])
def test_liveness_settings_travel_through_update_settings(mode):
    pipeline = CheckinPipeline(FakeEngine(), FakeMatcher(), landmarks=NO_LANDMARKS)
    assert pipeline.liveness is None
    pipeline.update_settings(liveness=LivenessSettings(mode=mode))
    pipeline.process(scene([]), 0, 0.0)
    assert pipeline.liveness is not None and pipeline.liveness.settings.mode == mode
