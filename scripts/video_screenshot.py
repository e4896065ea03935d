"""Render the Style tab's Video mode in the middle of a real job and save it as a PNG.

    python scripts/video_screenshot.py docs/screenshot-video.png \
        [--clip ../shared/data/faces-dev/video/short_hamilton_clip.mp4] \
        [--style ../shared/data/nst-dev/starry_night.jpg] [--size 128] [--at-frame 3]

Opens the clip, switches to Video mode, presses Start and waits until ``--at-frame``
frames are finished (the job keeps going), then grabs the whole window offscreen. Uses a
temporary FACESTYLE_HOME unless one is set, so the user's settings and frames are not
touched.
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
    p.add_argument("--clip", type=Path,
                   default=shared / "faces-dev" / "video" / "short_hamilton_clip.mp4")
    p.add_argument("--style", type=Path, default=shared / "nst-dev" / "starry_night.jpg")
    p.add_argument("--size", type=int, default=128, help="longest side of the frames")
    p.add_argument("--start-frame", type=int, default=20)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--first-iterations", type=int, default=60)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--at-frame", type=int, default=4, help="grab once this many are done")
    p.add_argument("--window", default="1280x800")
    p.add_argument("--max-kb", type=int, default=500)
    p.add_argument("--timeout", type=float, default=1800.0)
    args = p.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("FACESTYLE_HOME", tempfile.mkdtemp(prefix="facestyle-shot-"))
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QSize

    from desktop.ui.app import create_app, settle
    from desktop.ui.main_window import MainWindow
    from desktop.ui.style.side_panel import VIDEO_MODE

    create_app()
    window = MainWindow(initial_tab="style")
    width, height = (int(v) for v in args.window.split("x"))
    window.resize(QSize(width, height))
    window.show()
    tab = window.tab("style")
    tab.set_mode(VIDEO_MODE)
    if not (tab.video.panel.clip.load_file(args.clip)
            and tab.side.styles.slots[0].load_file(args.style)):
        print(tab.video.view.message.text(), file=sys.stderr)
        return 1
    settings = tab.settings()
    settings.size, settings.iterations = args.size, args.iterations
    tab.set_settings(settings)
    options = tab.video.panel.options
    options.start_frame.setValue(args.start_frame)
    options.frames.setValue(args.frames)
    options.first_iterations.setValue(args.first_iterations)
    if not tab.video.start():
        print(tab.video.view.message.text(), file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    while len(tab.video.view.finished) < args.at_frame and tab.video.job.running:
        settle(200)
        if time.monotonic() > deadline:
            print("timed out", file=sys.stderr)
            return 1
    settle(1000)  # a few iterations of the next frame
    image = window.grab().toImage()
    image.save(str(args.out))
    if args.out.stat().st_size > args.max_kb * 1024:
        from PIL import Image

        Image.open(args.out).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"saved {args.out} ({args.out.stat().st_size // 1024} KB)")
    tab.video.job.stop()
    tab.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
