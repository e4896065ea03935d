"""How much does storing the aligned chip as JPEG move its descriptor?

Templates keep their 150x150 chip as a JPEG so that a new encoder can re-embed them. This
measures, for every face in faces-dev's photos, d = ||f(chip) - f(decode(encode(chip)))||^2
for the gallery's setting (quality 95, 4:4:4) beside cheaper settings, and the bytes per
chip, so the cost of re-embedding from JPEG can be compared with tau (0.36) and the
open-set margin (0.03).

    FACESTYLE_SHARED_DATA=../shared/data python bench/chip_roundtrip.py [--engine dlib]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_engine import load_engine  # noqa: E402

from desktop.face.types import squared_distance  # noqa: E402
from desktop.imageio import load_rgb  # noqa: E402
from desktop.store.chips import decode_chip, encode_chip  # noqa: E402

SETTINGS = [("gallery: q95 4:4:4", None), ("q90 4:2:0", (90, 2)), ("q75 4:2:0", (75, 2)),
            ("PNG (lossless)", "png")]


def roundtrip(chip: np.ndarray, setting) -> tuple[np.ndarray, int]:
    if setting is None:
        data = encode_chip(chip)
        return decode_chip(data), len(data)
    buf = io.BytesIO()
    if setting == "png":
        Image.fromarray(chip).save(buf, format="PNG", optimize=True)
    else:
        quality, subsampling = setting
        Image.fromarray(chip).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), len(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", default="auto", choices=["auto", "facestyle", "dlib"])
    p.add_argument("--data", type=Path, default=Path(os.environ.get(
        "FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data")))
    args = p.parse_args(argv)
    from desktop.device import machine_line

    print(f"machine: {machine_line()}")
    photos = sorted((args.data / "faces-dev").rglob("*.jp*g")) + sorted(
        (args.data / "faces-dev").rglob("*.png"))
    if not photos:
        print(f"no faces-dev photos under {args.data}; pass --data", file=sys.stderr)
        return 2
    engine = load_engine(args.engine)
    chips = []
    for path in photos:
        chips += [f.chip for f in engine.detect(load_rgb(path)) if f.chip is not None]
    chips = np.stack(chips)
    base = engine.embed(chips)
    print(f"engine {engine.model_id}: {len(chips)} faces from {len(photos)} photos")
    print(f"{'storage':<20} {'KB/chip':>8} {'d median':>9} {'d max':>8}")
    for label, setting in SETTINGS:
        pairs = [roundtrip(c, setting) for c in chips]
        again = engine.embed(np.stack([c for c, _ in pairs]))
        d = np.asarray(squared_distance(base, again))
        size = np.mean([n for _, n in pairs]) / 1024
        print(f"{label:<20} {size:>8.1f} {np.median(d):>9.5f} {d.max():>8.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
