"""Index a source: per unit of a layer, the k image patches that activate it most.

:func:`index_layers` runs the network once over every item of a source (batched, images
of one size together, decoding on a helper thread) and keeps, for each requested layer, a
:class:`~desktop.explore.topk.RunningTopK`; nothing else of the activations is kept. Each
layer's result is a :class:`LayerIndex`: per unit, the k entries (item, feature-map
position, activation), strongest first, with the layer's receptive field, so that every
entry's patch is the box :meth:`LayerIndex.box` in the item's pixels. Results are cached
on disk per layer (:mod:`desktop.explore.cache`), keyed by the source's content
fingerprint, the network and its number format, the layer, k and the per-image limit.

Images the network cannot use are skipped and listed with the reason (unreadable, too
small for the layer, not a face chip for the encoder); they never stop the index.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from desktop.errors import FacestyleError
from desktop.explore.networks import ExploreNetwork, LayerInfo
from desktop.explore.receptive_field import Geometry
from desktop.explore.sources import ImageSource, Skipped, SourceItem, iter_loaded
from desktop.explore.topk import RunningTopK, TopK
from desktop.tasks import CancelToken, ProgressCallback, no_progress, scaled

#: Bytes of work memory a batch may take (its largest activations, about four copies).
BATCH_BUDGET = 512 * 2**20
MAX_BATCH = 16
#: Images waiting for a same-sized batch, at most (then the fullest batch runs as is).
MAX_PENDING = 48


@dataclass(frozen=True)
class IndexSettings:
    """``top_k`` entries per unit, at most ``per_image`` of them from one image;
    ``batch_size`` 0 picks one from the image size."""

    top_k: int = 9
    per_image: int = 1
    batch_size: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.per_image < 1 or self.batch_size < 0:
            raise FacestyleError("top-k and the per-image limit must be at least 1.")


@dataclass(frozen=True)
class Entry:
    """One of a unit's top entries."""

    rank: int  # 0 = strongest
    item: int  # index into LayerIndex.items
    row: int  # position in the feature map
    col: int
    value: float  # the activation


@dataclass
class LayerIndex:
    """Per unit of one layer, the strongest entries over a source (see module doc)."""

    network: str
    layer: str
    channels: int
    geometry: Geometry
    top: TopK
    items: list[SourceItem]
    #: (len(items), 2) int32: each item's (H, W) as analysed; -1 where it was skipped
    sizes: np.ndarray
    #: (len(items), 2) int32: the (H, W) of the file it came from; -1 when not a rescale
    source_sizes: np.ndarray
    source: str = ""
    fingerprint: str = ""
    precision: str = ""
    settings: IndexSettings = field(default_factory=IndexSettings)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    created: float = 0.0
    from_cache: bool = False

    def entries(self, unit: int) -> list[Entry]:
        """The unit's entries, strongest first (fewer than k when the source is small)."""
        t = self.top
        return [Entry(rank, int(t.item[unit, rank]), int(t.row[unit, rank]),
                      int(t.col[unit, rank]), float(t.value[unit, rank]))
                for rank in range(t.k) if t.item[unit, rank] >= 0]

    def box(self, entry: Entry) -> tuple[int, int, int, int]:
        """The entry's receptive field ``(x0, y0, x1, y1)`` in the analysed item's pixels
        (ends exclusive; may reach past the image's edges)."""
        return self.geometry.box(entry.row, entry.col)

    def source_box(self, entry: Entry) -> tuple[int, int, int, int] | None:
        """:meth:`box` in the pixels of the file the item came from (None for chips)."""
        src_h, src_w = (int(v) for v in self.source_sizes[entry.item])
        h, w = (int(v) for v in self.sizes[entry.item])
        if min(src_h, src_w, h, w) <= 0:
            return None
        x0, y0, x1, y1 = self.box(entry)
        sx, sy = src_w / w, src_h / h
        return round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)

    def unit_max(self) -> np.ndarray:
        """(C,) each unit's strongest activation (-inf for none)."""
        return self.top.value[:, 0].copy()

    def describe(self) -> str:
        g = self.geometry
        return (f"{self.layer}: {self.channels} units, receptive field {g.size} px, "
                f"stride {g.jump} px")

    def unit_json(self, unit: int) -> dict[str, Any]:
        out = []
        for e in self.entries(unit):
            item = self.items[e.item]
            out.append({
                "rank": e.rank,
                "image": item.path or item.key,
                "label": item.label,
                "position": [e.row, e.col],
                "box": list(self.box(e)),
                "source_box": (list(b) if (b := self.source_box(e)) is not None else None),
                "image_size": [int(v) for v in self.sizes[e.item][::-1]],
                "activation": round(e.value, 5),
            })
        return {"unit": unit, "top": out}

    def to_json(self, units: Iterable[int]) -> dict[str, Any]:
        """The JSON the CLI writes: the layer's facts, then per unit its entries (image,
        feature-map position [row, col], receptive-field box [x0, y0, x1, y1] in the
        analysed image's pixels and in the file's, activation), strongest first."""
        g = self.geometry
        return {
            "network": self.network,
            "layer": self.layer,
            "units_in_layer": self.channels,
            "receptive_field": {"size": g.size, "stride": g.jump, "start": g.start},
            "source": self.source,
            "images": int((self.sizes[:, 0] >= 0).sum()),
            "top_k": self.settings.top_k,
            "per_image": self.settings.per_image,
            "precision": self.precision,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "units": [self.unit_json(u) for u in units],
        }


