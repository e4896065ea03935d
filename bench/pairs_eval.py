"""Pair evaluation, triplet training speed and fine-tune epoch time, beside references.

Three parts, each printed beside a reference measured in the same run:

1. ``eval-pairs`` on a pair list (``--pairs LIST --root DIR``; by default a list built from
   faces-dev: every pair of its single-person photos of known identity). Ours: the app's
   engine (active encoder), plain threshold and, when trained, the verification head.
   Reference: dlib itself (dlib-bin: HOG detector, 5-point shape predictor, ResNet
   ``compute_face_descriptor``) on the same pairs, when installed.
2. Training speed of the dlib encoder with the triplet loss, in triplets per second, for
   each training mode. Ours: one forward pass per image of a P x K batch, every valid
   triplet read off the distance matrix. Reference: the textbook way, each triplet
   (A, P, N) as three images through the network, on the same number of images per step.
   CPU always (fp32, plus bf16 autocast to show why the CPU default is fp32), and CUDA
   when present.
3. One fine-tune epoch (``train-encoder`` defaults: last-level, semi-hard, 8x4) over 100
   generated identities x 5 images (``desktop.face.training.synthetic``). Reference: a
   plain embedding pass over the same 500 chips.

    python bench/pairs_eval.py [--pairs LIST --root DIR] [--device auto|cpu|cuda]
                               [--skip eval,speed,epoch] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# OpenMP threads that spin while waiting make 2-thread runs several times slower on a
# shared machine (see the face engine's notes); wait passively unless told otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from desktop.device import cpu_kind, describe_device, machine_line, pick_device  # noqa: E402
from desktop.face.evaluation import (  # noqa: E402
    PairEmbeddings,
    embed_pairs,
    evaluate_embeddings,
    read_pairs,
)

SHARED = ROOT.parent / "shared" / "data" / "faces-dev"

#: faces-dev photos of exactly one known person (identical files listed once).
FACES_DEV_IDENTITIES = {
    "alex_lacamoire": ["knn/train/alex_lacamoire/img1.jpg", "knn/test/alex_lacamoire1.jpg",
                       "video/alex-lacamoire.png"],
    "biden": ["knn/train/biden/biden.jpg", "knn/train/biden/biden2.jpg"],
    "kit_harington": ["knn/train/kit_harington/john1.jpeg", "knn/train/kit_harington/john2.jpeg",
                      "knn/test/johnsnow_test1.jpg"],
    "obama": ["knn/train/obama/obama.jpg", "knn/train/obama/obama2.jpg", "knn/test/obama1.jpg",
              "images/obama3.jpg", "images/obama-480p.jpg", "images/obama-1080p.jpg",
              "images/obama_partial_face.jpg", "images/obama_partial_face2.jpg"],
    "rose_leslie": ["knn/train/rose_leslie/img1.jpg", "knn/train/rose_leslie/img2.jpg"],
    "lin_manuel_miranda": ["video/lin-manuel-miranda.png"],
}


def faces_dev_pair_list(folder: Path) -> Path:
    """Every pair of the faces-dev photos above, as a CSV relative to faces-dev."""
    files = [(f, person) for person, fs in FACES_DEV_IDENTITIES.items() for f in fs]
    lines = ["file_x,file_y,decision"]
    for (fa, pa), (fb, pb) in itertools.combinations(files, 2):
        lines.append(f"{fa},{fb},{'yes' if pa == pb else 'no'}")
    out = folder / "faces_dev_pairs.csv"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# -- 1. pair evaluation ------------------------------------------------------------------


class DlibReference:
    """dlib's own pipeline (dlib-bin), the reference for eval-pairs."""

    model_id = "dlib (dlib-bin)"

    def __init__(self) -> None:
        import dlib

        from desktop.model_files import FACE_ENCODER, FACE_LANDMARKS, require

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(require(FACE_LANDMARKS)))
        self.encoder = dlib.face_recognition_model_v1(str(require(FACE_ENCODER)))

    def descriptor(self, path: Path) -> np.ndarray | None:
        from desktop.imageio import load_rgb

        img = load_rgb(path)
        rects = self.detector(img, 1)
        if not rects:
            return None
        main = max(rects, key=lambda r: r.area())
        shape = self.shape(img, main)
        return np.asarray(self.encoder.compute_face_descriptor(img, shape), np.float32)


def dlib_pair_embeddings(pairs, ref: DlibReference) -> PairEmbeddings:
    cache: dict[Path, np.ndarray | None] = {}
    failed = {}
    for path in sorted({p.x for p in pairs} | {p.y for p in pairs}):
        cache[path] = ref.descriptor(path)
        if cache[path] is None:
            failed[str(path)] = "no face found"
    nan = np.full(128, np.nan, np.float32)
    x = np.stack([cache[p.x] if cache[p.x] is not None else nan for p in pairs])
    y = np.stack([cache[p.y] if cache[p.y] is not None else nan for p in pairs])
    ok = np.array([cache[p.x] is not None and cache[p.y] is not None for p in pairs])
    return PairEmbeddings(x, y, np.array([p.same for p in pairs]), ok, failed, ref.model_id)


