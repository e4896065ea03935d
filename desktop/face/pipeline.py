"""The live check-in pipeline: detect -> track -> embed (only what is due) -> match -> vote
-> check-in. No Qt: the Check-in tab drives it from a worker thread, the CLI and the
benchmark call it directly.

Per frame (:meth:`CheckinPipeline.process`):

1. **Motion** (every frame, about 1 ms): :class:`~desktop.face.motion.MotionFollower`
   scores the change from the previous frame and moves every visible track's box by
   optical flow. A scene cut (or a camera knocked aside) ends every track; a box that
   cannot be followed is hidden until a detection finds it again.
2. **Detect**, in two kinds, so that the costly detector rarely sees a whole frame:

   * a *scan* runs the engine's detector over the whole frame, for new faces: on the
     first frame, every ``scan_every`` frames, at once after a cut, and soon after a
     track is dropped (the face turned away or moved beyond its region). When
     ``scan_min_face`` asks for faces smaller than the detector's own minimum (costly:
     the frame is enlarged), only the first scan, scans after a cut and every
     ``small_face_every``-th scan look that small: far faces are not about to check in;
     :class:`~desktop.face.tracking.IoUTracker` matches its faces to tracks by IoU;
   * a *refresh* re-detects one track in a region around it (``roi_grow`` face widths
     wide, scaled so the face is about ``roi_face_px`` wide: small faces are enlarged to
     the detector's window, large ones reduced), every ``refresh_every`` frames and at
     once when optical flow lost it. A refresh costs a fraction of a scan.

   Both only find boxes (:class:`~desktop.face.finder.FaceFinder`).
3. **Embed** (batched): the freshly detected tracks that are due (new tracks; tracks
   without a decided label at each refresh; others every ``embed_every`` frames) get
   landmarks and an aligned chip cut from the full-resolution frame, and the chips go to
   the engine's ``embed`` in one batch, (N, 150, 150, 3) -> (N, 128).
4. **Match**: the matcher's open-set rule names each embedding or leaves it Unknown; each
   answer is a :class:`~desktop.face.tracking.Vote` on its track. The track's label is the
   majority of its last ``vote_window`` votes; its d is that of the latest vote agreeing
   with the label.
5. **Liveness** (only when ``settings.liveness.mode`` is not ``"off"``): a
   :class:`~desktop.face.liveness.LivenessMonitor` watches every visible track (passive
   checks on the motion of each face over time; in ``"challenge"`` mode a blink or small
   head turn is asked for when those stay undecided). Its verdict is bound to the person
   the track is named as: a track that changes from one named person to another is judged
   again from scratch.
6. **Check-in**: a track whose label names a person with at least ``min_votes`` agreeing
   votes spread over at least ``min_seconds`` of scene time records one
   :class:`CheckinEvent`, unless that person checked in less than ``cooldown_s`` ago
   (default 4 h). The last check-in per person comes from the check-in log the first time
   a person is seen, so the cooldown holds across restarts. A track checks a person in at
   most once (one visit, one record). With liveness on, only a track judged live checks
   in; one refused (a photo suspected, or no answer to the challenge) records one
   :class:`WithheldCheckin` instead (in the log, when it keeps them) and shows as Unknown
   with the reason. With liveness off, nothing of this runs and every output is exactly
   what it was before liveness existed.

Each call returns a :class:`FrameResult` (plain data: faces with box, track id, name or
None, d; check-in events; stage timings). :meth:`CheckinPipeline.run` is a generator over a
:class:`~desktop.face.camera.CameraSource` for a Qt worker; it always processes the newest
frame. A live view wires it up like this::

    source = CameraSource("0", on_state=state_signal.emit)   # or a video file, looped
    source.start()
    pipeline = CheckinPipeline(engine, gallery.matcher(engine.model_id),
                               checkin_log=GalleryCheckinLog(gallery, engine.model_id))
    worker = Worker(pipeline.run, source, latest_only=True)  # cancel= is injected
    worker.yielded.connect(keep_latest_result)               # FrameResult
    # a QTimer at the camera's rate draws source.latest() with the latest result's boxes;
    # status bar: source.fps, pipeline.stats().fps, describe_device()
    ...
    pipeline.set_matcher(gallery.matcher(engine.model_id))   # after an enrolment
    worker.cancel(); source.close()                          # both return promptly
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from desktop.face.camera import CameraSource, Frame
from desktop.face.finder import FaceFinder
from desktop.face.liveness.landmarks68 import LandmarkModel
from desktop.face.liveness.monitor import LivenessMonitor, LivenessSettings, LivenessStatus
from desktop.face.motion import MotionFollower
from desktop.face.tracking import IoUTracker, Track, Vote
from desktop.face.types import Face, FaceEngineLike
from desktop.tasks import CancelToken

log = logging.getLogger(__name__)

DEFAULT_COOLDOWN_S = 4 * 3600.0


# -- what the pipeline needs from the gallery and the check-in log -------------------------
@dataclass(frozen=True)
class Identity:
    """One matcher answer: ``name`` None means Unknown; ``d`` is the squared L2 distance to
    the named person's best template (to the nearest person when Unknown). ``score`` and
    ``rule`` are the deciding rule's own confidence and name (recorded with check-ins);
    ``probability`` a verifier's P(same person), when the rule gives one."""

    name: str | None
    d: float
    person_id: int | None = None
    probability: float | None = None
    score: float | None = None
    rule: str = ""


