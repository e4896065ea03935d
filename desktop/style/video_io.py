"""Reading and writing video files for video style transfer, with OpenCV only.

* :func:`probe` opens a clip and says what it holds (:class:`VideoInfo`);
* :func:`read_frames` decodes a slice of it, each frame resized to the painting size;
* :func:`write_video` encodes frames (``(H, W, 3)`` RGB uint8) with ``cv2.VideoWriter``:
  MPEG-4 Part 2 (``mp4v``) in ``.mp4``/``.m4v``/``.mov``, Motion JPEG in ``.avi``, the
  encoders the ``opencv-python-headless`` wheel carries (it has no H.264 encoder). It
  then reads the file back and checks the frame count and size (:func:`check_video`);
* :func:`record_clip` records a few seconds from a camera (any ``cv2.VideoCapture``
  source) into a file first, so a camera can be painted like a clip.

Sound is not carried: OpenCV reads and writes pictures only (callers say so).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from desktop.errors import FacestyleError
from desktop.style import images as imgs

#: Output container (lower-case suffix) -> FourCC of the encoder written into it.
CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
#: Extensions offered for clips in file dialogs.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")
#: Frame rate used when a clip does not declare a usable one.
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds: ``width x height`` pixels, ``fps``, ``frames`` (as counted by
    decoding when the container's count is missing; 0 if unknown), and whether the
    container has a sound track (OpenCV cannot copy it)."""

    path: str
    width: int
    height: int
    fps: float
    frames: int
    has_audio: bool = False

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def _has_audio_track(path: str | Path) -> bool:
    """True when an MP4/MOV file declares a sound track (its ``hdlr`` box says ``soun``).

    A look at the container's boxes, not a decode; other containers answer False."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8 * 2**20)  # the moov box is near one end or the other
            if len(head) == 8 * 2**20:
                fh.seek(-8 * 2**20, os.SEEK_END)
                head += fh.read()
    except OSError:
        return False
    at = head.find(b"hdlr")
    while at >= 0:
        # after the box type: version/flags (4 bytes), pre_defined (4), handler_type (4)
        if head[at + 12: at + 16] == b"soun":
            return True
        at = head.find(b"hdlr", at + 4)
    return False


def _open(path: str | Path) -> cv2.VideoCapture:
    path = str(path)
    if not Path(path).exists():
        raise FacestyleError(f"{path} does not exist.", "Check the path of the clip.")
    if Path(path).is_dir():
        raise FacestyleError(f"{path} is a folder, not a video file.")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise FacestyleError(f"{Path(path).name} is not a video this app can read.",
                             "Use an MP4, MOV, AVI, MKV or WebM file.")
    return cap


def probe(path: str | Path) -> VideoInfo:
    """Open ``path`` and describe it; decodes the first frame to be sure it is readable.

    Raises:
        FacestyleError: missing, not a video, or no frame can be decoded.
    """
    cap = _open(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise FacestyleError(f"{Path(path).name}: no frame could be decoded.",
                                 "The file may be damaged or use an unsupported codec.")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if not (np.isfinite(fps) and 1.0 <= fps <= 240.0):
        fps = DEFAULT_FPS
    if frames <= 0:  # the container does not say: count by decoding
        frames = check_video(path)[0]
    h, w = frame.shape[:2]
    return VideoInfo(str(path), int(w), int(h), fps, frames, _has_audio_track(path))


def painting_size(info: VideoInfo, size: int) -> tuple[int, int]:
    """``(height, width)`` of the frames painted at longest side ``size``, each rounded to
    an even number (MPEG-4 encoders drop an odd last row or column)."""
    h, w = imgs.fit_size(info.height, info.width, int(size))
    return max(2, 2 * round(h / 2)), max(2, 2 * round(w / 2))


def read_frames(path: str | Path, height: int, width: int, start: int = 0,
                count: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` for frames ``start, start+1, ...`` (at most ``count``), each
    ``(height, width, 3)`` RGB uint8, decoded in order (frames before ``start`` are
    decoded and dropped: seeking in compressed video is not frame-exact everywhere)."""
    cap = _open(path)
    try:
        index = 0
        taken = 0
        while count is None or taken < count:
            if index < start:
                if not cap.grab():
                    return
                index += 1
                continue
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield index, imgs.resize(rgb, height, width)
            index += 1
            taken += 1
    finally:
        cap.release()


