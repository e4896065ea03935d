"""Video style transfer end to end on tiny synthetic clips: the frame loop, its work folder
(stop and resume), scene cuts, video files in and out, and ``facestyle stylize-video``.

These run VGG19 for real at 48-64 px with a few iterations per frame."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from test_video_flow import texture

from desktop.cli import main
from desktop.errors import Cancelled, FacestyleError
from desktop.style import video_io
from desktop.style.optimize import stylize
from desktop.style.settings import StyleSettings
from desktop.style.temporal import TemporalTerm
from desktop.style.video import VideoSettings, WorkFolder, frame_settings, stylize_video
from desktop.tasks import CancelToken

pytestmark = pytest.mark.slow  # VGG19 runs for real


def write_clip(path, frames, fps=10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                             (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def panning(n=6, h=64, w=96, step=2, seed=0):
    """``n`` frames of a texture panning right by ``step`` px a frame."""
    wide = texture(h, w + step * n, seed=seed, blur=2.0)
    return [np.ascontiguousarray(wide[:, step * (n - i): step * (n - i) + w]) for i in range(n)]


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.avi", panning())


@pytest.fixture
def style():
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:48, 0:48]
    stripes = (((x + y) // 4) % 2)[..., None] * np.array([230, 120, 20])
    return np.clip(stripes + rng.integers(0, 30, (48, 48, 3)), 0, 255).astype(np.uint8)


def tiny(**changes) -> VideoSettings:
    style = StyleSettings(size=48, iterations=2, beta=1e4, precision="fp32",
                          style_layers={"relu1_1": 0.5, "relu2_1": 0.5})
    values = dict(style=style, first_iterations=3, temporal_weight=1e3)
    values.update(changes)
    return VideoSettings(**values)


def finished(steps):
    return [s.finished for s in steps if s.finished is not None]


def test_a_run_paints_every_frame_with_the_temporal_term_after_the_first(clip, style, tmp_path):
    steps = list(stylize_video(clip, [style], tiny(max_frames=4), tmp_path / "work"))
    frames = finished(steps)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.iterations for f in frames] == [3, 2, 2, 2]  # the first frame gets more
    assert frames[0].shot_start and frames[0].reliable is None
    assert not any(f.shot_start for f in frames[1:])
    assert all(f.reliable > 0.5 for f in frames[1:])
    assert frames[0].losses["temporal"] == 0 and all(f.losses["temporal"] > 0
                                                     for f in frames[1:])
    assert all(f.image.shape == (32, 48, 3) for f in frames)  # 64x96 at 48 px
    reports = [s.report for s in steps if s.report is not None]
    assert len(reports) == 3 + 3 * 2
    assert steps[-1].eta_seconds == 0
    assert all(s.eta_seconds is not None for s in steps if s.report is not None)
    folder = WorkFolder(tmp_path / "work")
    for f in frames:
        np.testing.assert_array_equal(folder.load(f.index), f.image)


def test_only_a_shots_first_frame_is_painted_coarse_to_fine(tmp_path, style):
    """The first frame starts from the content and follows ``multiscale`` like a still
    image; later frames (warm-started or independent) run at the painting size only."""
    big = write_clip(tmp_path / "big.avi", panning(3, h=144, w=256, step=3))
    coarse = tiny(style=StyleSettings(size=256, iterations=1, precision="fp32",
                                      style_layers={"relu1_1": 1.0}, multiscale=True),
                  first_iterations=2, max_frames=3)
    for settings in (coarse, dataclasses.replace(coarse, warm_start=False,
                                                 temporal_weight=0.0)):
        assert frame_settings(settings, 144, 256, True).multiscale
        assert not frame_settings(settings, 144, 256, False).multiscale
        assert settings.style.stop_when_flat  # the image default; frames run every iteration
        assert not any(frame_settings(settings, 144, 256, first).stop_when_flat
                       for first in (True, False))
        steps = list(stylize_video(big, [style], settings, tmp_path / "work", restart=True))
        scales = {s.position: s.report.scales for s in steps if s.report is not None}
        assert scales == {0: [(72, 128, 1), (144, 256, 1)], 1: [(144, 256, 1)],
                          2: [(144, 256, 1)]}
        assert all(f.image.shape == (144, 256, 3) for f in finished(steps))
    single = dataclasses.replace(coarse, style=dataclasses.replace(coarse.style,
                                                                   multiscale=False))
    first = frame_settings(single, 144, 256, True)
    assert not first.multiscale and first.iterations == 2 and first.size == 256


def test_a_stop_mid_run_resumes_at_the_next_frame_with_the_same_frames(clip, style, tmp_path):
    settings = tiny(max_frames=4)
    whole = finished(stylize_video(clip, [style], settings, tmp_path / "whole"))

    token = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for step in stylize_video(clip, [style], settings, tmp_path / "work", cancel=token):
            if step.finished is not None:
                seen.append(step.finished.position)
            if step.position == 2 and step.report is not None:  # in the middle of frame 2
                token.cancel()
    assert seen == [0, 1]
    steps = list(stylize_video(clip, [style], settings, tmp_path / "work"))
    frames = finished(steps)
    assert [f.resumed for f in frames] == [True, True, False, False]
    assert min(s.position for s in steps if s.report is not None) == 2  # painting resumed at 2
    for a, b in zip(frames, whole, strict=True):
        np.testing.assert_array_equal(a.image, b.image)  # same as a run never stopped
        assert a.losses == pytest.approx(b.losses)


def test_a_work_folder_of_another_job_is_refused_unless_restarted(clip, style, tmp_path):
    work = tmp_path / "work"
    list(stylize_video(clip, [style], tiny(max_frames=2), work))
    with pytest.raises(FacestyleError, match="temporal_weight"):
        list(stylize_video(clip, [style], tiny(max_frames=2, temporal_weight=5.0), work))
    frames = finished(stylize_video(clip, [style], tiny(max_frames=2, temporal_weight=5.0),
                                    work, restart=True))
    assert [f.resumed for f in frames] == [False, False]


def test_a_scene_cut_starts_a_new_shot_without_the_temporal_term(tmp_path, style):
    frames = panning(3, seed=1) + panning(3, seed=9)  # a hard cut before frame 3
    cut = write_clip(tmp_path / "cut.avi", frames)
    result = finished(stylize_video(cut, [style], tiny(), tmp_path / "work"))
    assert [f.shot_start for f in result] == [True, False, False, True, False, False]
    assert result[3].reliable is None and result[3].iterations == 3
    assert result[3].losses["temporal"] == 0 and result[4].losses["temporal"] > 0


def test_a_huge_temporal_weight_holds_g_to_the_warped_frame():
    content = texture(32, 48, seed=6)
    target = texture(32, 48, seed=7)
    style = texture(32, 32, seed=8)
    settings = StyleSettings(size=48, iterations=4, precision="fp32",
                             style_layers={"relu1_1": 1.0})
    term = TemporalTerm(1e9, [target], [np.ones((32, 48), np.float32)])
    last = list(stylize(content, [style], settings, init_image=target, temporal=term))[-1]
    assert np.abs(last.image.astype(int) - target.astype(int)).max() <= 1
    assert last.temporal >= 0
    assert last.total == pytest.approx(last.content + last.style + last.tv + last.temporal,
                                       rel=1e-5)
    free = list(stylize(content, [style], settings, init_image=target))[-1]
    assert np.abs(free.image.astype(int) - target.astype(int)).max() > 1 and free.temporal == 0


def test_cli_writes_a_playable_video_of_the_right_frame_count_and_size(clip, tmp_path, style,
                                                                      capsys):
    from PIL import Image

    style_path = tmp_path / "style.png"
    Image.fromarray(style).save(style_path)
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    args = ["stylize-video", str(clip), str(style_path), "-o", str(out), "--size", "64",
            "--frames", "4", "--first-iterations", "3", "--iterations", "2",
            "--style-layers", "relu1_1:1", "--precision", "fp32", "--report", str(report),
            "--quiet"]
    assert main(args) == 0
    assert video_io.check_video(out) == (4, 64, 44)  # 96x64 at 64 px: 42.7 rows, made even
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0, abs=0.01)
    cap.release()
    doc = json.loads(report.read_text())
    assert [f["index"] for f in doc["frames"]] == [0, 1, 2, 3]
    assert doc["settings"]["style"]["size"] == 64
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "out.frames" / "manifest.json").is_file()
    # again: every frame is found done and the video is written without painting
    assert main(args) == 0
    assert "0 painted now" in capsys.readouterr().out


def test_cli_refuses_bad_input_with_a_message(tmp_path, style, capsys):
    from PIL import Image

    style_path = tmp_path / "style.png"
    Image.fromarray(style).save(style_path)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["stylize-video", str(bad), str(style_path), "-o",
                 str(tmp_path / "o.mp4")]) == 2
    assert "not a video" in capsys.readouterr().err
    assert main(["stylize-video", str(bad), str(style_path), "-o",
                 str(tmp_path / "o.gif")]) == 2
    assert "unknown video type" in capsys.readouterr().err


def test_write_video_reads_back_and_record_clip_records_a_camera(tmp_path):
    frames = panning(5, h=40, w=60)
    assert video_io.write_video(tmp_path / "a.mp4", frames, 12.0, expected=5) == (5, 60, 40)
    assert video_io.write_video(tmp_path / "a.avi", frames, 12.0, expected=5) == (5, 60, 40)
    with pytest.raises(FacestyleError, match="no frames"):
        video_io.write_video(tmp_path / "b.mp4", [], 12.0)

    class FakeCamera:
        def __init__(self, source):
            self.i = 0

        def isOpened(self):
            return True

        def read(self):
            import time

            time.sleep(0.02)
            self.i += 1
            return True, cv2.cvtColor(frames[self.i % 5], cv2.COLOR_RGB2BGR)

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    info = video_io.record_clip(0, 0.5, tmp_path / "rec.mp4", capture_factory=FakeCamera)
    assert info.frames >= 5 and (info.width, info.height) == (60, 40)
    assert video_io.check_video(tmp_path / "rec.mp4") == (info.frames, 60, 40)


def test_live_painting_follows_the_camera_by_the_flow(style):
    from desktop.style.live import paint_live

    frames = panning(5, h=48, w=64, seed=3)
    feed = iter(enumerate(frames))
    token = CancelToken()

    def next_frame():
        got = next(feed, None)
        if got is None:
            token.cancel()
        return got

    settings = StyleSettings(size=48, iterations=3, precision="fp32",
                             style_layers={"relu1_1": 1.0})
    painted = []
    with pytest.raises(Cancelled):
        for live in paint_live(next_frame, [style], settings, iterations=2, cancel=token):
            painted.append(live)
    assert [p.frame_index for p in painted] == [0, 1, 2, 3, 4]
    assert painted[0].reliable is None  # the first starts from the picture
    assert all(p.reliable > 0.5 for p in painted[1:])  # the others from the warped painting
    assert painted[-1].fps > 0 and painted[-1].image.shape == (36, 48, 3)