class MatcherLike(Protocol):
    """Open-set identification of (N, 128) float32 embeddings, one answer per row. An
    answer is an :class:`Identity` or any object with ``name`` and ``d`` attributes (and
    optionally ``person_id``, ``probability``, ``score``, ``rule``), such as
    :class:`desktop.face.matching.Match`."""

    def identify(self, embeddings: np.ndarray) -> Sequence[Any]: ...


class CheckinLogLike(Protocol):
    """Where check-ins are kept (the store). Times are ``time.time()`` seconds."""

    def last_checkin_time(self, person: str, person_id: int | None) -> float | None:
        """When this person last checked in, or None."""

    def record_checkin(self, event: CheckinEvent, cooldown_s: float) -> bool:
        """Keep one check-in unless the log already has one of this person less than
        ``cooldown_s`` before ``event.time`` (then return False). Raise on failure."""

    # Optional: ``record_withheld(event: WithheldCheckin) -> None`` keeps a check-in that
    # liveness withheld (the pipeline calls it only when the log has it).


class GalleryCheckinLog:
    """:class:`CheckinLogLike` over a :class:`desktop.store.Gallery` (duck-typed, so this
    module does not import the store). The cooldown test and the insert are one
    transaction in the store, so two cameras or processes never record the same visit."""

    def __init__(self, gallery: Any, model_id: str = "", *, record: bool = True) -> None:
        self.gallery = gallery
        self.model_id = model_id
        self.record = record  # False: read the last check-ins, write nothing (dry run)

    def last_checkin_time(self, person: str, person_id: int | None) -> float | None:
        if person_id is None:
            return None
        last = self.gallery.last_checkin(int(person_id))
        return None if last is None else float(last.at)

    def record_checkin(self, event: CheckinEvent, cooldown_s: float) -> bool:
        if event.person_id is None:
            raise ValueError(f"{event.person} has no person id; cannot record a check-in")
        if not self.record:
            last = self.last_checkin_time(event.person, event.person_id)
            return last is None or event.time - last >= cooldown_s
        made = self.gallery.record_checkin_if_due(
            int(event.person_id), float(event.d), cooldown_s=cooldown_s, camera=event.camera,
            rule=event.rule, score=event.score, model_id=self.model_id, at=event.time)
        return made is not None

    def record_withheld(self, event: WithheldCheckin) -> None:
        """Keep a check-in liveness withheld (nothing in a dry run, or when the gallery
        has no place for them)."""
        if not self.record or event.person_id is None:
            return
        record = getattr(self.gallery, "record_withheld", None)
        if record is not None:
            record(int(event.person_id), float(event.d), reason=event.reason_code,
                   detail=event.detail, camera=event.camera, model_id=self.model_id,
                   at=event.time)


# -- settings and results ------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineSettings:
    """How often each stage runs and when a track checks in. Frames count camera frames
    processed; seconds are scene time (media time for video files)."""

    scan_every: int = 15  # frames between whole-frame detections (and at once on cuts)
    refresh_every: int = 5  # frames between re-detections of a track around its box
    roi_face_px: int = 90  # a refresh scales its region so the face is this wide
    roi_grow: float = 1.8  # side of a refresh region, in face widths
    scan_min_face: int | None = None  # smallest face a scan looks for, px (None: engine's)
    small_face_every: int = 4  # with scan_min_face: every k-th periodic scan looks that small
    cut_threshold: float = 20.0  # scene-change score (grey levels) that forces a scan
    iou_threshold: float = 0.3  # least IoU for a detection to continue a track
    max_missed: int = 2  # detection rounds a track survives unmatched
    embed_every: int = 10  # N: frames between identifications of a decided track
    vote_window: int = 5  # M: recent identifications a track votes over
    min_votes: int = 3  # X: agreeing votes before a check-in
    min_seconds: float = 0.4  # Y: ... spread over at least this much scene time
    cooldown_s: float = DEFAULT_COOLDOWN_S  # per person, between two check-ins
    flow_width: int = 320  # working width of the optical flow, pixels
    camera: str = ""  # recorded with each check-in
    liveness: LivenessSettings = field(default_factory=LivenessSettings)  # off by default

    def __post_init__(self) -> None:
        if min(self.scan_every, self.refresh_every, self.embed_every, self.vote_window,
               self.small_face_every) < 1:
            raise ValueError("scan_every, refresh_every, embed_every, vote_window and "
                             "small_face_every must be >= 1")
        if self.min_votes > self.vote_window:
            raise ValueError("min_votes cannot exceed vote_window")