def codec_for(path: str | Path) -> str:
    """The FourCC written for ``path``'s extension.

    Raises:
        FacestyleError: an extension this app cannot write.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CODECS:
        raise FacestyleError(f"Cannot write {Path(path).name}: unknown video type "
                             f"{suffix or '(no extension)'}.",
                             "Name the output .mp4 (or .avi, .mov, .m4v).")
    return CODECS[suffix]


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float,
                expected: int | None = None) -> tuple[int, int, int]:
    """Encode ``frames`` (all the same ``(H, W, 3)`` RGB uint8) into ``path`` at ``fps``,
    written whole or not at all (a temporary file renamed at the end), then read back.

    Returns ``(frames, width, height)`` as decoded from the written file.

    Raises:
        FacestyleError: no frames, an unknown extension, the folder cannot be written, or
            the written file does not read back with ``expected`` frames (when given) of
            the right size.
    """
    path = Path(path)
    fourcc = codec_for(path)
    if not path.parent.is_dir():
        raise FacestyleError(f"The folder {path.parent} does not exist.",
                             "Create it, or choose another output path.")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{path.suffix}")
    writer: cv2.VideoWriter | None = None
    written = 0
    size: tuple[int, int] | None = None
    try:
        for frame in frames:
            if size is None:
                size = (int(frame.shape[1]), int(frame.shape[0]))
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc),
                                         float(fps), size)
                if not writer.isOpened():
                    raise FacestyleError(f"Cannot write {path.name} with the {fourcc} codec.",
                                         "Choose another folder or name the output .avi.")
            if (frame.shape[1], frame.shape[0]) != size:
                raise ValueError(f"frame {written} is {frame.shape[1]}x{frame.shape[0]}, "
                                 f"not {size[0]}x{size[1]}")
            assert writer is not None
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
            written += 1
        if writer is None or size is None:
            raise FacestyleError("There are no frames to write.")
        writer.release()
        writer = None
        got = check_video(tmp)
        if got[1:] != size or (expected is not None and got[0] != expected):
            raise FacestyleError(
                f"The written video reads back as {got[0]} frames of {got[1]}x{got[2]}, "
                f"not {expected if expected is not None else written} of "
                f"{size[0]}x{size[1]}.", "The disk may be full; try another folder.")
        os.replace(tmp, path)
        return got
    except OSError as exc:
        raise FacestyleError(f"Cannot write {path}: {exc.strerror or exc}",
                             "Choose a folder you can write to.") from exc
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)


def check_video(path: str | Path) -> tuple[int, int, int]:
    """``(frames, width, height)`` of a video, counted by decoding every frame."""
    cap = _open(path)
    try:
        frames, size = 0, (0, 0)
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            frames += 1
            size = (int(frame.shape[1]), int(frame.shape[0]))
    finally:
        cap.release()
    return frames, size[0], size[1]


#: ``(frame RGB uint8, seconds since the start)`` for each frame recorded.
FrameSink = Callable[[np.ndarray, float], None]


def record_clip(source: int | str, seconds: float, path: str | Path,
                capture_factory: Callable[[int | str], object] | None = None,
                on_frame: FrameSink | None = None, open_timeout: float = 15.0) -> VideoInfo:
    """Record ``seconds`` of a camera (index, URL or any ``cv2.VideoCapture`` source) into
    ``path`` (``.mp4``/``.avi``), at the rate the frames arrived. Returns what was written.

    Raises:
        FacestyleError: the camera gives no frame within ``open_timeout`` seconds, or the
            file cannot be written.
    """
    from desktop.face.camera import CameraSource

    if not seconds > 0:
        raise FacestyleError("The recording length must be more than 0 seconds.")
    camera = CameraSource(source, drop_frames=True, pace=False,
                          capture_factory=capture_factory)  # type: ignore[arg-type]
    frames: list[np.ndarray] = []
    camera.start()
    try:
        first = camera.next_frame(timeout=open_timeout)
        if first is None:
            raise FacestyleError(f"No frame came from {camera.description}: "
                                 f"{camera.state.message}.",
                                 "Check the camera index with 'facestyle doctor'.")
        started = stamp = first.timestamp
        frames.append(first.image)
        if on_frame is not None:
            on_frame(first.image, 0.0)
        last = first.index
        while True:
            frame = camera.next_frame(last, timeout=1.0)
            if frame is None:
                if camera.state.terminal or time.monotonic() - started >= seconds:
                    break
                continue
            if frame.timestamp - started > seconds:
                break
            frames.append(frame.image)
            last, stamp = frame.index, frame.timestamp
            if on_frame is not None:
                on_frame(frame.image, stamp - started)
    finally:
        camera.close()
    span = stamp - started
    fps = (len(frames) - 1) / span if len(frames) > 1 and span > 0 else DEFAULT_FPS
    fps = min(max(fps, 1.0), 120.0)
    count, w, h = write_video(path, frames, fps, expected=len(frames))
    return VideoInfo(str(path), w, h, fps, count)
