"""``facestyle faces IMAGE...``: the faces in each image, as text or JSON lines.

JSON (one object per image and line)::

    {"image": path, "faces": [{"box": [x, y, w, h], "score": s,
      "landmarks": [[x, y] x 5], "descriptor": [128 floats]}], "error": null or message}

Boxes and landmarks are pixels of the upright image; ``descriptor`` (with
``--descriptors``) is f(x), compared by squared L2 distance (tau 0.36). Every image is
processed even when some fail; the exit status is 1 when any failed (an image without a
face is not a failure), with ``facestyle: N of M images failed`` on stderr (see
:mod:`desktop.commands.batch`).
"""

from __future__ import annotations

import argparse
import json
import sys

from desktop.commands.batch import exit_status_help, finish_batch
from desktop.commands.face_options import add_engine_options, make_engine, no_face_message


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("faces", help="find faces in images: boxes, landmarks, descriptors",
                       description="Find the faces in each image: box, score, 5 landmarks "
                       "(and the 128-D descriptor). An image without a face is reported, "
                       "not counted as failed.",
                       epilog=exit_status_help("images"))
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line")
    p.add_argument("--descriptors", action="store_true",
                   help="also compute each face's 128-D descriptor f(x)")
    add_engine_options(p)
    p.set_defaults(func=run)


def analyse(engine, path: str, descriptors: bool) -> dict:
    """One image's record: {"image", "faces", "error"}; errors are caught per image."""
    from desktop.errors import FacestyleError
    from desktop.face.api import load_image

    try:
        image = load_image(path)
        faces = engine.analyze(image) if descriptors else engine.detect(image)
    except FacestyleError as exc:
        return {"image": path, "faces": [], "error": exc.message}
    return {"image": path, "faces": [f.to_json(descriptors=descriptors) for f in faces],
            "error": None}


def print_text(record: dict, args: argparse.Namespace) -> None:
    path = record["image"]
    if record["error"]:
        print(f"{path}: ERROR {record['error']}")
        return
    faces = record["faces"]
    if not faces:
        print(f"{path}: {no_face_message(path, args)}")
        return
    print(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
    for i, face in enumerate(faces, 1):
        x, y, w, h = face["box"]
        line = f"  #{i} box x={x} y={y} w={w} h={h} px  score {face['score']:.3f}"
        if "landmarks" in face:
            (rx, ry), _, (lx, ly), *_ = face["landmarks"]
            line += f"  eye corners ({rx:.0f},{ry:.0f}) ({lx:.0f},{ly:.0f})"
        print(line)
        if "descriptor" in face:
            d = face["descriptor"]
            print(f"     descriptor [{', '.join(f'{v:+.3f}' for v in d[:4])}, ... {len(d)} values]")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    failures = 0
    for path in args.images:
        record = analyse(engine, path, args.descriptors)
        failures += record["error"] is not None
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            print_text(record, args)
            sys.stdout.flush()
    return finish_batch(failures, len(args.images), "images")
