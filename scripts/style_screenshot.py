"""Render the Style tab in the middle of a real job and save it as a PNG.

    python scripts/style_screenshot.py docs/screenshot-style.png \
        [--data ../shared/data/nst-dev] [--size 256] [--iterations 80] [--at 40]

Loads tubingen (content) and starry_night (style), presses Start, waits until iteration
``--at`` (the job keeps going), then grabs the whole window offscreen. Uses a temporary
FACESTYLE_HOME unless one is set, so the user's settings are not touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    shared = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    p.add_argument("--data", type=Path, default=shared / "nst-dev")
    p.add_argument("--size", type=int, default=256, help="longest side of G")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--at", type=int, default=40, help="grab at this iteration")
    p.add_argument("--window", default="1280x800")
    p.add_argument("--view", default="g", choices=["g", "side", "compare"])
    p.add_argument("--history", type=int, default=0, metavar="N",
                   help="first run a short N-iteration job at 192 px, for the history strip")
    p.add_argument("--max-kb", type=int, default=500,
                   help="re-encode with a 256-colour palette when the PNG is larger")
    p.add_argument("--defaults", action="store_true",
                   help="paint at the tab's defaults (512 px, 300 iterations, coarse to fine) "
                   "instead of --size/--iterations")
    p.add_argument("--timeout", type=float, default=1800.0)
    args = p.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("FACESTYLE_HOME", tempfile.mkdtemp(prefix="facestyle-shot-"))
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QSize

    from desktop.ui.app import create_app, settle
    from desktop.ui.main_window import MainWindow

    create_app()
    window = MainWindow(initial_tab="style")
    width, height = (int(v) for v in args.window.split("x"))
    window.resize(QSize(width, height))
    window.show()
    opened = time.monotonic()
    tab = window.tab("style")
    if not (tab.side.content.load_file(args.data / "tubingen.jpg")
            and tab.side.styles.slots[0].load_file(args.data / "starry_night.jpg")):
        print(tab.live.message.text(), file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    if args.history:
        settings = tab.settings()
        settings.size, settings.iterations = 192, args.history
        tab.set_settings(settings)
        if not tab.start():
            print("could not start:", tab.live.message.text(), file=sys.stderr)
            return 1
        while tab.job.running and time.monotonic() < deadline:
            settle(100)
    settings = tab.settings()
    if not args.defaults:
        settings.size, settings.iterations = args.size, args.iterations
        tab.set_settings(settings)
    tab.live.set_view(args.view)
    settle(100)
    while tab.warming and time.monotonic() < deadline:  # as while a user picks images
        settle(50)
    print(f"warm-up (network, first scale's kernels) done {time.monotonic() - opened:.2f} s "
          "after the tab opened", flush=True)
    started = time.monotonic()
    if not tab.start():
        print("could not start:", tab.live.message.text(), file=sys.stderr)
        return 1
    first = None
    while time.monotonic() < deadline:
        settle(20 if first is None else 100)
        last = tab.job.last
        if first is None and last is not None:
            first = time.monotonic() - started
            print(f"first G on screen {first:.2f} s after Start ({last.size[1]}x{last.size[0]} "
                  f"px, {last.precision}, {last.threads} threads)", flush=True)
        if last is not None and last.iteration >= args.at:
            print(f"iteration {last.iteration} on screen {time.monotonic() - started:.2f} s "
                  "after Start", flush=True)
            break
        if not tab.job.running:
            break
    settle(300)
    image = window.grab()
    ok = image.save(str(args.out), "PNG")
    if ok and args.out.stat().st_size > args.max_kb * 1024:
        from PIL import Image

        with Image.open(args.out) as img:
            small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(args.out, optimize=True)
    tab.job.shutdown(10.0)
    settle(200)
    window.close()
    print(f"wrote {args.out} at iteration {tab.job.last.iteration if tab.job.last else 0}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
