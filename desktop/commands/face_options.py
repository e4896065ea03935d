"""Options shared by the face subcommands (``faces``, ``verify``) and the engine they make."""

from __future__ import annotations

import argparse


def add_engine_options(p: argparse.ArgumentParser) -> None:
    from desktop.face.api import DETECT_MAX_SIDE
    from desktop.face.detector import DEFAULT_MIN_FACE_SIZE

    g = p.add_argument_group("face engine")
    g.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the networks run (default: CUDA when present)")
    g.add_argument("--min-face-size", type=int, default=DEFAULT_MIN_FACE_SIZE, metavar="PX",
                   help=f"smallest face to look for, in pixels of the image as detected "
                        f"(default {DEFAULT_MIN_FACE_SIZE}: dlib's window; larger is faster)")
    g.add_argument("--upsample", type=int, default=0, metavar="N",
                   help="double the image N times before detecting, as dlib does, to find "
                        "faces down to 40, 20... px (slow)")
    g.add_argument("--max-side", type=int, default=DETECT_MAX_SIDE, metavar="PX",
                   help=f"shrink longer images to this for detection only "
                        f"(default {DETECT_MAX_SIDE})")
    g.add_argument("--fast", action="store_true",
                   help="OpenCV's Haar cascade instead of the CNN detector (rough; OpenCV 4)")
    g.add_argument("--jitter", action="store_true",
                   help="average descriptors over mirrored and shifted chips")


def make_engine(args: argparse.Namespace):
    from desktop.face.api import FaceEngine

    engine = FaceEngine(
        device=args.device,
        detector="haar" if args.fast else "cnn",
        min_face_size=args.min_face_size,
        upsample=args.upsample,
        detect_max_side=args.max_side,
        tta=args.jitter,
    )
    if args.fast:
        _ = engine.detector  # fail once, up front, where OpenCV has no Haar cascades
    return engine


def no_face_message(path: str, args: argparse.Namespace) -> str:
    hint = ("try --upsample 1 for small faces" if args.upsample == 0
            else "the faces may be too small, turned away or hidden")
    return f"no face found in {path} (faces under {args.min_face_size} px are not looked " \
           f"for; {hint})"