@dataclass(frozen=True)
class FaceResult:
    """One tracked face on a frame. ``d`` (squared L2) is None until first identified, and
    when there is no one enrolled to compare with."""

    box: tuple[int, int, int, int]  # (x, y, w, h) pixels of the frame
    track_id: int
    name: str | None
    d: float | None
    person_id: int | None = None
    votes: int = 0  # votes in the track's window agreeing with ``name``
    probability: float | None = None  # a verifier's P(same person), when one is used
    detected: bool = True  # the box is the detector's on this frame (else moved by flow)
    checked_in: bool = False  # this track has checked its person in
    liveness: LivenessStatus | None = None  # None while liveness is off
    withheld: str | None = None  # the name liveness hid (the face shows as Unknown)

    def to_json(self) -> dict:
        """``{"box", "track", "name", "d"}``; d is null until identified, and when there was
        no one to compare with (an empty gallery), so the line stays valid JSON. With
        liveness on, also ``"liveness"`` (state, verdict, ...) and, when it hid the
        name, ``"withheld"``."""
        d = None if self.d is None or not math.isfinite(self.d) else round(float(self.d), 4)
        out = {"box": [int(v) for v in self.box], "track": self.track_id, "name": self.name,
               "d": d}
        if self.liveness is not None:
            out["liveness"] = self.liveness.to_json()
            if self.withheld is not None:
                out["withheld"] = self.withheld
        return out


@dataclass(frozen=True)
class CheckinEvent:
    """A check-in: ``time`` in ``time.time()`` seconds, ``d`` squared L2 of the match."""

    person: str
    person_id: int | None
    d: float
    time: float
    track_id: int
    frame_index: int
    camera: str = ""
    rule: str = ""  # the decision rule that named the person
    score: float | None = None  # that rule's confidence
    recorded: bool = True  # False when the check-in log could not store it
    error: str | None = None

    def to_json(self) -> dict:
        return {"person": self.person, "person_id": self.person_id,
                "d": round(float(self.d), 4), "time": self.time, "track": self.track_id,
                "frame": self.frame_index, "recorded": self.recorded}


@dataclass(frozen=True)
class WithheldCheckin:
    """A check-in liveness withheld: the face was named ``person`` (d squared L2) but was
    refused (``reason_code`` a key of :data:`desktop.face.liveness.REASONS`, ``reason``
    its words). ``detail`` holds the liveness figures as JSON text."""

    person: str
    person_id: int | None
    d: float
    time: float
    track_id: int
    frame_index: int
    reason_code: str
    reason: str
    camera: str = ""
    detail: str = ""
    recorded: bool = True  # False when the log could not store it

    def to_json(self) -> dict:
        return {"person": self.person, "person_id": self.person_id,
                "d": round(float(self.d), 4), "time": self.time, "track": self.track_id,
                "frame": self.frame_index, "reason": self.reason}


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent on one frame; a stage that did not run is None."""

    track_ms: float
    detect_ms: float | None
    embed_ms: float | None
    match_ms: float | None
    total_ms: float
    embedded: int = 0  # faces embedded on this frame
    scanned: bool = False  # the detector ran over the whole frame
    refreshed: int = 0  # tracks re-detected around their box
    liveness_ms: float | None = None  # the liveness monitor (None while it is off)


@dataclass(frozen=True)
class FrameResult:
    """The pipeline's output for one frame."""

    frame_index: int
    scene_time: float  # seconds (see Frame.scene_time)
    size: tuple[int, int]  # (width, height) of the frame
    faces: tuple[FaceResult, ...]
    events: tuple[CheckinEvent, ...]
    times: StageTimes
    detected: bool  # the detector ran on this frame (a scan or a refresh)
    frame: Frame | None = field(default=None, repr=False, compare=False)
    withheld: tuple[WithheldCheckin, ...] = ()  # check-ins liveness withheld on this frame

    def to_json(self) -> dict:
        """The CLI's JSON line: ``{"frame": i, "faces": [{"box", "track", "name", "d"}]}``
        (and ``"withheld"`` on a frame where liveness withheld a check-in)."""
        out = {"frame": self.frame_index, "faces": [f.to_json() for f in self.faces]}
        if self.withheld:
            out["withheld"] = [w.to_json() for w in self.withheld]
        return out


