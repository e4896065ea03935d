"""Render screenshots of the Check-in tab running on the faces-dev clip (offscreen).

    PYTHONPATH=. python scripts/checkin_screenshots.py OUT_DIR [--seconds 180]

Enrols Lin-Manuel Miranda and Alex Lacamoire one-shot from their reference photos (real
face engine) into a throw-away FACESTYLE_HOME, plays ``short_hamilton_clip.mp4`` in the
main window, and saves:

* ``checkin-live.png``: the live view with a named face, d, the welcome banner and the
  side panel (the best frame seen: a welcome banner and a named box together);
* ``checkin-manager-<page>.png``: each manager page;
* ``checkin-enrol.png``: the enrolment dialog with an imported photo, the look-alike
  warning, and the camera capture saying why the clip's frames are refused.

Needs ../shared/data (faces-dev) and the face models; takes a minute or two on a laptop.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["FACESTYLE_HOME"] = tempfile.mkdtemp(prefix="facestyle-shots-")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))
VIDEO = DATA / "faces-dev" / "video"


def save(widget, path: Path, max_kb: int = 500) -> None:
    """Grab ``widget`` to PNG; reduce to 256 colours when it would exceed ``max_kb``."""
    from PIL import Image

    image = widget.grab()
    image.save(str(path), "PNG")
    if path.stat().st_size > max_kb * 1024:
        with Image.open(path) as im:
            im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
                path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def pump(app, seconds: float, until=None) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.01)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=180.0,
                        help="how long to wait for a check-in (default 180)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clip = VIDEO / "short_hamilton_clip.mp4"
    if not clip.is_file():
        print(f"no faces-dev clip at {clip}", file=sys.stderr)
        return 2

    from desktop.face.api import FaceEngine
    from desktop.store import Gallery
    from desktop.store.enrol import enrol_from_images

    engine = FaceEngine()
    with Gallery() as gallery:
        for name, photo in (("Lin-Manuel Miranda", "lin-manuel-miranda.png"),
                            ("Alex Lacamoire", "alex-lacamoire.png")):
            enrol_from_images(gallery, engine, name, [VIDEO / photo])
        gallery.set_pin("1234")

    from desktop.ui import settings as ui_settings
    from desktop.ui.app import create_app
    from desktop.ui.main_window import MainWindow

    app = create_app()
    s = ui_settings.app_settings()
    s.setValue("checkin/camera", str(clip))
    s.sync()
    window = MainWindow(initial_tab="checkin")
    window.resize(1280, 800)
    window.show()
    tab = window.tab("checkin")
    tab.session.loop_files = True
    live = args.out / "checkin-live.png"

    def good() -> bool:
        return tab.view.welcome.isVisible() and any(f.name for f in tab.view.faces)

    if pump(app, args.seconds, good):
        pump(app, 0.3)
        save(window, live)
    else:
        print("no check-in seen in time; saving the view as it is", file=sys.stderr)
        save(window, live)

    manager = tab._show_manager("people")
    for key in manager.page_keys():
        manager.show_page(key)
        pump(app, 0.5)
        save(manager, args.out / f"checkin-manager-{key}.png")
    # Enrolling Lin again by mistake: the photo passes the checks, the look-alike warning
    # stops a silent duplicate; meanwhile the camera capture says why frames are refused.
    dialog = manager.show_page("enrol").open_dialog("none")
    pump(app, 10, lambda: dialog.matcher_ready)
    dialog.name_edit.setText("Lin Miranda")
    dialog.import_files([VIDEO / "lin-manuel-miranda.png"])
    pump(app, 60, lambda: len(dialog.shots) >= 1)
    dialog.start_capture()
    pump(app, 60, lambda: dialog.rejections >= 3)
    pump(app, 1.0)
    save(dialog, args.out / "checkin-enrol.png")
    dialog.reject()
    manager.reject()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
