"""The on-disk cache of layer indexes, so that reopening a folder's results is instant.

One ``.npz`` per (source content, network, layer, settings) under the user cache folder,
``explore/index/<network>-<layer>-<key>.npz``. The key (:func:`cache_key`) is a SHA-256
of the source's content fingerprint (every image's path, size and modification time, or
the chips' hashes), the network's weights and number format, the layer, k and the
per-image limit: change a file in the folder and the next index misses the cache and
runs again. Files are written atomically; a damaged or foreign file is ignored (and
replaced by the next save), never trusted. The newest :data:`KEEP` files are kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from desktop.explore.receptive_field import Geometry
from desktop.explore.sources import Skipped, SourceItem, digest
from desktop.explore.topk import TopK

log = logging.getLogger(__name__)

#: Bump when the stored layout or what an index means changes.
FORMAT = 1
KEEP = 400


def cache_dir() -> Path:
    from desktop.paths import user_dirs

    return user_dirs().cache / "explore" / "index"


def cache_key(fingerprint: str, network_identity: str, layer: str, settings) -> str:
    """The key of one layer's index (see the module docstring)."""
    return digest(FORMAT, fingerprint, network_identity, layer, settings.top_k,
                  settings.per_image)


def cache_path(network: str, layer: str, key: str) -> Path:
    return cache_dir() / f"{network}-{layer}-{key[:32]}.npz"


def save(network: str, layer: str, key: str, index) -> Path | None:
    """Write ``index`` (a :class:`~desktop.explore.index.LayerIndex`); None when the cache
    folder cannot be written (the index is still returned to the caller, just not kept)."""
    path = cache_path(network, layer, key)
    meta = {
        "format": FORMAT, "key": key, "network": index.network, "layer": index.layer,
        "channels": index.channels,
        "geometry": [index.geometry.size, index.geometry.jump, index.geometry.start],
        "items": [item.to_json() for item in index.items], "source": index.source,
        "fingerprint": index.fingerprint, "precision": index.precision,
        "settings": [index.settings.top_k, index.settings.per_image,
                     index.settings.batch_size],
        "skipped": [[s.path, s.reason] for s in index.skipped],
        "seconds": index.seconds, "created": index.created,
    }
    t = index.top
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, value=t.value, item=t.item, row=t.row, col=t.col, sizes=index.sizes,
                     source_sizes=index.source_sizes, meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the explore cache %s: %s", path, exc)
        return None
    _prune(path.parent)
    return path


def load(network: str, layer: str, key: str):
    """The cached :class:`~desktop.explore.index.LayerIndex` for ``key``, or None."""
    from desktop.explore.index import IndexSettings, LayerIndex

    path = cache_path(network, layer, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT or meta.get("key") != key:
                return None
            top = TopK(z["value"], z["item"], z["row"], z["col"])
            sizes, source_sizes = z["sizes"], z["source_sizes"]
        top_k, per_image, batch = meta["settings"]
        index = LayerIndex(
            network=meta["network"], layer=meta["layer"], channels=int(meta["channels"]),
            geometry=Geometry(*meta["geometry"]), top=top,
            items=[SourceItem.from_json(i) for i in meta["items"]], sizes=sizes,
            source_sizes=source_sizes, source=meta["source"],
            fingerprint=meta["fingerprint"], precision=meta["precision"],
            settings=IndexSettings(top_k, per_image, batch),
            skipped=[Skipped(p, r) for p, r in meta["skipped"]],
            seconds=float(meta["seconds"]), created=float(meta["created"]), from_cache=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable explore cache file %s (%s)", path, exc)
        return None
    if index.top.value.shape != (index.channels, top_k) or len(index.items) != len(sizes):
        log.warning("ignoring inconsistent explore cache file %s", path)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return index


def _prune(folder: Path, keep: int = KEEP) -> None:
    """Delete all but the ``keep`` most recently used index files."""
    try:
        files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in files[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()
