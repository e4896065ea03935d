"""``facestyle stylize CONTENT STYLE [STYLE...] -o OUT.png``: neural style transfer, headless.

Runs the same loop as the Style tab (:func:`desktop.style.optimize.stylize`), so the same
settings, seed and thread count give the same image; ``--settings SAVED.png`` takes all
three from a result the tab (or this command) saved. Shows a progress bar with ETA on
stderr, saves G as PNG with the settings in its text chunks and a JSON sidecar, and with
``--report`` writes

    {"settings": {...}, "device": str, "precision": str, "notices": [...],
     "iterations": [{"iteration": i, "seconds": s, "content": c, "style": s, "tv": t,
                     "total": j}, ...]}

where ``seconds`` is that iteration's own time. Ctrl-C saves the newest G before exiting.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from desktop.errors import FacestyleError

_DEFAULTS: Any = None
#: Appended to a help text, hides argparse's "(default: None)" where it says nothing.
_NO_DEFAULT = "%(default).0s"


def _defaults() -> Any:
    global _DEFAULTS
    if _DEFAULTS is None:
        from desktop.style.settings import StyleSettings

        _DEFAULTS = StyleSettings()
    return _DEFAULTS


def parse_style_layers(text: str) -> dict[str, float]:
    """``relu1_1:0.2,relu2_1:0.2`` -> ``{"relu1_1": 0.2, "relu2_1": 0.2}`` (weight 1 if omitted)."""
    layers: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            layers[name.strip()] = float(weight) if weight else 1.0
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"bad weight in {item!r}") from exc
    if not layers:
        raise argparse.ArgumentTypeError("give at least one layer, e.g. relu1_1:0.2")
    return layers


def parse_floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text}") from exc


class _Given(argparse.Action):
    """Stores the value and notes that the option was given (``args.given``)."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


class _GivenFlag(_Given):
    """An on/off flag, ``--name`` and ``--no-name``, that notes it was given."""

    def __init__(self, option_strings, dest, default=False, required=False, help=None):
        negated = [f"--no-{o[2:]}" for o in option_strings if o.startswith("--")]
        super().__init__([*option_strings, *negated], dest, nargs=0, default=default,
                         required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        on = not (option_string or "").startswith("--no-")
        super().__call__(parser, namespace, on, option_string)

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


#: command-line destination -> StyleSettings field, for every setting the CLI takes
SETTING_OPTIONS = {
    "size": "size", "iterations": "iterations", "alpha": "alpha", "beta": "beta",
    "style_layers": "style_layers", "content_layer": "content_layer",
    "optimizer": "optimizer", "lr": "lr", "init": "init", "tv": "tv_weight", "seed": "seed",
    "preserve_colors": "preserve_colors", "style_blend": "style_blend",
    "pooling": "pooling", "multiscale": "multiscale", "stop_when_flat": "stop_when_flat",
    "device": "device",
    "precision": "precision",
}


def add_setting_options(p: argparse.ArgumentParser, d: Any,
                        iterations_help: str = "optimiser iterations (one forward/backward "
                        "each)",
                        multiscale_help: str = "coarse-to-fine optimisation") -> None:
    """The options of every :class:`StyleSettings` field (:data:`SETTING_OPTIONS`), with
    ``d``'s values as defaults; ``facestyle stylize`` and ``stylize-video`` share them."""
    from desktop.style.settings import DEFAULT_STYLE_LAYERS

    setting = functools.partial(p.add_argument, action=_Given)  # a StyleSettings option
    setting("--size", type=int, default=d.size, help="longest side of G in pixels")
    setting("--iterations", type=int, default=d.iterations, help=iterations_help)
    setting("--alpha", type=float, default=d.alpha, help="content weight")
    setting("--beta", type=float, default=d.beta, help="style weight")
    setting("--style-layers", type=parse_style_layers, default=None,
            metavar="LAYER:LAMBDA,...",
            help="style layers and their lambdas (default "
            + ",".join(f"{k}:{v:g}" for k, v in DEFAULT_STYLE_LAYERS.items())
            + ")" + _NO_DEFAULT)
    setting("--content-layer", default=d.content_layer, help="layer of J_content")
    setting("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer,
            help="optimiser")
    setting("--lr", type=float, default=d.lr, help="Adam learning rate")
    setting("--init", choices=("content", "noise", "style"), default=d.init,
            help="starting image G")
    setting("--tv", type=float, default=d.tv_weight, help="total-variation weight")
    setting("--seed", type=int, default=d.seed, help="seed of the noise init")
    p.add_argument("--preserve-colors", action=_GivenFlag, default=d.preserve_colors,
                   help="luminance-only transfer: keep the content's colours (--no-: "
                   "transfer colours too)" + _NO_DEFAULT)
    setting("--style-blend", type=parse_floats, default=None, metavar="W1,W2,...",
            help="one weight per style image (default equal)" + _NO_DEFAULT)
    setting("--pooling", choices=("max", "avg"), default=d.pooling,
            help="VGG19 pooling")
    p.add_argument("--multiscale", action=_GivenFlag, default=d.multiscale,
                   help=f"{multiscale_help}, {'on' if d.multiscale else 'off'} by default "
                   "(--no-: one scale)" + _NO_DEFAULT)
    p.add_argument("--stop-when-flat", action=_GivenFlag, default=d.stop_when_flat,
                   help="end each scale, and the job at the last one, once J improves by "
                   "less than 0.2%% over 10 iterations; on by default (--no-: always run "
                   "every iteration)" + _NO_DEFAULT)
    setting("--device", choices=("auto", "cpu", "cuda"), default=d.device,
            help="auto: CUDA when present, else the CPU")
    setting("--precision", choices=("auto", "fp32", "bf16"), default=d.precision,
            help="auto: bf16 on CPUs with AMX/AVX-512 BF16 and on CUDA, else fp32")


def register(sub: argparse._SubParsersAction) -> None:
    d = _defaults()
    p = sub.add_parser(
        "stylize", help="paint CONTENT in the style of STYLE (Gatys neural style transfer)",
        description="Neural style transfer: J = alpha J_content + beta sum_l lambda_l "
                    "J_style^[l] (+ tv TV), optimised over the image G.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("content", metavar="CONTENT", help="content image (the photo to repaint)")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s) (paintings)")
    p.add_argument("-o", "--output", required=True, help="where to save G (PNG)" + _NO_DEFAULT)
    add_setting_options(p, d)
    p.add_argument("--settings", metavar="RESULT",
                   help="take every setting, and the thread count, from an image saved by "
                   "the Style tab or by this command (its PNG or .json sidecar), so it paints "
                   "the same G; options given here override" + _NO_DEFAULT)
    p.add_argument("--report", metavar="REPORT.json",
                   help="write per-iteration losses/times" + _NO_DEFAULT)
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads (default: all cores, or the saved run's with --settings)."
                   " The Style tab uses all but one; the same N reproduces its image bit "
                   "for bit")
    p.add_argument("--quiet", action="store_true", help="no progress bar" + _NO_DEFAULT)
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace, base: Any = None) -> Any:
    """The job's StyleSettings: ``base`` (saved settings) where given, overridden by the
    options given on the command line; the defaults otherwise."""
    from desktop.style.settings import DEFAULT_STYLE_LAYERS, StyleSettings

    given = getattr(args, "given", set())
    values = {field: getattr(args, dest) for dest, field in SETTING_OPTIONS.items()}
    values["style_layers"] = dict(args.style_layers or DEFAULT_STYLE_LAYERS)
    if base is not None:
        saved = base.to_dict()
        values.update({field: saved[field] for dest, field in SETTING_OPTIONS.items()
                       if dest not in given and field in saved})
    return StyleSettings(**values)


