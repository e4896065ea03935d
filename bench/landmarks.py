"""Landmarks and alignment: ours (numpy + OpenCV) beside dlib's own, in the same run.

    python bench/landmarks.py [--repeat 20] [--data ../shared/data]

Prints, per stage, milliseconds per face (median of ``--repeat`` runs) and the agreement
with dlib on the same boxes:

* load: parsing the 5-point model file, and loading it from our cache.
* landmarks: ``ShapePredictor.predict`` on 1 face and on a batch of all faces of a photo,
  beside ``dlib.shape_predictor``; mean / max point error in pixels.
* chip: ``extract_chips`` beside ``dlib.get_face_chip`` (150 px, padding 0.25); mean /
  max pixel difference (0-255).

Faces come from dlib's HOG detector on the faces-dev photos, or, without the shared data,
from synthetic images with faces at known places. Needs dlib-bin (the test extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from desktop.face.align import extract_chips  # noqa: E402
from desktop.face.landmarks import ShapePredictor  # noqa: E402
from desktop.model_files import FACE_LANDMARKS, require  # noqa: E402


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _faces_dev(data: Path, dlib) -> list[tuple[str, np.ndarray, list]]:
    from desktop.imageio import downscale_to, load_rgb

    detector = dlib.get_frontal_face_detector()
    photos = []
    for path in sorted((data / "faces-dev").rglob("*")):
        if path.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
            continue
        image = load_rgb(path)
        small, s = downscale_to(image, 1000)
        rects = [dlib.rectangle(*(round(v / s) for v in (r.left(), r.top(), r.right(),
                                                          r.bottom())))
                 for r in detector(small, 0)]
        if rects:
            photos.append((path.name, image, rects))
    return photos


def _synthetic(dlib) -> list[tuple[str, np.ndarray, list]]:
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 2)
    rects = [dlib.rectangle(x, 200, x + 199, 399) for x in (100, 500, 900)]
    return [("synthetic 1280x720", image, rects)]


def _measure_photo(image, rects, ours, reference, dlib, repeat, rows, point_err, pixel_diff):
    """Add one photo's timings (ms, summed over its faces) and differences to the tallies."""
    boxes = [(r.left(), r.top(), r.width(), r.height()) for r in rects]
    shapes = [reference(image, r) for r in rects]
    theirs = np.array([[[p.x, p.y] for p in s.parts()] for s in shapes], np.float32)
    mine = ours.predict(image, boxes, round_to_pixels=True)
    point_err.append(np.linalg.norm(mine - theirs, axis=-1).ravel())
    k = len(rects)
    one = rows["landmarks, 1 face"]
    one[0] += k * _median_ms(lambda: ours.predict(image, boxes[:1]), repeat)
    one[1] += k * _median_ms(lambda: reference(image, rects[0]), repeat)
    batch = rows["landmarks, batch"]
    batch[0] += _median_ms(lambda: ours.predict(image, boxes), repeat)
    batch[1] += _median_ms(lambda: [reference(image, r) for r in rects], repeat)
    chip = rows["chip 150px"]
    chip[0] += _median_ms(lambda: extract_chips(image, theirs), repeat)
    chip[1] += _median_ms(lambda: [dlib.get_face_chip(image, s, 150, 0.25) for s in shapes],
                          repeat)
    for s, ours_chip in zip(shapes, extract_chips(image, theirs), strict=True):
        ref_chip = dlib.get_face_chip(image, s, size=150, padding=0.25)
        pixel_diff.append(np.abs(ref_chip.astype(int) - ours_chip).ravel())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    from desktop.device import machine_line

    print(f"machine: {machine_line()}")
    try:
        import dlib
    except ImportError:
        print("dlib (dlib-bin) is not installed: nothing to compare with.")
        return 1

    model = require(FACE_LANDMARKS)
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["FACESTYLE_HOME"] = tmp
        start = time.perf_counter()
        ours = ShapePredictor.load(model)
        parse_s = time.perf_counter() - start
        start = time.perf_counter()
        ShapePredictor.load(model)
        cached_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = dlib.shape_predictor(str(model))
    dlib_load_s = time.perf_counter() - start
    print(f"load: parse {parse_s:.2f} s, from cache {cached_s * 1e3:.0f} ms "
          f"(dlib's C++ deserialise: {dlib_load_s * 1e3:.0f} ms)")

    photos = _faces_dev(args.data, dlib) if (args.data / "faces-dev").is_dir() else []
    if not photos:
        print(f"(no faces-dev photos under {args.data}; using a synthetic image)")
        photos = _synthetic(dlib)
    n_faces = sum(len(rects) for _, _, rects in photos)
    print(f"{n_faces} faces in {len(photos)} photos; median of {args.repeat} runs\n")

    rows = {"landmarks, 1 face": [0.0, 0.0], "landmarks, batch": [0.0, 0.0],
            "chip 150px": [0.0, 0.0]}
    point_err, pixel_diff = [], []
    for _, image, rects in photos:
        _measure_photo(image, rects, ours, reference, dlib, args.repeat, rows, point_err,
                       pixel_diff)

    print(f"{'stage':<20}{'ours ms/face':>14}{'dlib ms/face':>14}{'ours/dlib':>11}")
    for name, (mine_ms, dlib_ms) in rows.items():
        print(f"{name:<20}{mine_ms / n_faces:>14.3f}{dlib_ms / n_faces:>14.3f}"
              f"{mine_ms / dlib_ms:>11.2f}")
    errs, diffs = np.concatenate(point_err), np.concatenate(pixel_diff)
    print(f"\nlandmarks vs dlib (rounded as dlib): mean {errs.mean():.4f} px, "
          f"max {errs.max():.2f} px, {np.mean(errs == 0) * 100:.1f}% of points identical")
    print(f"chips vs dlib: mean |diff| {diffs.mean():.4f}, max {diffs.max()} (0-255), "
          f"{np.mean(diffs == 0) * 100:.2f}% of values identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
