"""Live check-in on faces-dev's clip: our pipeline beside face_recognition's video demo.

    python bench/checkin_video.py [--cores 2] [--no-reference] [--templates 1000000]

* **Ours**: ``facestyle recognize-video``'s code path (:func:`desktop.commands.
  recognize_video.recognize`): CameraSource (lossless, decoding one frame ahead in its own
  thread) -> CheckinPipeline (whole-frame scans for new faces, re-detection around each
  track, optical flow in between, batched embedding of due tracks only, votes, cooldown),
  enrolled one-shot from ``lin-manuel-miranda.png`` and ``alex-lacamoire.png`` into a
  temporary gallery. End-to-end frames/s from the start of decoding to the last JSON line.
* **Reference**: face_recognition's ``facerec_from_video_file.py`` rebuilt from dlib-bin's
  API, run in the same process: per frame, dlib's HOG detector (upsampled once, as
  ``face_recognition.face_locations`` does), the 5-point shape predictor, the ResNet
  descriptor, and the first enrolled person within L2 0.6 (tolerance); at full size and at
  half size. Frames/s from decoding to the per-frame answer.
* CPU milliseconds per frame (process time over all threads) beside frames/s: on a shared
  machine, wall-clock rates swing with other load; CPU time much less.
* The gallery search time of :class:`desktop.face.matching.Matcher` at 1,000,000 random
  templates (exact, one query and a batch of 8).

"faces" counts faces reported over all frames (ours: tracked faces shown, whether the
detector or optical flow placed the box on that frame; the reference: detections); a frame
is "labelled X" when any face on it carries the name X.

The process is pinned to ``--cores`` CPUs (Linux) and torch/OpenCV use as many threads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))
PEOPLE = {"Lin-Manuel Miranda": "lin-manuel-miranda.png", "Alex Lacamoire": "alex-lacamoire.png"}
#: Measured earlier on the project's 2-core machine with face_recognition itself.
EARLIER = "3.7 frames/s full size (168 faces, 139 frames Lin-Manuel Miranda, 0 Alex " \
          "Lacamoire); 8.2 frames/s half size"
TARGET_FPS = 30.0


def limit_cores(n: int) -> str:
    """Pin this process to ``n`` CPUs and size thread pools to match (before torch loads)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app sets it (desktop/__init__)
    pinned = "not pinned"
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:n]
        os.sched_setaffinity(0, cpus)
        pinned = f"pinned to CPUs {cpus}"
    import cv2
    import torch

    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return pinned


# -- the reference: face_recognition's video demo on dlib-bin -----------------------------
def reference_pipeline(clip: Path, photos: dict[str, Path], scale: float) -> dict:
    import cv2
    import dlib
    import numpy as np

    from desktop import model_files as mf

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(mf.require(mf.FACE_LANDMARKS)))
    encoder = dlib.face_recognition_model_v1(str(mf.require(mf.FACE_ENCODER)))

    def encodings(rgb: np.ndarray) -> list[np.ndarray]:
        return [np.array(encoder.compute_face_descriptor(rgb, predictor(rgb, box), 1))
                for box in detector(rgb, 1)]

    names = list(photos)
    known = []
    for name in names:
        rgb = cv2.cvtColor(cv2.imread(str(photos[name])), cv2.COLOR_BGR2RGB)
        known.append(encodings(rgb)[0])
    known_m = np.array(known)

    capture = cv2.VideoCapture(str(clip))
    frames = faces = 0
    per_name = dict.fromkeys(names, 0)
    cpu0 = time.process_time()
    start = time.perf_counter()
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if scale != 1.0:
            bgr = cv2.resize(bgr, (0, 0), fx=scale, fy=scale)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        labels = set()
        for enc in encodings(rgb):
            faces += 1
            dist = np.linalg.norm(known_m - enc, axis=1)
            match = [i for i in range(len(names)) if dist[i] <= 0.6]  # compare_faces
            if match:
                labels.add(names[match[0]])
        for name in labels:
            per_name[name] += 1
        frames += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    capture.release()
    return {"fps": frames / elapsed, "frames": frames, "faces": faces, "per_name": per_name,
            "cpu_ms": 1000 * cpu / max(1, frames)}


# -- ours ------------------------------------------------------------------------------------
def our_pipeline(clip: Path, photos: dict[str, Path], workdir: Path,
                 min_face: int | None) -> dict:
    from desktop.commands.gallery import load_engine
    from desktop.commands.recognize_video import recognize
    from desktop.face.pipeline import CheckinPipeline, GalleryCheckinLog, PipelineSettings
    from desktop.store import Gallery
    from desktop.store.enrol import enrol_from_images

    t0 = time.perf_counter()
    engine = load_engine()
    if hasattr(engine, "warm_up"):
        engine.warm_up()  # loads the models (lazy otherwise)
    load_s = time.perf_counter() - t0
    gallery = Gallery(workdir / "gallery.sqlite3")
    for name, photo in photos.items():
        enrol_from_images(gallery, engine, name, [photo])
    matcher = gallery.matcher(engine.model_id)
    settings = PipelineSettings(scan_min_face=min_face)
    pipeline = CheckinPipeline(engine, matcher, settings=settings,
                               checkin_log=GalleryCheckinLog(gallery, engine.model_id))
    pipeline.warm_up()
    jsonl = workdir / "frames.jsonl"
    cpu0 = time.process_time()
    with open(jsonl, "w", encoding="utf-8") as out:
        run = recognize(str(clip), pipeline, jsonl=out)
    cpu = time.process_time() - cpu0
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()[:-1]]
    per_name = dict.fromkeys(photos, 0)
    for line in lines:
        for name in {f["name"] for f in line["faces"] if f["name"]}:
            per_name[name] = per_name.get(name, 0) + 1
    stats = pipeline.stats()
    gallery.close()
    s = run.summary
    return {"fps": s["fps"], "frames": s["frames"], "faces": s["faces"], "per_name": per_name,
            "checkins": s["checkins"], "scans": s["scans"], "refreshes": s["refreshes"],
            "embedded": s["faces_embedded"], "load_s": load_s, "stats": stats,
            "model_id": engine.model_id, "cpu_ms": 1000 * cpu / max(1, s["frames"])}


