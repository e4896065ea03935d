"""``facestyle eval-pairs``: verification figures of an encoder (and its head) on a pair list."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from desktop.commands.batch import exit_status_help, finish_batch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-pairs",
        help="accuracy, best threshold, ROC AUC, EER and TAR@FAR on a pair list",
        description="Evaluate face verification on a pair list: a CSV whose header names the "
        "columns file_x, file_y and decision (or img1, img2, label / same; other columns are "
        "ignored; comma, semicolon or tab separated), a header-less CSV of "
        "'file_x,file_y,decision' rows, or LFW's pairs.txt. Decisions are yes/no or 1/0; "
        "paths are relative to --root. A photo where no face is found counts as a wrong "
        "answer and is listed. A photo that cannot be read (missing, damaged) is listed and "
        "its pairs are left out of the figures and counted; when no pair is left, the "
        "command fails naming the first few.",
        epilog=exit_status_help("images"),
    )
    p.add_argument("pairs", type=Path, help="the pair list (CSV or LFW pairs.txt)")
    p.add_argument("--root", type=Path, required=True, help="folder the image paths are under")
    p.add_argument("--encoder", metavar="NAME", help="encoder version (default: the active)")
    p.add_argument("--rule", choices=("threshold", "verifier"), default="threshold",
                   help="threshold: d <= tau; verifier: the head's p >= 0.5")
    p.add_argument("--tau", type=float, help="threshold on d (default: the gallery's, 0.36)")
    p.add_argument("--roc", type=Path, metavar="OUT.png",
                   help="save the ROC curve (both rules when a head exists)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    from desktop.commands.gallery import add_database_option

    add_database_option(p, "the gallery (a file or a postgresql:// URL), for its tau setting")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from desktop.commands.model_common import build_engine, gallery_or_none, tau_setting
    from desktop.commands.progress import ProgressBar
    from desktop.errors import FacestyleError
    from desktop.face.encoder_versions import EncoderRegistry
    from desktop.face.evaluation import (
        SERIES_COLORS,
        RocSeries,
        embed_pairs,
        evaluate_embeddings,
        read_pairs,
        save_roc_png,
    )
    from desktop.face.verifier import load_verifier

    root = args.root
    if not root.is_dir():
        raise FacestyleError(f"--root {root} is not a folder.")
    pairs = read_pairs(args.pairs, root)
    registry = EncoderRegistry()
    version = registry.get(args.encoder) if args.encoder else registry.active()
    with gallery_or_none(args.db) as gallery:
        tau = tau_setting(args.tau, gallery)
    head = None
    try:
        head = load_verifier(model_id=version.model_id)
    except FacestyleError:
        if args.rule == "verifier":
            raise
    engine = build_engine(registry, version.name, args.device)
    n_images = len({p.x for p in pairs} | {p.y for p in pairs})
    bar = ProgressBar(n_images, "images", unit="img")
    emb = embed_pairs(pairs, engine, progress=lambda f, m="": bar.update(round(f * n_images)))
    bar.close()

    def rel(path: str) -> str:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            return path

    emb.require_scorable(display=rel)
    results = evaluate_embeddings(emb, tau, head)
    chosen = results[args.rule]
    chosen.failed_images = [rel(p) for p in chosen.failed_images]
    chosen.unreadable_images = [rel(p) for p in chosen.unreadable_images]
    if args.roc:
        series = [RocSeries(f"threshold ({version.name})", results["threshold"],
                            SERIES_COLORS[0])]
        if "verifier" in results:
            series.append(RocSeries(f"verifier ({head.features})", results["verifier"],
                                    SERIES_COLORS[1]))
        save_roc_png(args.roc, series, title=f"ROC on {args.pairs.name}: {len(pairs)} pairs, "
                     f"encoder {version.name}")
    if args.json:
        print(json.dumps(chosen.to_json(), indent=2))
    else:
        for name, m in results.items():
            unit = "d <=" if name == "threshold" else "p >="
            left_out = (f"; {m.excluded_pairs} more left out (an image could not be read)"
                        if m.excluded_pairs else "")
            print(f"[{name}] {m.pairs} pairs ({m.positives} same, {m.negatives} different), "
                  f"encoder {version.name}{left_out}")
            print(f"  accuracy at {unit} {m.tau:.4g}: {m.accuracy:.4f}")
            print(f"  best threshold {unit} {m.best_threshold:.4g}: {m.best_accuracy:.4f}")
            print(f"  ROC AUC {m.roc_auc:.4f}  EER {m.eer:.4f}  TAR@FAR=1e-2 "
                  f"{m.tar_at_far['0.01']:.4f}  TAR@FAR=1e-3 {m.tar_at_far['0.001']:.4f}")
        for path, reason in sorted(emb.failed_images.items()):
            print(f"  failed: {rel(path)}: {reason} (its pairs count as wrong)")
        for path, reason in sorted(emb.unreadable.items()):
            print(f"  unreadable: {reason.replace(path, rel(path))} (its pairs are left out)")
        if args.roc:
            print(f"ROC saved to {args.roc}", file=sys.stderr)
    excluded = chosen.excluded_pairs
    return finish_batch(len(emb.unreadable), n_images, "images",
                        f" (could not be read; {excluded} pair{'s' if excluded != 1 else ''} "
                        "left out of the figures)")
