"""How responsive is the UI thread while the Check-in tab recognises faces?

    PYTHONPATH=. python bench/checkin_ui_heartbeat.py [--video CLIP] [--seconds 8]

Runs the Check-in tab offscreen on a video file (default: faces-dev's
``short_hamilton_clip.mp4``, looped) with the real face engine and two people enrolled
one-shot, and measures a 10 ms QTimer heartbeat on the UI thread: the gaps between beats
(10 ms when the UI thread is free), the display's repaints per second and the
pipeline's frames per second. Each configuration runs in its own process:

* ``reference``: Python's default thread switch interval (5 ms), as before the tab set it;
* ``ours``: the interval the live session uses (``desktop.ui.torch_runtime.GIL_SWITCH_S``).

With ``--style`` the Style tab's job paints at the same time (tubingen in the style of
The Starry Night, 384 px, one scale), so the window has a recogniser and a painter to
share the CPU with; two policies for the painter are compared:

* ``cores-1 normal``: the painter on every core but one, at the UI's OS priority (the
  policy before: on 2 cores, 1 thread);
* ``all cores nice 10``: the painter on every core, on a thread whose OS priority is
  lowered (``Worker(low_priority=True)``, what the Style tab does now).

Each line adds the painter's seconds per iteration (median).

Figures depend heavily on what else the machine runs; compare the lines of one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))
VIDEO = DATA / "faces-dev" / "video"


def start_painter(low_priority: bool, stamps: list[float]):
    """Start a style job like the Style tab's (on the low-priority pool with every core, or
    on the normal pool with every core but one); ``stamps`` gets each iteration's time."""
    import torch

    from desktop.imageio import load_rgb
    from desktop.style.optimize import stylize
    from desktop.style.settings import StyleSettings
    from desktop.ui.qthreading import Worker
    from desktop.ui.torch_runtime import prepare_background_torch

    nst = DATA / "nst-dev"
    content, style = load_rgb(nst / "tubingen.jpg"), load_rgb(nst / "starry_night.jpg")
    settings = StyleSettings(size=384, iterations=100_000, multiscale=False,
                             stop_when_flat=False)
    threads: list[int] = []

    def paint(cancel):
        prepare_background_torch(optimizers=True)
        threads.append(torch.get_num_threads())
        for _report in stylize(content, [style], settings, cancel=cancel):
            stamps.append(time.monotonic())

    worker = Worker(paint, low_priority=low_priority).start()
    return worker, threads


def measure(video: Path, seconds: float, switch_s: float, painter: str = "") -> dict:
    """One configuration, in this process (called in a child)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FACESTYLE_HOME"] = tempfile.mkdtemp(prefix="facestyle-bench-")
    from desktop.face.api import FaceEngine
    from desktop.store import Gallery
    from desktop.store.enrol import enrol_from_images
    from desktop.ui import torch_runtime
    from desktop.ui.app import create_app
    from desktop.ui.heartbeat import Heartbeat

    torch_runtime.GIL_SWITCH_S = switch_s
    engine = FaceEngine().warm_up()
    with Gallery() as gallery:
        for name, photo in (("Lin-Manuel Miranda", "lin-manuel-miranda.png"),
                            ("Alex Lacamoire", "alex-lacamoire.png")):
            if (VIDEO / photo).is_file():
                enrol_from_images(gallery, engine, name, [VIDEO / photo])
    app = create_app()
    from desktop.ui.checkin_tab import CheckinTab

    tab = CheckinTab(engine_factory=lambda: engine, source=str(video), loop_files=True)
    tab.resize(1100, 650)
    tab.show()

    def pump(s: float, until=None) -> None:
        end = time.monotonic() + s
        while time.monotonic() < end and not (until and until()):
            app.processEvents()
            time.sleep(0.001)

    pump(60, lambda: tab.session.pipeline_running and tab.session.pipeline.stats().frames > 5)
    stamps: list[float] = []
    if painter:
        worker, threads = start_painter(painter == "low", stamps)
        pump(120, lambda: len(stamps) >= 3)  # network loaded, first iterations done
    paints, frames = tab.view.paints, tab.session.pipeline.stats().frames
    start = time.monotonic()
    beat = Heartbeat(10).start()
    pump(seconds)
    beat.stop()
    elapsed = time.monotonic() - start
    during = [b - a for a, b in itertools.pairwise(stamps)
              if a >= start and b <= start + elapsed]
    if painter:
        worker.cancel()
        worker.wait(60)
    out = {
        "style_s_per_it": sorted(during)[len(during) // 2] if during else None,
        "style_threads": threads[0] if painter and threads else None,
        "switch_ms": sys.getswitchinterval() * 1000,
        "beats": len(beat.gaps),
        "gap_p50_ms": beat.percentile(0.5),
        "gap_p95_ms": beat.percentile(0.95),
        "gap_max_ms": beat.max_gap_ms,
        "repaints_per_s": (tab.view.paints - paints) / elapsed,
        "pipeline_fps": (tab.session.pipeline.stats().frames - frames) / elapsed,
    }
    tab.shutdown()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=VIDEO / "short_hamilton_clip.mp4")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--style", action="store_true",
                        help="also paint in the Style tab's job: compare its two thread policies")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--painter", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.video, args.seconds, args.child, args.painter)))
        return 0
    if not args.video.is_file():
        print(f"no video at {args.video}; pass --video", file=sys.stderr)
        return 2
    from desktop.device import machine_line
    from desktop.ui.torch_runtime import GIL_SWITCH_S

    print(f"machine: {machine_line()}")
    print(f"UI heartbeat (10 ms timer) while the Check-in tab runs on {args.video.name}, "
          f"{args.seconds:g} s each, {os.cpu_count()} CPUs")
    runs = [("reference", 0.005, ""), ("ours", GIL_SWITCH_S, "")]
    if args.style:
        print("while the Style tab's job paints tubingen + starry_night at 384 px")
        runs = [("cores-1 normal", GIL_SWITCH_S, "normal"),
                ("all cores nice 10", GIL_SWITCH_S, "low")]
    print(f"{'':18} {'switch':>7} {'beats':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} "
          f"{'repaint/s':>9} {'frames/s':>8}" + ("  style s/it (threads)" if args.style else ""))
    for label, switch, painter in runs:
        proc = subprocess.run([sys.executable, __file__, "--video", str(args.video),
                               "--seconds", str(args.seconds), "--child", str(switch),
                               "--painter", painter],
                              capture_output=True, text=True, env={**os.environ,
                                                                   "PYTHONPATH": str(ROOT)})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            print(f"{label}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        r = json.loads(lines[-1])
        style = (f"  {r['style_s_per_it']:.3f} ({r['style_threads']})"
                 if r.get("style_s_per_it") else "")
        print(f"{label:18} {r['switch_ms']:>5.1f}ms {r['beats']:>6} {r['gap_p50_ms']:>7} "
              f"{r['gap_p95_ms']:>7} {r['gap_max_ms']:>7} {r['repaints_per_s']:>9.1f} "
              f"{r['pipeline_fps']:>8.1f}{style}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
