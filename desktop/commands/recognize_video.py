"""``facestyle recognize-video SOURCE``: the live check-in pipeline, headless, as fast as it
can (source -> detect -> track -> embed what is due -> match -> vote -> cooldown).

Writes one JSON line per processed frame to ``--jsonl`` (``-`` for stdout)::

    {"frame": i, "faces": [{"box": [x, y, w, h], "track": id, "name": str or null, "d": float}]}

and ends with a summary line, in that file and on stdout::

    {"summary": true, "frames": N, "faces": M, "per_name": {...}, "checkins": K, "fps": F}

``per_name`` counts the frames showing each name; F is end-to-end frames per second, from
the start of decoding to the last line written (model loading excluded).

``--liveness passive|challenge`` applies the check-in rule of the app's liveness setting
(:mod:`desktop.face.liveness`): only a face judged live checks in; a refused one is
recorded as withheld (the frame line gets ``"withheld"``, each face a ``"liveness"`` object,
and the summary ``"liveness"`` and ``"withheld"``). The default, ``off``, is the pipeline
without liveness, exactly as before it existed. A video file is
read completely, frame by frame; a camera (``0``) or a stream runs until Ctrl-C or
``--max-frames``, always on its newest frame. Check-ins are recorded in the gallery's log
(``--dry-run``: not), with the same cooldown as the app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from desktop.errors import FacestyleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recognize-video",
        help="run the live check-in pipeline on a video file, camera or stream",
        description="Run the live check-in pipeline (detect, track, embed what is due, "
        "match, vote, cooldown) as fast as it can. One JSON line per frame goes to --jsonl; "
        "a summary line ends that file and is printed. Check-ins are recorded in the "
        "gallery's log unless --dry-run.",
    )
    p.add_argument("source", metavar="SOURCE",
                   help="video file, camera index (0, 1, ...) or stream URL")
    from desktop.commands.gallery import add_database_option

    add_database_option(p)
    p.add_argument("--jsonl", metavar="OUT",
                   help="write one JSON line per frame here ('-' for stdout)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--dry-run", action="store_true",
                   help="do not record check-ins in the gallery's log")
    p.add_argument("--cooldown", type=float, metavar="HOURS", default=4.0,
                   help="hours before the same person can check in again (default 4)")
    p.add_argument("--scan-every", type=int, metavar="K", default=None,
                   help="look for new faces in the whole frame every K frames (default 15); "
                        "known faces are re-detected around their box every 5 frames and "
                        "followed by optical flow in between")
    p.add_argument("--liveness", choices=("off", "passive", "challenge"), default="off",
                   help="only faces judged live check in: 'passive' (motion of the face "
                        "over time) or 'challenge' (passive, then a blink or head turn when "
                        "undecided); default off")
    p.add_argument("--min-face", type=int, metavar="PX", default=None,
                   help="smallest face to look for, in pixels of the frame (default: the "
                        "detector's, 80); smaller costs more")
    p.set_defaults(func=run)


@dataclass
class VideoRun:
    """What :func:`recognize` measured."""

    summary: dict[str, Any]
    elapsed_s: float
    stopped_by: str  # "end", "max-frames", "interrupt", or the source's final state


def recognize(
    source: Any,
    pipeline: Any,
    *,
    jsonl: IO[str] | None = None,
    max_frames: int | None = None,
    on_state: Callable[[Any], None] | None = None,
) -> VideoRun:
    """Run ``pipeline`` (a :class:`~desktop.face.pipeline.CheckinPipeline`) over ``source``
    (a path, camera index or URL) as fast as possible; write frame lines to ``jsonl``.

    A video file is read losslessly (every frame, decoded one frame ahead in the camera
    thread, overlapping inference); a camera keeps only its newest frame. Returns the
    summary (also written as the last line of ``jsonl``) with end-to-end ``fps``.
    """
    from desktop.face.camera import CameraSource, is_video_file, parse_source
    from desktop.face.pipeline import RunSummary

    spec = parse_source(source)
    is_file = is_video_file(spec)
    camera = CameraSource(spec, pace=False, drop_frames=not is_file, on_state=on_state)
    summary = RunSummary()
    stopped_by = "end"
    start = time.perf_counter()
    camera.start()
    try:
        for frame in camera.frames():
            result = pipeline.process(frame)
            summary.add(result)
            if jsonl is not None:
                jsonl.write(json.dumps(result.to_json()) + "\n")
            if max_frames is not None and summary.frames >= max_frames:
                stopped_by = "max-frames"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        if jsonl is not None:
            jsonl.flush()
        elapsed = time.perf_counter() - start
        camera.close()
    if stopped_by == "end" and camera.state.status != "ended":
        stopped_by = camera.state.status
        if not summary.frames:
            raise FacestyleError(
                f"No frame could be read: {camera.state.message}.",
                "Check the path, or the camera index with 'facestyle doctor'.",
            )
    out = summary.to_json(summary.frames / elapsed if elapsed > 0 else 0.0)
    out["source"] = str(source)
    out["stopped_by"] = stopped_by
    if getattr(pipeline, "liveness", None) is not None:
        out["liveness"] = pipeline.settings.liveness.mode
        out["withheld"] = len(summary.withheld)
    if jsonl is not None:
        jsonl.write(json.dumps(out) + "\n")
        jsonl.flush()
    return VideoRun(out, elapsed, stopped_by)


def build_pipeline(args: argparse.Namespace) -> tuple[Any, Callable[[], None]]:
    """The engine, gallery matcher and check-in log for ``args``; returns the pipeline
    and a function that closes what was opened."""
    from desktop.commands.gallery import load_engine, open_db
    from desktop.face.liveness import LandmarkModel, LivenessSettings
    from desktop.face.pipeline import CheckinPipeline, GalleryCheckinLog, PipelineSettings

    gallery = open_db(args.db, create=False, live=True)
    if gallery is None and args.db is not None:
        raise FacestyleError(f"There is no gallery at {args.db}.",
                             "Enrol people first: facestyle gallery enroll NAME IMAGE...")
    try:
        engine = load_engine()
        matcher = log = None
        if gallery is None:
            print("facestyle: no one is enrolled yet; every face will be Unknown.",
                  file=sys.stderr)
        else:
            stale = gallery.count_stale(engine.model_id)
            if stale:
                print(f"facestyle: {stale} template(s) were made by another encoder and are "
                      "left out; run 'facestyle gallery reembed'.", file=sys.stderr)
            matcher = gallery.matcher(engine.model_id)
            log = GalleryCheckinLog(gallery, engine.model_id, record=not args.dry_run)
        changes: dict[str, Any] = {"cooldown_s": float(args.cooldown) * 3600.0,
                                   "camera": f"recognize-video {args.source}"}
        if args.scan_every is not None:
            changes["scan_every"] = args.scan_every
        if args.min_face is not None:
            changes["scan_min_face"] = args.min_face
        liveness = getattr(args, "liveness", "off")
        changes["liveness"] = LivenessSettings.of(liveness)
        landmarks = None
        if liveness == "challenge":  # a file runs faster than any person: wait for it
            landmarks = LandmarkModel()
            landmarks.wait()
        pipeline = CheckinPipeline(engine, matcher, checkin_log=log,
                                   settings=PipelineSettings(**changes), landmarks=landmarks)
        follow_shared_gallery(gallery, pipeline, engine.model_id)
        pipeline.warm_up()  # model set-up is not part of the measured frames/s
    except BaseException:
        if gallery is not None:
            gallery.close()
        raise

    def close() -> None:
        if gallery is not None:
            gallery.close()

    return pipeline, close


def follow_shared_gallery(gallery: Any, pipeline: Any, model_id: str) -> None:
    """With a shared gallery, rebuild the matcher whenever another desk enrols, renames or
    deletes someone (the listener has already copied the change locally), and say when
    the server goes away or comes back (check-ins are queued meanwhile)."""
    if not hasattr(gallery, "add_change_listener"):
        return

    def changed(kind: str) -> None:
        if kind == "people":
            pipeline.set_matcher(gallery.matcher(model_id))
        elif kind in ("online", "offline"):
            print(f"facestyle: {gallery.sync_status().describe()}", file=sys.stderr)

    gallery.add_change_listener(changed)


def open_jsonl(path: str | None) -> IO[str] | None:
    """Where ``--jsonl PATH`` writes: None when not given, stdout for ``-``, else the file
    opened for writing (the caller closes it)."""
    if path == "-":
        return sys.stdout
    if not path:
        return None
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise FacestyleError(f"Cannot write {path}: {exc.strerror}.") from exc


def run(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise FacestyleError("--max-frames must be at least 1.")
    if args.scan_every is not None and args.scan_every < 1:
        raise FacestyleError("--scan-every must be at least 1.")
    if args.min_face is not None and not 20 <= args.min_face <= 1000:
        raise FacestyleError("--min-face must be between 20 and 1000 pixels.")
    if args.cooldown < 0:
        raise FacestyleError("--cooldown cannot be negative.")
    pipeline, close = build_pipeline(args)
    out: IO[str] | None = None
    try:
        out = open_jsonl(args.jsonl)

        def report(state: Any) -> None:
            if state.status not in ("running", "ended"):
                print(f"facestyle: {state.message}", file=sys.stderr)

        result = recognize(args.source, pipeline, jsonl=out, max_frames=args.max_frames,
                           on_state=report)
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        close()
    if out is not sys.stdout:
        print(json.dumps(result.summary))
    return 130 if result.stopped_by == "interrupt" else 0
