"""Coarse-to-fine schedules compared by the work they need, not by seconds.

For each schedule (coarse scales' longest sides and their iterations, then the full
size), runs our job and counts the full-size iterations (and function evaluations) until
the final G, saved as uint8 and re-scored by the reference's fp32 J at full size, reaches
the J of the reference's 300 single-scale L-BFGS iterations (``bench/style_speed.py``'s
time-to-quality target, read from its cache; run ``style_speed.py --only-ttq`` once
first). Counts do not depend on the machine's load, so schedules can be compared on a busy
machine and priced afterwards with per-evaluation costs of any CPU.

    python bench/style_schedules.py 128x20,256x20 256x20 --whole
    python bench/style_schedules.py 128x20,256x20 --content tubingen.jpg \\
        --style woman-with-hat-matisse.jpg --after 100

``--whole`` upsamples G itself between scales (the former default) instead of only what
the coarser scale changed. ``--after N`` prints the re-scored J after N full-size
iterations instead of counting (for pairs without a cached target).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import desktop  # noqa: E402

desktop.use_openmp_default_wait()

from style_speed import DATA, reference_cache, reference_objective, single  # noqa: E402

from desktop.device import machine_line  # noqa: E402
from desktop.imageio import load_rgb  # noqa: E402
from desktop.style import images as imgs  # noqa: E402
from desktop.style import optimize  # noqa: E402
from desktop.style.settings import StyleSettings  # noqa: E402


def parse_schedule(text: str) -> list[tuple[int, int]]:
    """``"128x20,256x20"`` -> ``[(128, 20), (256, 20)]`` (longest side, iterations)."""
    out = []
    for part in text.split(","):
        size, n = part.split("x")
        out.append((int(size), int(n)))
    return out


def count(content, style, schedule, size: int, target: float | None, after: int,
          whole: bool, budget: int = 300) -> str:
    def scales(height, width, multiscale):
        return [imgs.fit_size(height, width, s) for s, _ in schedule] + [(height, width)]

    coarse = [n for _, n in schedule]
    real = (optimize.scale_sizes, optimize.split_iterations, optimize.upsample_g)
    real_upsample = optimize.upsample_g
    optimize.scale_sizes = scales
    optimize.split_iterations = lambda total, n_scales: [*coarse, total - sum(coarse)]
    if whole:
        optimize.upsample_g = lambda g, h, w, a=None, b=None: real_upsample(g, h, w)
    try:
        settings = StyleSettings(size=size, iterations=sum(coarse) + budget,
                                 stop_when_flat=False)
        score = reference_objective(content, style, single(size=size, iterations=300))
        fine = evals = coarse_evals = 0
        for report in optimize.stylize(content, [style], settings):
            if report.scale_index < len(schedule):
                coarse_evals += report.evaluations
                continue
            fine += 1
            evals += report.evaluations
            if after and fine == after:
                return f"J after {after} full-size iterations {score(report.image):.4e}"
            if not after and report.total <= 1.1 * target and score(report.image) <= target:
                return (f"full-size iterations {fine} (evaluations {evals}); coarse "
                        f"evaluations {coarse_evals}")
        return f"not reached within {budget} full-size iterations"
    finally:
        optimize.scale_sizes, optimize.split_iterations, optimize.upsample_g = real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schedules", nargs="+", help="e.g. 128x20,256x20 (empty: '')")
    parser.add_argument("--content", default="tubingen.jpg")
    parser.add_argument("--style", default="starry_night.jpg")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--after", type=int, default=0, metavar="N")
    parser.add_argument("--whole", action="store_true",
                        help="upsample G itself between scales")
    args = parser.parse_args()
    print(f"machine: {machine_line()}")
    target = None
    if not args.after:
        cache = reference_cache(args.size, 300)
        if not cache.is_file():
            print(f"no reference J in {cache}: run bench/style_speed.py --only-ttq first, "
                  "or use --after N", file=sys.stderr)
            return 1
        target = json.loads(cache.read_text())["J"]
        print(f"target J {target:.4e} (reference, 300 iterations, {args.size} px)")
    content = load_rgb(DATA / "nst-dev" / args.content)
    style = load_rgb(DATA / "nst-dev" / args.style)
    for text in args.schedules:
        schedule = parse_schedule(text) if text else []
        result = count(content, style, schedule, args.size, target, args.after, args.whole)
        how = "G upsampled whole" if args.whole else "change upsampled"
        print(f"schedule {text or 'single scale'} then {args.size} px ({how}): {result}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
