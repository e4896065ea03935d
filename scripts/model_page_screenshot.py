"""Screenshot the manager's Model page in the middle of a fine-tune (offscreen).

    python scripts/model_page_screenshot.py docs/screenshot-model.png
    python scripts/model_page_screenshot.py out.png --encoder dlib --epochs 6 --all

It builds a throw-away gallery of generated faces (``desktop.face.training.synthetic``) in
a temporary FACESTYLE_HOME, opens the manager dialog on the Model page's Fine-tune tab,
starts a fine-tune and grabs the window once ``--after`` epochs are in, so the loss curve
and the per-epoch figures have points. ``--encoder dlib`` fine-tunes dlib's real encoder
(needs its model file; about 3 s a step on a CPU); ``tiny`` (default) a small CNN, so the
script runs in seconds anywhere. With ``--all`` it waits for the end and also writes the
other tabs (``-overview``, ``-compare``, ``-versions``, ``-rule`` next to the PNG).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--encoder", choices=("tiny", "dlib"), default="tiny")
    parser.add_argument("--people", type=int, default=16)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--after", type=int, default=5, help="epochs before the grab")
    parser.add_argument("--lr", help="learning rate (default: the page's, 0.003 for tiny)")
    parser.add_argument("--mining", choices=("semi-hard", "batch-hard", "all"))
    parser.add_argument("--train", choices=("final", "last-level", "all"))
    parser.add_argument("--all", action="store_true", help="also the other tabs, at the end")
    parser.add_argument("--size", default="1160x760")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FACESTYLE_HOME"] = tempfile.mkdtemp(prefix="facestyle-shot-")
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from model_page_fakes import VersionEngine, fill_gallery, make_registry, make_service

    from desktop.face.encoder_versions import EncoderRegistry
    from desktop.face.training import EpochReport
    from desktop.paths import user_dirs
    from desktop.store import Gallery
    from desktop.ui.checkin.context import ManagerContext
    from desktop.ui.checkin.live import LiveSession
    from desktop.ui.checkin.manager import PAGES, ManagerDialog, PageSpec
    from desktop.ui.checkin.model.service import ModelService

    home = user_dirs().data
    if args.encoder == "tiny":
        registry = make_registry(home / "encoders")
        service = make_service(registry)
    else:
        registry = EncoderRegistry(home / "encoders")
        service = ModelService(registry, engine_factory=lambda: VersionEngine(registry),
                               train_overrides={"batch_p": 8, "batch_k": 4})
    gallery = Gallery(home / "gallery.sqlite3")
    fill_gallery(gallery, registry, args.people, args.photos, seed=3)
    session = LiveSession()
    session.set_gallery(gallery)
    session.set_engine(VersionEngine(registry))
    ctx = ManagerContext(session, gallery)
    ctx.model_service = service  # type: ignore[attr-defined]
    pages = tuple(PageSpec(p.key, p.title, "desktop.ui.checkin.model:ModelPage", p.subtitle)
                  if p.key == "model" else p for p in PAGES)
    dialog = ManagerDialog(ctx, pages=pages, initial="model")
    w, h = (int(v) for v in args.size.lower().split("x"))
    dialog.resize(w, h)
    dialog.show()
    page = dialog.page("model")

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)
        return cond()

    wait(lambda: page.overview is not None, 30)
    tab = page.tab("finetune")
    tab.epochs_spin.setValue(args.epochs)
    if args.encoder == "tiny":
        tab.lr_box.setCurrentText("0.003")
        tab.train_box.setCurrentIndex(tab.train_box.findData("all"))
    if args.lr:
        tab.lr_box.setCurrentText(args.lr)
    if args.mining:
        tab.mining_box.setCurrentIndex(tab.mining_box.findData(args.mining))
    if args.train:
        tab.train_box.setCurrentIndex(tab.train_box.findData(args.train))
    epochs_seen = []
    worker = tab.start()
    if worker is None:
        print("the fine-tune did not start:", tab.result.text(), file=sys.stderr)
        return 1
    worker.yielded.connect(lambda e: epochs_seen.append(e.epoch)
                           if isinstance(e, EpochReport) else None)
    if not wait(lambda: len(epochs_seen) > args.after or not worker.is_running, 900):
        print("timed out waiting for epochs", file=sys.stderr)
    spin(0.6)  # one more redraw of the curves
    args.out.parent.mkdir(parents=True, exist_ok=True)
    dialog.grab().save(str(args.out))
    print(f"wrote {args.out} after {len(epochs_seen) - 1} epochs")
    if args.all:
        wait(lambda: not worker.is_running, 1800)
        wait(lambda: not page.jobs.busy, 60)
        spin(1.0)
        stem = args.out.with_suffix("")
        dialog.grab().save(f"{stem}-compare.png")
        if tab.activate_button.isVisible():  # it learned, and the guard would allow it
            page.activate(tab.summary.name)
            wait(lambda: not page.jobs.busy, 600)
            spin(1.0)
        page.tab("versions")
        spin(0.5)
        dialog.grab().save(f"{stem}-versions.png")
        rule = page.tab("rule")
        head = rule.train_head()
        wait(lambda: head is None or not head.is_running, 60)
        spin(1.0)
        dialog.grab().save(f"{stem}-rule.png")
        page.tab("overview")
        spin(1.0)
        dialog.grab().save(f"{stem}-overview.png")
        print(f"wrote {stem}-compare/-versions/-rule/-overview.png")
    dialog.done(0)
    session.shutdown()
    gallery.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
