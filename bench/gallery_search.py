"""Gallery search: ms per query and memory of the exact matcher at 10 ... 1,000,000 templates.

For each gallery size this prints, measured in the same run on the same random gallery
(128-D float32 descriptors with dlib-like norms, 1-3 templates per person):

* ``ours``: :meth:`desktop.face.matching.Matcher.identify` (one float32 GEMM, per-person
  minimum, exact float64 re-scoring of the shortlist), for batches of 1 and 8 queries;
* ``naive loop``: a per-template Python loop, ``sum((q - e)^2)`` in float64 for each
  template and a dict of per-person minima (only where it finishes in reasonable time);
* ``brute numpy``: a vectorised float64 brute force (``((G - q)^2).sum(1)`` then a
  per-person minimum), which is also the exactness reference: the script checks that
  ours gives the same nearest and second-nearest person and the same d (to 1e-9).

Memory: the matcher's arrays (``Matcher.nbytes``) and the peak extra memory of one
``identify`` call of 8 queries (tracemalloc, which sees numpy's allocations).

Usage::

    python bench/gallery_search.py                      # 10, 1e3, 1e5, 1e6
    python bench/gallery_search.py --sizes 10 1000 --repeats 50
    python bench/gallery_search.py --naive-max 1000000  # also the loop at 1e6 (slow)
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.face.matching import Matcher
from desktop.face.types import EMBEDDING_DIM


def make_gallery(n: int, rng: np.random.Generator):
    """n templates of random people (1-3 templates each), norm ~1.4 like dlib's."""
    counts = []
    total = 0
    while total < n:
        c = int(min(rng.integers(1, 4), n - total))
        counts.append(c)
        total += c
    pids = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    centres = rng.standard_normal((len(counts), EMBEDDING_DIM), dtype=np.float32)
    centres *= np.float32(1.4 / math.sqrt(EMBEDDING_DIM))
    emb = centres[pids] + rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32) * np.float32(
        0.25 / math.sqrt(EMBEDDING_DIM))
    names = {int(p): f"person {p}" for p in range(len(counts))}
    return emb, pids, names