def part_eval(args, out: dict) -> None:
    from desktop.face.encoder_versions import EncoderRegistry
    from desktop.face.verifier import load_verifier

    tmp = Path(tempfile.mkdtemp(prefix="pairs-eval-"))
    if args.pairs:
        pair_file, root = Path(args.pairs), Path(args.root)
    else:
        if not SHARED.is_dir():
            print(f"== eval-pairs: skipped (no pair list given, and {SHARED} is absent)")
            return
        pair_file, root = faces_dev_pair_list(tmp), SHARED
    pairs = read_pairs(pair_file, root)
    images = len({p.x for p in pairs} | {p.y for p in pairs})
    n_same = sum(p.same for p in pairs)
    print(f"== eval-pairs on {pair_file.name}: {len(pairs)} pairs ({n_same} same, "
          f"{len(pairs) - n_same} different) over {images} images")
    print(f"   command: facestyle eval-pairs {pair_file} --root {root} --json")
    registry = EncoderRegistry()
    version = registry.active()
    engine = registry.build_engine(version.name, device=str(pick_device(args.device)))
    t = time.perf_counter()
    ours = embed_pairs(pairs, engine)
    ours_s = time.perf_counter() - t
    try:
        head = load_verifier(model_id=version.model_id)
    except Exception:
        head = None
    rows = [(f"ours: {version.name}, threshold", evaluate_embeddings(ours, args.tau)["threshold"],
             ours_s)]
    if head is not None:
        rows.append((f"ours: {version.name}, verifier ({head.features})",
                     evaluate_embeddings(ours, args.tau, head)["verifier"], ours_s))
    try:
        ref = DlibReference()
        t = time.perf_counter()
        theirs = dlib_pair_embeddings(pairs, ref)
        rows.append(("reference: dlib HOG + 5pt + ResNet",
                     evaluate_embeddings(theirs, args.tau)["threshold"],
                     time.perf_counter() - t))
    except ImportError:
        print("   (dlib-bin is not installed: no dlib reference)")
    print(f"   {'pipeline':44s} {'acc@tau':>8s} {'best thr':>9s} {'best acc':>9s} {'AUC':>7s} "
          f"{'EER':>6s} {'TAR@1e-2':>9s} {'TAR@1e-3':>9s} {'failed':>6s} {'ms/img':>7s}")
    for name, m, seconds in rows:
        print(f"   {name:44s} {m.accuracy:8.4f} {m.best_threshold:9.4f} {m.best_accuracy:9.4f} "
              f"{m.roc_auc:7.4f} {m.eer:6.3f} {m.tar_at_far['0.01']:9.4f} "
              f"{m.tar_at_far['0.001']:9.4f} {len(m.failed_images):6d} "
              f"{1000 * seconds / images:7.1f}")
        out.setdefault("eval", []).append({"pipeline": name, **m.to_json(),
                                           "ms_per_image": 1000 * seconds / images})
    for path in sorted(ours.failed_images):
        print(f"   ours: no face in {Path(path).relative_to(root)}")


# -- 2. training speed -------------------------------------------------------------------


def _step_time(model, x, y, mode: str, precision: str, naive: bool, reps: int) -> float:
    from desktop.face.training import select_trainable, triplet_loss

    params = select_trainable(model, mode)
    opt = torch.optim.Adam(params, lr=1e-6)
    device = x.device
    times = []
    for _ in range(reps + 1):  # the first is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            e = model(x).float()
        if naive:  # rows are (A, P, N) triples
            a, p, n = e[0::3], e[1::3], e[2::3]
            d_ap = ((a - p) ** 2).sum(1)
            d_an = ((a - n) ** 2).sum(1)
            loss = torch.clamp(d_ap - d_an + 0.2, min=0).mean()
        else:
            loss, _ = triplet_loss(e, y, 0.2, "all")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def part_speed(args, out: dict) -> None:
    from desktop.face.encoder import FaceEncoder
    from desktop.face.training.synthetic import synthetic_faces

    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and args.device != "cpu":
        devices.append(torch.device("cuda"))
    p, k = 8, 4
    data = synthetic_faces(p, k, 150, seed=1)
    chips = torch.as_tensor(data.chips).permute(0, 3, 1, 2).float()
    labels = torch.as_tensor(data.labels)
    valid = p * k * (k - 1) * (p - 1) * k  # (A, P, N) triplets in one P x K batch
    n_naive = (p * k) // 3  # triplets of 3 images within the same image budget
    naive_x = chips[: 3 * n_naive]
    print(f"== training speed, dlib encoder, batch {p}x{k} = {p * k} chips of 150x150; "
          f"ours: {valid} triplets per step from one pass; reference: {n_naive} explicit "
          f"(A, P, N) triplets = {3 * n_naive} images per step")
    print(f"   {'device':36s} {'train':10s} {'prec':5s} {'ours s/step':>11s} "
          f"{'ours trip/s':>11s} {'ref s/step':>10s} {'ref trip/s':>10s} {'img/s':>7s}")
    for device in devices:
        model = FaceEncoder.from_dlib(device=device)
        for mode in ("final", "last-level", "all"):
            for prec in ("fp32", "bf16"):
                reps = 1 if (device.type == "cpu" and prec == "bf16") else args.reps
                ours = _step_time(model, chips.to(device), labels.to(device), mode, prec,
                                  False, reps)
                ref = _step_time(model, naive_x.to(device), labels.to(device), mode, prec,
                                 True, reps)
                row = {"device": describe_device(device), "train": mode, "precision": prec,
                       "ours_s_per_step": ours, "ours_triplets_per_s": valid / ours,
                       "ref_s_per_step": ref, "ref_triplets_per_s": n_naive / ref,
                       "images_per_s": p * k / ours}
                out.setdefault("speed", []).append(row)
                print(f"   {row['device'][:36]:36s} {mode:10s} {prec:5s} {ours:11.3f} "
                      f"{valid / ours:11.0f} {ref:10.3f} {n_naive / ref:10.1f} "
                      f"{p * k / ours:7.1f}")


