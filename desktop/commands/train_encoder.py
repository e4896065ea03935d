"""``facestyle train-encoder``: fine-tune the encoder with the triplet loss; save a version."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The core's choices, spelled out so that building the parser does not import torch
# (tests/test_model_cli.py checks they match desktop.face.training).
MINING_RULES = ("all", "semi-hard", "batch-hard")
TRAIN_MODES = ("final", "last-level", "all")
SCHEDULES = ("cosine", "step", "constant")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-encoder",
        help="fine-tune the face encoder with the triplet loss (a new encoder version)",
        description="Fine-tune the face encoder with the triplet loss on ROOT/<person>/*.jpg "
        "(or the gallery), and save it as a new encoder version. Identities are split into "
        "training and held-out people; each epoch reports the held-out pair accuracy. "
        "The version is not activated unless --activate is given (and the guard agrees).",
    )
    p.add_argument("root", nargs="?", type=Path,
                   help="folder with one sub-folder of photos per person")
    p.add_argument("--gallery", action="store_true",
                   help="train on the gallery's people with 2+ templates instead of ROOT")
    from desktop.commands.gallery import add_database_option

    add_database_option(p)
    p.add_argument("--out", required=True, metavar="NAME", help="name of the new version")
    p.add_argument("--base", metavar="NAME", help="version to start from (default: active)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--margin", type=float, default=0.2,
                   help="triplet margin alpha, in squared-L2 units of d (default 0.2)")
    p.add_argument("--mining", choices=MINING_RULES, default="semi-hard")
    p.add_argument("--train", choices=TRAIN_MODES, default="last-level",
                   help="final: fc only; last-level: level0 + fc; all: everything")
    p.add_argument("--batch", default="8x4", metavar="PxK",
                   help="P people x K images per batch (default 8x4)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without a better held-out score")
    p.add_argument("--heldout", type=float, default=0.2,
                   help="fraction of people held out for evaluation (default 0.2)")
    p.add_argument("--tau", type=float, help="threshold on d (default: the gallery's, 0.36)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--log", type=Path, help="also write the per-epoch JSON lines here")
    p.add_argument("--activate", action="store_true",
                   help="activate the new version if the guard allows it")
    p.add_argument("--no-cache", action="store_true", help="detect faces again (ignore cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from desktop.commands.model_common import gallery_or_none

    with gallery_or_none(args.db, required=args.gallery) as gallery:
        return _run(args, gallery)


def _run(args: argparse.Namespace, gallery) -> int:
    from desktop.commands.model_common import (
        activate_and_report,
        build_engine,
        faces_with_bar,
        tau_setting,
    )
    from desktop.commands.progress import ProgressBar
    from desktop.errors import FacestyleError
    from desktop.face.encoder_versions import EncoderRegistry, check_name
    from desktop.face.training import EpochReport, TrainConfig, parse_batch_shape
    from desktop.face.training.jobs import fine_tune_version
    from desktop.jobs import dataset_from_gallery

    if (args.root is None) == (not args.gallery):
        raise FacestyleError("Give either ROOT (a folder per person) or --gallery.")
    check_name(args.out)
    registry = EncoderRegistry()
    if (registry.root / args.out).exists():
        raise FacestyleError(f"An encoder version named {args.out!r} already exists.",
                             "Choose another --out name.")
    p, k = parse_batch_shape(args.batch)
    tau = tau_setting(args.tau, gallery)
    config = TrainConfig(
        epochs=args.epochs, margin=args.margin, mining=args.mining, train=args.train,
        batch_p=p, batch_k=k, optimizer=args.optimizer, lr=args.lr, schedule=args.schedule,
        patience=args.patience, heldout_fraction=args.heldout, tau=tau, seed=args.seed,
        device=args.device, precision=args.precision)
    config.validate()

    if args.gallery:
        dataset = dataset_from_gallery(gallery)
        for skip in dataset.skipped:
            print(f"left out {skip.source}: {skip.reason}", file=sys.stderr)
    else:
        engine = build_engine(registry, None, args.device)
        dataset = faces_with_bar(args.root, engine, use_cache=not args.no_cache)
    print(f"data: {dataset.num_identities} people, {len(dataset)} face chips", file=sys.stderr)

    log_fh = open(args.log, "w", encoding="utf-8") if args.log else None  # noqa: SIM115
    bar: ProgressBar | None = None

    def on_event(event) -> None:
        nonlocal bar
        if isinstance(event, EpochReport):
            if bar is not None:
                bar.close()
                bar = None
            line = json.dumps(event.to_json())
            print(line)
            if log_fh:
                log_fh.write(line + "\n")
                log_fh.flush()
            return
        if bar is None:
            bar = ProgressBar(event.total_steps, "train", unit="step")
            bar.start -= event.seconds  # the bar starts after the first step ran
        bar.update(event.global_step, f"epoch {event.epoch} loss {event.loss:.4f} "
                   f"active {event.active_fraction:.2f}")

    gen = fine_tune_version(dataset, args.out, config, registry, args.base)
    try:
        while True:
            try:
                on_event(next(gen))
            except StopIteration as stop:
                outcome = stop.value
                break
    finally:
        if bar is not None:
            bar.close()
        if log_fh:
            log_fh.close()

    result, version = outcome.result, outcome.version
    base, final = result.baseline, result.final
    print(f"saved encoder version {version.name} ({version.model_id}) in {version.path}",
          file=sys.stderr)
    print(f"held-out ({result.data['heldout']}):", file=sys.stderr)
    print(f"  start  accuracy {base.accuracy:.4f}  ROC AUC {base.roc_auc:.4f}", file=sys.stderr)
    print(f"  kept   accuracy {final.accuracy:.4f} at tau {tau:g}  ROC AUC {final.roc_auc:.4f}"
          f"  (epoch {result.best_epoch}; {result.stop_reason})", file=sys.stderr)
    if not result.improved:
        print("  no epoch beat the starting model on the held-out pairs; the version "
              "keeps the starting weights unchanged.", file=sys.stderr)
    if args.activate:
        return activate_and_report(registry, version.name, gallery, tau, args.device)
    print(f"activate it with: facestyle encoders activate {version.name}", file=sys.stderr)
    return 0