def make_queries(emb: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Half near an enrolled template (a known face), half random (a stranger)."""
    near = emb[rng.integers(0, len(emb), m - m // 2)] + rng.standard_normal(
        (m - m // 2, EMBEDDING_DIM), dtype=np.float32) * np.float32(0.25 / math.sqrt(128))
    far = rng.standard_normal((m // 2, EMBEDDING_DIM), dtype=np.float32) * np.float32(
        1.4 / math.sqrt(EMBEDDING_DIM))
    return np.concatenate([near, far]).astype(np.float32)


def naive_loop(emb: np.ndarray, pids: np.ndarray, q: np.ndarray) -> list[tuple[float, int]]:
    """Per-template loop; returns the two nearest people as (d, person id)."""
    best: dict[int, float] = {}
    q64 = q.astype(np.float64)
    for e, p in zip(emb, pids.tolist(), strict=True):
        diff = q64 - e
        d = float(diff @ diff)
        if d < best.get(p, math.inf):
            best[p] = d
    return sorted((d, p) for p, d in best.items())[:2]


def brute_numpy(emb: np.ndarray, starts: np.ndarray, people: np.ndarray,
                q: np.ndarray, chunk: int = 250_000) -> list[tuple[float, int]]:
    """Vectorised float64 brute force over person-sorted ``emb``; two nearest people."""
    q64 = q.astype(np.float64)
    d = np.empty(len(emb), np.float64)
    for a in range(0, len(emb), chunk):
        diff = emb[a:a + chunk].astype(np.float64) - q64
        d[a:a + chunk] = np.einsum("ij,ij->i", diff, diff)
    per_person = np.minimum.reduceat(d, starts)
    k = min(2, len(per_person))
    idx = np.argpartition(per_person, k - 1)[:k] if len(per_person) > k else \
        np.arange(len(per_person))
    return sorted((float(per_person[i]), int(people[i])) for i in idx)[:2]


def timed(fn, repeats: int, budget_s: float) -> float:
    """Median seconds of ``fn()`` over up to ``repeats`` runs within ``budget_s``."""
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return float(np.median(times))


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def measure(n: int, rng: np.random.Generator, repeats: int, naive_max: int) -> bool:
    """Time and check one gallery size, print its row; True when exact."""
    emb, pids, names = make_gallery(n, rng)
    t = time.perf_counter()
    matcher = Matcher(emb, pids, names, tau=0.36, margin=0.03)
    build = time.perf_counter() - t
    queries = make_queries(emb, 8, rng)
    one = queries[:1]
    ours1 = timed(lambda: matcher.identify(one), repeats, 10.0)
    ours8 = timed(lambda: matcher.identify(queries), max(3, repeats // 4), 10.0) / 8

    starts = np.concatenate([[0], np.flatnonzero(np.diff(pids)) + 1])
    people = pids[starts]
    brute = timed(lambda: brute_numpy(emb, starts, people, one[0]), max(1, repeats // 10), 20.0)
    naive = (timed(lambda: naive_loop(emb, pids, one[0]), 1 if n > 10_000 else 5, 30.0)
             if n <= naive_max else None)

    tracemalloc.start()
    results = matcher.identify(queries)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    exact = True
    for q, r in zip(queries, results, strict=True):
        ref = brute_numpy(emb, starts, people, q)
        got = [(r.d, r.nearest_id), (r.d_second, r.second_id)][:len(ref)]
        if [p for _, p in got] != [p for _, p in ref] or any(
                abs(a - b) > 1e-9 for (a, _), (b, _) in zip(got, ref, strict=True)):
            exact = False
    if n <= naive_max:
        ref = naive_loop(emb, pids, one[0])
        exact &= ref[0][1] == results[0].nearest_id and abs(ref[0][0] - results[0].d) <= 1e-9
    speedup = (naive or brute) / ours1
    print(f"{n:>10,} {len(names):>8,} | {fmt_ms(ours1):>9} {fmt_ms(ours8):>9} | "
          f"{fmt_ms(naive):>10} {fmt_ms(brute):>11} | {speedup:>7.1f}x | "
          f"{matcher.nbytes / 2**20:>9.1f} {peak / 2**20:>11.1f} | {build:>7.2f} | "
          f"{'yes' if exact else 'NO'}")
    return exact


def run(sizes: list[int], repeats: int, naive_max: int, seed: int) -> int:
    from desktop.face import matching

    torch = matching._torch()
    backend = (f"torch {torch.__version__} addmm on {torch.get_num_threads()} thread(s) above "
               f"{matching._SMALL_PRODUCT} query-template pairs, numpy einsum below"
               if torch is not None else "numpy only")
    print(f"gallery search: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}, python {platform.python_version()}")
    print(f"product: {backend}")
    print("ms per query (median); batch 8 = time for 8 queries / 8. "
          "'exact' = same top-2 people and |d - d_ref| <= 1e-9 vs the float64 brute force.")
    header = (f"{'templates':>10} {'people':>8} | {'ours b=1':>9} {'ours b=8':>9} | "
              f"{'naive loop':>10} {'brute numpy':>11} | {'speed-up':>8} | {'matrix MB':>9} "
              f"{'peak MB b=8':>11} | {'build s':>7} | exact")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(seed)
    failures = 0
    for n in sizes:
        failures += not measure(n, rng, repeats, naive_max)
    print("speed-up: ours (b=1) against the naive loop where it ran, else the numpy brute force.")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 100_000, 1_000_000])
    p.add_argument("--repeats", type=int, default=30, help="timed runs per measurement")
    p.add_argument("--naive-max", type=int, default=100_000,
                   help="largest gallery for the per-template Python loop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads for the large products (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from desktop.device import machine_line

    print(f"machine: {machine_line()}")
    return run(args.sizes, args.repeats, args.naive_max, args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
