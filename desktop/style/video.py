"""Video style transfer with temporal consistency (Ruder, Dosovitskiy and Brox, 2016).

:func:`stylize_video` paints a clip frame by frame with the image loop
(:func:`desktop.style.optimize.stylize`), adding for each frame ``i`` after the first

* a **warm start**: G starts from the previous stylised frame warped onto frame ``i`` by
  the optical flow (:mod:`desktop.style.flow`), instead of from the content;
* the **temporal term** ``gamma * sum c (G - warp(G_{i-1}))^2 / D`` in J
  (:mod:`desktop.style.temporal`), with ``c`` Ruder et al.'s forward-backward
  reliability mask; optionally over several earlier frames (their long-term loss).

The first frame of the clip, and the first frame after a **scene cut** (where less than
:data:`SCENE_CUT_RELIABLE` of the pixels can be followed back to the previous frame), is
painted like a still image with ``first_iterations`` iterations; every other frame with
``iterations``.

**Coarse to fine** (``StyleSettings.multiscale``) applies to a shot's first frame only
(:func:`frame_settings`): it starts from the content like a still image and gains from
it as a still image does. Every later frame is optimised at the painting size alone,
warm-started or not: its warm start is already the full-size answer to within the
motion, and shrinking it to a coarse scale would throw away the fine texture that makes
it match the previous frame; the independent frames (no warm start, gamma 0) run the
same single-scale schedule so that the modes compared in ``bench/video_style.py``
differ only in the start image and gamma.

Every finished frame is written into a **work folder** at once (PNG, written whole or not
at all, with a JSON line of its numbers); a run that stops (Stop, Ctrl-C, a crash) resumes
at the next frame when started again with the same clip and settings: the folder's
``manifest.json`` records what they were, and a different clip or setting is refused
(:class:`WorkFolder`) rather than mixed in. The video is written from the folder at the
end (:func:`write_result`); sound is not carried (OpenCV writes pictures only).

Frames are ``(H, W, 3)`` RGB uint8 at the painting size throughout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from desktop.errors import FacestyleError
from desktop.imageio import load_rgb, save_png
from desktop.style import flow as flows
from desktop.style import images as imgs
from desktop.style import video_io
from desktop.style.settings import IterationReport, StyleSettings
from desktop.style.temporal import TemporalTerm, long_term_weights
from desktop.tasks import CancelToken

#: A frame where less than this fraction of the pixels can be followed back to the
#: previous frame starts a new shot (painted like the first frame, no temporal term).
#: Measured on short_hamilton_clip at 256 px: its three cuts score 0.01-0.07, every other
#: pair 0.80 or more.
SCENE_CUT_RELIABLE = 0.3
#: Default temporal weight gamma. J_temporal is a mean over the frame (about 60-80 for a
#: warm-started frame: 8-9 grey levels RMS off the warped previous result), while the
#: style and content terms are 1e11 at 256 px; measured on short_hamilton_clip at 256 px
#: (5 frames, 100 iterations each after the first): gamma 1e6 and 1e7 changed the warping
#: error by 2-5% over the warm start alone, 1e8 by 23% with the style term 3% higher. The
#: balance holds at other sizes: the term and J_style both stay the same as G grows.
#: See ``docs/benchmarks.md``, "Video style transfer".
DEFAULT_TEMPORAL_WEIGHT = 1e8
#: Default iterations of the first frame of a shot, and of every other frame.
DEFAULT_FIRST_ITERATIONS = 300
DEFAULT_ITERATIONS = 100
#: Default painting size of a video (longest side, pixels).
DEFAULT_SIZE = 256
MANIFEST = "manifest.json"
FRAMES_LOG = "frames.jsonl"


@dataclass
class VideoSettings:
    """Everything that decides a stylised clip, beside the clip and the style images.

    ``style`` holds the image settings (alpha, beta, lambdas, size, seed...); its
    ``iterations`` are the iterations of every frame but a shot's first, which gets
    ``first_iterations``.
    """

    style: StyleSettings = field(default_factory=lambda: StyleSettings(
        size=DEFAULT_SIZE, iterations=DEFAULT_ITERATIONS))
    first_iterations: int = DEFAULT_FIRST_ITERATIONS
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT  # gamma; 0: no temporal term
    warm_start: bool = True  # start each frame from the warped previous result
    long_term: list[int] = field(default_factory=lambda: [1])  # earlier frames j in the term
    flow: str = flows.DEFAULT_METHOD
    start_frame: int = 0  # first frame of the clip to paint (0-based)
    max_frames: int = 0  # 0: to the end of the clip

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["style"] = self.style.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["style"] = StyleSettings.from_dict(dict(data.get("style") or {}))
        return cls(**values)

    def check(self) -> None:
        """Raise FacestyleError for a setting no run could use."""
        if int(self.first_iterations) < 1 or int(self.style.iterations) < 1:
            raise FacestyleError("Every frame needs at least one iteration.")
        if not np.isfinite(self.temporal_weight) or self.temporal_weight < 0:
            raise FacestyleError("The temporal weight must be a non-negative number.")
        if not self.long_term or any(int(j) < 1 for j in self.long_term):
            raise FacestyleError("The long-term frames must be 1 or more frames back "
                                 "(e.g. 1 or 1,2,4).")
        if self.flow not in flows.METHODS:
            raise FacestyleError(f"Unknown optical flow method {self.flow!r}.",
                                 "Use dis or farneback.")
        if self.start_frame < 0 or self.max_frames < 0:
            raise FacestyleError("The first frame and the frame count cannot be negative.")


@dataclass
class FrameResult:
    """One painted frame. ``position`` counts from 0 within the painted slice;
    ``index`` is the frame's number in the clip. ``losses`` are the final weighted terms
    (content, style, tv, temporal, total); ``reliable`` the fraction of pixels the flow
    from the previous frame covers (None for a shot's first frame)."""

    position: int
    index: int
    image: np.ndarray = field(repr=False)
    input: np.ndarray = field(repr=False)
    losses: dict[str, float]
    iterations: int
    seconds: float
    reliable: float | None
    shot_start: bool
    resumed: bool = False  # read back from the work folder, not painted in this run

    def row(self) -> dict[str, Any]:
        """The JSON line kept in the work folder for this frame."""
        return {"position": self.position, "index": self.index, "losses": self.losses,
                "iterations": self.iterations, "seconds": round(self.seconds, 4),
                "reliable": self.reliable, "shot_start": self.shot_start}


@dataclass
class VideoStep:
    """What :func:`stylize_video` yields: after every iteration (``report``), and once per
    frame when it is finished or found done in the work folder (``finished``)."""

    position: int  # the frame being painted, 0-based within the slice
    frames: int  # frames in the slice
    report: IterationReport | None = None
    finished: FrameResult | None = None
    frame_iterations: int = 0  # iterations this frame will take
    eta_seconds: float | None = None  # to the end of the clip, at the recent pace
    notices: list[str] = field(default_factory=list)
    frame: np.ndarray | None = field(default=None, repr=False)  # the input frame painted


def _sha1_image(image: np.ndarray) -> str:
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes())
    digest.update(str(image.shape).encode())
    return digest.hexdigest()