# -- 3. one fine-tune epoch --------------------------------------------------------------


def part_epoch(args, out: dict) -> None:
    from desktop.face.encoder import ChipEmbedder, FaceEncoder
    from desktop.face.training import TrainConfig, run_training, split_for_training, train_encoder
    from desktop.face.training.synthetic import synthetic_faces

    device = pick_device(args.device)
    t = time.perf_counter()
    data = synthetic_faces(100, 5, 150, seed=0)
    gen_s = time.perf_counter() - t
    print(f"== one fine-tune epoch over 100 generated identities x 5 images ({gen_s:.1f} s to "
          f"draw them), {describe_device(device)}")
    print("   command: facestyle train-encoder ROOT --out NAME --epochs 1 (defaults: "
          "--train last-level --mining semi-hard --batch 8x4)")
    base = FaceEncoder.from_dlib(device=device)
    embedder = ChipEmbedder(base)
    embedder(data.chips[:8])
    t = time.perf_counter()
    embedder(data.chips)
    embed_s = time.perf_counter() - t
    print(f"   reference: embedding the 500 chips once (ChipEmbedder fp32): {embed_s:.2f} s")
    for mode in args.epoch_modes.split(","):
        cfg = TrainConfig(epochs=1, train=mode, device=str(device))
        train, held = split_for_training(data, cfg)
        model = FaceEncoder.from_dlib(device=device)
        t = time.perf_counter()
        result = run_training(train_encoder(model, train, held, cfg))
        total = time.perf_counter() - t
        steps = len(result.step_losses)
        epoch = result.history[1]
        print(f"   ours, --train {mode:10s}: epoch {epoch.seconds:6.2f} s = "
              f"{epoch.seconds - epoch.eval_seconds:6.2f} s for {steps} steps of "
              f"{cfg.batch_p}x{cfg.batch_k} on {len(train)} images + {epoch.eval_seconds:5.2f} s "
              f"scoring {result.data['heldout_pairs']} held-out and "
              f"{result.data['calibration_pairs']} calibration pairs; whole run {total:6.2f} s;"
              f" held-out AUC {result.baseline.roc_auc:.4f} -> {epoch.heldout_auc:.4f}")
        out.setdefault("epoch", []).append({
            "train": mode, "epoch_s": epoch.seconds, "eval_s": epoch.eval_seconds,
            "run_s": total, "steps": steps,
            "device": describe_device(device), "embed_500_s": embed_s,
            "heldout_auc_before": result.baseline.roc_auc, "heldout_auc_after": epoch.heldout_auc})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", help="pair list (CSV or LFW pairs.txt); default: faces-dev")
    ap.add_argument("--root", help="folder the pair list's paths are under")
    ap.add_argument("--tau", type=float, default=0.36)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--reps", type=int, default=3, help="timed steps per speed row")
    ap.add_argument("--epoch-modes", default="last-level,all")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: eval,speed,epoch")
    ap.add_argument("--json", type=Path, help="write the figures as JSON")
    args = ap.parse_args()
    if args.pairs and not args.root:
        ap.error("--pairs needs --root")
    skip = set(filter(None, args.skip.split(",")))
    out: dict = {"torch_threads": torch.get_num_threads(), "cpu_kind": cpu_kind()}
    print(f"machine: {machine_line()}")
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, torch {torch.__version__}, "
          f"{describe_device(torch.device('cpu'))}"
          + (f", {describe_device(torch.device('cuda'))}" if torch.cuda.is_available() else ""))
    if "eval" not in skip:
        part_eval(args, out)
    if "speed" not in skip:
        part_speed(args, out)
    if "epoch" not in skip:
        part_epoch(args, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
