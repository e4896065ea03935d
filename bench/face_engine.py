"""The face engine (detect + landmarks + align + embed) beside dlib's pipelines, same run.

    python bench/face_engine.py [--data ../shared/data] [--frames 20] [--cnn-photos 3]
                                [--threads N] [--max-photos N]

References, all from dlib-bin's own API:

* **face_recognition**'s pipeline, rebuilt: HOG ``get_frontal_face_detector`` with one
  upsampling (its default), 5-point ``shape_predictor``, ``face_recognition_model_v1``
  (``face_encodings`` with ``model="small"``), at full resolution as face_recognition runs.
* **dlib CNN**: ``cnn_face_detection_model_v1`` (the detector ours ports) + the same
  landmarks and encoder. It is slow on a CPU, so it runs on ``--cnn-photos`` photos only
  (at the size ours detects on) and on two frames.

Prints: model load times; per-photo time on the faces-dev photos; milliseconds of each
stage on the 640x360 frames of the faces-dev clip; encoder faces/s at batch 1 and 16;
one-shot identification on faces-dev/knn (one enrolment photo per person, every test face
named, strangers Unknown); then a Markdown table of the figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app sets it (desktop/__init__)
import torch  # noqa: E402

from desktop.device import cpu_has_native_bf16, describe_device, machine_line  # noqa: E402
from desktop.face.align import extract_chips  # noqa: E402
from desktop.face.api import FaceEngine, load_image  # noqa: E402
from desktop.face.types import DEFAULT_TAU, squared_distance  # noqa: E402
from desktop.imageio import downscale_to  # noqa: E402
from desktop.model_files import FACE_DETECTOR, FACE_ENCODER, FACE_LANDMARKS, require  # noqa: E402

#: Who is in each knn/test photo ("Unknown": someone not enrolled).
KNN_TRUTH = {
    "alex_lacamoire1.jpg": ["alex_lacamoire"],
    "johnsnow_test1.jpg": ["kit_harington"],
    "kit_with_rose.jpg": ["kit_harington", "rose_leslie"],
    "obama1.jpg": ["obama"],
    "obama_and_biden.jpg": ["obama", "biden", "Unknown"],
}
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return 1e3 * (time.perf_counter() - start), out


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(3):  # warm: first calls pack kernels and grow buffers
        fn()
    return statistics.median(timed(fn)[0] for _ in range(repeat))


class DlibPipeline:
    """face_recognition's pipeline (HOG) or dlib's CNN detector, with dlib's landmarks and
    encoder."""

    def __init__(self, dlib, cnn: bool = False, upsample: int = 1) -> None:
        self.dlib = dlib
        self.cnn = dlib.cnn_face_detection_model_v1(str(require(FACE_DETECTOR))) if cnn else None
        self.hog = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(str(require(FACE_LANDMARKS)))
        self.fr = dlib.face_recognition_model_v1(str(require(FACE_ENCODER)))
        self.upsample = upsample

    def detect(self, image: np.ndarray) -> list:
        if self.cnn is not None:
            return [d.rect for d in self.cnn(image, self.upsample)]
        return list(self.hog(image, self.upsample))

    def analyze(self, image: np.ndarray) -> np.ndarray:
        """(N, 128) descriptors, as face_recognition.face_encodings does it."""
        shapes = [self.sp(image, r) for r in self.detect(image)]
        codes = [np.array(self.fr.compute_face_descriptor(image, s, 1)) for s in shapes]
        return np.array(codes, np.float32).reshape(-1, 128)


def photos_of(data: Path, limit: int | None) -> list[Path]:
    photos = sorted(p for p in (data / "faces-dev").rglob("*")
                    if p.suffix.lower() in PHOTO_SUFFIXES)
    return photos[:limit] if limit else photos


def clip_frames(data: Path, count: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(data / "faces-dev" / "video" / "short_hamilton_clip.mp4"))
    frames, index = [], 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if index % 10 == 0:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        index += 1
    cap.release()
    return frames


# -- sections ------------------------------------------------------------------------------
def bench_load(dlib, figures: dict) -> None:
    from desktop.face.detector import FaceDetector
    from desktop.face.encoder import FaceEncoder

    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("FACESTYLE_HOME")
        os.environ["FACESTYLE_HOME"] = tmp
        try:
            cold, _ = timed(lambda: (FaceEncoder.from_dlib(device="cpu"),
                                     FaceDetector(device="cpu")))
            warm, _ = timed(lambda: (FaceEncoder.from_dlib(device="cpu"),
                                     FaceDetector(device="cpu")))
        finally:
            if old is None:
                os.environ.pop("FACESTYLE_HOME")
            else:
                os.environ["FACESTYLE_HOME"] = old
    ref, _ = timed(lambda: (dlib.face_recognition_model_v1(str(require(FACE_ENCODER))),
                            dlib.cnn_face_detection_model_v1(str(require(FACE_DETECTOR)))))
    print(f"load encoder + detector: first parse {cold:.0f} ms, from cache {warm:.0f} ms "
          f"(dlib's C++ deserialise {ref:.0f} ms)")
    figures["load encoder + detector (ms)"] = (f"{warm:.0f} cached, {cold:.0f} first", "",
                                                f"{ref:.0f}")


def bench_photos(engine: FaceEngine, fr: DlibPipeline, cnn: DlibPipeline, photos: list[Path],
                 cnn_photos: int, figures: dict) -> None:
    print(f"\nper photo (faces-dev, {len(photos)} photos; ours detects on <= "
          f"{engine.detect_max_side} px, face_recognition at full size, dlib CNN on the "
          f"first {cnn_photos} at ours' detection size)")
    print(f"{'photo':<28}{'size':>11}{'ours ms':>9}{'faces':>6}{'f_r ms':>9}{'faces':>6}"
          f"{'cnn ms':>9}{'faces':>6}")
    # Each pipeline runs over all photos in turn, never interleaved: after dlib's calls,
    # ours measured up to twice as slow on the 2-core machine (and the reverse may hold).
    images = [load_image(path) for path in photos]
    ours = [timed(lambda image=image: engine.analyze(image)) for image in images]
    refs = [timed(lambda image=image: fr.analyze(image)) for image in images]
    cnns = [timed(lambda image=image: cnn.analyze(downscale_to(image, engine.detect_max_side)[0]))
            for image in images[:cnn_photos]]
    ours_ms = [t for t, _ in ours]
    fr_ms = [t for t, _ in refs]
    cnn_ms = [t for t, _ in cnns]
    cnn_ours_ms = ours_ms[:cnn_photos]
    for i, (path, image) in enumerate(zip(photos, images, strict=True)):
        (t_ours, faces), (t_fr, codes) = ours[i], refs[i]
        cnn_cell = f"{'':>9}{'':>6}"
        if i < len(cnns):
            t_cnn, cnn_codes = cnns[i]
            cnn_cell = f"{t_cnn:>9.0f}{len(cnn_codes):>6}"
        size = f"{image.shape[1]}x{image.shape[0]}"
        print(f"{path.name[:27]:<28}{size:>11}{t_ours:>9.0f}{len(faces):>6}{t_fr:>9.0f}"
              f"{len(codes):>6}{cnn_cell}")
    print(f"{'median':<39}{statistics.median(ours_ms):>9.0f}{'':>6}"
          f"{statistics.median(fr_ms):>9.0f}")
    figures["photo, whole pipeline (median ms)"] = (
        f"{statistics.median(ours_ms):.0f}", f"{statistics.median(fr_ms):.0f}",
        f"{statistics.median(cnn_ms):.0f} ({len(cnn_ms)} photos; ours "
        f"{statistics.median(cnn_ours_ms):.0f} on them)" if cnn_ms else "-")


def bench_frame_stages(engine: FaceEngine, fr: DlibPipeline, cnn: DlibPipeline,
                       frames: list[np.ndarray], figures: dict) -> None:
    from desktop.face.detector import FaceDetector

    frames = [f for f in frames if engine.detect(f)] or frames
    n = len(frames)
    print(f"\nstages at 640x360 ({n} frames of the faces-dev clip with a face; ms, median)")

    cpu_ms: dict[str, float] = {}

    def per_frame(name: str, fn: Callable[[np.ndarray], object]) -> float:
        """Median wall ms per frame; the median process CPU ms goes to ``cpu_ms`` (on a
        busy machine, CPU / threads estimates the wall time a quiet one would show)."""
        for f in frames[:2]:
            fn(f)
        walls, cpus = [], []
        for f in frames:
            cpu = time.process_time()
            walls.append(timed(lambda f=f: fn(f))[0])
            cpus.append(1e3 * (time.process_time() - cpu))
        cpu_ms[name] = statistics.median(cpus)
        return statistics.median(walls)

    det = engine.detector
    fp32 = FaceDetector(device=det.device, precision="fp32")
    rows = {
        f"detect ({det.precision}, min face {det.min_face_size} px)": det.detect,
        "detect (fp32, min face 80 px: dlib's computation)": fp32.detect,
        "detect (fp32, min face 120 px)": lambda f: fp32.detect(f, min_face_size=120),
    }
    if det.precision != "fp32":
        rows[f"detect ({det.precision}, min face 120 px)"] = \
            lambda f: det.detect(f, min_face_size=120)
    detect_ms = {name: per_frame(name, fn) for name, fn in rows.items()}
    boxes = [np.array([f.box for f in det.detect(f)], np.float64) for f in frames]
    marks = [engine.landmarks.predict(f, b) for f, b in zip(frames, boxes, strict=True)]
    lm_ms = statistics.median(timed(lambda f=f, b=b: engine.landmarks.predict(f, b))[0]
                              for f, b in zip(frames, boxes, strict=True))
    chips = [extract_chips(f, m) for f, m in zip(frames, marks, strict=True)]
    al_ms = statistics.median(timed(lambda f=f, m=m: extract_chips(f, m))[0]
                              for f, m in zip(frames, marks, strict=True))
    engine.embed(chips[0])
    em_ms = statistics.median(timed(lambda c=c: engine.embed(c))[0] for c in chips)

    rects = [fr.hog(f, 1) for f in frames]
    hog_ms = statistics.median(timed(lambda f=f: fr.hog(f, 1))[0] for f in frames)
    hog0_ms = statistics.median(timed(lambda f=f: fr.hog(f, 0))[0] for f in frames)
    shapes = [[fr.sp(f, r) for r in rs] for f, rs in zip(frames, rects, strict=True)]
    frl_ms = statistics.median(timed(lambda f=f, rs=rs: [fr.sp(f, r) for r in rs])[0]
                               for f, rs in zip(frames, rects, strict=True))
    fr_chips = [[fr.dlib.get_face_chip(f, s, 150, 0.25) for s in ss]
                for f, ss in zip(frames, shapes, strict=True)]
    fra_ms = statistics.median(
        timed(lambda f=f, ss=ss: [fr.dlib.get_face_chip(f, s, 150, 0.25) for s in ss])[0]
        for f, ss in zip(frames, shapes, strict=True))
    # dlib's encoder on its own chips (or on ours, where HOG found no face in any frame)
    ref_chips = [cs for cs in fr_chips if cs] or [list(c) for c in chips]
    fre_ms = statistics.median(
        timed(lambda cs=cs: [fr.fr.compute_face_descriptor(c) for c in cs])[0]
        for cs in ref_chips)
    cnn_ms = statistics.median(timed(lambda f=f: cnn.detect(f))[0] for f in frames[:2])
    faces_ours = sum(len(b) for b in boxes)
    faces_fr = sum(len(r) for r in rects)
    threads = torch.get_num_threads()
    print(f"{'stage':<52}{'ours':>9}{'face_recognition':>18}{'dlib CNN':>10}"
          f"{'ours CPU ms / ' + str(threads) + ' threads':>28}")
    first = True
    for name, ms in detect_ms.items():
        ref = f"{hog_ms:>18.1f}{cnn_ms:>10.0f}" if first else f"{'':>28}"
        print(f"{name:<52}{ms:>9.1f}{ref}{cpu_ms[name] / threads:>28.1f}")
        first = False
    print(f"{'detect (HOG without upsampling)':<52}{'':>9}{hog0_ms:>18.1f}")
    print(f"{'landmarks (all faces of a frame)':<52}{lm_ms:>9.2f}{frl_ms:>18.2f}")
    print(f"{'align (150 px chips)':<52}{al_ms:>9.2f}{fra_ms:>18.2f}")
    print(f"{'embed (all faces of a frame)':<52}{em_ms:>9.1f}{fre_ms:>18.1f}")
    print(f"faces found in the {n} frames: ours {faces_ours}, HOG x1 upsampling {faces_fr}")
    main_detect = next(iter(detect_ms.values()))
    figures["640x360: detect (ms; CPU ms / threads in brackets)"] = (
        "; ".join(f"{v:.1f} [{cpu_ms[k] / threads:.1f}] {k.removeprefix('detect ')}"
                  for k, v in detect_ms.items()),
        f"{hog_ms:.1f} (HOG, upsample 1); {hog0_ms:.1f} (upsample 0)", f"{cnn_ms:.0f}")
    figures["640x360: landmarks / align / embed (ms per frame)"] = (
        f"{lm_ms:.2f} / {al_ms:.2f} / {em_ms:.1f}", f"{frl_ms:.2f} / {fra_ms:.2f} / {fre_ms:.1f}",
        "same as face_recognition")
    figures["640x360: whole frame (ms)"] = (
        f"{main_detect + lm_ms + al_ms + em_ms:.1f}", f"{hog_ms + frl_ms + fra_ms + fre_ms:.1f}",
        f"{cnn_ms + frl_ms + fra_ms + fre_ms:.0f}")


def bench_encoder(engine: FaceEngine, fr: DlibPipeline, chip: np.ndarray, repeat: int,
                  figures: dict) -> None:
    from desktop.face.encoder import ChipEmbedder

    print("\nencoder throughput (faces/s; one face repeated)")
    embedders = {"ours fp32": engine.embedder}
    if cpu_has_native_bf16() or engine.embedder.device.type == "cuda":
        embedders["ours bf16"] = ChipEmbedder(engine.embedder.model, precision="bf16")
    cells: dict[int, dict[str, float]] = {}
    for batch in (1, 16):  # ours first, then dlib: never interleaved (see bench_photos)
        chips = np.repeat(chip[None], batch, axis=0)
        cells[batch] = {name: batch / median_ms(lambda e=e, c=chips: e(c), repeat) * 1e3
                        for name, e in embedders.items()}
    for batch in (1, 16):
        listed = list(np.repeat(chip[None], batch, axis=0))
        cells[batch]["dlib"] = batch / median_ms(
            lambda c=listed: fr.fr.compute_face_descriptor(c), repeat) * 1e3
    for batch, row in cells.items():
        print(f"  batch {batch:>2}: " + ", ".join(f"{k} {v:.0f}" for k, v in row.items()))
        ours = ", ".join(f"{v:.0f} {k.removeprefix('ours ')}" for k, v in row.items()
                         if k.startswith("ours"))
        figures[f"encoder, batch {batch} (faces/s)"] = (ours, f"{row['dlib']:.0f}", "")


def identify(gallery: np.ndarray, names: list[str], codes: np.ndarray) -> list[str]:
    out = []
    for code in codes:
        d = squared_distance(gallery, code)
        out.append(names[int(np.argmin(d))] if np.min(d) < DEFAULT_TAU else "Unknown")
    return out


def bench_identification(engine: FaceEngine, fr: DlibPipeline, data: Path,
                         figures: dict) -> None:
    knn = data / "faces-dev" / "knn"
    people = sorted(p for p in (knn / "train").iterdir() if p.is_dir())
    print(f"\none-shot identification: {len(people)} people enrolled from one photo each "
          f"(knn/train), tau {DEFAULT_TAU} (squared L2)")
    results = {}
    for label, embed in (("ours", lambda im: np.array([f.descriptor
                                                       for f in engine.analyze(im)])),
                         ("face_recognition", fr.analyze)):
        names, gallery = [], []
        for person in people:
            codes = embed(load_image(sorted(person.iterdir())[0]))
            if len(codes):
                names.append(person.name)
                gallery.append(codes[0])
        gallery = np.stack(gallery)
        right = expected = wrong = 0
        lines = []
        for photo, truth in KNN_TRUTH.items():
            found = identify(gallery, names, embed(load_image(knn / "test" / photo)))
            hits = sum((Counter(found) & Counter(truth)).values())
            right += hits
            expected += len(truth)
            wrong += len(found) - hits
            lines.append(f"{photo}: {', '.join(found) or 'no face'}")
        results[label] = (right, expected, wrong)
        print(f"  {label}: {right}/{expected} faces named right, {wrong} wrong or extra; "
              + "; ".join(lines))
    figures["one-shot identification (knn)"] = (
        *(f"{r}/{e} right, {w} wrong" for r, e, w in results.values()), "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--frames", type=int, default=20, help="clip frames for the stages")
    parser.add_argument("--cnn-photos", type=int, default=3,
                        help="photos dlib's (slow) CNN detector runs on")
    parser.add_argument("--max-photos", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=30, help="runs per encoder figure")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    try:
        import dlib
    except ImportError:
        print("dlib (dlib-bin, the test extra) is not installed: nothing to compare with.")
        return 1
    if not (args.data / "faces-dev").is_dir():
        print(f"no faces-dev data under {args.data}; pass --data")
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine_line()}")
    print(f"device: {describe_device()}; dlib {dlib.__version__}, "
          f"{'with' if dlib.DLIB_USE_CUDA else 'without'} CUDA")

    figures: dict[str, tuple[str, ...]] = {}
    bench_load(dlib, figures)
    engine = FaceEngine().warm_up()
    fr = DlibPipeline(dlib, cnn=False, upsample=1)
    cnn = DlibPipeline(dlib, cnn=True, upsample=0)
    frames = clip_frames(args.data, args.frames)
    bench_frame_stages(engine, fr, cnn, frames, figures)
    chip = next(f.chip for frame in frames for f in engine.detect(frame))
    bench_encoder(engine, fr, chip, args.repeat, figures)
    bench_identification(engine, fr, args.data, figures)
    bench_photos(engine, fr, cnn, photos_of(args.data, args.max_photos), args.cnn_photos,
                 figures)

    print("\n| figure | ours | face_recognition (dlib HOG) | dlib CNN detector |")
    print("| --- | --- | --- | --- |")
    for name, cells in figures.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
