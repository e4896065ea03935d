"""CameraSource: a generated video file, end of file, newest-frame-only, faults and retry."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from live_fakes import FakeCapture, write_video

from desktop.face.camera import (
    ENDED,
    FAILED,
    RETRYING,
    RUNNING,
    STOPPED,
    CameraSource,
    describe_source,
    parse_source,
)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll until ``predicate()`` holds (a test of behaviour, not of speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def numbered_frames(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[..., 0] = 200  # red in RGB
        f[:, : 2 + 2 * i, 1] = 255  # a green bar growing with the frame number
        frames.append(f)
    return frames


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.avi", numbered_frames(12), fps=20.0)


def green_bar(frame) -> int:
    return int((frame.image[10, :, 1] > 128).sum())


def test_sources_are_parsed_and_described():
    assert parse_source("0") == 0 and parse_source(1) == 1
    assert parse_source(" clip.mp4 ") == "clip.mp4"
    assert describe_source("0") == "camera 0"
    assert describe_source("/a/b/clip.mp4") == "video file clip.mp4"
    assert describe_source("rtsp://cam/1") == "stream rtsp://cam/1"


def test_every_frame_of_a_file_in_order_as_rgb_then_ended(clip):
    states = []
    source = CameraSource(str(clip), pace=False, drop_frames=False, on_state=states.append)
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(12))
    assert [green_bar(f) for f in frames] == [2 + 2 * i for i in range(12)]
    first = frames[0]
    assert first.image.dtype == np.uint8 and first.image.shape == (48, 64, 3)
    assert first.image[30, 40, 0] > 150 and first.image[30, 40, 2] < 60  # RGB, not BGR
    assert first.size == (64, 48)
    media = [f.media_time for f in frames]
    assert media == sorted(media) and media[-1] == pytest.approx(11 / 20, abs=0.02)
    assert source.state.status == ENDED and source.state.terminal
    assert "ended after 12 frames" in source.state.message
    assert [s.status for s in states] == [RUNNING, ENDED]
    assert source.nominal_fps == pytest.approx(20.0)
    assert source.next_frame(frames[-1].index, timeout=1.0) is None  # nothing more comes
    source.close()
    assert source.state.status == ENDED  # closing keeps the final word


def test_looping_a_file_counts_on(clip):
    source = CameraSource(str(clip), pace=False, drop_frames=False, loop=True)
    got = []
    for frame in source.frames():
        got.append(frame)
        if len(got) == 30:
            break
    source.close()
    assert [f.index for f in got] == list(range(30))
    assert green_bar(got[12]) == green_bar(got[0])  # started over
    assert got[12].media_time > got[11].media_time  # the media clock runs on
    assert source.state.status == STOPPED


def test_pacing_delivers_a_file_at_its_frame_rate(clip):
    source = CameraSource(str(clip), drop_frames=False)  # pace defaults to True for files
    start = time.monotonic()
    frames = list(source.frames())
    elapsed = time.monotonic() - start
    assert len(frames) == 12
    assert elapsed >= 0.8 * 11 / 20  # paced: no faster than the file's 20 frames/s
    stamps = [f.timestamp for f in frames]
    assert stamps[-1] - stamps[0] >= 0.8 * 11 / 20


def test_only_the_newest_frame_is_kept_for_a_slow_consumer():
    source = CameraSource(0, capture_factory=lambda s: FakeCapture()).start()
    try:
        assert wait_for(lambda: source.frames_read > 50)
        frame = source.next_frame(-1, timeout=5)
        # The consumer gets the newest frame, not the first one read.
        assert frame is not None and frame.index > 50
        assert source.latest().index >= frame.index
        later = source.next_frame(frame.index, timeout=5)
        assert later.index > frame.index
        assert wait_for(lambda: source.fps > 0)
    finally:
        source.close()


def test_a_camera_failing_mid_stream_is_retried_with_backoff_and_recovers():
    captures = [FakeCapture(fail_after=5), FakeCapture(opened=False), FakeCapture()]
    opened = []

    def factory(spec):
        opened.append(spec)
        return captures[min(len(opened) - 1, 2)]

    states = []
    source = CameraSource("0", capture_factory=factory, retry_initial=0.01,
                          on_state=states.append).start()
    try:
        assert wait_for(lambda: len(opened) >= 3 and source.frames_read > 10)
        messages = [s.message for s in states]
        assert "retrying in 0.01 s: camera 0 stopped sending frames" in messages
        assert "retrying in 0.02 s: cannot open camera 0" in messages  # backoff doubled
        assert source.state.status == RUNNING
        assert captures[0].released and captures[1].released
        assert opened == [0, 0, 0]
        frame = source.next_frame(-1, timeout=5)
        assert frame.index >= 5  # indices count on across the reconnect
    finally:
        source.close()


def test_backoff_is_capped():
    source = CameraSource(3, capture_factory=lambda s: FakeCapture(opened=False),
                          retry_initial=0.01, retry_max=0.04).start()
    try:
        assert wait_for(lambda: source.state.failures >= 6)
        assert source.state.status == RETRYING
        assert source.state.message.startswith("retrying in 0.04 s: cannot open camera 3")
    finally:
        source.close()


def test_a_capture_that_raises_never_kills_the_thread():
    calls = []

    def factory(spec):
        calls.append(spec)
        if len(calls) < 3:
            raise RuntimeError("driver exploded")
        return FakeCapture()

    source = CameraSource(0, capture_factory=factory, retry_initial=0.01).start()
    try:
        assert wait_for(lambda: source.state.status == RUNNING)
        assert len(calls) == 3
    finally:
        source.close()


def test_a_hung_read_is_abandoned_and_close_is_prompt():
    release = threading.Event()
    hung = FakeCapture(block=release)
    made = []

    def factory(spec):
        made.append(spec)
        return hung

    states = []
    source = CameraSource(0, capture_factory=factory, stall_timeout=0.2, retry_initial=0.05,
                          on_state=states.append).start()
    try:
        assert wait_for(lambda: any(s.status == RETRYING for s in states))
        retry = next(s for s in states if s.status == RETRYING)
        assert "camera 0 stopped sending frames (nothing for 0.2 s)" in retry.message
        assert wait_for(lambda: len(made) >= 2)  # reopened despite the stuck read
        start = time.monotonic()
        source.close(timeout=0.5)
        assert time.monotonic() - start < 3.0  # does not wait for the stuck read
        assert source.state.status == STOPPED
    finally:
        release.set()
    assert wait_for(lambda: hung.released)  # the stuck reader cleans up once unblocked


def test_a_missing_file_fails_with_a_clear_message(tmp_path):
    source = CameraSource(str(tmp_path / "nope.mp4")).start()
    assert wait_for(lambda: source.state.terminal)
    assert source.state.status == FAILED
    assert "video file nope.mp4 not found" in source.state.message
    assert source.next_frame(-1, timeout=0.1) is None
    assert list(source.frames()) == []


def test_a_file_that_is_not_a_video_fails_without_retrying(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    source = CameraSource(str(junk)).start()
    assert wait_for(lambda: source.state.terminal)
    assert source.state.status == FAILED
    assert "junk.mp4" in source.state.message
