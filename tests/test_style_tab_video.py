"""The Style tab's Video mode drives the real video loop on a tiny synthetic clip: frames
appear side by side as they finish, the per-frame plot carries the temporal term, Stop
keeps the frames and Start resumes at the next one, and Save video writes the file."""

from __future__ import annotations

import numpy as np
import pytest
from style_tab_helpers import style_image
from test_video_style import panning, write_clip

from desktop.style import video_io
from desktop.ui.style.side_panel import IMAGE_MODE, VIDEO_MODE
from desktop.ui.style_tab import StyleTab

JOB_TIMEOUT_MS = 240_000
pytestmark = pytest.mark.slow  # VGG19 runs for real


@pytest.fixture
def tab(qtbot):
    widget = StyleTab()
    qtbot.addWidget(widget)
    widget.resize(1200, 780)
    widget.show()
    yield widget
    widget.shutdown()


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.avi", panning(5))


def tiny_video(tab, frames: int = 3) -> None:
    settings = tab.settings()
    settings.size, settings.iterations, settings.precision = 48, 2, "fp32"
    settings.style_layers = {"relu1_1": 0.5, "relu2_1": 0.5}
    tab.set_settings(settings)
    options = tab.video.panel.options
    options.frames.setValue(frames)
    options.first_iterations.setValue(3)


def test_the_switch_shows_the_clip_card_and_the_video_view(tab):
    assert not tab.video.panel.isVisibleTo(tab) and tab.side.content.isVisibleTo(tab)
    tab.side.mode_buttons[VIDEO_MODE].click()
    assert tab.mode() == VIDEO_MODE
    assert tab.video.panel.isVisibleTo(tab) and not tab.side.content.isVisibleTo(tab)
    assert tab.video.view.isVisibleTo(tab) and not tab.live.isVisibleTo(tab)
    assert not tab.side.output_group.isVisibleTo(tab)
    tab.side.mode_buttons[IMAGE_MODE].click()
    assert tab.live.isVisibleTo(tab) and not tab.video.view.isVisibleTo(tab)
    assert tab.side.content.isVisibleTo(tab)


def test_start_says_what_is_missing_and_a_bad_clip_gives_a_message(tab, tmp_path):
    tab.set_mode(VIDEO_MODE)
    assert not tab.video.start()
    text = tab.video.view.message.text()
    assert "content clip" in text and "style image" in text
    assert tab.video.panel.clip.property("missing") is True
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert not tab.video.panel.clip.load_file(bad)
    assert "not a video" in tab.video.view.message.text()
    assert tab.video.panel.clip.info is None


def test_frames_arrive_side_by_side_with_the_temporal_term_plotted_and_save(qtbot, tab, clip,
                                                                          tmp_path):
    tab.set_mode(VIDEO_MODE)
    assert tab.video.panel.clip.load_file(clip)
    tab.side.styles.slots[0].set_image(style_image(), "style.png")
    tiny_video(tab, frames=3)
    with qtbot.waitSignal(tab.video.job.ended, timeout=JOB_TIMEOUT_MS) as ended:
        assert tab.video.start()
        assert not tab.video.view.start_button.isEnabled()
    assert ended.args[0] == "finished"
    view = tab.video.view
    assert [i for i, _, _ in view.finished] == [0, 1, 2]
    assert all(out.shape == (32, 48, 3) for _, _, out in view.finished)
    assert view.plot.point_count("total") == 3
    assert view.plot.point_count("temporal") == 2  # none on the first frame
    assert view.output_canvas.has_image() and view.input_canvas.has_image()
    view.slider.setValue(0)  # look back at the first frame
    assert view.output_canvas.caption == "stylised · frame 0"
    assert view.save_button.isEnabled()
    out = tmp_path / "styled.mp4"
    worker = tab.video.save_to(out)
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    assert video_io.check_video(out) == (3, 48, 32)
    assert "Saved styled.mp4" in view.message.text()


def test_stop_keeps_the_frames_and_start_resumes_at_the_next_one(qtbot, tab, clip):
    tab.set_mode(VIDEO_MODE)
    assert tab.video.panel.clip.load_file(clip)
    tab.side.styles.slots[0].set_image(style_image(), "style.png")
    tiny_video(tab, frames=3)
    job = tab.video.job
    job.frames.connect(lambda frames: job.stop())  # stop once the first frame is done
    with qtbot.waitSignal(job.ended, timeout=JOB_TIMEOUT_MS) as ended:
        tab.video.start()
    assert ended.args[0] == "stopped"
    first = [f.image for f in job.log.frames]
    assert len(first) == 1
    assert "Start resumes" in tab.video.view.stats.text()
    job.frames.disconnect()
    job.frames.connect(tab.video._on_frames)
    with qtbot.waitSignal(job.ended, timeout=JOB_TIMEOUT_MS) as ended:
        assert tab.video.start()
        assert "Resuming: 1 of 3" in tab.video.view.message.text()
    assert ended.args[0] == "finished"
    frames = job.log.frames
    assert [f.resumed for f in frames] == [True, False, False]
    np.testing.assert_array_equal(frames[0].image, first[0])
    assert len(tab.video.view.finished) == 3


def test_live_camera_paints_the_camera_picture_and_stops(qtbot, tab):
    tab.set_mode(VIDEO_MODE)
    frames = panning(40, h=48, w=64)
    shown = iter(range(10**6))
    tab.video._camera = lambda: None
    tab.video.view.live_button.click()  # no camera: a message, the button springs back
    assert not tab.video.view.live_button.isChecked()
    assert "camera" in tab.video.view.message.text()
    tab.side.styles.slots[0].set_image(style_image(), "style.png")
    tiny_video(tab)
    tab.video._camera = lambda: (lambda: frames[next(shown) % len(frames)])
    tab.video.view.live_button.click()
    assert tab.video.live_worker is not None and not tab.video.view.start_button.isEnabled()
    qtbot.waitUntil(lambda: "painted frames/s" in tab.video.view.stats.text(),
                    timeout=JOB_TIMEOUT_MS)
    assert tab.video.view.output_canvas.caption.startswith("live · ")
    worker = tab.video.live_worker
    with qtbot.waitSignal(worker.finished, timeout=JOB_TIMEOUT_MS):
        tab.video.view.live_button.click()
    assert tab.video.live_worker is None and tab.video.view.start_button.isEnabled()


def test_old_work_folders_are_pruned_to_the_newest_jobs(tmp_path):
    import os

    from desktop.ui.style.video_mode import prune_work

    folders = []
    for i in range(6):
        folder = tmp_path / f"job{i}"
        folder.mkdir()
        (folder / "frame-000000.png").write_bytes(b"x")
        (folder / "manifest.json").write_text("{}")
        os.utime(folder, (1000 + i, 1000 + i))
        folders.append(folder)
    gone = prune_work(tmp_path, keep=folders[0], jobs=3)
    assert sorted(gone) == folders[1:4]  # the oldest, but never the one in use
    assert [f.exists() for f in folders] == [True, False, False, False, True, True]
    assert prune_work(tmp_path / "missing") == []