@dataclass(frozen=True)
class PipelineStats:
    """Rolling figures for a status bar, over about the last 60 frames."""

    frames: int  # processed since start
    fps: float  # frames processed per second of wall time, recently
    capacity_fps: float  # 1000 / mean processing ms: what the pipeline could sustain
    total_ms: float  # mean processing time per frame
    scan_ms: float  # mean per whole-frame detection
    refresh_ms: float  # mean per re-detection of one track around its box
    embed_ms_per_face: float
    match_ms: float  # mean per matcher call
    track_ms: float  # mean per frame (optical flow, tracking, votes)
    scan_share: float  # fraction of frames with a whole-frame detection
    checkins: int
    liveness_ms: float = 0.0  # mean per frame of the liveness monitor (0 while off)

    def describe(self) -> str:
        text = (f"inference {self.fps:.0f} fps (up to {self.capacity_fps:.0f}) · scan "
                f"{self.scan_ms:.0f} ms · refresh {self.refresh_ms:.0f} ms · embed "
                f"{self.embed_ms_per_face:.0f} ms/face · match {self.match_ms:.1f} ms")
        if self.liveness_ms:
            text += f" · liveness {self.liveness_ms:.1f} ms"
        return text


@dataclass(frozen=True)
class TrackSnapshot:
    """The latest identification input of a track: its aligned chip (150, 150, 3) RGB
    uint8, descriptor (128,) float32, the box and frame index it came from. For enrolling
    an unknown face from the live view."""

    track_id: int
    chip: np.ndarray
    descriptor: np.ndarray
    box: tuple[int, int, int, int]
    frame_index: int
    name: str | None
    d: float | None


def as_identity(answer: Any) -> Identity:
    """A matcher answer (:class:`Identity`, or anything with ``name`` and ``d``)."""
    if isinstance(answer, Identity):
        return answer
    score = getattr(answer, "score", None)
    return Identity(
        getattr(answer, "name", None), float(answer.d), getattr(answer, "person_id", None),
        getattr(answer, "probability", None),
        None if score is None or score != score else float(score),
        str(getattr(answer, "rule", "") or ""),
    )


class _Window:
    """Mean of the last ``n`` values."""

    def __init__(self, n: int = 60) -> None:
        self.values: collections.deque[float] = collections.deque(maxlen=n)

    def add(self, value: float) -> None:
        self.values.append(value)

    def mean(self) -> float:
        return float(sum(self.values) / len(self.values)) if self.values else 0.0


