"""Choosing the open-set margin on faces-dev: what each margin costs and what it prevents.

The matcher names a face only when d1 <= tau AND d2 - d1 >= margin (d2: the nearest
*other* person). This script measures, for several margins, on ``shared/data/faces-dev``:

* **stills, closed set** (leave-one-out): every labelled one-face photo is a query
  against all *other* labelled photos (one template per photo); counts of correct
  names, wrong names and Unknowns. A margin should cost few correct names;
* **stills, open set**: the same queries with the query's own person removed from the
  gallery, so every name given is a false accept (the look-alike case a margin is for);
* **video**: every 5th frame of ``short_hamilton_clip.mp4`` against a gallery of the two
  one-shot references plus the knn/train people: faces named Lin-Manuel Miranda (the
  person on screen), Alex Lacamoire (wrong) or anyone else (wrong).

It also prints d1 and the margin d2 - d1 of every genuine still match, and the smallest
margins seen among accepted video faces, so the choice can be read off the data.

Engine: ``desktop.face.api.FaceEngine`` when present, else dlib (``dlib-bin``, a test
extra) with the same models from ``face_recognition_models`` (HOG detector, 5-point
landmarks, ``get_face_chip`` 150x150, ResNet descriptor) as the reference.

    python bench/open_set_margin.py [--engine auto|facestyle|dlib] [--data PATH]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from desktop.face.matching import Matcher  # noqa: E402
from desktop.face.types import DEFAULT_TAU  # noqa: E402
from desktop.imageio import load_rgb  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_engine import load_engine  # noqa: E402

MARGINS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.08, 0.10)


def labelled_stills(data: Path) -> list[tuple[str, Path]]:
    """(person, path) for the one-face photos whose person is known from the file name."""
    fd = data / "faces-dev"
    out = [(p.parent.name, p) for p in sorted((fd / "knn" / "train").glob("*/*"))]
    test = {"johnsnow_test1.jpg": "kit_harington", "obama1.jpg": "obama",
            "alex_lacamoire1.jpg": "alex_lacamoire"}
    out += [(who, fd / "knn" / "test" / name) for name, who in test.items()]
    images = {"obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama",
              "obama-480p.jpg": "obama", "biden.jpg": "biden"}
    out += [(who, fd / "images" / name) for name, who in images.items()]
    out += [("lin_manuel_miranda", fd / "video" / "lin-manuel-miranda.png"),
            ("alex_lacamoire", fd / "video" / "alex-lacamoire.png")]
    return [(who, p) for who, p in out if p.exists()]


def embed_stills(engine, stills):
    import hashlib

    people, vectors, names, paths = [], [], [], []
    seen = set()
    for who, path in stills:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:  # the same file under two names would give d = 0
            continue
        seen.add(digest)
        faces = engine.detect(load_rgb(path))
        if len(faces) != 1:
            print(f"  skipped {path.name}: {len(faces)} faces")
            continue
        vectors.append(engine.embed(faces[0].chip[None])[0])
        people.append(who)
        names.append(path.name)
        paths.append(path)
    return people, np.array(vectors, np.float32), names, paths


def video_faces(engine, clip: Path, step: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of every face in every ``step``-th frame, and each one's frame index."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    chips, frames = [], []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            found = engine.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            chips += [f.chip for f in found]
            frames += [i] * len(found)
        i += 1
    cap.release()
    if not chips:
        return np.zeros((0, 128), np.float32), np.zeros(0, int)
    return engine.embed(np.stack(chips)), np.array(frames)


def matcher_for(people: list[str], vectors: np.ndarray, keep: np.ndarray, margin: float,
                ids: dict[str, int]) -> Matcher:
    idx = np.flatnonzero(keep)
    return Matcher(vectors[idx], [ids[people[i]] for i in idx],
                   {v: k for k, v in ids.items()}, idx, tau=DEFAULT_TAU, margin=margin)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", default="auto", choices=["auto", "facestyle", "dlib"])
    p.add_argument("--data", type=Path,
                   default=Path(os.environ.get("FACESTYLE_SHARED_DATA",
                                               ROOT.parent / "shared" / "data")),
                   help="the shared data folder (default: ../shared/data or "
                        "$FACESTYLE_SHARED_DATA)")
    p.add_argument("--step", type=int, default=5, help="use every STEP-th video frame")
    args = p.parse_args(argv)
    from desktop.device import machine_line

    print(f"machine: {machine_line()}")
    if not (args.data / "faces-dev").is_dir():
        print(f"faces-dev not found under {args.data}; pass --data", file=sys.stderr)
        return 2
    engine = load_engine(args.engine)
    print(f"engine: {engine.model_id}; tau = {DEFAULT_TAU:.2f}")
    people, vectors, files, paths = embed_stills(engine, labelled_stills(args.data))
    ids = {name: i for i, name in enumerate(sorted(set(people)))}
    print(f"stills: {len(people)} photos of {len(ids)} people: "
          + ", ".join(f"{k} {v}" for k, v in sorted(Counter(people).items())))

    # genuine d1 and margin for each still that has another photo of its person
    n = len(people)
    print("\nstill queries with their person in the gallery (leave-one-out):")
    print(f"  {'query':<26} {'person':<20} {'d1':>6} {'2nd person':<20} {'d2':>6} {'d2-d1':>6}")
    closed = {}
    for i in range(n):
        keep = np.ones(n, bool)
        keep[i] = False
        if not any(people[j] == people[i] for j in np.flatnonzero(keep)):
            continue
        r = matcher_for(people, vectors, keep, 0.0, ids).identify_one(vectors[i])
        closed[i] = r
        print(f"  {files[i]:<26} {people[i]:<20} {r.d:>6.3f} {r.second_name or '-':<20} "
              f"{r.d_second:>6.3f} {r.d_second - r.d:>6.3f}")

    clip = args.data / "faces-dev" / "video" / "short_hamilton_clip.mp4"
    vid, vid_frames = (video_faces(engine, clip, args.step) if clip.exists()
                       else (np.zeros((0, 128), np.float32), np.zeros(0, int)))
    gallery_rows = [i for i, path in enumerate(paths)
                    if "knn/train" in path.as_posix() or path.parent.name == "video"]
    keep_video = np.zeros(n, bool)
    keep_video[gallery_rows] = True
    print(f"\nvideo: {len(vid)} faces in every {args.step}th frame; gallery of "
          f"{int(keep_video.sum())} stills")

    print(f"\n{'margin':>6} | closed set (n={len(closed)}): {'right':>5} {'wrong':>5} "
          f"{'unknown':>7} | open set (n={n}): {'false names':>11} | video: "
          f"{'Lin-Manuel':>10} {'Alex':>4} {'other':>5}")
    for margin in MARGINS:
        right = wrong = unknown = 0
        for i, r in closed.items():
            ok = r.d <= DEFAULT_TAU and r.d_second - r.d >= margin
            if not ok:
                unknown += 1
            elif r.nearest_name == people[i]:
                right += 1
            else:
                wrong += 1
        false_open = 0
        for i in range(n):
            keep = np.array([people[j] != people[i] for j in range(n)])
            m = matcher_for(people, vectors, keep, margin, ids).identify_one(vectors[i])
            false_open += m.accepted
        names = Counter()
        if len(vid):
            mv = matcher_for(people, vectors, keep_video, margin, ids)
            names = Counter(m.name for m in mv.identify(vid) if m.accepted)
        lmm = names.pop("lin_manuel_miranda", 0)
        alex = names.pop("alex_lacamoire", 0)
        print(f"{margin:>6.2f} | {'':>21}{right:>5} {wrong:>5} {unknown:>7} | {'':>12}"
              f"{false_open:>11} | {'':>7}{lmm:>10} {alex:>4} {sum(names.values()):>5}")
    # how close do strangers come? (open set: the query's person removed)
    impostors = []
    for i in range(n):
        keep = np.array([people[j] != people[i] for j in range(n)])
        m = matcher_for(people, vectors, keep, 0.0, ids).identify_one(vectors[i])
        impostors.append((m.d, m.d_second - m.d, files[i], m.nearest_name))
    impostors.sort()
    print("\nnearest strangers (open set), closest first: "
          + "; ".join(f"{f} -> {who} d1 {d:.3f} (d2-d1 {g:.3f})"
                      for d, g, f, who in impostors[:4]))
    if len(vid):
        mv = matcher_for(people, vectors, keep_video, 0.0, ids)
        res = mv.identify(vid)
        named = [m for m in res if m.d <= DEFAULT_TAU]
        margins = sorted(m.d_second - m.d for m in named)
        print(f"video faces with d1 <= tau: {len(named)}; smallest margins d2 - d1: "
              + ", ".join(f"{x:.3f}" for x in margins[:6])
              + (f"; median {np.median(margins):.3f}" if margins else ""))
        d1 = sorted(m.d for m in named)
        if d1:
            print(f"their d1: min {d1[0]:.3f}, median {np.median(d1):.3f}, max {d1[-1]:.3f}")
        # frame-to-frame jitter of d to Lin-Manuel, for frames with one face
        lmm = ids["lin_manuel_miranda"]
        per_frame = {}
        for m, f in zip(res, vid_frames, strict=True):
            if m.nearest_id == lmm and m.d <= DEFAULT_TAU:
                per_frame.setdefault(int(f), []).append(m.d)
        seq = [(f, v[0]) for f, v in sorted(per_frame.items()) if len(v) == 1]
        jumps = [abs(b - a) for (fa, a), (fb, b) in itertools.pairwise(seq)
                 if fb - fa == args.step]
        if jumps:
            print(f"jitter of d1 between frames {args.step} apart (same face, "
                  f"{len(jumps)} pairs): median {np.median(jumps):.3f}, 90th percentile "
                  f"{np.percentile(jumps, 90):.3f}, max {max(jumps):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
