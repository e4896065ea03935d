"""``facestyle train-verifier``: fit the logistic-regression verification head."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-verifier",
        help="fit the verification head (logistic regression on |f_i - f_j| or chi-square)",
        description="Fit y_hat = sigma(sum_k w_k x_k + b) on pairs of the gallery's templates "
        "(all same-person pairs, sampled different-person pairs, weighted to balance), for "
        "the active encoder; or on ROOT/<person>/*.jpg when ROOT is given.",
    )
    p.add_argument("root", nargs="?", type=Path, help="folder with a sub-folder per person")
    p.add_argument("--features", choices=("abs", "chi2"), default="abs",
                   help="abs: |f_i - f_j|; chi2: (f_i - f_j)^2 / (|f_i| + |f_j|)")
    from desktop.commands.gallery import add_database_option

    add_database_option(p)
    p.add_argument("--negatives", type=float, default=3.0,
                   help="different-person pairs sampled per same-person pair (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--use", action="store_true",
                   help="make the head the decision rule afterwards")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from desktop.commands.model_common import build_engine, faces_with_bar, gallery_or_none
    from desktop.face.encoder_versions import EncoderRegistry
    from desktop.face.verifier import fit_verifier, verifier_path
    from desktop.jobs import fit_verifier_on_gallery

    registry = EncoderRegistry()
    model_id = registry.active_model_id()
    if args.root is not None:
        engine = build_engine(registry, None, args.device)
        data = faces_with_bar(args.root, engine)
        emb = engine.embed(data.chips)  # the engine runs the active encoder
        head = fit_verifier(emb, data.labels, args.features, model_id,
                            negatives_per_positive=args.negatives, seed=args.seed,
                            data=data.summary())
        path = head.save()
    else:
        with gallery_or_none(args.db, required=True) as gallery:
            head = fit_verifier_on_gallery(gallery, registry, args.features,
                                           negatives_per_positive=args.negatives,
                                           seed=args.seed)
        path = verifier_path(model_id)
        if head.data["stale"]:
            print(f"note: {head.data['stale']} templates are not yet embedded by {model_id} "
                  "and were left out (re-embedding runs when an encoder is activated)",
                  file=sys.stderr)
    print(json.dumps({"model_id": model_id, "features": head.features, "path": str(path),
                      **head.metrics}))
    if args.use:
        registry.set_rule("verifier")
        print("decision rule: verifier", file=sys.stderr)
    return 0
