"""``facestyle gui``: open the window, or render it to a PNG and exit."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the app (the default)")
    p.add_argument("--screenshot", metavar="PATH", type=Path,
                   help="build the window offscreen, save it as PNG and exit")
    p.add_argument("--tab", metavar="NAME", help="tab to show: checkin, style or explore")
    p.add_argument("--size", metavar="WxH", default="1280x800",
                   help="window size for --screenshot (default 1280x800)")
    from desktop.commands.gallery import add_database_option

    add_database_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from desktop.errors import FacestyleError

    if getattr(args, "db", None):
        import os

        os.environ["FACESTYLE_DATABASE"] = str(args.db)  # read where the gallery opens
    tab = args.tab.lower().replace("-", "") if args.tab else None
    if tab is not None:
        from desktop.ui.main_window import TABS

        keys = [spec.key for spec in TABS]
        if tab not in keys:
            raise FacestyleError(f"no tab {args.tab!r}; tabs are {', '.join(keys)}")
    if args.screenshot is None:
        from desktop import qt_platform
        from desktop.ui.app import run_gui

        platform = qt_platform.check()
        if not platform.ok:  # Qt would abort with a message that names no fix
            raise FacestyleError(platform.problem or "Qt cannot start.", platform.hint)

        return run_gui(tab=tab)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError as exc:
        raise FacestyleError(f"--size must look like 1280x800, not {args.size!r}") from exc
    from PySide6.QtCore import QSize

    from desktop.ui.app import screenshot

    size = screenshot(args.screenshot, tab=tab, size=QSize(width, height))
    print(f"wrote {args.screenshot} ({size.width()}x{size.height()})")
    return 0