def _saved_run(path: str) -> tuple[Any, int]:
    """Settings and thread count (0: not saved) of a result saved by facestyle."""
    from desktop.style.output import read_result

    if not Path(path).is_file():
        raise FacestyleError(f"Cannot read the settings: {path} does not exist.",
                             "Give an image saved by facestyle, or its .json file.")
    settings, extra = read_result(path)
    threads = extra.get("threads", 0)
    return settings, threads if isinstance(threads, int) and threads > 0 else 0


def run(args: argparse.Namespace) -> int:
    import desktop

    desktop.use_openmp_default_wait()  # headless and compute-bound: before torch loads
    from desktop.commands.progress import ProgressBar
    from desktop.imageio import load_rgb
    from desktop.style.optimize import plan_job, stylize
    from desktop.style.output import save_result

    if args.threads < 0:
        raise FacestyleError("--threads must be 0 (all cores) or more.")
    base, threads = _saved_run(args.settings) if args.settings else (None, 0)
    cores = os.cpu_count() or 1
    if not args.threads and threads > cores:
        print(f"facestyle: {args.settings} was painted on {threads} threads; this machine has "
              f"{cores} cores, so G may differ a little (use --threads {threads} to match "
              "it, slowly)", file=sys.stderr)
        threads = cores
    threads = args.threads or threads
    if threads:
        import torch

        torch.set_num_threads(threads)
    settings = settings_from_args(args, base)
    content = load_rgb(args.content)
    styles = [load_rgb(path) for path in args.styles]
    output = Path(args.output)
    if not output.parent.is_dir():
        raise FacestyleError(f"The folder {output.parent} does not exist.",
                             "Create it, or choose another output path.")
    plan = plan_job(content.shape, settings, len(styles))
    for notice in plan.notices:
        print(f"facestyle: {notice}", file=sys.stderr)

    bar = None if args.quiet else ProgressBar(plan.total_iterations, label="stylize")
    rows: list[dict[str, float]] = []
    last = None
    started = time.perf_counter()
    interrupted = False
    try:
        for report in stylize(content, styles, settings):
            last = report
            rows.append({"iteration": report.iteration, "seconds": report.seconds,
                         **report.losses()})
            if bar is not None:
                bar.update(report.iteration, f"J={report.total:.4g}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if last is None:
        if interrupted:
            raise KeyboardInterrupt
        raise FacestyleError("No iteration finished, so there is no image to save.")

    extra = {
        "device": last.device, "precision": last.precision, "threads": last.threads,
        "notices": plan.notices,
        "iteration": last.iteration, "losses": last.losses(),
        "content_image": str(args.content), "style_images": [str(s) for s in args.styles],
        "seconds_total": round(time.perf_counter() - started, 3),
    }
    png, sidecar = save_result(output, last.image, settings, extra)
    if args.report:
        report_doc = {"settings": settings.to_dict(), "device": last.device,
                      "precision": last.precision, "notices": plan.notices,
                      "iterations": rows}
        try:
            Path(args.report).write_text(json.dumps(report_doc, indent=1) + "\n",
                                         encoding="utf-8")
        except OSError as exc:
            raise FacestyleError(f"Cannot write the report {args.report}: "
                                 f"{exc.strerror or exc}") from exc
    print(f"saved {png} (+ {sidecar.name}) after {last.iteration} iterations, "
          f"J={last.total:.4g}, {last.device}, {last.precision}",
          file=sys.stderr if interrupted else sys.stdout)
    if interrupted:
        print("facestyle: interrupted; the newest G was saved", file=sys.stderr)
        return 130
    return 0
