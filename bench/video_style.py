"""Video style transfer: is the temporal version consistent, and what does it cost?

Runs one slice of a clip (default: 48 frames of short_hamilton_clip from frame 20, the
start of its second shot, at 256 px, in the style of starry_night) three ways in the same
run, through :func:`desktop.style.video.stylize_video`:

1. ``independent``: each frame on its own (gamma = 0, every frame from the content);
2. ``warm``: each frame starts from the previous result warped by the flow (gamma = 0);
3. ``temporal``: warm start plus the temporal term (gamma, Ruder et al. 2016);
4. ``long-term`` (asked for with ``--modes``): the temporal term over the frames
   ``--long-term`` back (default 1,2,4).

Every mode gets the same iterations: ``--first-iterations`` for the first frame (coarse
to fine, as the Style tab paints a still image), ``--iterations`` for each other (at the
painting size; see :func:`desktop.style.video.frame_settings`). The modes take turns
frame by frame, so that the load of a shared machine weighs on each alike. Printed for
each: the mean **warping error** between consecutive outputs over reliable pixels (Lai et
al. 2018: ``sum M ||O_t - warp(O_t-1)||^2 / sum M`` with RGB in 0..1, the mask M and the
flow from the *input* frames, averaged over the frame pairs), measured twice, with the
DIS flow the method uses and with Farneback's (a flow the optimisation never saw), the
mean wall-clock seconds per frame after the first (flow, warp, painting and saving), and
the CPU kind. The goal: the temporal version's error at most half the independent one's,
at no more than 1.5x its seconds per frame.

``--flows`` first compares the two OpenCV flow methods: milliseconds per frame pair (both
directions and the mask), endpoint error on a synthetic shift with a known flow, and the
photometric error over the pixels both call reliable.

``--strip PATH`` saves input and temporal-output frames side by side (the README's image).

``--gammas 1e2,1e6,1e8`` adds a temporal run per gamma (the sweep behind the default).

Usage: ``python bench/video_style.py [--frames 48] [--size 256] [--iterations 100]
[--first-iterations 300] [--gamma G] [--modes independent,warm,temporal] [--flows]
[--gammas G1,G2] [--strip docs/video-strip.png]``
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# (importing desktop sets the app's passive OpenMP wait before torch loads; the CLI runs
# that way too: spinning threads ran up to 30x slower on this shared 2-core machine)
from desktop.device import machine_line  # noqa: E402
from desktop.imageio import load_rgb  # noqa: E402
from desktop.style import flow as flows  # noqa: E402
from desktop.style import video_io  # noqa: E402
from desktop.style.settings import StyleSettings  # noqa: E402
from desktop.style.video import VideoSettings, stylize_video  # noqa: E402

DATA = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CLIP = DATA / "faces-dev" / "video" / "short_hamilton_clip.mp4"
STYLE = DATA / "nst-dev" / "starry_night.jpg"


def mode_settings(mode: str, base: VideoSettings) -> VideoSettings:
    if mode == "independent":
        return dataclasses.replace(base, temporal_weight=0.0, warm_start=False, long_term=[1])
    if mode == "warm":
        return dataclasses.replace(base, temporal_weight=0.0, warm_start=True, long_term=[1])
    if mode == "temporal":
        return dataclasses.replace(base, warm_start=True, long_term=[1])
    if mode == "long-term":
        return dataclasses.replace(base, warm_start=True)
    raise SystemExit(f"unknown mode {mode}")


def consistency(inputs: list[np.ndarray], outputs: list[np.ndarray], method: str) -> float:
    """Mean warping error of consecutive outputs (pairs across a scene cut left out)."""
    errors = []
    for t in range(1, len(outputs)):
        pair = flows.pair(inputs[t - 1], inputs[t], method)
        if pair.reliable_fraction < 0.3:
            continue
        errors.append(flows.warping_error(outputs[t - 1], outputs[t], pair))
    return float(np.mean(errors)) if errors else float("nan")


def compare_flows(inputs: list[np.ndarray]) -> None:
    print("\n== optical flow, OpenCV, on the slice's frames at the painting size")
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (inputs[0].shape[0] + 40,
                                                  inputs[0].shape[1] + 40, 3), np.uint8),
                            (0, 0), 2.0)
    h, w = inputs[0].shape[:2]
    shift = (2.6, -1.4)  # the content moves right 2.6 px, up 1.4 px
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    moved = cv2.warpAffine(base, matrix, (base.shape[1], base.shape[0]),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a, b = base[20:20 + h, 20:20 + w], moved[20:20 + h, 20:20 + w]
    pairs = {}
    print(f"{'method':<10} {'ms/pair':>8} {'EPE shift':>10} {'reliable':>9} "
          f"{'photometric (common mask)':>26}")
    for method in flows.METHODS:
        start = time.perf_counter()
        pairs[method] = [flows.pair(x, y, method) for x, y in itertools.pairwise(inputs)]
        ms = (time.perf_counter() - start) / max(1, len(inputs) - 1) * 1000
        forward = flows.flow_between(a, b, method)[10:-10, 10:-10]
        epe = float(np.sqrt(((forward - np.float32(shift)) ** 2).sum(axis=2)).mean())
        pairs[method + "-epe"] = epe  # type: ignore[assignment]
        pairs[method + "-ms"] = ms  # type: ignore[assignment]
    for method in flows.METHODS:
        photometric, reliable = [], []
        for t, pair in enumerate(pairs[method]):
            common = pairs["dis"][t].mask * pairs["farneback"][t].mask
            if common.mean() < 0.3:
                continue
            reliable.append(pair.reliable_fraction)
            common_pair = flows.FramePair(pair.forward, pair.backward, common)
            photometric.append(flows.warping_error(inputs[t], inputs[t + 1], common_pair))
        print(f"{method:<10} {pairs[method + '-ms']:8.1f} {pairs[method + '-epe']:10.3f} "
              f"{np.mean(reliable):9.3f} {np.mean(photometric):26.5f}")


def save_strip(path: Path, inputs: list[np.ndarray], outputs: list[np.ndarray],
               count: int, max_kb: int = 380) -> None:
    """Input frames above, stylised frames below, ``count`` of them evenly spaced."""
    picks = np.linspace(0, len(outputs) - 1, count).round().astype(int)
    gap = 4
    h, w = outputs[0].shape[:2]
    strip = np.full((2 * h + gap, count * w + (count - 1) * gap, 3), 255, np.uint8)
    for k, t in enumerate(picks):
        x = k * (w + gap)
        strip[:h, x:x + w] = inputs[t]
        strip[h + gap:, x:x + w] = outputs[t]
    from PIL import Image

    image = Image.fromarray(strip)
    image.save(path, optimize=True)
    if path.stat().st_size > max_kb * 1024:
        image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"saved {path} ({path.stat().st_size // 1024} KB, frames {picks.tolist()})")


def interleaved(clip: Path, style: np.ndarray, runs: list[tuple[str, VideoSettings]],
                frames: int) -> dict[str, tuple[list[np.ndarray], list[float], list[dict]]]:
    """Paint the slice once per run, the runs taking turns frame by frame, so that the
    shared machine's load weighs on every mode alike. Returns, per run, the stylised
    frames, each frame's wall-clock seconds (flow, warp, painting and saving: all a frame
    costs) and its final loss terms."""
    painted: dict[str, tuple[list[np.ndarray], list[float], list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="video-bench-") as root:
        loops = {mode: stylize_video(clip, [style], settings, Path(root) / f"run{k}",
                                     restart=True)
                 for k, (mode, settings) in enumerate(runs)}
        for mode in loops:
            painted[mode] = ([], [], [])
        for position in range(frames):
            for mode, loop in loops.items():
                start = time.perf_counter()
                for step in loop:
                    if step.finished is not None:
                        break
                else:
                    continue
                outputs, seconds, losses = painted[mode]
                outputs.append(step.finished.image)
                seconds.append(time.perf_counter() - start)
                losses.append(step.finished.losses)
            print(f"  frame {position + 1}/{frames}: " + ", ".join(
                f"{mode} {painted[mode][1][-1]:.1f} s" for mode in loops
                if len(painted[mode][1]) > position), flush=True)
    return painted


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--style", type=Path, default=STYLE)
    p.add_argument("--start", type=int, default=20)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=VideoSettings().style.iterations)
    p.add_argument("--first-iterations", type=int, default=VideoSettings().first_iterations)
    p.add_argument("--gamma", type=float, default=VideoSettings().temporal_weight)
    p.add_argument("--beta", type=float, default=StyleSettings().beta)
    p.add_argument("--long-term", default="1,2,4")
    p.add_argument("--modes", default="independent,warm,temporal")
    p.add_argument("--gammas", default="",
                   help="also run the temporal mode with each of these gammas (a sweep)")
    p.add_argument("--flows", action="store_true", help="compare DIS and Farneback first")
    p.add_argument("--strip", type=Path, help="save a strip of the temporal run's frames")
    p.add_argument("--strip-frames", type=int, default=5)
    args = p.parse_args()
    if not args.clip.is_file() or not args.style.is_file():
        print(f"needs {args.clip} and {args.style} (../shared/data)", file=sys.stderr)
        return 1

    print(machine_line())
    info = video_io.probe(args.clip)
    height, width = video_io.painting_size(info, args.size)
    inputs = [f for _, f in video_io.read_frames(args.clip, height, width, args.start,
                                                 args.frames)]
    print(f"clip {args.clip.name}: frames {args.start}..{args.start + len(inputs) - 1} at "
          f"{width}x{height}; style {args.style.name}; iterations {args.first_iterations} "
          f"first, {args.iterations} each other; gamma {args.gamma:g}; beta {args.beta:g}")
    if args.flows:
        compare_flows(inputs)

    style = load_rgb(args.style)
    base = VideoSettings(
        style=StyleSettings(size=args.size, iterations=args.iterations, beta=args.beta),
        first_iterations=args.first_iterations, temporal_weight=args.gamma,
        long_term=[int(j) for j in args.long_term.split(",")], start_frame=args.start,
        max_frames=args.frames)
    results: dict[str, tuple[float, float, float, list[np.ndarray]]] = {}
    runs = [(mode, mode_settings(mode, base)) for mode in args.modes.split(",") if mode]
    runs += [(f"gamma {float(g):g}", mode_settings("temporal", dataclasses.replace(
        base, temporal_weight=float(g)))) for g in args.gammas.split(",") if g]
    painted = interleaved(args.clip, style, runs, len(inputs))
    for mode, (outputs, seconds, losses) in painted.items():
        later = float(np.mean(seconds[1:])) if len(seconds) > 1 else float("nan")
        terms = {k: float(np.mean([x[k] for x in losses[1:]])) if len(losses) > 1 else 0.0
                 for k in ("content", "style", "temporal", "total")}
        results[mode] = (consistency(inputs, outputs, "dis"),
                         consistency(inputs, outputs, "farneback"), later, outputs)
        print(f"  {mode}: {later:.2f} s per frame after the first "
              f"(first {seconds[0]:.1f} s, J {losses[0]['total']:.3g}); after the first, "
              "mean " + ", ".join(f"{k} {v:.3g}" for k, v in terms.items()), flush=True)

    print(f"\n== video style transfer, {len(inputs)} frames at {width}x{height}, "
          f"{machine_line()}")
    print(f"{'mode':<12} {'warp error (DIS)':>17} {'(Farneback)':>12} {'s/frame':>8} "
          f"{'error vs indep.':>16} {'time vs indep.':>15}")
    ref = results.get("independent")
    for mode, (err, err_fb, spf, _) in results.items():
        rel = f"{err / ref[0]:.2f}x" if ref else "-"
        rel_t = f"{spf / ref[2]:.2f}x" if ref else "-"
        print(f"{mode:<12} {err:17.5f} {err_fb:12.5f} {spf:8.2f} {rel:>16} {rel_t:>15}")
    if ref and "temporal" in results:
        err, _, spf, _ = results["temporal"]
        ok = err <= 0.5 * ref[0] and spf <= 1.5 * ref[2]
        print(f"goal (temporal error <= 0.5x independent at <= 1.5x its time): "
              f"{'met' if ok else 'NOT met'}")
    if args.strip and "temporal" in results:
        save_strip(args.strip, inputs, results["temporal"][3], args.strip_frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
