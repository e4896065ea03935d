"""CheckinPipeline with a fake engine on synthetic scenes: tracking, votes, check-ins and
the cooldown (with an injected clock), embedding only what is due, and the worker loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from live_fakes import (
    Clock,
    FakeCheckinLog,
    FakeEngine,
    FakeMatcher,
    scene,
    walk,
    write_video,
)

from desktop.errors import Cancelled
from desktop.face.camera import CameraSource
from desktop.face.pipeline import CheckinPipeline, PipelineSettings, RunSummary
from desktop.tasks import CancelToken

FPS = 30.0
HOUR = 3600.0


class Player:
    """Feeds scenes to a pipeline with frame indices and scene times at 30 frames/s."""

    def __init__(self, pipeline: CheckinPipeline) -> None:
        self.pipeline = pipeline
        self.index = 0
        self.results = []

    def play(self, people_per_frame, **scene_kw):
        out = []
        for people in people_per_frame:
            r = self.pipeline.process(scene(people, **scene_kw), self.index, self.index / FPS)
            self.index += 1
            out.append(r)
        self.results.extend(out)
        return out

    def empty(self, n: int):
        return self.play([[] for _ in range(n)])


def make(settings=None, log=None, matcher=None, clock=None):
    engine = FakeEngine()
    pipeline = CheckinPipeline(engine, matcher if matcher is not None else FakeMatcher(),
                               checkin_log=log, settings=settings or PipelineSettings(),
                               clock=clock or Clock())
    return pipeline, engine


def events(results):
    return [e for r in results for e in r.events]


def test_a_moving_face_is_tracked_named_and_checked_in_once():
    clock = Clock()
    log = FakeCheckinLog()
    pipeline, engine = make(log=log, clock=clock)
    player = Player(pipeline)
    results = player.play(walk("ann", 60))
    # One track all along, named from the first frame on (new tracks are embedded at once).
    assert all(len(r.faces) == 1 for r in results)
    assert len({r.faces[0].track_id for r in results}) == 1
    assert all(r.faces[0].name == "ann" for r in results)
    # Boxes follow the face between detections (optical flow): within a few pixels.
    for i, r in enumerate(results):
        x, y, w, _h = r.faces[0].box
        assert abs(x - (20 + 3 * i)) <= 4 and abs(y - (60 + i)) <= 4, (i, r.faces[0].box)
        assert 56 <= w <= 72
    # The detector ran on a fifth of the frames: a whole-frame scan every 15 frames
    # (0, 15, 30, 45), a re-detection around the track every 5 frames in between; and only
    # a few chips were embedded.
    assert engine.detect_calls == 12
    assert [r.frame_index for r in results if r.detected] == list(range(0, 60, 5))
    assert [r.frame_index for r in results if r.times.scanned] == [0, 15, 30, 45]
    assert engine.faces_embedded <= 10
    # Exactly one check-in, once 3 votes over >= 0.4 s agree.
    evs = events(results)
    assert len(evs) == 1
    ev = evs[0]
    assert ev.person == "ann" and ev.person_id == 1 and ev.time == clock.now
    assert ev.d == pytest.approx(0.01, abs=0.01)
    assert 0.4 <= results[ev.frame_index].scene_time <= 1.0
    assert log.recorded == [ev] and ev.recorded
    assert results[-1].faces[0].checked_in and not results[0].faces[0].checked_in


def test_cooldown_suppresses_a_second_check_in_until_it_expires():
    clock = Clock()
    log = FakeCheckinLog()
    pipeline, _ = make(log=log, clock=clock)
    player = Player(pipeline)
    first = events(player.play(walk("ann", 40)))
    assert len(first) == 1
    player.empty(15)  # ann leaves; her track ages out
    clock.now += 2 * HOUR  # back within the 4 h cooldown
    again = player.play(walk("ann", 40))
    seen = [r for r in again if r.faces]
    # A newcomer is found by the next whole-frame scan, at most scan_every frames later.
    assert len(seen) >= 40 - PipelineSettings().scan_every
    assert len({r.faces[0].track_id for r in seen}) == 1
    assert seen[0].faces[0].track_id != player.results[0].faces[0].track_id  # a new visit
    assert events(again) == []
    assert all(r.faces[0].name == "ann" for r in seen)  # still named, just not recorded
    player.empty(15)
    clock.now += 2 * HOUR + 1  # cooldown over
    third = events(player.play(walk("ann", 40)))
    assert len(third) == 1 and third[0].person == "ann"
    assert len(log.recorded) == 2
    assert log.recorded[1].time - log.recorded[0].time == pytest.approx(4 * HOUR + 1)


def test_the_cooldown_holds_across_restarts_through_the_log():
    clock = Clock()
    log = FakeCheckinLog({"ann": clock.now - 1 * HOUR, "bob": clock.now - 5 * HOUR})
    pipeline, _ = make(log=log, clock=clock)  # a fresh pipeline, as after a restart
    player = Player(pipeline)
    assert events(player.play(walk("ann", 40))) == []  # checked in an hour ago
    player.empty(15)
    evs = events(player.play(walk("bob", 40)))
    assert [e.person for e in evs] == ["bob"]  # five hours ago: past the cooldown
    assert sorted(set(log.reads)) == ["ann", "bob"]


def test_a_configurable_cooldown():
    clock = Clock()
    pipeline, _ = make(settings=PipelineSettings(cooldown_s=60), clock=clock)
    player = Player(pipeline)
    assert len(events(player.play(walk("ann", 40)))) == 1
    player.empty(15)
    clock.now += 61
    assert len(events(player.play(walk("ann", 40)))) == 1


def test_a_brief_appearance_or_a_stranger_does_not_check_in():
    pipeline, _ = make(settings=PipelineSettings(min_seconds=1.0))
    player = Player(pipeline)
    assert events(player.play(walk("ann", 20))) == []  # 0.67 s < 1 s
    player.empty(15)
    results = [r for r in player.play(walk("stranger", 60)) if r.faces]
    assert len(results) >= 45
    assert events(results) == []
    assert all(r.faces[0].name is None for r in results)
    assert all(r.faces[0].d is not None and r.faces[0].d > 0.36 for r in results)


def test_two_people_get_their_own_tracks_and_check_ins():
    pipeline, _ = make()
    player = Player(pipeline)
    frames = [[("ann", 10 + 2 * i, 40), ("bob", 230 - 2 * i, 120)] for i in range(45)]
    results = player.play(frames)
    named = {(f.track_id, f.name) for r in results for f in r.faces}
    assert len(named) == 2 and {n for _, n in named} == {"ann", "bob"}
    assert sorted(e.person for e in events(results)) == ["ann", "bob"]


class FlakyMatcher(FakeMatcher):
    """Says "bob" for every 3rd query: a look-alike moment the vote must absorb."""

    def identify(self, embeddings):
        out = super().identify(embeddings)
        if self.calls % 3 == 0:
            from desktop.face.pipeline import Identity

            out = [Identity("bob", 0.3, 2) for _ in out]
        return out


def test_the_vote_keeps_the_label_from_flickering():
    pipeline, _ = make(settings=PipelineSettings(embed_every=1), matcher=FlakyMatcher())
    results = Player(pipeline).play(walk("ann", 60))
    names = [r.faces[0].name for r in results]
    assert names[0] == "ann"
    assert set(names) == {"ann"}
    assert [e.person for e in events(results)] == ["ann"]


def test_embedding_is_batched_and_only_for_due_tracks():
    pipeline, engine = make(settings=PipelineSettings(embed_every=15))
    frames = [[("ann", 10 + i, 40), ("bob", 200 - i, 120)] for i in range(90)]
    results = Player(pipeline).play(frames)
    # Every embedding call carried both faces (one batch per detection that had any due).
    assert engine.faces_embedded == 2 * engine.embed_calls
    # New: 1 round; undecided: 2 more; then every 15 frames: about 5 more over 90 frames.
    assert engine.embed_calls <= 10
    assert sum(r.times.embedded for r in results) == engine.faces_embedded
    assert all(r.times.detect_ms is not None for r in results if r.detected)
    assert all(r.times.detect_ms is None for r in results if not r.detected)


def test_a_scene_cut_ends_tracks_and_triggers_detection_at_once():
    pipeline, engine = make()
    player = Player(pipeline)
    player.play(walk("ann", 10))
    before = engine.detect_calls
    # Cut to another shot: new background, bob where ann was.
    cut = player.play([[("bob", 50, 60)]], bg_seed=7, bg_level=170)[0]
    assert cut.detected and engine.detect_calls == before + 1
    assert cut.faces[0].name == "bob"
    assert cut.faces[0].track_id != player.results[0].faces[0].track_id


def test_a_face_leaving_the_frame_disappears():
    pipeline, _ = make()
    player = Player(pipeline)
    player.play(walk("ann", 10))
    gone = player.empty(12)
    assert gone[-1].faces == ()
    assert pipeline._tracker.tracks == []


def test_set_matcher_renames_tracks_at_the_next_detection():
    pipeline, _ = make(matcher=FakeMatcher(people=()))
    player = Player(pipeline)
    first = player.play(walk("ann", 10))
    assert all(f.name is None for r in first for f in r.faces)
    pipeline.set_matcher(FakeMatcher())
    after = player.play(walk("ann", 3, start=(50, 70)))
    assert after[0].faces[0].name == "ann"


def test_update_settings_applies_from_the_next_frame():
    pipeline, engine = make()
    player = Player(pipeline)
    player.play(walk("ann", 6))
    pipeline.update_settings(refresh_every=1)
    calls = engine.detect_calls
    player.play(walk("ann", 6, start=(38, 66)))
    assert engine.detect_calls == calls + 6
    with pytest.raises(ValueError):
        PipelineSettings(min_votes=9, vote_window=5)


def test_a_failing_log_does_not_stop_the_pipeline():
    class BrokenLog(FakeCheckinLog):
        def record_checkin(self, event, cooldown_s):
            raise OSError("disk full")

    pipeline, _ = make(log=BrokenLog())
    evs = events(Player(pipeline).play(walk("ann", 40)))
    assert len(evs) == 1 and not evs[0].recorded and "disk full" in evs[0].error


def test_snapshot_of_a_track_gives_its_chip_and_descriptor():
    pipeline, _ = make(matcher=FakeMatcher(people=("bob",)))
    r = Player(pipeline).play(walk("ann", 5))[-1]
    snap = pipeline.track_snapshot(r.faces[0].track_id)
    assert snap is not None and snap.chip.shape == (150, 150, 3) and snap.descriptor.shape == (128,)
    assert snap.name is None  # ann is not enrolled here: an unknown to enrol
    assert pipeline.latest_result() is r and pipeline.latest_frame().index == r.frame_index
    assert pipeline.track_snapshot(999) is None


def test_results_serialise_to_the_cli_json_shape_and_summaries_count():
    pipeline, _ = make()
    results = Player(pipeline).play(walk("ann", 40))
    line = results[-1].to_json()
    assert set(line) == {"frame", "faces"} and line["frame"] == 39
    face = line["faces"][0]
    assert set(face) == {"box", "track", "name", "d"} and face["name"] == "ann"
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    summary = RunSummary()
    for r in results:
        summary.add(r)
    out = summary.to_json(fps=12.3)
    assert out["summary"] is True and out["frames"] == 40 and out["faces"] == 40
    assert out["per_name"] == {"ann": 40} and out["checkins"] == 1 and out["fps"] == 12.3
    stats = pipeline.stats()
    assert stats.frames == 40 and stats.scan_share == pytest.approx(3 / 40) and stats.checkins == 1
    assert "inference" in stats.describe()


def test_run_processes_a_camera_source_until_it_ends(tmp_path):
    frames = [scene(p) for p in walk("ann", 30)]
    clip = write_video(tmp_path / "walk.avi", frames, fps=30)
    pipeline, _ = make()
    source = CameraSource(str(clip), pace=False, drop_frames=False).start()
    results = list(pipeline.run(source))
    assert [r.frame_index for r in results] == list(range(30))
    assert sum(len(r.faces) for r in results) == 30
    assert [e.person for e in events(results)] == ["ann"]
    # Scene time comes from the file, not the wall clock: 30 frames at 30 frames/s.
    assert results[-1].scene_time == pytest.approx(29 / 30, abs=0.01)


def test_run_stops_when_cancelled_even_while_the_camera_sends_nothing():
    from live_fakes import FakeCapture

    source = CameraSource(0, capture_factory=lambda s: FakeCapture(opened=False),
                          retry_initial=0.05).start()
    pipeline, _ = make()
    token = CancelToken()
    caught = []

    def consume():
        try:
            for _ in pipeline.run(source, cancel=token):
                pass
        except Cancelled:
            caught.append(True)

    thread = threading.Thread(target=consume)
    thread.start()
    token.cancel()
    thread.join(5)
    source.close()
    assert not thread.is_alive() and caught == [True]


def test_a_restarted_source_resets_tracks():
    pipeline, _ = make()
    player = Player(pipeline)
    player.play(walk("ann", 10))
    first_id = player.results[0].faces[0].track_id
    player.index = 0  # the file started over
    r = player.play(walk("ann", 1))[0]
    assert r.detected and r.faces[0].track_id != first_id
    assert np.isfinite(r.faces[0].d)


def enrolled_gallery(path, people=("ann", "bob")):
    from live_fakes import embedding_of

    from desktop.store import Gallery, NewTemplate

    gallery = Gallery(path)
    chip = np.zeros((150, 150, 3), np.uint8)
    for who in people:
        gallery.enrol(who, [NewTemplate(chip, embedding_of(who), FakeEngine.model_id)])
    return gallery


def test_with_the_store_the_cooldown_holds_across_restarts(tmp_path):
    from desktop.face.pipeline import GalleryCheckinLog

    db = tmp_path / "gallery.sqlite3"
    clock = Clock()
    gallery = enrolled_gallery(db)

    def run_once():
        pipeline = CheckinPipeline(
            FakeEngine(), gallery.matcher(FakeEngine.model_id),
            checkin_log=GalleryCheckinLog(gallery, FakeEngine.model_id), clock=clock,
            settings=PipelineSettings(camera="front desk"))
        return events(Player(pipeline).play(walk("ann", 40)))

    first = run_once()
    assert [e.person for e in first] == ["ann"]
    stored = gallery.last_checkin(first[0].person_id)
    assert stored is not None and stored.at == pytest.approx(clock.now)
    assert stored.camera == "front desk" and stored.rule.startswith("threshold")
    assert stored.d == pytest.approx(first[0].d, abs=1e-6)
    assert stored.model_id == FakeEngine.model_id
    clock.now += 1 * HOUR
    assert run_once() == []  # a restarted pipeline reads the last check-in from the store
    clock.now += 3 * HOUR + 1
    assert [e.person for e in run_once()] == ["ann"]
    assert gallery.count_checkins() == 2
    gallery.close()


def test_a_check_in_recorded_elsewhere_meanwhile_is_not_doubled(tmp_path):
    from desktop.face.pipeline import GalleryCheckinLog

    clock = Clock()
    gallery = enrolled_gallery(tmp_path / "g.sqlite3")
    pipeline = CheckinPipeline(FakeEngine(), gallery.matcher(FakeEngine.model_id),
                               checkin_log=GalleryCheckinLog(gallery), clock=clock)
    player = Player(pipeline)
    assert len(events(player.play(walk("ann", 40)))) == 1
    player.empty(15)
    clock.now += 5 * HOUR  # past the cooldown as far as this pipeline knows...
    ann = gallery.person_by_name("ann")
    gallery.record_checkin(ann.id, 0.1, camera="side door", at=clock.now - 10)  # ...but not
    assert events(player.play(walk("ann", 40))) == []
    assert gallery.count_checkins() == 2
    gallery.close()


def test_an_engine_with_only_detect_and_embed_works_too():
    from live_fakes import MinimalEngine

    engine = MinimalEngine()
    pipeline = CheckinPipeline(engine, FakeMatcher(), clock=Clock())
    results = Player(pipeline).play(walk("ann", 40))
    assert all(r.faces[0].name == "ann" for r in results)
    assert [e.person for e in events(results)] == ["ann"]


def test_landmarks_and_chips_only_for_faces_being_embedded():
    pipeline, engine = make(settings=PipelineSettings(embed_every=15))
    Player(pipeline).play([[("ann", 10 + i, 40), ("bob", 200 - i, 120)] for i in range(90)])
    assert engine.detect_calls > engine.embed_calls  # many detections embed nothing
    assert engine.landmarks.calls == engine.embed_calls


def test_small_faces_are_looked_for_at_the_start_after_cuts_and_every_kth_scan():
    class Detector:
        def __init__(self, engine):
            self.engine, self.asked = engine, []

        def detect(self, image, min_face_size=None):
            self.asked.append(min_face_size)
            return self.engine.detect_boxes(image)

    engine = FakeEngine()
    engine.detector = Detector(engine)
    pipeline = CheckinPipeline(engine, FakeMatcher(), clock=Clock(), settings=PipelineSettings(
        scan_min_face=40, small_face_every=4))
    player = Player(pipeline)
    player.play(walk("ann", 90, step=(1, 0)))  # scans at 0, 15, ..., 75
    assert engine.detector.asked == [40, 40]  # the first scan and the 4th after it (frame 60)
    player.play([[("bob", 50, 60)]], bg_seed=7, bg_level=170)  # a cut: looks small at once
    assert engine.detector.asked == [40, 40, 40]
    with pytest.raises(ValueError):
        PipelineSettings(small_face_every=0)