def gallery_search(n: int, repeats: int = 5) -> dict:
    import numpy as np

    from desktop.face.matching import Matcher

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, 128), dtype=np.float32)
    emb *= 1.4 / np.linalg.norm(emb, axis=1, keepdims=True)
    people = np.arange(n) // 2  # two templates per person
    names = {int(p): f"p{p}" for p in np.unique(people)}
    t0 = time.perf_counter()
    matcher = Matcher(emb, people, names)
    build_s = time.perf_counter() - t0
    queries = emb[rng.integers(0, n, 8)] + 0.05 * rng.standard_normal((8, 128)).astype("f4")
    matcher.identify(queries[:1])  # warm
    one, batch = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        matcher.identify(queries[:1])
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        matcher.identify(queries)
        batch.append(time.perf_counter() - t)
    return {"n": n, "build_s": build_s, "one_ms": 1000 * sorted(one)[len(one) // 2],
            "batch8_ms": 1000 * sorted(batch)[len(batch) // 2]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2, help="CPUs to use (default 2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the dlib reference (about a minute and a half)")
    parser.add_argument("--templates", type=int, default=1_000_000,
                        help="gallery size for the search timing (0: skip)")
    parser.add_argument("--min-face", type=int, default=40,
                        help="smallest face our scans look for, px (default 40: the clip's "
                             "wide shot has 40-48 px faces, which the reference finds by "
                             "upsampling once)")
    args = parser.parse_args(argv)

    folder = args.data / "faces-dev" / "video"
    clip = folder / "short_hamilton_clip.mp4"
    if not clip.is_file():
        print(f"skipped: {clip} not found (set FACESTYLE_SHARED_DATA)")
        return 0
    photos = {name: folder / file for name, file in PEOPLE.items()}
    pinned = limit_cores(args.cores)
    sys.path.insert(0, str(ROOT))
    from desktop.device import describe_device, machine_line

    print(f"machine: {machine_line()}")
    print(f"clip: {clip.name}; {args.cores} cores ({pinned}); {describe_device()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FACESTYLE_HOME", tmp)
        ours = our_pipeline(clip, photos, Path(tmp), args.min_face)
    rows.append(("ours (recognize-video)", ours))
    if not args.no_reference:
        try:
            import dlib  # noqa: F401
        except ImportError:
            print("reference skipped: dlib-bin is not installed (pip install '.[test]')")
        else:
            rows.append(("face_recognition demo, full size", reference_pipeline(clip, photos, 1.0)))
            rows.append(("face_recognition demo, half size", reference_pipeline(clip, photos, 0.5)))

    lmm, al = PEOPLE
    print(f"\n{'pipeline':<34} {'frames/s':>9} {'CPU ms/frame':>13} {'faces':>6} "
          f"{'frames LMM':>11} {'frames AL':>10}")
    for label, r in rows:
        print(f"{label:<34} {r['fps']:>9.1f} {r['cpu_ms']:>13.1f} {r['faces']:>6} "
              f"{r['per_name'][lmm]:>11} {r['per_name'][al]:>10}")
    print("(CPU ms/frame: process CPU time over all threads, per frame; less sensitive to "
          "other load than frames/s)")
    print(f"(earlier, face_recognition itself on this project's 2-core machine: {EARLIER})")
    stats = ours["stats"]
    print(f"\nours: {ours['frames']} frames, {ours['scans']} whole-frame scans, "
          f"{ours['refreshes']} re-detections around tracks, {ours['embedded']} faces "
          f"embedded, {ours['checkins']} check-in(s); encoder {ours['model_id']}, loaded in "
          f"{ours['load_s']:.1f} s")
    print(f"ours, mean ms: scan {stats.scan_ms:.1f}, refresh {stats.refresh_ms:.1f} per "
          f"track, embed {stats.embed_ms_per_face:.1f} per face, match {stats.match_ms:.2f}, "
          f"flow+tracking {stats.track_ms:.2f} per frame")
    full = next((r for label, r in rows if label.endswith("full size")), None)
    verdict = [f"{ours['fps']:.1f} frames/s {'>=' if ours['fps'] >= TARGET_FPS else '<'} "
               f"{TARGET_FPS:.0f}"]
    if full is not None:
        verdict.append(f"LMM frames {ours['per_name'][lmm]} vs {full['per_name'][lmm]} "
                       f"({'ok' if ours['per_name'][lmm] >= full['per_name'][lmm] else 'fewer'})")
    wrong = ours["per_name"][al]
    verdict.append(f"AL frames {wrong} ({'ok' if not wrong else 'WRONG'})")
    print("target: " + "; ".join(verdict))
    if args.templates:
        g = gallery_search(args.templates)
        print(f"\ngallery search, {g['n']:,} templates (exact): {g['one_ms']:.1f} ms for one "
              f"face, {g['batch8_ms']:.1f} ms for 8 faces (matrix built in {g['build_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
