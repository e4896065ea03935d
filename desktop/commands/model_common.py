"""Shared pieces of the model commands (train-encoder, train-verifier, eval-pairs, encoders)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desktop.errors import FacestyleError
from desktop.face.types import DEFAULT_TAU


def build_engine(registry, name: str | None, device: str = "auto"):
    """A face engine (detect + embed) running encoder version ``name`` (default: active)."""
    return registry.build_engine(name, device=device)


def faces_with_bar(root: Path, engine, use_cache: bool = True):
    """:func:`dataset_from_folder` with a progress bar; lists the photos left out."""
    from desktop.commands.progress import ProgressBar
    from desktop.face.training.data import dataset_from_folder, list_identity_folders

    total = sum(len(v) for v in list_identity_folders(root).values())
    bar = ProgressBar(total, "faces", unit="img")
    dataset = dataset_from_folder(root, engine, use_cache=use_cache,
                                  progress=lambda f, m="": bar.update(round(f * total)))
    bar.close()
    for skip in dataset.skipped:
        print(f"skipped {skip.source}: {skip.reason}", file=sys.stderr)
    return dataset


@contextlib.contextmanager
def gallery_or_none(db: str | Path | None, required: bool = False) -> Iterator[Any]:
    """The gallery (``db`` or the app's), closed afterwards; None when there is none and
    it is optional."""
    from desktop.store import Gallery, open_gallery
    from desktop.store.location import is_server_url, resolve

    path = resolve(db)
    if is_server_url(path):
        gallery = open_gallery(str(path), maintenance=False)
    elif not Path(path).exists():
        if required:
            raise FacestyleError(f"There is no gallery at {path}.",
                                 "Enrol people first ('facestyle gallery enroll'), or give "
                                 "a folder of photos instead.")
        yield None
        return
    else:
        gallery = Gallery(path, create=False, maintenance=False)
    try:
        yield gallery
    finally:
        gallery.close()


def tau_setting(tau: float | None, gallery) -> float:
    """``--tau`` if given, else the gallery's tau setting, else dlib's 0.36."""
    if tau is not None:
        return float(tau)
    if gallery is not None:
        return float(gallery.get_setting("tau"))
    return DEFAULT_TAU


def reembed_with_bar(registry, gallery) -> None:
    """Re-embed the gallery's stale templates with the active encoder, with a bar."""
    if gallery is None:
        return
    from desktop.commands.progress import ProgressBar
    from desktop.store.reembed import reembed_gallery

    embedder = registry.embedder()
    stale = gallery.count_stale(embedder.model_id)
    if not stale:
        return
    bar = ProgressBar(stale, "re-embed", unit="templates")
    report = reembed_gallery(gallery, embedder, model_version=registry.active().name,
                             progress=lambda f, m="": bar.update(round(f * stale), m))
    bar.close()
    print(f"re-embedded {report.done} gallery templates with {embedder.model_id}"
          + (f"; {len(report.failed)} failed" if report.failed else ""), file=sys.stderr)


def activate_and_report(registry, name: str, gallery, tau: float, device: str = "auto") -> int:
    """Activate with the guard, print its comparison, re-embed the gallery. Exit code."""
    from desktop.device import pick_device

    check = registry.activate(name, tau=tau, device=pick_device(device))  # raises if refused
    print(check.reason, file=sys.stderr)
    print(f"active encoder: {registry.active().name} ({registry.active_model_id()})")
    reembed_with_bar(registry, gallery)
    return 0
