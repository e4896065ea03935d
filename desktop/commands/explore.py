"""``facestyle explore``: what the app's ConvNets learn, from the command line.

    facestyle explore top-patches FOLDER --network vgg19 --layer relu3_1 --units 0-15 \\
        --top 9 --json OUT.json --sheet OUT.png
    facestyle explore top-patches FOLDER --network encoder --layer level3   # faces in FOLDER
    facestyle explore top-patches --gallery --network encoder --layer level2
    facestyle explore visualize --network vgg19 --layer relu4_1 --unit 7 -o OUT.png
    facestyle explore conv-shape --dims 1 --input 14 --filter 5 --filters 16
    facestyle explore layers --network encoder

``top-patches`` writes, per unit asked for, its k strongest entries (image, feature-map
position, receptive-field box in the analysed image's pixels and in the file's,
activation), strongest first, as JSON, and their 3 x 3 tiles as one PNG sheet. The same
index (and its on-disk cache) as the Explore tab.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from desktop.errors import FacestyleError

DEFAULT_LAYER = {"vgg19": "relu3_1", "encoder": "level3"}
#: Appended to a help text, hides argparse's "(default: None)" where it says nothing.
_NO_DEFAULT = "%(default).0s"


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers like 14 or 32,32: {text}") from exc


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="what the ConvNets learn: top patches per unit, "
                       "feature visualisation, conv shapes",
                       description="Look inside VGG19 (the style network) and the face "
                       "encoder f(x).")
    commands = p.add_subparsers(dest="explore_command", metavar="WHAT", required=True)

    t = commands.add_parser(
        "top-patches", help="the image patches that activate each unit most",
        description="Index FOLDER (recursively) and show, per unit of a layer, the k "
        "receptive-field patches that activate it most (at most --per-image from one image).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("folder", nargs="?", metavar="FOLDER",
                   help="folder of images (for the encoder: the faces found in them)"
                   + _NO_DEFAULT)
    t.add_argument("--network", choices=("vgg19", "encoder"), default="vgg19",
                   help="VGG19 (the style network) or the face encoder f(x)")
    t.add_argument("--layer", help="relu1_1 ... relu5_4 (VGG19) or stem, level4 ... level0 "
                   "(encoder); default relu3_1 / level3" + _NO_DEFAULT)
    t.add_argument("--units", default="0-15", help="units to report: 0-15, 3,7,9 or all")
    t.add_argument("--top", type=int, default=9, help="entries per unit (k)")
    t.add_argument("--per-image", type=int, default=1,
                   help="at most this many entries per unit from one image")
    t.add_argument("--size", type=int, default=512,
                   help="VGG19: images are shrunk to this longest side (never enlarged)")
    t.add_argument("--gallery", action="store_true",
                   help="encoder: the gallery's face chips instead of a folder")
    t.add_argument("--db", help="the gallery database (default: the app's)" + _NO_DEFAULT)
    t.add_argument("--json", metavar="OUT.json",
                   help="write the entries as JSON" + _NO_DEFAULT)
    t.add_argument("--sheet", metavar="OUT.png",
                   help="write the units' 3x3 tiles as PNG" + _NO_DEFAULT)
    t.add_argument("--cell", type=int, default=40, help="sheet: pixels per patch")
    t.add_argument("--columns", type=int, default=4, help="sheet: unit tiles per row")
    t.add_argument("--no-cache", action="store_true", help="index again even when cached")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 on CPUs with AMX/AVX-512 BF16 and on CUDA, else fp32")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_top_patches)

    v = commands.add_parser(
        "visualize", help="synthesise an image that a unit responds to",
        description="Gradient ascent on an image (Fourier parameterisation, decorrelated "
        "colour, jitter/scale/rotation robustness) to maximise one unit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    v.add_argument("--network", choices=("vgg19", "encoder"), default="vgg19",
                   help="VGG19 (the style network) or the face encoder f(x)")
    v.add_argument("--layer", help="default relu4_1 / level3" + _NO_DEFAULT)
    v.add_argument("--unit", type=int, default=0, help="the unit (channel) to maximise")
    v.add_argument("--objective", choices=("channel", "unit"), default="channel",
                   help="channel: its mean over the map; unit: the centre position only")
    v.add_argument("--steps", type=int, default=256)
    v.add_argument("--size", type=int, default=224, help="image size (the encoder: 150)")
    v.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--param", choices=("fourier", "pixels"), default="fourier",
                   help="how the image is parameterised")
    v.add_argument("--no-decorrelate", action="store_true", help="optimise RGB directly")
    v.add_argument("--no-transforms", action="store_true",
                   help="no jitter, scaling or rotation between steps")
    v.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    v.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    v.add_argument("-o", "--output", required=True,
                   help="where to save the image (PNG)" + _NO_DEFAULT)
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=run_visualize)

    c = commands.add_parser(
        "conv-shape", help="output shape and parameters of a 1D, 2D or 3D convolution",
        description="n_out = floor((n + 2p - f) / s) + 1 per dimension, checked by running "
        "the same torch Conv1d/2d/3d.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--dims", type=int, choices=(1, 2, 3), required=True)
    c.add_argument("--input", type=_ints, required=True, metavar="N[,N...]",
                   help="input size: one number (every dimension) or one per dimension")
    c.add_argument("--channels", type=int, default=1, help="input channels")
    c.add_argument("--filter", type=_ints, default=(3,), metavar="F[,F...]")
    c.add_argument("--stride", type=_ints, default=(1,), metavar="S[,S...]")
    c.add_argument("--padding", type=_ints, default=(0,), metavar="P[,P...]")
    c.add_argument("--filters", type=int, default=1, help="number of filters")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=run_conv_shape)

    s = commands.add_parser("layers", help="each layer's units, receptive field and stride")
    s.add_argument("--network", choices=("vgg19", "encoder"), default="vgg19")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=run_layers)


def _output_path(path: str) -> Path:
    out = Path(path)
    if not out.parent.is_dir():
        raise FacestyleError(f"The folder {out.parent} does not exist.",
                             "Create it, or choose another output path.")
    return out


def make_source(network: str, folder: str | None, gallery: bool, db: str | None,
                max_side: int):
    """The source ``top-patches`` looks through (also used by the tab's CLI twin tests)."""
    from desktop.explore.sources import FaceChipSource, GalleryChipSource, ImageFolderSource

    if gallery:
        if network != "encoder":
            raise FacestyleError("--gallery holds face chips: use it with --network encoder.")
        return GalleryChipSource(db)
    if not folder:
        raise FacestyleError("Give a FOLDER of images (or --gallery for the encoder).")
    if not Path(folder).is_dir():
        raise FacestyleError(f"{folder} is not a folder.", "Give a folder of images.")
    if network == "encoder":
        return FaceChipSource(folder)
    return ImageFolderSource(folder, max_side)


def run_top_patches(args: argparse.Namespace) -> int:
    from desktop.commands.progress import ProgressBar
    from desktop.explore.index import IndexSettings, images_per_second, index_layers
    from desktop.explore.networks import open_network, parse_units
    from desktop.explore.patches import sheet

    layer = args.layer or DEFAULT_LAYER[args.network]
    json_out = _output_path(args.json) if args.json else None
    sheet_out = _output_path(args.sheet) if args.sheet else None
    if args.size < 32:
        raise FacestyleError("--size must be at least 32 pixels.")
    network = open_network(args.network, args.device, args.precision)
    info = network.layer(layer)
    units = parse_units(args.units, info.channels)
    source = make_source(args.network, args.folder, args.gallery, args.db, args.size)
    settings = IndexSettings(top_k=args.top, per_image=args.per_image)
    bar = None if args.quiet else ProgressBar(100, label="explore", unit="%")

    def progress(fraction: float, message: str = "") -> None:
        if bar is not None:
            bar.update(int(fraction * 100), message)

    try:
        index = index_layers(source, network, [layer], settings, progress=progress,
                             use_cache=not args.no_cache)[layer]
    finally:
        if bar is not None:
            bar.close()
    used = int((index.sizes[:, 0] >= 0).sum())
    how = ("from the cache" if index.from_cache else
           f"in {index.seconds:.1f} s ({images_per_second(index):.1f} images/s, "
           f"{index.precision})")
    print(f"{args.network} {index.describe()}; {used} images, {len(index.skipped)} skipped; "
          f"indexed {how}")
    for skipped in index.skipped[:10]:
        print(f"  skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if json_out is not None:
        json_out.write_text(json.dumps(index.to_json(units), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {json_out}")
    if sheet_out is not None:
        from desktop.imageio import save_png

        def load(item: int):
            try:
                return source.load(source.items[item])
            except FacestyleError:
                return None

        image = sheet(index, units, load, cell=args.cell, columns=args.columns,
                      title=f"{network.title} {layer} · {source.description}")
        save_png(sheet_out, image, {"facestyle-explore": json.dumps(
            {"network": args.network, "layer": layer, "units": units})})
        print(f"wrote {sheet_out} ({image.shape[1]}x{image.shape[0]})")
    if json_out is None and sheet_out is None:
        for unit in units:
            entries = index.entries(unit)
            top = entries[0] if entries else None
            text = (f"max {top.value:.4g} in {index.items[top.item].label} at "
                    f"{list(index.box(top))}" if top else "no entries")
            print(f"  unit {unit}: {text}")
    return 0


def run_visualize(args: argparse.Namespace) -> int:
    from desktop.commands.progress import ProgressBar
    from desktop.explore.visualize import VisSettings, visualize
    from desktop.imageio import save_png

    output = _output_path(args.output)
    settings = VisSettings(
        network=args.network, layer=args.layer or {"vgg19": "relu4_1"}.get(args.network,
                                                                            "level3"),
        unit=args.unit, objective=args.objective, steps=args.steps, size=args.size,
        lr=args.lr, seed=args.seed, parameterisation=args.param,
        decorrelate=not args.no_decorrelate, transforms=not args.no_transforms,
        device=args.device, precision=args.precision).check()
    bar = None if args.quiet else ProgressBar(settings.steps, label="visualize", unit="steps")
    last = None
    try:
        for last in visualize(settings):
            if bar is not None:
                bar.update(last.step, f"objective {last.objective:.4g}")
    finally:
        if bar is not None:
            bar.close()
    assert last is not None
    save_png(output, last.image, {"facestyle-explore": json.dumps(
        {**settings.to_dict(), "objective_value": last.objective})})
    print(f"saved {output} after {last.step} steps, objective {last.objective:.4g} "
          f"({last.seconds:.1f} s, {last.device})")
    return 0


def run_conv_shape(args: argparse.Namespace) -> int:
    from desktop.explore.conv_shapes import ConvSpec, conv_shape, torch_output_shape

    spec = ConvSpec.make(args.dims, args.input, args.channels, args.filter, args.stride,
                         args.padding, args.filters)
    shape = conv_shape(spec)
    torch_shape, ran = torch_output_shape(spec)
    agree = torch_shape == shape.output_shape
    if args.json:
        print(json.dumps({
            "dims": spec.dims, "input": list(shape.input_shape),
            "filter": list(spec.filter), "stride": list(spec.stride),
            "padding": list(spec.padding), "filters": spec.filters,
            "output": list(shape.output_shape), "torch_output": list(torch_shape),
            "torch_ran": ran, "agree": agree, "parameters": shape.parameters,
            "weights": shape.weights, "biases": shape.biases, "macs": shape.macs}))
        return 0 if agree else 1
    dims = " x ".join(str(n) for n in spec.size)
    print(f"input   {dims} x {spec.channels} channel{'s' * (spec.channels != 1)}")
    for line in shape.formula_lines():
        print(f"  {line}")
    out = " x ".join(str(n) for n in shape.output)
    print(f"output  {out} x {spec.filters} (one channel per filter)")
    print(f"params  {shape.parameter_line()}")
    print(f"torch   Conv{spec.dims}d gives {tuple(torch_shape)}"
          f"{'' if ran else ' (shape inference on the meta device)'}: "
          f"{'agrees' if agree else 'DIFFERS'}")
    return 0 if agree else 1


def run_layers(args: argparse.Namespace) -> int:
    from desktop.explore.networks import layers_of

    layers = layers_of(args.network)
    if args.json:
        print(json.dumps([{"layer": i.name, "units": i.channels, "receptive_field": i.geometry.size,
                           "stride": i.geometry.jump, "start": i.geometry.start, "note": i.note}
                          for i in layers]))
        return 0
    print(f"{'layer':8} {'units':>5} {'RF px':>6} {'stride':>6}")
    for i in layers:
        note = f"  {i.note}" if i.note else ""
        print(f"{i.name:8} {i.channels:5d} {i.geometry.size:6d} {i.geometry.jump:6d}{note}")
    return 0