class CheckinPipeline:
    """Detect, track, embed, match, vote and check in, one frame at a time.

    Args:
        engine: the face engine (``desktop.face.api.FaceEngine`` or a fake).
        matcher: the gallery's open-set matcher; may be None (every face Unknown, no
            check-ins) until people are enrolled, see :meth:`set_matcher`.
        checkin_log: where check-ins are recorded and the last one per person is read
            (the store); None keeps them in memory only.
        settings: :class:`PipelineSettings`.
        clock: wall clock for check-in times and the cooldown, ``time.time`` by default.
        rule: a short description of the decision rule, recorded with each check-in.
        landmarks: the 68-point landmark model for liveness challenges (loaded in the
            background when first needed); None makes one on demand.

    ``process`` is meant for one thread at a time; ``set_matcher``, ``update_settings``,
    ``stats``, ``latest_result``, ``latest_frame`` and ``track_snapshot`` may be called from
    any thread.
    """

    def __init__(
        self,
        engine: FaceEngineLike,
        matcher: MatcherLike | None = None,
        *,
        checkin_log: CheckinLogLike | None = None,
        settings: PipelineSettings | None = None,
        clock: Callable[[], float] = time.time,
        rule: str = "",
        landmarks: LandmarkModel | None = None,
    ) -> None:
        self.engine = engine
        self._matcher = matcher
        self.checkin_log = checkin_log
        self.settings = settings or PipelineSettings()
        self.clock = clock
        self.rule = rule
        self._lock = threading.Lock()
        self._pending_matcher: tuple[MatcherLike | None, str | None] | None = None
        self._pending_settings: PipelineSettings | None = None
        self._tracker = self._new_tracker()
        self._follower = MotionFollower(work_width=self.settings.flow_width)
        self._finder = FaceFinder(engine)
        self._next_scan = 0
        self._scans_since_small = 0  # 0: the next scan looks for small faces
        self._last_index: int | None = None
        self._last_checkin: dict[object, float | None] = {}
        self._snapshots: dict[int, TrackSnapshot] = {}
        self._latest: FrameResult | None = None
        self._frames = 0
        self._checkins = 0
        self._w_total, self._w_track = _Window(), _Window()
        self._w_scan, self._w_refresh = _Window(), _Window()
        self._w_embed, self._w_match = _Window(), _Window()
        self._w_scanned = _Window()
        self._w_liveness = _Window()
        self._stamps: collections.deque[float] = collections.deque(maxlen=60)
        self._landmarks = landmarks
        self._monitor: LivenessMonitor | None = None
        self._liveness_for: dict[int, object] = {}  # track id -> the person it was judged as
        self._configure_liveness()

    # -- control (any thread) ----------------------------------------------------------
    def set_matcher(self, matcher: MatcherLike | None, rule: str | None = None) -> None:
        """Use another matcher (after an enrolment or a threshold change) from the next
        frame on. Votes cast under the old one are dropped, so every track is identified
        again at the next detection."""
        with self._lock:
            self._pending_matcher = (matcher, rule)

    def update_settings(self, **changes: Any) -> PipelineSettings:
        """Change settings (e.g. ``cooldown_s=3600``) from the next frame on."""
        with self._lock:
            base = self._pending_settings or self.settings
            self._pending_settings = replace(base, **changes)
            return self._pending_settings

    def reset(self) -> None:
        """Forget all tracks (e.g. after switching cameras). Cooldowns are kept."""
        self._tracker.reset()
        self._follower.reset()
        self._snapshots.clear()
        self._reset_liveness()
        self._next_scan = 0
        self._scans_since_small = 0
        self._last_index = None

    def warm_up(self) -> None:
        """Run the engine once on a blank frame and a blank chip, so that lazy loading and
        first-call set-up do not land on the first camera frame."""
        self.engine.detect(np.zeros((120, 160, 3), np.uint8))
        self.engine.embed(np.zeros((1, 150, 150, 3), np.uint8))

    @property
    def liveness(self) -> LivenessMonitor | None:
        """The liveness monitor, or None while liveness is off."""
        return self._monitor

    def latest_result(self) -> FrameResult | None:
        return self._latest

    def latest_frame(self) -> Frame | None:
        """The frame the latest result was computed on (with its image), or None."""
        latest = self._latest
        return None if latest is None else latest.frame

    def track_snapshot(self, track_id: int) -> TrackSnapshot | None:
        """The newest chip and descriptor of a live track (None when it has none)."""
        with self._lock:
            return self._snapshots.get(track_id)

    def stats(self) -> PipelineStats:
        stamps = list(self._stamps)
        fps = ((len(stamps) - 1) / (stamps[-1] - stamps[0])
               if len(stamps) >= 2 and stamps[-1] > stamps[0] else 0.0)
        total = self._w_total.mean()
        return PipelineStats(
            frames=self._frames, fps=fps, capacity_fps=1000.0 / total if total > 0 else 0.0,
            total_ms=total, scan_ms=self._w_scan.mean(), refresh_ms=self._w_refresh.mean(),
            embed_ms_per_face=self._w_embed.mean(), match_ms=self._w_match.mean(),
            track_ms=self._w_track.mean(), scan_share=self._w_scanned.mean(),
            checkins=self._checkins, liveness_ms=self._w_liveness.mean(),
        )

    # -- the loop for a worker thread --------------------------------------------------
    def run(self, source: CameraSource, cancel: CancelToken | None = None,
            poll: float = 0.1, warm_up: bool = True) -> Iterator[FrameResult]:
        """Process the newest frame of ``source`` again and again, yielding each result,
        until the source is terminal (ended, failed, closed) or ``cancel`` is set.

        Loads the models first (``warm_up``), in the calling (worker) thread. Waits for
        frames without busy looping; while the camera is retrying it keeps checking
        ``cancel`` every ``poll`` seconds. Does not start or close the source.
        """
        if warm_up:
            self.warm_up()
        last = -1
        while True:
            if cancel is not None:
                cancel.checkpoint()
            frame = source.next_frame(last, timeout=poll)
            if frame is None:
                if source.state.terminal:
                    return
                continue
            last = frame.index
            yield self.process(frame)

    # -- one frame ---------------------------------------------------------------------
    def process(self, frame: Frame | np.ndarray, index: int | None = None,
                scene_time: float | None = None) -> FrameResult:
        """Run every due stage on one frame (a :class:`Frame`, or an RGB (H, W, 3) uint8
        image with an optional index and scene time in seconds)."""
        if not isinstance(frame, Frame):
            frame = self._wrap(frame, index, scene_time)
        self._apply_pending()
        s = self.settings
        t0 = time.perf_counter()
        idx, now_scene = frame.index, frame.scene_time
        if self._last_index is not None and idx <= self._last_index:
            self.reset()  # a new source, or a file started over: tracks no longer apply
        self._last_index = idx

        change = self._follower.next_frame(frame.image)
        cut = change > s.cut_threshold
        if cut:  # another shot, or the camera moved: old tracks no longer apply
            self._tracker.reset()
            self._reset_liveness()
        tracks = self._tracker.visible()
        if tracks:
            boxes = self._follower.follow(np.array([t.box for t in tracks]))
            for track, box in zip(tracks, boxes, strict=True):
                self._tracker.move(track.id, box)
        t1 = time.perf_counter()

        scan = cut or idx >= self._next_scan
        fresh: list[tuple[Track, Face]] = []
        refreshed = 0
        if scan:
            # Small (far) faces cost most to look for and are not about to check in: only
            # the first scan, scans after a cut and every small_face_every-th look for them.
            small = cut or self._scans_since_small == 0 or (
                self._scans_since_small >= s.small_face_every)
            faces = self._finder.scan(frame.image, s.scan_min_face if small else None)
            self._scans_since_small = 1 if small else self._scans_since_small + 1
            self._next_scan = idx + s.scan_every
            boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
            fresh = list(zip(self._tracker.update(boxes, idx, now_scene), faces, strict=True))
        else:
            for track in list(self._tracker.tracks):
                if track.lost or idx - track.last_frame >= s.refresh_every:
                    refreshed += 1
                    face = self._finder.around(frame.image, track.box, s.roi_face_px,
                                               s.roi_grow)
                    if face is None:
                        if not self._tracker.miss(track):
                            # A face vanished where it was: look at the whole frame soon.
                            self._next_scan = min(self._next_scan, idx + s.refresh_every)
                    else:
                        self._tracker.confirm(track, np.array(face.box, float), idx, now_scene)
                        fresh.append((track, face))
        t2 = time.perf_counter()
        detect_ms = (t2 - t1) * 1000 if scan or refreshed else None
        if scan:
            self._w_scan.add(detect_ms)
        elif refreshed:
            self._w_refresh.add(detect_ms / refreshed)

        embed_ms = match_ms = None
        due = [(t, f) for t, f in fresh if self._tracker.due_for_embedding([t], idx)]
        self._finder.complete(frame.image, [f for _, f in due])
        due = [(t, f) for t, f in due if f.chip is not None]
        if due:
            embed_ms, match_ms = self._identify(due, frame)
        t3 = time.perf_counter()
        liveness_ms = None
        if self._monitor is not None:
            self._observe_liveness(frame)
            liveness_ms = (time.perf_counter() - t3) * 1000
            self._w_liveness.add(liveness_ms)
        t3l = time.perf_counter()

        events, withheld = self._decide(idx, now_scene)
        detected_ids = {t.id for t, _ in fresh}
        faces_out = tuple(self._face_result(t, t.id in detected_ids)
                          for t in self._tracker.visible())
        self._forget_dead_tracks()
        t4 = time.perf_counter()
        times = StageTimes(track_ms=(t1 - t0 + t4 - t3l) * 1000, detect_ms=detect_ms,
                           embed_ms=embed_ms, match_ms=match_ms, total_ms=(t4 - t0) * 1000,
                           embedded=len(due), scanned=scan, refreshed=refreshed,
                           liveness_ms=liveness_ms)
        result = FrameResult(idx, now_scene, frame.size, faces_out, tuple(events), times,
                             scan or bool(refreshed), frame, tuple(withheld))
        self._account(result)
        self._latest = result
        return result

    # -- stages --------------------------------------------------------------------------
    def _identify(self, due: list[tuple[Track, Face]], frame: Frame) -> tuple[float, float]:
        """Embed the due tracks' chips in one batch and vote with the matcher's answers.
        Returns (embed ms, match ms)."""
        t0 = time.perf_counter()
        chips = np.stack([f.chip for _, f in due])
        descriptors = np.asarray(self.engine.embed(chips), dtype=np.float32)
        t1 = time.perf_counter()
        matcher = self._matcher
        if matcher is None:
            answers = [Identity(None, float("inf")) for _ in due]
        else:
            answers = [as_identity(a) for a in matcher.identify(descriptors)]
        t2 = time.perf_counter()
        with self._lock:
            for (track, face), desc, who in zip(due, descriptors, answers, strict=True):
                track.add_vote(Vote(who.name, who.d, frame.index, frame.scene_time,
                                    who.person_id, who.probability, who.score, who.rule))
                track.last_embedded = frame.index
                self._snapshots[track.id] = TrackSnapshot(
                    track.id, face.chip, desc, tuple(int(v) for v in face.box), frame.index,
                    who.name, who.d)
        embed_ms = (t1 - t0) * 1000
        self._w_embed.add(embed_ms / len(due))
        self._w_match.add((t2 - t1) * 1000)
        return embed_ms, (t2 - t1) * 1000

    def _decide(self, index: int, scene_time: float
                ) -> tuple[list[CheckinEvent], list[WithheldCheckin]]:
        """Check in every visible track confidently named for long enough (module doc);
        with liveness on, only live ones, and withhold (once) for refused ones."""
        s = self.settings
        events: list[CheckinEvent] = []
        withheld: list[WithheldCheckin] = []
        for track in self._tracker.visible():
            label = track.label
            if label.name is None or label.d is None or label.since is None:
                continue
            key = label.person_id if label.person_id is not None else label.name
            if key in track.checked_in:
                continue
            if label.support < s.min_votes or scene_time - label.since < s.min_seconds:
                continue
            if self._monitor is not None:
                status = self._monitor.status(track.id)
                if not status.passed:
                    if status.refused and key not in track.withheld:
                        track.withheld.add(key)
                        withheld.append(self._withhold(track, label, status, index))
                    continue
            track.checked_in.add(key)
            now = self.clock()
            last = self._last_checkin_time(key, label.name, label.person_id)
            if last is not None and now - last < s.cooldown_s:
                log.debug("%s seen again %.0f s after checking in; cooldown %.0f s",
                          label.name, now - last, s.cooldown_s)
                continue
            event = CheckinEvent(label.name, label.person_id, float(label.d), now, track.id,
                                 index, s.camera, label.rule or self.rule, label.score)
            if self.checkin_log is not None:
                try:
                    if not self.checkin_log.record_checkin(event, s.cooldown_s):
                        # The log already has a recent one (another camera, a restart).
                        self._last_checkin[key] = now
                        continue
                except Exception as exc:  # a full disk must not stop the live view
                    log.exception("could not record the check-in of %s", label.name)
                    event = replace(event, recorded=False, error=str(exc))
            self._last_checkin[key] = now
            self._checkins += 1
            events.append(event)
        return events, withheld

    def _withhold(self, track: Track, label: Any, status: LivenessStatus,
                  index: int) -> WithheldCheckin:
        """The record of a check-in liveness refused, kept in the log when it can."""
        import json

        detail = json.dumps({"liveness": status.to_json(), "scores": status.scores},
                            sort_keys=True, default=str)
        event = WithheldCheckin(label.name, label.person_id, float(label.d), self.clock(),
                                track.id, index, status.reason_code or "", status.reason or "",
                                self.settings.camera, detail)
        record = getattr(self.checkin_log, "record_withheld", None)
        if record is not None:
            try:
                record(event)
            except Exception as exc:  # the live view goes on
                log.exception("could not record the withheld check-in of %s", label.name)
                event = replace(event, recorded=False, detail=f"{detail} ({exc})")
        log.info("check-in of %s withheld: %s", label.name, event.reason)
        return event

    def _last_checkin_time(self, key: object, name: str, person_id: int | None) -> float | None:
        if key not in self._last_checkin:
            last = None
            if self.checkin_log is not None:
                try:
                    last = self.checkin_log.last_checkin_time(name, person_id)
                except Exception:
                    log.exception("could not read the last check-in of %s", name)
            self._last_checkin[key] = last
        return self._last_checkin[key]

    # -- helpers ---------------------------------------------------------------------------
    def _face_result(self, track: Track, detected: bool) -> FaceResult:
        label = track.label
        key = label.person_id if label.person_id is not None else label.name
        d = label.d if label.d is not None and math.isfinite(label.d) else None
        if self._monitor is None:
            return FaceResult(track.box_int, track.id, label.name, d, label.person_id,
                              label.support, label.probability, detected,
                              key in track.checked_in)
        status = self._monitor.status(track.id)
        if status.refused and label.name is not None:  # shown as Unknown, with the reason
            return FaceResult(track.box_int, track.id, None, d, None, label.support,
                              label.probability, detected, False, status, label.name)
        return FaceResult(track.box_int, track.id, label.name, d, label.person_id,
                          label.support, label.probability, detected,
                          key in track.checked_in, status)

    # -- liveness ------------------------------------------------------------------------
    def _configure_liveness(self) -> None:
        """Make, reconfigure or drop the monitor to match ``settings.liveness``."""
        wanted = self.settings.liveness
        if not wanted.enabled:
            self._monitor = None
            self._liveness_for.clear()
        elif self._monitor is None:
            if self._landmarks is None:
                self._landmarks = LandmarkModel()
            self._monitor = LivenessMonitor(wanted, self._landmarks)
        else:
            self._monitor.configure(wanted)

    def _reset_liveness(self) -> None:
        if self._monitor is not None:
            self._monitor.reset()
        self._liveness_for.clear()

    def _observe_liveness(self, frame: Frame) -> None:
        """Feed the monitor this frame's visible tracks; a track now named as another
        person than the one it was judged as is judged again."""
        monitor = self._monitor
        assert monitor is not None
        alive = {t.id for t in self._tracker.tracks}
        monitor.forget(alive)
        for tid in [t for t in self._liveness_for if t not in alive]:
            del self._liveness_for[tid]
        visible = self._tracker.visible()
        for track in visible:
            label = track.label
            if label.name is None:
                continue
            key = label.person_id if label.person_id is not None else label.name
            bound = self._liveness_for.setdefault(track.id, key)
            if bound != key:
                monitor.restart(track.id)
                self._liveness_for[track.id] = key
        grey = self._follower.grey  # the frame in grey, made by the motion stage
        image = grey if grey is not None and grey.shape == frame.image.shape[:2] else frame.image
        monitor.observe(image, frame.index, frame.scene_time, [(t.id, t.box) for t in visible],
                        challengeable=[t.id for t in visible if t.label.name is not None])

    def _forget_dead_tracks(self) -> None:
        alive = {t.id for t in self._tracker.tracks}
        with self._lock:
            for tid in [tid for tid in self._snapshots if tid not in alive]:
                del self._snapshots[tid]

    def _new_tracker(self) -> IoUTracker:
        s = self.settings
        return IoUTracker(iou_threshold=s.iou_threshold, max_missed=s.max_missed,
                          vote_window=s.vote_window, embed_every=s.embed_every,
                          embed_every_pending=1, decided_votes=s.min_votes)

    def _apply_pending(self) -> None:
        with self._lock:
            pending_matcher, self._pending_matcher = self._pending_matcher, None
            pending_settings, self._pending_settings = self._pending_settings, None
        if pending_settings is not None:
            old, self.settings = self.settings, pending_settings
            t = self._tracker
            t.iou_threshold = pending_settings.iou_threshold
            t.max_missed = pending_settings.max_missed
            t.embed_every = pending_settings.embed_every
            t.decided_votes = pending_settings.min_votes
            if pending_settings.vote_window != old.vote_window:
                t.vote_window = pending_settings.vote_window
                for track in t.tracks:
                    track.vote_window = pending_settings.vote_window
                    track.votes = collections.deque(track.votes,
                                                    maxlen=pending_settings.vote_window)
            if pending_settings.flow_width != old.flow_width:
                self._follower = MotionFollower(work_width=pending_settings.flow_width)
                self._next_scan = 0
            if pending_settings.liveness != old.liveness:
                self._configure_liveness()
        if pending_matcher is not None:
            self._matcher, rule = pending_matcher
            if rule is not None:
                self.rule = rule
            for track in self._tracker.tracks:
                track.clear_votes()
            self._next_scan = 0  # identify everyone again now

    def _wrap(self, image: np.ndarray, index: int | None, scene_time: float | None) -> Frame:
        if index is None:
            index = 0 if self._last_index is None else self._last_index + 1
        now = time.monotonic()
        return Frame(np.asarray(image), int(index), now, time.time(),
                     scene_time if scene_time is not None else None)

    def _account(self, result: FrameResult) -> None:
        self._frames += 1
        self._stamps.append(time.monotonic())
        self._w_total.add(result.times.total_ms)
        self._w_track.add(result.times.track_ms)
        self._w_scanned.add(1.0 if result.times.scanned else 0.0)


