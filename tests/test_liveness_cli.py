"""``facestyle liveness`` and ``recognize-video --liveness`` with the fake engine on a
generated clip: the fake faces are flat squares slid across the frame, which liveness must
never judge live, so nobody checks in with it on (and ann does with it off)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from live_fakes import FakeEngine, embedding_of, scene, walk, write_video

from desktop import cli


@pytest.fixture
def clip(tmp_path):
    frames = [scene(p) for p in walk("ann", 60)] + [scene([]) for _ in range(5)]
    return write_video(tmp_path / "desk.avi", frames, fps=30)


@pytest.fixture
def gallery_db(tmp_path):
    from desktop.store import Gallery, NewTemplate

    path = tmp_path / "gallery.sqlite3"
    with Gallery(path) as g:
        g.enrol("ann", [NewTemplate(np.zeros((150, 150, 3), np.uint8), embedding_of("ann"),
                                    FakeEngine.model_id)])
    return path


@pytest.fixture(autouse=True)
def fake_engine(monkeypatch):
    import desktop.commands.gallery as gallery_cmd

    engine = FakeEngine()
    monkeypatch.setattr(gallery_cmd, "load_engine", lambda: engine)
    return engine


def test_liveness_prints_a_verdict_per_track_with_scores_and_frames(clip, tmp_path, capsys):
    out = tmp_path / "tracks.jsonl"
    assert cli.main(["liveness", str(clip), "--mode", "passive", "--jsonl", str(out)]) == 0
    [track] = [json.loads(line) for line in out.read_text().splitlines()]
    assert track["verdict"] in ("undecided", "spoof") and track["state"] in ("checking", "spoof")
    assert (track["first_frame"], track["last_frame"], track["frames"]) == (0, 59, 60)
    assert track["scores"]["windows"] >= 1 and "votes" in track["scores"]
    printed = capsys.readouterr().out
    assert f"track {track['track']}: {track['verdict']}" in printed
    assert "65 frames, 1 face track:" in printed and "(passive)" in printed


def test_liveness_rejects_bad_arguments(clip):
    with pytest.raises(SystemExit):
        cli.main(["liveness", str(clip), "--mode", "sometimes"])
    assert cli.main(["liveness", str(clip), "--max-frames", "0"]) != 0


@pytest.mark.parametrize("mode", ["off", "passive"])
def test_recognize_video_applies_the_liveness_rule(clip, gallery_db, tmp_path, mode):
    out = tmp_path / "out.jsonl"
    args = ["recognize-video", str(clip), "--db", str(gallery_db), "--jsonl", str(out)]
    assert cli.main(args + (["--liveness", mode] if mode != "off" else [])) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    summary = lines[-1]
    faces = [f for line in lines[:-1] for f in line["faces"]]
    if mode == "off":
        assert summary["checkins"] == 1 and "liveness" not in summary
        assert all(set(f) == {"box", "track", "name", "d"} for f in faces)
    else:
        assert summary["checkins"] == 0
        assert (summary["liveness"], summary["withheld"]) == ("passive", 0)
        assert all(f["liveness"]["verdict"] != "live" for f in faces)


def test_gallery_settings_shows_and_sets_liveness(tmp_path, capsys):
    from desktop.store import Gallery

    db = tmp_path / "g.sqlite3"
    assert cli.main(["gallery", "settings", "--db", str(db)]) == 0
    assert "liveness        challenge" in capsys.readouterr().out  # the shipped default
    assert cli.main(["gallery", "settings", "--db", str(db), "--liveness", "passive"]) == 0
    assert "liveness        passive" in capsys.readouterr().out
    with Gallery(db, maintenance=False) as g:
        assert g.get_setting("liveness") == "passive"
