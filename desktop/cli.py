"""The ``facestyle`` command: the GUI by default, and headless subcommands.

Each subcommand lives in its own module under ``desktop.commands`` and registers itself
through a ``register(subparsers)`` function; add a module name to :data:`COMMAND_MODULES`
to plug one in.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from desktop import __version__
from desktop.errors import FacestyleError

COMMAND_MODULES: tuple[str, ...] = (
    "desktop.commands.gui",
    "desktop.commands.doctor",
    "desktop.commands.faces",
    "desktop.commands.verify",
    "desktop.commands.gallery",
    "desktop.commands.checkins",
    "desktop.commands.recognize_video",
    "desktop.commands.liveness",
    "desktop.commands.stylize",
    "desktop.commands.stylize_video",
    "desktop.commands.train_encoder",
    "desktop.commands.train_verifier",
    "desktop.commands.eval_pairs",
    "desktop.commands.encoders",
    "desktop.commands.explore",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facestyle",
        description="Webcam check-in by one-shot face recognition, and neural style painting."
        " Without a command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"facestyle {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("--database", dest="top_database", metavar="PATH_OR_URL",
                        help="the gallery for any command: a SQLite file or a postgresql:// "
                        "URL (default: $FACESTYLE_DATABASE, else the app's file)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _say_fallbacks_on_stderr() -> None:
    """A precision fallback (bf16 asked, the CPU lacks it) is said once, on stderr."""
    from desktop.device import on_fallback_notice

    on_fallback_notice(lambda text: print(f"facestyle: note: {text}", file=sys.stderr,
                                          flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *(argv or [])])
    if args.top_database:
        os.environ["FACESTYLE_DATABASE"] = args.top_database  # every command reads it
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG)
    _say_fallbacks_on_stderr()
    try:
        return int(args.func(args) or 0)
    except FacestyleError as exc:
        print(f"facestyle: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facestyle: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