@dataclass
class RunSummary:
    """Counts over a run, for the CLI's summary line and the benchmark."""

    frames: int = 0
    faces: int = 0
    unknown: int = 0  # faces shown as Unknown (identified, no name)
    per_name: dict[str, int] = field(default_factory=dict)  # frames showing each name
    checkins: list[CheckinEvent] = field(default_factory=list)
    withheld: list[WithheldCheckin] = field(default_factory=list)  # by liveness
    scans: int = 0  # frames with a whole-frame detection
    refreshes: int = 0  # re-detections of one track around its box
    embedded: int = 0  # faces embedded

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.faces += len(result.faces)
        self.scans += int(result.times.scanned)
        self.refreshes += result.times.refreshed
        self.embedded += result.times.embedded
        for name in {f.name for f in result.faces if f.name is not None}:
            self.per_name[name] = self.per_name.get(name, 0) + 1
        self.unknown += sum(1 for f in result.faces if f.name is None and f.d is not None)
        self.checkins.extend(result.events)
        self.withheld.extend(result.withheld)

    def to_json(self, fps: float) -> dict:
        return {"summary": True, "frames": self.frames, "faces": self.faces,
                "per_name": dict(sorted(self.per_name.items())), "checkins": len(self.checkins),
                "fps": round(float(fps), 2), "unknown": self.unknown,
                "scans": self.scans, "refreshes": self.refreshes,
                "faces_embedded": self.embedded,
                "checked_in": [e.person for e in self.checkins]}
