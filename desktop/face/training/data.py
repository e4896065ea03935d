"""Training data: aligned chips grouped by identity, a held-out split, and held-out pairs.

Sources:

* a folder per identity, ``ROOT/<person>/*.jpg`` (:func:`dataset_from_folder`); each photo
  is detected and aligned once by a face engine, and the chip is cached in the user cache
  folder keyed by the file's SHA-256, so a second run reads no photo twice;
* any mapping ``name -> chips`` (:meth:`ChipDataset.from_identities`), e.g. the gallery's
  people with their stored template chips (:func:`desktop.jobs.dataset_from_gallery`).

Identities with fewer than 2 usable images cannot give a positive pair and are left out
(and listed). Training needs at least :data:`MIN_IDENTITIES` identities left.

The held-out split is *by identity*: no held-out person is ever trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop.errors import FacestyleError, ImageError
from desktop.face.types import Face, FaceEngineLike
from desktop.imageio import load_rgb
from desktop.paths import user_dirs
from desktop.tasks import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)

MIN_IDENTITIES = 3
MIN_IMAGES_PER_IDENTITY = 2
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: Bump when detection or alignment changes, so cached chips are made again.
CHIP_CACHE_VERSION = "chips-v1"


class NotEnoughData(FacestyleError):
    """Too few identities, or too few images per identity, to train or evaluate."""


@dataclass(frozen=True)
class SkippedImage:
    source: str
    reason: str


@dataclass
class ChipDataset:
    """Aligned chips with an identity each.

    Attributes:
        chips: (N, H, W, 3) uint8 RGB chips (H = W = 150 for dlib's encoder).
        labels: (N,) int64 index into ``names``.
        names: identity names.
        sources: (N,) where each chip came from (file path or template id).
        skipped: images or identities left out, with the reason.
        origin: a short description of the source, for the checkpoint's metadata.
    """

    chips: np.ndarray
    labels: np.ndarray
    names: list[str]
    sources: list[str] = field(default_factory=list)
    skipped: list[SkippedImage] = field(default_factory=list)
    origin: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.sources:
            self.sources = [f"#{i}" for i in range(len(self.labels))]

    @classmethod
    def from_identities(
        cls,
        identities: Mapping[str, Sequence[np.ndarray] | np.ndarray],
        origin: str = "",
        sources: Mapping[str, Sequence[str]] | None = None,
        skipped: Sequence[SkippedImage] = (),
        min_images: int = MIN_IMAGES_PER_IDENTITY,
    ) -> ChipDataset:
        """Build from ``name -> chips``; names with fewer than ``min_images`` are skipped."""
        chips: list[np.ndarray] = []
        labels: list[int] = []
        names: list[str] = []
        srcs: list[str] = []
        left_out = list(skipped)
        for name in sorted(identities):
            group = list(identities[name])
            names_src = list((sources or {}).get(name, [f"{name}#{i}" for i in range(len(group))]))
            if len(group) < min_images:
                left_out.append(SkippedImage(
                    name, f"only {len(group)} usable image(s); at least {min_images} needed"))
                continue
            label = len(names)
            names.append(name)
            for chip, src in zip(group, names_src, strict=True):
                chips.append(np.asarray(chip, dtype=np.uint8))
                labels.append(label)
                srcs.append(src)
        stacked = np.stack(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)
        return cls(stacked, np.asarray(labels), names, srcs, left_out, origin)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_identities(self) -> int:
        return len(self.names)

    def counts(self) -> dict[str, int]:
        """Images per identity."""
        per = np.bincount(self.labels, minlength=len(self.names))
        return {name: int(n) for name, n in zip(self.names, per, strict=True)}

    def subset(self, identity_indices: Iterable[int]) -> ChipDataset:
        """Only the given identities (relabelled 0..m-1, in the order given)."""
        keep = list(identity_indices)
        remap = {old: new for new, old in enumerate(keep)}
        mask = np.isin(self.labels, keep)
        labels = np.array([remap[int(v)] for v in self.labels[mask]], dtype=np.int64)
        sources = [s for s, m in zip(self.sources, mask, strict=True) if m]
        return ChipDataset(self.chips[mask], labels, [self.names[i] for i in keep],
                           sources, [], self.origin)

    def require_trainable(self) -> None:
        """Raise :class:`NotEnoughData` unless there are >= 3 identities with >= 2 images."""
        counts = self.counts()
        small = [n for n, c in counts.items() if c < MIN_IMAGES_PER_IDENTITY]
        usable = len(counts) - len(small)
        if usable >= MIN_IDENTITIES and not small:
            return
        left_out = "; ".join(f"{s.source}: {s.reason}" for s in self.skipped[:5])
        detail = f" Left out: {left_out}." if left_out else ""
        raise NotEnoughData(
            f"Training needs at least {MIN_IDENTITIES} people with at least "
            f"{MIN_IMAGES_PER_IDENTITY} face photos each; this data has {usable} such "
            f"{'person' if usable == 1 else 'people'}.{detail}",
            "Add more people, or more photos of each (one face per photo), and try again.",
        )

    def summary(self) -> dict:
        """A JSON-ready description for checkpoint metadata and the UI."""
        counts = self.counts()
        return {
            "origin": self.origin,
            "identities": len(self.names),
            "images": len(self),
            "images_per_identity": {
                "min": min(counts.values(), default=0),
                "max": max(counts.values(), default=0),
            },
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
        }

    def split_by_identity(
        self, heldout_fraction: float = 0.2, seed: int = 0
    ) -> tuple[ChipDataset, ChipDataset]:
        """``(train, heldout)``: disjoint sets of identities, never split by image.

        At least one identity is held out and at least two stay for training.
        """
        n = self.num_identities
        if n < MIN_IDENTITIES:
            self.require_trainable()
        n_held = min(max(1, round(heldout_fraction * n)), n - 2)
        order = np.random.default_rng(seed).permutation(n)
        held, train = sorted(order[:n_held].tolist()), sorted(order[n_held:].tolist())
        return self.subset(train), self.subset(held)


@dataclass
class PairChips:
    """Chips and a list of pairs over them, labelled same/different: a held-out test set.

    ``pairs`` is (M, 2) indices into ``chips``; ``same`` is (M,) bool. Saved with each
    checkpoint so the activation guard compares two encoders on the very same pairs.
    """

    chips: np.ndarray
    pairs: np.ndarray
    same: np.ndarray
    description: str = ""

    def __len__(self) -> int:
        return len(self.same)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, chips=self.chips, pairs=self.pairs, same=self.same,
                            description=np.array(self.description))

    @classmethod
    def load(cls, path: Path) -> PairChips:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["chips"], z["pairs"].astype(np.int64), z["same"].astype(bool),
                       str(z["description"]))


def heldout_pairs(
    heldout: ChipDataset, train: ChipDataset | None = None, seed: int = 0,
    max_positive: int = 500,
) -> PairChips:
    """Balanced held-out pairs: every positive pair among held-out images (up to
    ``max_positive``), and as many negatives, sampled with a fixed seed.

    Negatives pair two held-out identities; when only one identity is held out, each
    negative pairs a held-out image with a training image (the held-out face is still
    unseen in training).
    """
    rng = np.random.default_rng(seed)
    labels = heldout.labels
    n = len(labels)
    ii, jj = np.triu_indices(n, k=1)
    same = labels[ii] == labels[jj]
    pos = np.stack([ii[same], jj[same]], 1)
    if len(pos) > max_positive:
        pos = pos[rng.choice(len(pos), max_positive, replace=False)]
    chips = heldout.chips
    neg = np.stack([ii[~same], jj[~same]], 1)
    if len(neg) == 0 and train is not None and len(train):
        # One held-out identity: pair held-out images with training images.
        gi, gj = np.meshgrid(np.arange(n), np.arange(len(train)), indexing="ij")
        neg = np.stack([gi.ravel(), n + gj.ravel()], 1)
        chips = np.concatenate([heldout.chips, train.chips])
    if len(neg) > len(pos):
        neg = neg[rng.choice(len(neg), len(pos), replace=False)]
    pairs = np.concatenate([pos, neg]).astype(np.int64)
    labels_same = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    used = np.unique(pairs)  # keep only chips that appear in a pair
    remap = np.full(len(chips), -1, np.int64)
    remap[used] = np.arange(len(used))
    desc = (f"{len(pos)} same and {len(neg)} different pairs over "
            f"{heldout.num_identities} held-out identities ({', '.join(heldout.names)})")
    return PairChips(chips[used], remap[pairs], labels_same, desc)


# -- building from photos --------------------------------------------------------------


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chip_cache_dir() -> Path:
    return user_dirs().cache / "training-chips" / CHIP_CACHE_VERSION


def choose_face(faces: Sequence[Face]) -> tuple[Face | None, str]:
    """The face a photo of one person shows: the only one, or one clearly the largest
    (twice the area of the next). Returns ``(face, "")`` or ``(None, reason)``."""
    if not faces:
        return None, "no face found"
    ranked = sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)
    if len(ranked) > 1:
        a0 = ranked[0].box[2] * ranked[0].box[3]
        a1 = ranked[1].box[2] * ranked[1].box[3]
        if a0 < 2 * a1:
            return None, f"{len(faces)} faces of similar size; which one is meant is unclear"
    if ranked[0].chip is None:
        return None, "the face engine returned no chip"
    return ranked[0], ""


def chip_for_file(
    path: Path, engine: FaceEngineLike, cache: Path | None = None
) -> tuple[np.ndarray | None, str]:
    """The aligned chip of the face in one photo, from the cache or by detection.

    Returns ``(chip, "")``, or ``(None, reason)`` when the photo is unreadable or shows no
    single clear face. Results, failures included, are cached by the file's SHA-256.
    """
    try:
        digest = file_sha256(path)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    cached = (cache / digest[:2] / f"{digest}.npz") if cache else None
    if cached is not None and cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                reason = str(z["reason"])
                return (z["chip"] if not reason else None), reason
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable chip cache entry %s", cached)
    try:
        image = load_rgb(path)
        face, reason = choose_face(engine.detect(image))
    except ImageError as exc:
        return None, exc.message  # not cached: the file may be fixed in place
    chip = np.asarray(face.chip, np.uint8) if face is not None else np.zeros((0,), np.uint8)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, chip=chip, reason=np.array(reason))
            tmp.replace(cached)
        except OSError as exc:
            log.warning("cannot write the chip cache %s: %s", cached, exc)
    return (chip if face is not None else None), reason


def list_identity_folders(root: Path) -> dict[str, list[Path]]:
    """``ROOT/<person>/<image>`` to ``{person: [image paths]}`` (sorted; hidden names skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FacestyleError(
            f"{root} is not a folder.",
            "Give a folder with one sub-folder of photos per person: ROOT/<person>/*.jpg",
        )
    out: dict[str, list[Path]] = {}
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in person.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                       and not f.name.startswith("."))
        if files:
            out[person.name] = files
    if not out:
        raise NotEnoughData(
            f"{root} has no sub-folders with photos.",
            "Put one folder per person in it, e.g. ROOT/alice/1.jpg, ROOT/alice/2.jpg.",
        )
    return out


def dataset_from_folder(
    root: Path,
    engine: FaceEngineLike,
    *,
    use_cache: bool = True,
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> ChipDataset:
    """Detect, align and cache the face of every photo under ``ROOT/<person>/``.

    Photos without a single clear face are skipped and listed in ``skipped``.
    """
    folders = list_identity_folders(Path(root))
    cache = chip_cache_dir() if use_cache else None
    total = sum(len(v) for v in folders.values())
    done = 0
    identities: dict[str, list[np.ndarray]] = {}
    sources: dict[str, list[str]] = {}
    skipped: list[SkippedImage] = []
    for person, files in folders.items():
        for path in files:
            if cancel is not None:
                cancel.checkpoint()
            chip, reason = chip_for_file(path, engine, cache)
            if chip is None:
                skipped.append(SkippedImage(str(path), reason))
            else:
                identities.setdefault(person, []).append(chip)
                sources.setdefault(person, []).append(str(path))
            done += 1
            progress(done / total, f"faces {done}/{total}")
    for person in folders:
        identities.setdefault(person, [])
    return ChipDataset.from_identities(identities, origin=f"folder:{Path(root).resolve()}",
                                       sources=sources, skipped=skipped)
