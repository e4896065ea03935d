"""``facestyle stylize-video INPUT STYLE [STYLE...] -o OUT.mp4``: a clip painted frame by
frame with temporal consistency (Ruder et al. 2016; see :mod:`desktop.style.video`).

INPUT is a video file, or a camera index / stream URL: then ``--record`` seconds are
recorded first (into the work folder, ``recording.mp4``) and painted. Takes the options of
``facestyle stylize`` (``--iterations`` counts per frame) plus the temporal weight, the
first frame's iterations, the long-term frames, the flow method and the slice. Shows a
progress bar over frames with the ETA; every finished frame is kept in the work folder
(``OUT.frames/`` unless ``--work``), so a run stopped with Ctrl-C resumes at the next frame
when the same command is given again. With ``--report`` writes

    {"settings": {...}, "clip": {...}, "frames": [{"position": p, "index": i,
     "losses": {...}, "iterations": n, "seconds": s, "reliable": r, "shot_start": b}, ...]}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from desktop.commands.stylize import _NO_DEFAULT, add_setting_options, settings_from_args
from desktop.errors import FacestyleError


def _video_defaults() -> Any:
    from desktop.style.video import VideoSettings

    return VideoSettings()


def _frames_back(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected frame counts like 1,2,4: {text}") from exc
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("give frames back as positive numbers, e.g. 1,2,4")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    v = _video_defaults()
    p = sub.add_parser(
        "stylize-video", help="paint a video clip in the style of STYLE, with temporal "
        "consistency",
        description="Video style transfer (Ruder, Dosovitskiy and Brox 2016): each frame "
        "minimises J = alpha J_content + beta sum_l lambda_l J_style^[l] + gamma sum c "
        "(G - warp(G_prev))^2 / D, starting from the previous result warped by the optical "
        "flow; c masks out pixels the flow cannot follow. Stopped runs resume at the next "
        "frame.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", metavar="INPUT",
                   help="video file, or a camera index (0, 1, ...) or stream URL to record "
                   "from first (see --record)")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s) (paintings)")
    p.add_argument("-o", "--output", required=True,
                   help="the stylised video (.mp4, .mov, .m4v or .avi)" + _NO_DEFAULT)
    add_setting_options(p, v.style, iterations_help="iterations of each frame after a "
                        "shot's first", multiscale_help="coarse to fine for the first frame "
                        "of each shot (later frames start from the warped previous result "
                        "and are painted at full size)")
    p.add_argument("--first-iterations", type=int, default=v.first_iterations,
                   help="iterations of the first frame of the clip and of each new shot "
                   "(it starts from the content, not from the previous result)")
    p.add_argument("--temporal-weight", "--gamma", type=float, default=v.temporal_weight,
                   dest="temporal_weight",
                   help="gamma, the weight of the temporal term (0: none)")
    p.add_argument("--long-term", type=_frames_back, default=v.long_term, metavar="J1,J2,...",
                   help="earlier frames the temporal term ties each frame to (1: the "
                   "previous only; e.g. 1,2,4 for Ruder et al.'s long-term loss)")
    p.add_argument("--no-warm-start", action="store_true",
                   help="start every frame from --init instead of the warped previous "
                   "result" + _NO_DEFAULT)
    p.add_argument("--flow", choices=("dis", "farneback"), default=v.flow,
                   help="OpenCV optical flow method")
    p.add_argument("--start-frame", type=int, default=0, help="first frame to paint (0-based)")
    p.add_argument("--frames", type=int, default=0,
                   help="how many frames to paint (0: to the end)")
    p.add_argument("--record", type=float, default=5.0, metavar="SECONDS",
                   help="with a camera as INPUT: seconds to record before painting")
    p.add_argument("--work", metavar="DIR",
                   help="where finished frames are kept (default: OUT.frames beside the "
                   "output)" + _NO_DEFAULT)
    p.add_argument("--restart", action="store_true",
                   help="discard frames the work folder holds and start again" + _NO_DEFAULT)
    p.add_argument("--report", metavar="REPORT.json",
                   help="write per-frame losses, times and flow reliability" + _NO_DEFAULT)
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar" + _NO_DEFAULT)
    p.set_defaults(func=run)


def video_settings_from_args(args: argparse.Namespace) -> Any:
    from desktop.style.video import VideoSettings

    return VideoSettings(
        style=settings_from_args(args), first_iterations=args.first_iterations,
        temporal_weight=args.temporal_weight, warm_start=not args.no_warm_start,
        long_term=list(args.long_term), flow=args.flow, start_frame=args.start_frame,
        max_frames=args.frames)


def _clip_path(args: argparse.Namespace, work: Path) -> Path:
    """The clip to paint: INPUT itself, or a recording of the camera it names."""
    from desktop.face.camera import describe_source, is_video_file, parse_source
    from desktop.style import video_io

    source = parse_source(args.input)
    if is_video_file(source):
        return Path(str(source))
    work.mkdir(parents=True, exist_ok=True)
    target = work / "recording.mp4"
    print(f"facestyle: recording {args.record:g} s from {describe_source(source)}…",
          file=sys.stderr)
    info = video_io.record_clip(source, args.record, target)
    print(f"facestyle: recorded {info.frames} frames ({info.width}x{info.height}, "
          f"{info.fps:.1f} fps) to {target}; to paint it again or resume, give that file "
          "as INPUT", file=sys.stderr)
    return target


def run(args: argparse.Namespace) -> int:
    from desktop.commands.progress import ProgressBar, format_seconds
    from desktop.imageio import load_rgb
    from desktop.style import video_io
    from desktop.style.video import default_work_folder, stylize_video, write_result

    if args.threads < 0:
        raise FacestyleError("--threads must be 0 (all cores) or more.")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    output = Path(args.output)
    video_io.codec_for(output)
    if not output.parent.is_dir():
        raise FacestyleError(f"The folder {output.parent} does not exist.",
                             "Create it, or choose another output path.")
    settings = video_settings_from_args(args)
    settings.check()
    styles = [load_rgb(path) for path in args.styles]
    work = Path(args.work) if args.work else default_work_folder(output)
    clip = _clip_path(args, work)
    info = video_io.probe(clip)

    bar: ProgressBar | None = None
    finished: list[Any] = []
    notices_shown = False
    started = time.perf_counter()
    interrupted = False
    try:
        for step in stylize_video(clip, styles, settings, work, restart=args.restart):
            if not notices_shown:
                notices_shown = True
                for notice in step.notices:
                    print(f"facestyle: {notice}", file=sys.stderr)
                if not args.quiet:
                    bar = ProgressBar(step.frames, label="stylize-video", unit="frames")
            if step.finished is not None:
                finished.append(step.finished)
                if step.finished.resumed and len(finished) == 1:
                    print("facestyle: resuming: frames already painted in "
                          f"{work} are kept", file=sys.stderr)
            if bar is not None:
                done = len(finished)
                note = f"frame {step.position + 1}/{step.frames}"
                if step.report is not None:
                    note += f" it {step.report.iteration}/{step.frame_iterations}"
                if step.eta_seconds is not None:
                    note += f" ETA {format_seconds(step.eta_seconds)}"
                bar.update(done, note)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if interrupted:
        print(f"facestyle: stopped after {len(finished)} frames; they are kept in {work}. "
              "Run the same command again to resume at the next frame.", file=sys.stderr)
        return 130
    if not finished:
        raise FacestyleError("No frame was painted, so there is no video to write.")
    indices = [f.index for f in finished]
    count, width, height = write_result(work, output, info.fps, indices)
    painted = [f for f in finished if not f.resumed]
    if args.report:
        doc = {"settings": settings.to_dict(), "clip": {
            "path": str(clip), "width": info.width, "height": info.height, "fps": info.fps,
            "frames": info.frames}, "frames": [f.row() for f in finished]}
        try:
            Path(args.report).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise FacestyleError(f"Cannot write the report {args.report}: "
                                 f"{exc.strerror or exc}") from exc
    per_frame = (sum(f.seconds for f in painted) / len(painted)) if painted else 0.0
    print(f"wrote {output}: {count} frames, {width}x{height}, {info.fps:.2f} fps "
          f"({len(painted)} painted now, {per_frame:.1f} s per frame, "
          f"{format_seconds(time.perf_counter() - started)} in all); frames kept in {work}")
    return 0
