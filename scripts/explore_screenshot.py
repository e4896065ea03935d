"""Render the Explore tab at work and save it as a PNG.

    python scripts/explore_screenshot.py docs/screenshot-explore.png \
        [--data ../shared/data] [--view compare|units|detail|visualize|conv]

Indexes ``--data`` (VGG19 relu3_1, compared with relu1_1 and relu5_1; cached after the
first run) through the tab's own Index button, waits for the tiles, then grabs the whole
window offscreen. ``detail`` also opens one unit; ``visualize`` runs a short feature
visualisation. Uses a temporary FACESTYLE_HOME unless one is set (point it at the same
folder twice to reuse the cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout: float, settle) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        settle(100)
        if condition():
            return True
    return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    shared = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    p.add_argument("--data", type=Path, default=shared)
    p.add_argument("--view", default="compare",
                   choices=["compare", "units", "detail", "visualize", "conv"])
    p.add_argument("--network", default="vgg19", choices=["vgg19", "encoder"])
    p.add_argument("--layers", default="relu3_1,relu1_1,relu5_1",
                   help="the layer, then up to two to compare with")
    p.add_argument("--unit", type=int, default=-1, help="detail: this unit (default: the "
                   "strongest)")
    p.add_argument("--window", default="1280x800")
    p.add_argument("--max-kb", type=int, default=380,
                   help="re-encode with a 256-colour palette when the PNG is larger")
    p.add_argument("--timeout", type=float, default=1800.0)
    args = p.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("FACESTYLE_HOME", tempfile.mkdtemp(prefix="facestyle-shot-"))
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QSize

    from desktop.ui.app import create_app, settle
    from desktop.ui.explore.widgets import select_data
    from desktop.ui.main_window import MainWindow

    create_app()
    window = MainWindow(initial_tab="explore")
    width, height = (int(v) for v in args.window.split("x"))
    window.resize(QSize(width, height))
    window.show()
    tab = window.tab("explore")
    page = tab.patches
    if args.view == "conv":
        tab.show_page("conv")
        from desktop.explore.conv_shapes import EXAMPLES

        tab.conv.set_spec(EXAMPLES["3D: CT volume 14 x 14 x 14 x 1, 16 filters of 5"])
        tab.conv.sliders[1][1].setValue(3)
        wait_for(tab.conv.checked, 60, settle)
        return save(window, args)
    if args.view == "visualize":
        tab.show_page("visualize")
        tab.visualize.choose(args.network, args.layers.split(",")[0], max(0, args.unit))
        tab.visualize.steps.setValue(96)
        tab.visualize.start()
        wait_for(lambda: not tab.visualize.running, args.timeout, settle)
        return save(window, args)

    wait_for(lambda: not page.job.running, 120, settle)  # last session's results, if any
    tab.show_page("patches")
    select_data(page.network, args.network)
    first, *others = args.layers.split(",")
    select_data(page.layer, first)
    for combo, name in zip(page.compare, [*others, "", ""], strict=False):
        select_data(combo, name)
    page.folder.setText(str(args.data))
    (page.compare_button if args.view == "compare" else page.units_button).setChecked(True)
    if not page.start_index():
        print("could not start:", page.message.text(), file=sys.stderr)
        return 1
    if not wait_for(lambda: not page.job.running, args.timeout, settle) or not page.results:
        print("indexing failed:", page.message.text(), file=sys.stderr)
        return 1
    view = page.compare_view if args.view == "compare" else page.grid
    if not wait_for(view.tiles_done, 300, settle):
        print("some tiles are missing", file=sys.stderr)
    if args.view == "detail":
        index = page.main_index()
        unit = args.unit if args.unit >= 0 else int(index.unit_max().argmax())
        dialog = page.open_unit(index.layer, unit)
        wait_for(lambda: not dialog.busy(), 300, settle)
        settle(300)
        image = dialog.grab()
        return save_image(image, args)
    return save(window, args)


def save(window, args) -> int:
    from desktop.ui.app import settle

    settle(400)
    return save_image(window.grab(), args)


def save_image(image, args) -> int:
    if not image.save(str(args.out), "PNG"):
        print(f"could not write {args.out}", file=sys.stderr)
        return 1
    if args.out.stat().st_size > args.max_kb * 1024:
        from PIL import Image

        with Image.open(args.out) as img:
            img.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(args.out,
                                                                             optimize=True)
    print(f"wrote {args.out} ({image.width()}x{image.height()}, "
          f"{args.out.stat().st_size // 1024} KB)")
    return 0


def run() -> int:
    code = main()
    from PySide6.QtWidgets import QApplication

    for window in QApplication.topLevelWidgets():
        window.close()  # stops the tabs' work, as quitting the app does
    return code


if __name__ == "__main__":
    raise SystemExit(run())