def _clip_identity(info: video_io.VideoInfo) -> dict[str, Any]:
    stat = os.stat(info.path)
    return {"path": str(Path(info.path).resolve()), "bytes": stat.st_size,
            "mtime": int(stat.st_mtime), "width": info.width, "height": info.height}


def job_key(info: video_io.VideoInfo, styles: Sequence[np.ndarray],
            settings: VideoSettings) -> dict[str, Any]:
    """What a work folder's frames depend on: the clip, the style images and the settings."""
    return {"clip": _clip_identity(info), "styles": [_sha1_image(s) for s in styles],
            "settings": settings.to_dict()}


def job_id(key: dict[str, Any]) -> str:
    """A short stable name for a job (the Style tab's work folder names)."""
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class WorkFolder:
    """The frames of one job on disk: ``manifest.json``, ``frame-NNNNNN.png`` (by clip
    frame number) and ``frames.jsonl`` (one line of numbers per frame)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def frame_path(self, index: int) -> Path:
        return self.path / f"frame-{index:06d}.png"

    def manifest(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def open(self, key: dict[str, Any], restart: bool = False) -> None:
        """Make the folder ready for ``key``'s job: keep its frames when they were painted
        for the same job, start it afresh when ``restart`` (or when it is new).

        Raises:
            FacestyleError: it holds frames of another job (and not ``restart``), or it
                cannot be written.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            old = self.manifest()
            if old is not None and old.get("key") != key and not restart:
                raise FacestyleError(
                    f"The work folder {self.path} holds frames painted from another clip or "
                    f"with other settings ({_difference(old.get('key'), key)}).",
                    "Use --restart to discard them, or --work to choose another folder.")
            if restart or old is None or old.get("key") != key:
                self.clear()
                doc = {"key": key, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
                _atomic(self.path / MANIFEST, lambda tmp: tmp.write_text(
                    json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8"))
        except OSError as exc:
            raise FacestyleError(f"Cannot use the work folder {self.path}: "
                                 f"{exc.strerror or exc}",
                                 "Choose a folder you can write to with --work.") from exc

    def clear(self) -> None:
        """Remove the frames and the log (not the folder, nor files it did not make)."""
        for png in self.path.glob("frame-*.png"):
            png.unlink(missing_ok=True)
        for name in (FRAMES_LOG, MANIFEST):
            (self.path / name).unlink(missing_ok=True)

    def rows(self) -> dict[int, dict[str, Any]]:
        """The logged numbers of each painted frame, by clip frame number."""
        out: dict[int, dict[str, Any]] = {}
        try:
            lines = (self.path / FRAMES_LOG).read_text(encoding="utf-8").splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                row = json.loads(line)
                out[int(row["index"])] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
        return out

    def done(self, indices: Sequence[int]) -> int:
        """How many of ``indices`` (in order) are painted: the length of the prefix whose
        PNG and log line are both there."""
        rows = self.rows()
        n = 0
        for index in indices:
            if index not in rows or not self.frame_path(index).is_file():
                break
            n += 1
        return n

    def load(self, index: int) -> np.ndarray:
        return load_rgb(self.frame_path(index))

    def save(self, result: FrameResult) -> None:
        """Write a finished frame: its PNG (whole or not at all), then its log line."""
        try:
            _atomic(self.frame_path(result.index),
                    lambda tmp: save_png(str(tmp), np.ascontiguousarray(result.image)))
            with open(self.path / FRAMES_LOG, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(result.row()) + "\n")
        except OSError as exc:
            raise FacestyleError(f"Cannot save frame {result.index} in {self.path}: "
                                 f"{exc.strerror or exc}", "Free some disk space.") from exc

    def frames(self, indices: Sequence[int]) -> Iterator[np.ndarray]:
        for index in indices:
            yield self.load(index)


def _difference(old: Any, new: dict[str, Any]) -> str:
    """Which part of two job keys differs, in a few words."""
    if not isinstance(old, dict):
        return "an unreadable manifest"
    if old.get("clip") != new.get("clip"):
        return "another clip"
    if old.get("styles") != new.get("styles"):
        return "other style images"
    old_s, new_s = old.get("settings") or {}, new["settings"]
    changed = [k for k in new_s if k != "style" and old_s.get(k) != new_s[k]]
    old_style, new_style = old_s.get("style") or {}, new_s.get("style") or {}
    changed += [k for k in new_style if old_style.get(k) != new_style[k]]
    return "changed: " + ", ".join(changed) if changed else "other settings"


def slice_indices(info: video_io.VideoInfo, settings: VideoSettings) -> list[int]:
    """The clip frame numbers the job paints."""
    if settings.start_frame >= info.frames:
        raise FacestyleError(f"The clip has {info.frames} frames; frame "
                             f"{settings.start_frame} is past its end.",
                             "Choose an earlier first frame.")
    stop = info.frames
    if settings.max_frames:
        stop = min(stop, settings.start_frame + settings.max_frames)
    return list(range(settings.start_frame, stop))


def frame_settings(settings: VideoSettings, height: int, width: int,
                   shot_start: bool) -> StyleSettings:
    """The image settings one frame is painted with, at ``height x width``.

    A shot's first frame gets ``first_iterations`` and the settings' own ``multiscale``
    (coarse to fine by default, as a still image); every later frame gets
    ``style.iterations`` at one scale (see the module's docstring for why). Every frame
    runs all its iterations (``stop_when_flat`` off): the same work for every frame, as
    ``bench/video_style.py`` measured it; stopping a frame early when J is flat has not
    been measured for consistency.
    """
    style = dataclasses.replace(settings.style, size=max(height, width),
                                stop_when_flat=False)
    if shot_start:
        return dataclasses.replace(style, iterations=int(settings.first_iterations))
    return dataclasses.replace(style, multiscale=False)


class _Pace:
    """Seconds per pixel-iteration over the recent iterations, for the ETA (a coarse
    scale's iteration costs less in proportion to its pixels)."""

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self.recent: list[float] = []

    def add(self, seconds: float, pixels: int) -> None:
        self.recent.append(seconds / max(1, pixels))
        del self.recent[:-self.window]

    def eta(self, pixel_iterations_left: float) -> float | None:
        if not self.recent:
            return None
        return float(np.median(self.recent)) * pixel_iterations_left


def stylize_video(clip: str | Path, styles: list[np.ndarray], settings: VideoSettings,
                  work: str | Path, cancel: CancelToken | None = None,
                  restart: bool = False) -> Iterator[VideoStep]:
    """Paint ``clip`` in the style of ``styles`` into the work folder ``work``, yielding a
    :class:`VideoStep` after every iteration and for every finished frame.

    Frames already painted in ``work`` for the same job are yielded first (``resumed``)
    and not painted again. Raises FacestyleError for a bad clip, style, setting or work
    folder (before any painting), and Cancelled when ``cancel`` is cancelled (every
    finished frame is on disk by then).
    """
    from desktop.style.optimize import plan_job, stylize

    settings.check()
    info = video_io.probe(clip)
    if not styles:
        raise FacestyleError("No style image was given.",
                             "Give at least one style image: the painting whose style to copy.")
    height, width = video_io.painting_size(info, settings.style.size)
    for opens_shot in (True, False):  # bad settings fail here, before any work
        plan_job((height, width, 3), frame_settings(settings, height, width, opens_shot),
                 len(styles))
    indices = slice_indices(info, settings)
    folder = WorkFolder(work)
    folder.open(job_key(info, styles, settings), restart=restart)
    done = folder.done(indices)
    rows = folder.rows()
    n = len(indices)
    notices = []
    if info.has_audio:
        notices.append("The clip's sound is not copied into the stylised video (OpenCV "
                       "writes pictures only).")
    back = sorted({int(j) for j in settings.long_term})
    keep = max(back)
    inputs: dict[int, np.ndarray] = {}  # recent input frames, by position
    outputs: dict[int, np.ndarray] = {}  # recent stylised frames, by position
    shot_start = 0
    pace = _Pace()
    frames_iter = video_io.read_frames(clip, height, width, indices[0] if indices else 0, n)
    for position, (index, frame) in enumerate(frames_iter):
        if cancel is not None:
            cancel.checkpoint()
        inputs[position] = frame
        for old in [p for p in inputs if p < position - keep]:
            inputs.pop(old, None)
            outputs.pop(old, None)
        pair = flows.pair(inputs[position - 1], frame, settings.flow) \
            if position > 0 and position - 1 >= shot_start else None
        if pair is not None and pair.reliable_fraction < SCENE_CUT_RELIABLE:
            shot_start, pair = position, None
        elif position == 0:
            shot_start = 0
        first = pair is None
        if position < done:
            row = rows[index]
            outputs[position] = folder.load(index)
            yield VideoStep(position, n, finished=FrameResult(
                position, index, outputs[position], frame, dict(row.get("losses", {})),
                int(row.get("iterations", 0)), float(row.get("seconds", 0.0)),
                row.get("reliable"), bool(row.get("shot_start", first)), resumed=True),
                notices=notices)
            continue

        start = temporal = None
        job = frame_settings(settings, height, width, first)
        if not first:
            assert pair is not None
            earlier = [j for j in back if position - j >= shot_start and position - j in outputs]
            pairs = {1: pair}
            for j in earlier:
                if j not in pairs:
                    pairs[j] = flows.pair(inputs[position - j], frame, settings.flow)
            warped = {j: flows.warp(outputs[position - j], pairs[j].backward) for j in earlier}
            if settings.warm_start:
                start = warped[1] if 1 in warped else flows.warp(outputs[position - 1],
                                                                 pair.backward)
            if settings.temporal_weight and earlier:
                masks = long_term_weights([pairs[j].mask for j in earlier])
                targets = [warped[j] for j in earlier]
                if job.preserve_colors:  # the loop optimises luminance then
                    targets = [imgs.luminance_image(t) for t in targets]
                temporal = TemporalTerm(float(settings.temporal_weight), targets, masks)
            if start is not None and job.preserve_colors:
                start = imgs.luminance_image(start)

        frame_iterations = int(job.iterations)
        # the frames after this one, in pixel-iterations at the painting size
        later_work = float(settings.style.iterations) * (n - position - 1) * height * width
        frame_started = time.perf_counter()
        last: IterationReport | None = None
        for report in stylize(frame, styles, job, cancel, init_image=start,
                              temporal=temporal):
            last = report
            h, w = report.size
            pace.add(report.seconds, h * w)
            yield VideoStep(position, n, report=report, frame_iterations=frame_iterations,
                            eta_seconds=pace.eta(report.remaining_work() * h * w + later_work),
                            notices=notices, frame=frame)
        if last is None:  # pragma: no cover - stylize yields at least once or raises
            raise FacestyleError(f"Frame {index} could not be painted.")
        result = FrameResult(
            position, index, last.image, frame,
            {**last.losses(), "temporal": last.temporal}, last.iteration,
            time.perf_counter() - frame_started,
            None if pair is None else pair.reliable_fraction, first)
        folder.save(result)
        outputs[position] = result.image
        yield VideoStep(position, n, finished=result, frame_iterations=frame_iterations,
                        eta_seconds=pace.eta(later_work),
                        notices=notices)


def painted_indices(work: str | Path, info: video_io.VideoInfo,
                    settings: VideoSettings) -> list[int]:
    """The clip frame numbers of the slice already painted in ``work`` (in order)."""
    indices = slice_indices(info, settings)
    return indices[: WorkFolder(work).done(indices)]


def write_result(work: str | Path, output: str | Path, fps: float,
                 indices: Sequence[int]) -> tuple[int, int, int]:
    """Encode the painted frames ``indices`` of the work folder into ``output`` and check
    it reads back with that many frames of their size: ``(frames, width, height)``."""
    folder = WorkFolder(work)
    return video_io.write_video(output, folder.frames(indices), fps, expected=len(indices))


def default_work_folder(output: str | Path) -> Path:
    """``clip-styled.mp4`` -> ``clip-styled.frames/`` beside it."""
    output = Path(output)
    return output.with_name(output.stem + ".frames")
