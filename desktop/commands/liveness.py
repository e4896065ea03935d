"""``facestyle liveness SOURCE``: judge every face track of a video file, camera or stream
for liveness (:mod:`desktop.face.liveness`), without a gallery and without checking anyone
in.

Prints one line per face track when the source ends (or at Ctrl-C / ``--max-frames``)::

    track 3: live (moves_in_3d) after 21 frames (0.70 s), frames 82-210 (129 seen)

and, with ``--jsonl OUT`` (``-`` for stdout), one JSON object per track::

    {"track": 3, "verdict": "live", "state": "live", "how": "moves_in_3d",
     "first_frame": 82, "last_frame": 210, "frames": 129, "decided_frames": 21,
     "decided_at_frame": 102, "scores": {"windows": ..., "votes": {...}, "last": {...}}}

``verdict`` is live, spoof or undecided; ``frames`` the frames the track was seen on,
``decided_frames`` how many of them it took to decide, ``scores`` the passive votes and
the last judged window's figures (and the challenge's, in challenge mode).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from desktop.errors import FacestyleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "liveness",
        help="judge each face in a video, camera or stream: live, photo/screen, undecided",
        description="Run the check-in's liveness checks on every face track of SOURCE (no "
        "gallery, nothing recorded) and print, per track, the verdict (live / spoof / "
        "undecided), the scores and the frames used.",
    )
    p.add_argument("source", metavar="SOURCE",
                   help="video file, camera index (0, 1, ...) or stream URL")
    p.add_argument("--jsonl", metavar="OUT",
                   help="write one JSON line per track here ('-' for stdout)")
    p.add_argument("--mode", choices=("passive", "challenge"), default="challenge",
                   help="'passive': motion of the face over time only; 'challenge' (default): "
                        "also read blinks and head turns with 68 landmarks when undecided")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--min-face", type=int, metavar="PX", default=None,
                   help="smallest face to look for, in pixels of the frame (default 80)")
    p.set_defaults(func=run)


@dataclass
class TrackVerdict:
    """What one face track showed over the run."""

    track: int
    first_frame: int
    last_frame: int = 0
    frames: int = 0
    status: Any = None  # the latest LivenessStatus
    decided_at_frame: int | None = None
    names: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        status = self.status
        out: dict[str, Any] = {"track": self.track, "verdict": "undecided",
                               "state": "checking", "first_frame": self.first_frame,
                               "last_frame": self.last_frame, "frames": self.frames}
        if status is not None:
            live = status.to_json()
            out.update({k: live[k] for k in ("verdict", "state", "how", "reason",
                                             "decided_frames") if k in live})
            if self.decided_at_frame is not None:
                out["decided_at_frame"] = self.decided_at_frame
            out["scores"] = status.scores
        return out

    def describe(self, fps: float | None) -> str:
        info = self.to_json()
        why = info.get("how") or info.get("reason")
        text = f"track {self.track}: {info['verdict']}" + (f" ({why})" if why else "")
        decided = info.get("decided_frames")
        if decided is not None:
            text += f" after {decided} frames"
            if fps:
                text += f" ({decided / fps:.2f} s)"
        return (text + f", frames {self.first_frame}-{self.last_frame} "
                f"({self.frames} seen)")


def judge(source: Any, pipeline: Any, *, max_frames: int | None = None
          ) -> tuple[dict[int, TrackVerdict], int, str]:
    """Run ``pipeline`` (liveness on) over ``source``; returns the verdict per track id,
    the frames read and why it stopped ("end", "max-frames", "interrupt" or the source's
    final state)."""
    from desktop.face.camera import CameraSource, is_video_file, parse_source

    spec = parse_source(source)
    camera = CameraSource(spec, pace=False, drop_frames=not is_video_file(spec))
    tracks: dict[int, TrackVerdict] = {}
    frames = 0
    stopped_by = "end"
    camera.start()
    try:
        for frame in camera.frames():
            result = pipeline.process(frame)
            frames += 1
            for face in result.faces:
                t = tracks.setdefault(face.track_id, TrackVerdict(face.track_id, frame.index))
                t.last_frame = frame.index
                t.frames += 1
                t.status = face.liveness
                if (face.liveness is not None and face.liveness.verdict != "undecided"
                        and t.decided_at_frame is None):
                    t.decided_at_frame = frame.index
            if max_frames is not None and frames >= max_frames:
                stopped_by = "max-frames"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        camera.close()
    if stopped_by == "end" and camera.state.status != "ended":
        stopped_by = camera.state.status
        if not frames:
            raise FacestyleError(f"No frame could be read: {camera.state.message}.",
                                 "Check the path, or the camera index with 'facestyle doctor'.")
    return tracks, frames, stopped_by


def _video_fps(source: Any) -> float | None:
    import cv2

    from desktop.face.camera import is_video_file, parse_source

    spec = parse_source(source)
    if not is_video_file(spec):
        return None
    capture = cv2.VideoCapture(str(spec))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
    return fps if fps > 0 else None


def run(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise FacestyleError("--max-frames must be at least 1.")
    if args.min_face is not None and not 20 <= args.min_face <= 1000:
        raise FacestyleError("--min-face must be between 20 and 1000 pixels.")
    from desktop.commands.gallery import load_engine
    from desktop.commands.recognize_video import open_jsonl
    from desktop.face.liveness import LandmarkModel, LivenessSettings
    from desktop.face.pipeline import CheckinPipeline, PipelineSettings

    out = open_jsonl(args.jsonl)
    try:
        engine = load_engine()
        landmarks = LandmarkModel()
        if args.mode == "challenge":  # a file runs faster than any person: wait for it
            landmarks.wait()
        changes: dict[str, Any] = {"liveness": LivenessSettings.of(args.mode)}
        if args.min_face is not None:
            changes["scan_min_face"] = args.min_face
        pipeline = CheckinPipeline(engine, None, settings=PipelineSettings(**changes),
                                   landmarks=landmarks)
        pipeline.warm_up()
        tracks, frames, stopped_by = judge(args.source, pipeline, max_frames=args.max_frames)
        fps = _video_fps(args.source)
        for t in sorted(tracks.values(), key=lambda t: t.track):
            if out is not None:
                out.write(json.dumps(t.to_json()) + "\n")
            if out is not sys.stdout:
                print(t.describe(fps))
        counts = {v: sum(1 for t in tracks.values() if t.to_json()["verdict"] == v)
                  for v in ("live", "spoof", "undecided")}
        if out is not sys.stdout:
            plural = "s" if len(tracks) != 1 else ""
            print(f"{frames} frames, {len(tracks)} face track{plural}: {counts['live']} live, "
                  f"{counts['spoof']} spoof, {counts['undecided']} undecided ({args.mode})")
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
    return 130 if stopped_by == "interrupt" else 0
