"""``facestyle verify IMG1 IMG2``: are these the same person?

Prints d = ||f(x1) - f(x2)||^2 (squared L2 between the two descriptors), the plain L2
distance sqrt(d), the threshold tau (in squared L2) and the decision "same person" when
d < tau. When a photo shows several faces, the largest is used (and said so).

Exit status, as ``cmp`` and ``diff``: 0 same person, 1 different people, 2 trouble (a
photo unreadable or without a face).
"""

from __future__ import annotations

import argparse
import json
import math

from desktop.commands.face_options import add_engine_options, make_engine, no_face_message


def register(sub: argparse._SubParsersAction) -> None:
    from desktop.face.types import DEFAULT_TAU

    p = sub.add_parser("verify", help="compare the faces in two photos (same person or not)")
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("image2", metavar="IMG2")
    p.add_argument("--tau", type=float, default=DEFAULT_TAU,
                   help=f"threshold on d, in squared L2 (default {DEFAULT_TAU:.2f}, "
                        "dlib's 0.6 in plain L2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_engine_options(p)
    p.set_defaults(func=run)


def _largest_face(engine, path: str, args: argparse.Namespace):
    from desktop.errors import FacestyleError
    from desktop.face.api import load_image

    faces = engine.detect(load_image(path))
    if not faces:
        raise FacestyleError(no_face_message(path, args),
                             "Use a photo where the face is clear, frontal and well lit.")
    return max(faces, key=lambda f: f.box[2] * f.box[3]), len(faces)


def run(args: argparse.Namespace) -> int:
    from desktop.errors import FacestyleError

    if not args.tau > 0:
        raise FacestyleError(f"--tau must be positive, not {args.tau}")
    engine = make_engine(args)
    picked = [_largest_face(engine, path, args) for path in (args.image1, args.image2)]
    codes = engine.embed([face for face, _ in picked])
    d = float(((codes[0] - codes[1]) ** 2).sum())
    same = d < args.tau
    if args.json:
        print(json.dumps({
            "images": [args.image1, args.image2],
            "boxes": [list(face.box) for face, _ in picked],
            "faces_found": [count for _, count in picked],
            "d_squared_l2": d, "l2": math.sqrt(d), "tau_squared_l2": args.tau,
            "same_person": same, "model_id": engine.model_id,
        }))
    else:
        for path, (face, count) in zip((args.image1, args.image2), picked, strict=True):
            note = f" (largest of {count} faces)" if count > 1 else ""
            x, y, w, h = face.box
            print(f"{path}: face at x={x} y={y} w={w} h={h} px{note}")
        print(f"d   = {d:.4f}  (squared L2 distance between the descriptors)")
        print(f"L2  = {math.sqrt(d):.4f}")
        print(f"tau = {args.tau:.4f}  (squared L2; {math.sqrt(args.tau):.2f} in plain L2)")
        verdict = "SAME person (d < tau)" if same else "DIFFERENT people (d >= tau)"
        print(f"decision: {verdict}")
    return 0 if same else 1