def auto_batch(network: ExploreNetwork, height: int, width: int) -> int:
    """Images per batch for inputs of ``height x width``: as many as fit
    :data:`BATCH_BUDGET` (the first layers' 64-channel maps dominate), 1 to 16."""
    if network.input_size:
        return 32
    per_image = 64 * height * width * 4 * 4
    return max(1, min(MAX_BATCH, BATCH_BUDGET // max(1, per_image)))


def index_layers(source: ImageSource, network: ExploreNetwork, layers: Iterable[str],
                 settings: IndexSettings | None = None, *,
                 progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
                 use_cache: bool = True, scanned: bool = False,
                 cache_only: bool = False) -> dict[str, LayerIndex]:
    """The :class:`LayerIndex` of each of ``layers`` over ``source`` (from the cache when
    it has them; the others in one pass over the source).

    ``scanned``: the source was scanned already (else :meth:`ImageSource.scan` runs
    first, reporting into the first part of ``progress``). ``cache_only``: compute
    nothing; return the layers found in the cache (all or none), e.g. to reopen last
    time's results at start-up.

    Raises:
        FacestyleError: no usable image, or the network cannot take the source's images.
        Cancelled: ``cancel`` was set (nothing is cached then).
    """
    from desktop.explore import cache

    settings = settings or IndexSettings()
    infos = list(dict.fromkeys(network.layer(name) for name in layers))
    if not infos:
        raise FacestyleError("Pick at least one layer.")
    if network.input_size and not source.chip_faces():
        raise FacestyleError("The face encoder looks at aligned face chips, not whole images.",
                             "Choose the faces in a folder, or the gallery's face chips.")
    scan_share = 0.0 if scanned else (0.5 if source.chip_faces() else 0.05)
    if not scanned:
        source.scan(scaled(progress, 0.0, scan_share), cancel)
    if not source.items:
        what = "faces" if source.chip_faces() else "images"
        raise FacestyleError(f"No {what} found in {source.where or source.description}.",
                             "Pick a folder with JPEG, PNG, BMP, WebP, TIFF or GIF images.")
    fingerprint = source.fingerprint()
    keys = {i.name: cache.cache_key(fingerprint, network.identity, i.name, settings)
            for i in infos}
    found: dict[str, LayerIndex] = {}
    if use_cache:
        for info in infos:
            hit = cache.load(network.key, info.name, keys[info.name])
            if hit is not None:
                found[info.name] = hit
    todo = [i for i in infos if i.name not in found]
    if todo and cache_only:
        return {}
    if todo:
        computed = _run(source, network, todo, settings, scaled(progress, scan_share, 1.0),
                        cancel)
        for index in computed.values():
            index.fingerprint = fingerprint
            if use_cache:
                cache.save(network.key, index.layer, keys[index.layer], index)
        found.update(computed)
    progress(1.0, "Done")
    return {i.name: found[i.name] for i in infos}


def _run(source: ImageSource, network: ExploreNetwork, infos: list[LayerInfo],
         settings: IndexSettings, progress: ProgressCallback,
         cancel: CancelToken | None) -> dict[str, LayerIndex]:
    """One pass over the source for the ``infos`` layers (see :func:`index_layers`)."""
    n = len(source.items)
    names = [i.name for i in infos]
    running = {i.name: RunningTopK(i.channels, settings.top_k, settings.per_image)
               for i in infos}
    sizes = np.full((n, 2), -1, np.int32)
    source_sizes = np.full((n, 2), -1, np.int32)
    skipped: list[Skipped] = list(source.skipped)
    min_side = max(i.geometry.jump for i in infos)
    pending: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    started = time.monotonic()

    def run(shape: tuple[int, int]) -> None:
        batch = pending.pop(shape)
        maps = network.features(np.stack([img for _, img in batch]), names)
        ids = [i for i, _ in batch]
        for name in names:
            running[name].update(maps[name], ids)

    for done, (i, image, reason) in enumerate(iter_loaded(source, list(range(n)), cancel),
                                              start=1):
        if cancel is not None:
            cancel.checkpoint()
        item = source.items[i]
        if image is None:
            skipped.append(Skipped(item.path or item.label, reason))
        elif network.input_size and image.shape[:2] != (network.input_size,) * 2:
            skipped.append(Skipped(item.path or item.label, "not a face chip"))
        elif min(image.shape[:2]) < min_side:
            skipped.append(Skipped(item.path or item.label,
                                   f"too small ({image.shape[1]} x {image.shape[0]} px) for "
                                   f"{names[-1]}, which needs {min_side} px"))
        else:
            sizes[i] = image.shape[:2]
            full = source.source_size(item)
            if full is not None:
                source_sizes[i] = full
            shape = (int(image.shape[0]), int(image.shape[1]))
            bucket = pending.setdefault(shape, [])
            bucket.append((i, image))
            if len(bucket) >= (settings.batch_size or auto_batch(network, *shape)):
                run(shape)
            elif sum(len(b) for b in pending.values()) > MAX_PENDING:
                run(max(pending, key=lambda s: len(pending[s])))
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        progress(done / n * 0.98, f"Indexing: {done} / {n} images · {rate:.1f} images/s")
    while pending:
        if cancel is not None:
            cancel.checkpoint()
        run(next(iter(pending)))
    used = int((sizes[:, 0] >= 0).sum())
    if used == 0:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise FacestyleError(f"None of the {n} images could be used ({reasons}).")
    seconds = time.monotonic() - started
    now = time.time()
    return {info.name: LayerIndex(
        network=network.key, layer=info.name, channels=info.channels, geometry=info.geometry,
        top=running[info.name].result(), items=list(source.items), sizes=sizes.copy(),
        source_sizes=source_sizes.copy(), source=source.description,
        precision=network.precision, settings=settings, skipped=list(skipped),
        seconds=seconds, created=now) for info in infos}


def images_per_second(index: LayerIndex) -> float:
    """How fast the index was made (images it used per second of the pass)."""
    used = int((index.sizes[:, 0] >= 0).sum())
    return used / index.seconds if index.seconds > 0 else math.inf
