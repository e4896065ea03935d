"""The enrolment dialog's background work (no widgets): judging live frames and photos.

Both run in a :class:`~desktop.ui.qthreading.Worker`:

* :func:`capture_loop` is a generator over the camera's newest frames: detect, judge the
  shot (:func:`~desktop.ui.checkin.shots.check_shot`) and, for a good shot only, embed its
  chip. With liveness on (the desk's setting), a shot is good only once the face has been
  judged live (:func:`liveness_check`): a printed photo or a phone screen is refused, as at
  check-in. The dialog decides which good shots to keep (spaced in time, at most 5);
* :func:`examine_photos` does the same for image files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from desktop.errors import ImageError
from desktop.face.camera import Frame
from desktop.face.liveness import LivenessMonitor
from desktop.face.types import Face, FaceEngineLike
from desktop.imageio import load_rgb
from desktop.tasks import CancelToken, ProgressCallback, no_progress
from desktop.ui.checkin.shots import MIN_FACE_PX, ShotCheck, check_shot


@dataclass
class Shot:
    """A face kept for enrolment: its aligned chip, descriptor and where it came from."""

    chip: np.ndarray = field(repr=False)  # (150, 150, 3) uint8 RGB
    descriptor: np.ndarray = field(repr=False)  # (128,) float32
    source: str  # "webcam" or "file" (the store's template sources)
    label: str  # "camera shot 2", "ada.jpg"


@dataclass(frozen=True)
class CaptureUpdate:
    """One judged frame. ``descriptor`` is set only when ``check.ok``."""

    image: np.ndarray
    frame_index: int
    check: ShotCheck
    descriptor: np.ndarray | None
    time: float  # time.monotonic() when judged
    faces: tuple[Face, ...] = ()  # every face found (boxes for the preview)


@dataclass(frozen=True)
class PhotoResult:
    path: Path
    check: ShotCheck
    descriptor: np.ndarray | None

    @property
    def ok(self) -> bool:
        return self.check.ok and self.descriptor is not None


def embed_one(engine: FaceEngineLike, chip: np.ndarray) -> np.ndarray:
    return np.asarray(engine.embed(chip[None]), dtype=np.float32)[0]


#: The face being enrolled, as a track of the liveness monitor.
ENROL_TRACK = 0
LIVENESS_CHECKING = "Checking that this is a live face: turn your head a little…"


def liveness_check(monitor: LivenessMonitor, frame: Frame, check: ShotCheck) -> ShotCheck:
    """``check`` as liveness sees it: the one face (``check.face``) is followed as a track
    of ``monitor`` from frame to frame (a frame without exactly one face starts it over);
    a good shot stays good only once the face has been judged live. A face refused (a
    photo or a screen suspected, or no answer to the challenge) gives its reason."""
    if check.face is None or "several_faces" in check.codes:
        monitor.reset()
        return check
    monitor.observe(frame.image, frame.index, frame.scene_time, [(ENROL_TRACK, check.face.box)])
    status = monitor.status(ENROL_TRACK)
    if not check.ok or status.passed:
        return check
    if status.refused:
        reason = f"{(status.reason or 'not live').capitalize()}: this shot cannot be used."
        return replace(check, ok=False, reason=reason, reasons=(reason, *check.reasons),
                       codes=("liveness", *check.codes))
    return replace(check, ok=False, reason=status.prompt or LIVENESS_CHECKING,
                   codes=("liveness_pending", *check.codes))


def capture_loop(latest: Callable[[], Frame | None], engine: FaceEngineLike, *,
                 min_face_px: int = MIN_FACE_PX, idle_s: float = 0.03,
                 cancel: CancelToken | None = None,
                 liveness: LivenessMonitor | None = None) -> Iterator[CaptureUpdate]:
    """Judge each new frame from ``latest()`` (the camera's newest frame, or None) until
    cancelled. Frames are told apart by identity, so a camera that restarts (indices
    starting again at 0) is followed too. With ``liveness`` (a monitor with liveness on),
    only frames of a face judged live are good shots (:func:`liveness_check`)."""
    seen: Frame | None = None
    while True:
        if cancel is not None:
            cancel.checkpoint()
        frame = latest()
        if frame is None or frame is seen:
            time.sleep(idle_s)
            continue
        seen = frame
        faces = list(engine.detect(frame.image))
        check = check_shot(frame.image, faces, min_face_px=min_face_px)
        if liveness is not None:
            check = liveness_check(liveness, frame, check)
        descriptor = None
        if check.ok and check.face is not None and check.face.chip is not None:
            descriptor = embed_one(engine, check.face.chip)
        yield CaptureUpdate(frame.image, frame.index, check, descriptor, time.monotonic(),
                            tuple(faces))


def examine_photos(engine: FaceEngineLike, paths: Sequence[str | Path], *,
                   min_face_px: int = MIN_FACE_PX, progress: ProgressCallback = no_progress,
                   cancel: CancelToken | None = None) -> list[PhotoResult]:
    """Load, detect, judge and (when good) embed each photo; one result per path."""
    out = []
    for i, raw in enumerate(paths):
        if cancel is not None:
            cancel.checkpoint()
        path = Path(raw)
        progress(i / max(1, len(paths)), f"examining {path.name}")
        try:
            image = load_rgb(path)
        except ImageError as exc:
            out.append(PhotoResult(path, ShotCheck(False, exc.message), None))
            continue
        faces = list(engine.detect(image))
        check = check_shot(image, faces, min_face_px=min_face_px, source="photo")
        descriptor = None
        if check.ok and check.face is not None and check.face.chip is not None:
            descriptor = embed_one(engine, check.face.chip)
        out.append(PhotoResult(path, check, descriptor))
    progress(1.0, "done")
    return out
