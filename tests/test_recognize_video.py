"""``facestyle recognize-video``: JSON lines, the summary, check-ins in the gallery; with
a fake engine on a generated clip, and with the real engine on faces-dev's clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from live_fakes import FakeEngine, embedding_of, scene, walk, write_video

from desktop import cli


@pytest.fixture
def clip(tmp_path):
    frames = [scene(p) for p in walk("ann", 45)] + [scene([]) for _ in range(10)]
    frames += [scene(p) for p in walk("stranger", 30, start=(150, 80), step=(-2, 0))]
    return write_video(tmp_path / "desk.avi", frames, fps=30)


@pytest.fixture
def gallery_db(tmp_path):
    from desktop.store import Gallery, NewTemplate

    path = tmp_path / "gallery.sqlite3"
    with Gallery(path) as g:
        chip = np.zeros((150, 150, 3), np.uint8)
        for who in ("ann", "bob"):
            g.enrol(who, [NewTemplate(chip, embedding_of(who), FakeEngine.model_id)])
    return path


@pytest.fixture
def fake_engine(monkeypatch):
    import desktop.commands.gallery as gallery_cmd

    engine = FakeEngine()
    monkeypatch.setattr(gallery_cmd, "load_engine", lambda: engine)
    return engine


def strict_json(text: str):
    """json.loads refusing NaN and Infinity, which are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def read_lines(path):
    return [strict_json(line) for line in path.read_text().splitlines()]


def test_writes_a_line_per_frame_and_a_summary_and_records_the_check_in(
        tmp_path, clip, gallery_db, fake_engine, capsys):
    out = tmp_path / "out.jsonl"
    assert cli.main(["recognize-video", str(clip), "--db", str(gallery_db),
                     "--jsonl", str(out)]) == 0
    lines = read_lines(out)
    frames, summary = lines[:-1], lines[-1]
    assert [f["frame"] for f in frames] == list(range(85))  # every frame, in order
    for f in frames:
        assert set(f) == {"frame", "faces"}
        for face in f["faces"]:
            assert set(face) == {"box", "track", "name", "d"}
            assert len(face["box"]) == 4 and isinstance(face["track"], int)
            assert face["name"] in ("ann", None) and isinstance(face["d"], float)
    ann_frames = sum(any(x["name"] == "ann" for x in f["faces"]) for f in frames)
    assert ann_frames == 45
    assert all(x["name"] is None for f in frames[55:] for x in f["faces"])
    assert summary["summary"] is True and summary["frames"] == 85
    assert summary["faces"] == sum(len(f["faces"]) for f in frames)
    assert summary["per_name"] == {"ann": 45}
    assert summary["checkins"] == 1 and summary["fps"] > 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == summary
    from desktop.store import Gallery

    with Gallery(gallery_db) as g:
        assert [c.name for c in g.checkins_between()] == ["ann"]
    # Run again: the cooldown (read from the gallery) stops a second record.
    assert cli.main(["recognize-video", str(clip), "--db", str(gallery_db)]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["checkins"] == 0 and again["per_name"] == {"ann": 45}


def test_dry_run_and_max_frames(tmp_path, clip, gallery_db, fake_engine, capsys):
    out = tmp_path / "out.jsonl"
    assert cli.main(["recognize-video", str(clip), "--db", str(gallery_db), "--jsonl",
                     str(out), "--max-frames", "40", "--dry-run"]) == 0
    lines = read_lines(out)
    assert len(lines) == 41 and lines[-1]["frames"] == 40
    assert lines[-1]["checkins"] == 1  # would check in...
    from desktop.store import Gallery

    with Gallery(gallery_db) as g:
        assert g.count_checkins() == 0  # ...but nothing was written


def test_jsonl_to_stdout(clip, gallery_db, fake_engine, capsys):
    assert cli.main(["recognize-video", str(clip), "--db", str(gallery_db), "--jsonl", "-",
                     "--max-frames", "5"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x.get("frame") for x in lines[:5]] == [0, 1, 2, 3, 4]
    assert lines[-1]["summary"] is True and len(lines) == 6


def test_clear_errors_for_a_missing_video_or_gallery(tmp_path, clip, gallery_db, fake_engine,
                                                     capsys):
    assert cli.main(["recognize-video", str(tmp_path / "none.mp4"), "--db",
                     str(gallery_db)]) == 2
    err = capsys.readouterr().err
    assert "No frame could be read" in err and "none.mp4 not found" in err
    assert cli.main(["recognize-video", str(clip), "--db", str(tmp_path / "nope.db")]) == 2
    assert "There is no gallery" in capsys.readouterr().err
    assert cli.main(["recognize-video", str(clip), "--max-frames", "0"]) == 2


def test_without_a_gallery_every_face_is_unknown(tmp_path, clip, fake_engine, capsys):
    out = tmp_path / "out.jsonl"
    assert cli.main(["recognize-video", str(clip), "--max-frames", "20", "--jsonl",
                     str(out)]) == 0
    captured = capsys.readouterr()
    assert "no one is enrolled" in captured.err
    summary = strict_json(captured.out.strip().splitlines()[-1])
    assert summary["per_name"] == {} and summary["faces"] > 0 and summary["checkins"] == 0
    faces = [x for line in read_lines(out)[:-1] for x in line["faces"]]
    assert faces and all(x["name"] is None and x["d"] is None for x in faces)


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_engine_on_the_faces_dev_clip(shared_data, tmp_path, capsys):
    """The real engine and gallery on faces-dev's clip: Lin-Manuel Miranda is named through
    his close-up (frames 82-210), checked in once, and no one else gets his name."""
    from desktop.commands.gallery import load_engine
    from desktop.store import Gallery
    from desktop.store.enrol import enrol_from_images

    folder = shared_data / "faces-dev" / "video"
    db = tmp_path / "gallery.sqlite3"
    engine = load_engine()
    with Gallery(db) as g:
        enrol_from_images(g, engine, "Lin-Manuel Miranda", [folder / "lin-manuel-miranda.png"])
        enrol_from_images(g, engine, "Alex Lacamoire", [folder / "alex-lacamoire.png"])
    out = tmp_path / "clip.jsonl"
    assert cli.main(["recognize-video", str(folder / "short_hamilton_clip.mp4"), "--db",
                     str(db), "--jsonl", str(out), "--max-frames", "240"]) == 0
    lines = read_lines(out)
    frames, summary = lines[:-1], lines[-1]
    assert [f["frame"] for f in frames] == list(range(240)) and summary["frames"] == 240
    assert summary["faces"] == sum(len(f["faces"]) for f in frames)
    lmm = [f["frame"] for f in frames if any(x["name"] == "Lin-Manuel Miranda"
                                             for x in f["faces"])]
    close_up = [i for i in lmm if 82 <= i <= 210]
    assert len(close_up) >= 110  # of 129 frames
    assert all(x["name"] != "Alex Lacamoire" for f in frames[82:] for x in f["faces"])
    assert all(x["name"] is None for f in frames[212:] for x in f["faces"])  # the audience
    assert summary["checkins"] >= 1
    with Gallery(db) as g:
        names = [c.name for c in g.checkins_between()]
    assert names.count("Lin-Manuel Miranda") == 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary
