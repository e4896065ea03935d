"""A camera source: a thread that reads any ``cv2.VideoCapture`` source and keeps only the
newest frame, so whoever consumes frames never falls behind the camera.

A source is a device index (``0`` or ``"0"``), a video file path or a stream URL
(``rtsp://...``, ``http://...``). Frames come out as :class:`Frame`: RGB ``uint8`` images of
shape (H, W, 3) with a running index and timestamps.

Faults never raise out of the thread. They show in :attr:`CameraSource.state`, which is
also pushed to an ``on_state`` callback (called from the camera's own threads):

* ``connecting``: opening the source;
* ``running``: frames are arriving;
* ``retrying``: the camera could not be opened, stopped sending frames, or hung; the
  source is reopened after a delay that doubles on each failure (capped), e.g.
  ``"retrying in 2 s: camera 0 stopped sending frames"``;
* ``ended``: a video file reached its end (only when not looping);
* ``failed``: a video file cannot be opened or decoded (retrying would not help);
* ``stopped``: :meth:`CameraSource.close` was called.

Each capture session runs in its own reader thread, watched by a supervisor thread. A
read that blocks (a camera hanging instead of failing) is abandoned after
``stall_timeout`` seconds and the source reopened, and :meth:`close` returns promptly
even when a read is stuck: the abandoned reader releases its capture once the read
returns.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from desktop.tasks import CancelToken

log = logging.getLogger(__name__)

# OpenCV prints its own warnings to stderr for every failed open ("can't open camera by
# index"); the source reports those states itself, in words, so keep only OpenCV errors.
with contextlib.suppress(AttributeError):  # builds without the logging module
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

CONNECTING = "connecting"
RUNNING = "running"
RETRYING = "retrying"
ENDED = "ended"
FAILED = "failed"
STOPPED = "stopped"
TERMINAL = frozenset({ENDED, FAILED, STOPPED})


class CaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` a :class:`CameraSource` uses (tests pass fakes)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int | str], CaptureLike]


def parse_source(source: int | str) -> int | str:
    """``"0"`` and ``0`` become the device index 0; anything else stays a path or URL."""
    if isinstance(source, int):
        return source
    text = str(source).strip()
    return int(text) if text.isdigit() else text


def is_stream_url(source: int | str) -> bool:
    return isinstance(source, str) and "://" in source


def is_video_file(source: int | str) -> bool:
    """True for a file path (not a device index, not a URL)."""
    return isinstance(source, str) and not is_stream_url(source)


def describe_source(source: int | str) -> str:
    """``camera 0``, ``video file clip.mp4`` or ``stream rtsp://host/...`` for messages."""
    source = parse_source(source)
    if isinstance(source, int):
        return f"camera {source}"
    if is_stream_url(source):
        return f"stream {source}"
    return f"video file {os.path.basename(source) or source}"


def open_capture(source: int | str) -> CaptureLike:
    """The default capture factory: ``cv2.VideoCapture(source)``."""
    return cv2.VideoCapture(source)


@dataclass(frozen=True)
class Frame:
    """One camera frame.

    ``image``: (H, W, 3) RGB uint8. ``index``: 0, 1, 2, ... in the order frames were read,
    counting on across reconnects and loops (a consumer that skips frames sees gaps).
    ``timestamp``: ``time.monotonic()`` seconds when the frame was read. ``media_time``:
    for video files, the frame's position in the video in seconds (growing on across
    loops), else None. ``wall_time``: ``time.time()`` when read.
    """

    image: np.ndarray = field(repr=False)
    index: int
    timestamp: float
    wall_time: float
    media_time: float | None = None

    @property
    def scene_time(self) -> float:
        """Seconds on the clock of the scene filmed: the media time for files, else the
        read time. Durations such as "seen for 0.5 s" are measured on this clock, so a file
        processed faster than real time behaves as it would live."""
        return self.media_time if self.media_time is not None else self.timestamp

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class SourceState:
    """Where a source stands; ``message`` is written for people (status bars, banners)."""

    status: str
    message: str
    source: str
    retry_at: float | None = None  # time.monotonic() of the next attempt when retrying
    failures: int = 0  # consecutive failed attempts

    @property
    def terminal(self) -> bool:
        """True once no more frames will come (ended, failed or stopped)."""
        return self.status in TERMINAL

    @property
    def running(self) -> bool:
        return self.status == RUNNING


@dataclass
class _Session:
    """What one reader thread found; read by the supervisor once the thread is done."""

    generation: int
    heartbeat: float
    opened: bool = False
    frames: int = 0
    outcome: str = ""  # "eof", "open_failed", "read_failed", "error"
    reason: str = ""
    done: bool = False


class CameraSource:
    """Reads a ``cv2.VideoCapture`` source in a background thread (see the module doc).

    Args:
        source: a device index (``0`` or ``"0"``), a video file path or a stream URL.
        pace: for video files, deliver frames at the file's frame rate as a camera would
            (live view). False reads as fast as possible (benchmarks, the CLI). Default:
            True for files; cameras and streams are paced by the device anyway.
        loop: for video files, start over at the end instead of ending.
        drop_frames: True (default) keeps only the newest frame: a slow consumer skips
            frames and never falls behind. False hands every frame over in order: the
            reader decodes one frame ahead and then waits for the consumer (lossless; for
            processing a file completely).
        on_state: called with each new :class:`SourceState`, from the camera's threads.
        capture_factory: opens a capture for a source; ``cv2.VideoCapture`` by default.
        retry_initial, retry_max: the first delay before reopening after a failure, in
            seconds, doubled on each consecutive failure up to ``retry_max``.
        stall_timeout: seconds without a frame after which a running source is
            considered hung and reopened.
        open_timeout: seconds an open may take before it is considered hung.
    """

    def __init__(
        self,
        source: int | str,
        *,
        pace: bool | None = None,
        loop: bool = False,
        drop_frames: bool = True,
        on_state: Callable[[SourceState], None] | None = None,
        capture_factory: CaptureFactory | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 8.0,
        stall_timeout: float = 5.0,
        open_timeout: float = 15.0,
    ) -> None:
        self.source = parse_source(source)
        self.description = describe_source(self.source)
        self.is_file = is_video_file(self.source)
        self.pace = self.is_file if pace is None else bool(pace) and self.is_file
        self.loop = bool(loop) and self.is_file
        self.drop_frames = drop_frames
        self.retry_initial = float(retry_initial)
        self.retry_max = float(retry_max)
        self.stall_timeout = float(stall_timeout)
        self.open_timeout = float(open_timeout)
        self._on_state = on_state
        self._factory: CaptureFactory = capture_factory or open_capture
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._state = SourceState(CONNECTING, f"opening {self.description}", self.description)
        self._latest: Frame | None = None
        self._consumed = -1  # index of the newest frame handed out by next_frame
        self._next_index = 0
        self._generation = 0
        self._session: _Session | None = None
        self._stamps: collections.deque[float] = collections.deque(maxlen=90)
        self._media_offset = 0.0  # seconds added to media times after each loop
        self._last_media = 0.0
        self._nominal_fps: float | None = None
        self._frame_size: tuple[int, int] | None = None
        self._frames_total = 0
        self._supervisor: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> CameraSource:
        """Start reading (returns at once; watch :attr:`state`). Starting twice is a no-op."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(
                target=self._supervise, name=f"camera-{self.description}", daemon=True
            )
            self._supervisor.start()
        return self

    def close(self, timeout: float = 1.0) -> None:
        """Stop reading. Returns within about ``timeout`` seconds even if a read is stuck."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout)
        self._set_state(STOPPED, f"{self.description} closed")

    def __enter__(self) -> CameraSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what consumers read -----------------------------------------------------------
    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def fps(self) -> float:
        """Frames per second arriving from the source, over about the last 2 s (0 when
        nothing arrived lately)."""
        with self._lock:
            stamps = list(self._stamps)
        now = time.monotonic()
        recent = [t for t in stamps if now - t <= 2.0]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    @property
    def nominal_fps(self) -> float | None:
        """The frame rate the source declares (CAP_PROP_FPS), when it declares one."""
        return self._nominal_fps

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the frames, once known."""
        return self._frame_size

    @property
    def frames_read(self) -> int:
        return self._frames_total

    def latest(self) -> Frame | None:
        """The newest frame (None before the first). Does not wait and does not consume:
        the UI can draw it at the camera's rate while a worker processes frames."""
        return self._latest

    def next_frame(self, after: int = -1, timeout: float | None = None) -> Frame | None:
        """Wait for a frame with ``index > after`` and return it (the newest one).

        Returns None when ``timeout`` seconds pass first, or once the source is terminal
        and no newer frame is left.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._latest
                if frame is not None and frame.index > after:
                    self._consumed = max(self._consumed, frame.index)
                    self._cond.notify_all()  # a lossless reader waits for this
                    return frame
                if self._state.terminal:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.25 if remaining is None else min(remaining, 0.25))

    def frames(self, cancel: CancelToken | None = None, poll: float = 0.1) -> Iterator[Frame]:
        """Every new frame until the source is terminal (with ``drop_frames=False``, every
        frame of a file, in order). Starts the source if needed."""
        self.start()
        last = -1
        while True:
            if cancel is not None:
                cancel.checkpoint()
            frame = self.next_frame(last, timeout=poll)
            if frame is not None:
                last = frame.index
                yield frame
            elif self._state.terminal:
                return

    # -- the supervisor thread ---------------------------------------------------------
    def _supervise(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                session = self._run_session()
                if self._stop.is_set():
                    break
                if session.frames:
                    failures = 0
                if session.outcome == "eof" and self.is_file:
                    if self.loop and session.frames:
                        self._media_offset = self._last_media + 1.0 / (self._nominal_fps or 30.0)
                        continue
                    if self._frames_total:
                        self._set_state(ENDED, f"{self.description} ended after "
                                               f"{self._frames_total} frames")
                    else:
                        self._set_state(FAILED, f"{self.description}: no frame could be "
                                                "decoded (corrupt or unsupported file?)")
                    break
                if session.outcome == "open_failed" and self.is_file:
                    self._set_state(FAILED, session.reason)
                    break
                delay = min(self.retry_max, self.retry_initial * 2**failures)
                failures += 1
                self._set_state(
                    RETRYING, f"retrying in {delay:g} s: {session.reason}",
                    retry_at=time.monotonic() + delay, failures=failures,
                )
                if self._stop.wait(delay):
                    break
        except Exception:  # never raise out of the thread
            log.exception("camera supervisor for %s failed", self.description)
            self._set_state(FAILED, f"{self.description}: internal error (see the log)")
        finally:
            if self._stop.is_set():
                self._set_state(STOPPED, f"{self.description} closed")
            with self._cond:
                self._cond.notify_all()

    def _run_session(self) -> _Session:
        """Start one reader thread and wait until it ends, hangs, or we are stopped."""
        with self._lock:
            self._generation += 1
            session = _Session(self._generation, time.monotonic())
            self._session = session
        if self._state.status != RUNNING:
            self._set_state(CONNECTING, f"opening {self.description}",
                            failures=self._state.failures)
        reader = threading.Thread(
            target=self._read, args=(session,), name=f"camera-read-{session.generation}",
            daemon=True,
        )
        reader.start()
        while not self._stop.is_set():
            reader.join(0.05)
            if session.done:
                return session
            limit = self.stall_timeout if session.opened else self.open_timeout
            if time.monotonic() - session.heartbeat > limit:
                with self._lock:
                    self._generation += 1  # abandon the hung reader; it exits when unblocked
                    session.done = True
                what = "stopped sending frames" if session.opened else "did not open"
                session.outcome = "read_failed"
                session.reason = f"{self.description} {what} (nothing for {limit:g} s)"
                return session
        return session

    # -- a reader thread ---------------------------------------------------------------
    def _current(self, session: _Session) -> bool:
        return session.generation == self._generation and not self._stop.is_set()

    def _read(self, session: _Session) -> None:
        capture: CaptureLike | None = None
        try:
            if self.is_file and not os.path.isfile(str(self.source)):
                session.outcome, session.reason = "open_failed", (
                    f"{self.description} not found: {self.source}")
                return
            capture = self._factory(self.source)
            session.heartbeat = time.monotonic()
            if capture is None or not capture.isOpened():
                session.outcome = "open_failed"
                session.reason = (f"cannot open {self.description}"
                                  + (" (unsupported or corrupt file?)" if self.is_file else ""))
                return
            session.opened = True
            self._read_frames(capture, session)
        except Exception as exc:  # a capture that raises is a failing source, not a crash
            log.warning("reading %s failed: %s", self.description, exc, exc_info=True)
            session.outcome, session.reason = "error", f"{self.description} failed: {exc}"
        finally:
            if capture is not None:
                try:
                    capture.release()
                except Exception:  # pragma: no cover - a driver failing on release
                    log.debug("release of %s failed", self.description, exc_info=True)
            session.done = True

    def _read_frames(self, capture: CaptureLike, session: _Session) -> None:
        fps = _positive(capture.get(cv2.CAP_PROP_FPS))
        if fps is not None and fps < 1000:
            self._nominal_fps = fps
        paced_start: tuple[float, float] | None = None  # (monotonic, media time) at start
        while self._current(session):
            ok, bgr = capture.read()
            now = time.monotonic()
            session.heartbeat = now
            if not self._current(session):
                return
            if not ok or bgr is None or getattr(bgr, "size", 0) == 0:
                session.outcome = "eof" if self.is_file else "read_failed"
                session.reason = f"{self.description} stopped sending frames"
                return
            media = None
            if self.is_file:
                pos = _positive(capture.get(cv2.CAP_PROP_POS_MSEC))
                local = (pos / 1000.0 if pos is not None
                         else session.frames / (self._nominal_fps or 30.0))
                media = self._media_offset + local
                self._last_media = media
                if self.pace:
                    if paced_start is None:
                        paced_start = (now, media)
                    due = paced_start[0] + (media - paced_start[1])
                    while self._current(session) and time.monotonic() < due:
                        self._stop.wait(min(0.05, due - time.monotonic()))
                        session.heartbeat = time.monotonic()
            image = _to_rgb(bgr)
            if not self._publish(session, image, media):
                return
            session.frames += 1

    def _publish(self, session: _Session, image: np.ndarray, media: float | None) -> bool:
        with self._cond:
            if not self.drop_frames:
                # Lossless: wait until the consumer has taken the frame in the slot.
                while (self._latest is not None and self._consumed < self._latest.index
                       and self._current(session)):
                    self._cond.wait(0.1)
                    session.heartbeat = time.monotonic()
            if not self._current(session):
                return False
            now = time.monotonic()
            self._latest = Frame(image, self._next_index, now, time.time(), media)
            self._next_index += 1
            self._frames_total += 1
            self._stamps.append(now)
            self._frame_size = (int(image.shape[1]), int(image.shape[0]))
            self._cond.notify_all()
        if self._state.status != RUNNING:
            self._set_state(RUNNING, f"{self.description} running")
        return True

    # -- state -------------------------------------------------------------------------
    def _set_state(self, status: str, message: str, *, retry_at: float | None = None,
                   failures: int = 0) -> None:
        with self._cond:
            old = self._state
            if old.terminal:
                return  # ended, failed and stopped are final
            new = SourceState(status, message, self.description, retry_at, failures)
            if new == old:
                return
            self._state = new
            self._cond.notify_all()
        log.info("%s: %s", self.description, message)
        if self._on_state is not None:
            try:
                self._on_state(new)
            except Exception:
                log.exception("camera state callback failed")


def _positive(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 and value == value else None


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or gray, or BGRA) frame as a contiguous RGB uint8 (H, W, 3) array."""
    if bgr.dtype != np.uint8:
        bgr = cv2.convertScaleAbs(bgr)
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
