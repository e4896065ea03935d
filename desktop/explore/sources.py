"""What to look through: the images of a folder, the faces in them, or the gallery's chips.

A source lists :class:`SourceItem` s (one image, or one face chip) and loads each as the
network will see it: an (H, W, 3) RGB uint8 array. Every source has a content
``fingerprint``: a SHA-256 over what decides its results (for a folder, every image's
relative path, size in bytes and modification time, plus the analysis size), so a cache
keyed by it goes stale as soon as a file is added, removed or changed.

* :class:`ImageFolderSource`: every image under a folder, recursively (hidden files and
  folders skipped), each shrunk so its longest side is at most ``max_side`` pixels (never
  enlarged). Boxes map back to the file's pixels through :meth:`ImageSource.source_size`.
* :class:`FaceChipSource`: every face found in those images (dlib's detector, landmarks
  and alignment, as check-in), as aligned 150 x 150 chips; the chips of each file are
  cached by the file's SHA-256, so a second scan skips detection.
* :class:`GalleryChipSource`: the face chips stored with the gallery's templates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from desktop.errors import Cancelled, FacestyleError, ImageError
from desktop.imageio import downscale_to, load_rgb
from desktop.tasks import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)

#: File name endings looked at in a folder (lower case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
#: Bump when detection, alignment or the chip cache's layout changes.
CHIP_CACHE_VERSION = "v1"


@dataclass(frozen=True)
class SourceItem:
    """One thing the network looks at: an image file, or one face chip.

    ``key`` is stable within its source (the relative path, ``path#face2``,
    ``template:12``); ``path`` is the file it comes from ('' for gallery chips)."""

    key: str
    label: str
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "path": self.path}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceItem:
        return cls(str(data["key"]), str(data["label"]), str(data.get("path", "")))


@dataclass
class Skipped:
    """A file the scan or the index could not use, and why (in words)."""

    path: str
    reason: str


@dataclass
class ImageSource:
    """Base class. Call :meth:`scan` (slow for faces) before ``items`` and ``load``."""

    kind: str = ""
    description: str = ""
    #: Where the items come from, for messages ("the folder nst-dev", "the gallery").
    where: str = ""
    items: list[SourceItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def scan(self, progress: ProgressCallback = no_progress,
             cancel: CancelToken | None = None) -> None:
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError

    def load(self, item: SourceItem) -> np.ndarray:
        """The item as the network sees it: (H, W, 3) RGB uint8.

        Raises:
            ImageError: the file became unreadable since the scan.
        """
        raise NotImplementedError

    def source_size(self, item: SourceItem) -> tuple[int, int] | None:
        """The (H, W) of the file ``item`` was loaded from, once loaded, when the loaded
        image is a plain rescale of it (None for face chips)."""
        return None

    def chip_faces(self) -> bool:
        """Whether items are aligned face chips (what the face encoder takes)."""
        return False


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively, sorted; hidden files and folders skipped).

    Raises:
        FacestyleError: ``root`` is not a folder.
    """
    if not root.is_dir():
        raise FacestyleError(f"{root} is not a folder.", "Pick a folder of images.")
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder) / name for name in sorted(files)
                     if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES)
    return found


def folder_listing(root: Path, files: list[Path]) -> list[tuple[str, int, int]]:
    """``(relative path, size in bytes, mtime in ns)`` of each file (vanished ones left out)."""
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return out


def digest(*parts: Any) -> str:
    """SHA-256 (hex) of ``parts`` written as JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class ImageFolderSource(ImageSource):
    """Every image under ``root``, shrunk to ``max_side`` pixels at most (see module doc)."""

    def __init__(self, root: str | os.PathLike[str], max_side: int = 512) -> None:
        root = Path(root).expanduser().resolve()
        super().__init__("folder", f"{root.name or root} (images up to {max_side} px)",
                         f"the folder {root}")
        self.root = root
        self.max_side = int(max_side)
        self._listing: list[tuple[str, int, int]] = []
        self._full: dict[str, tuple[int, int]] = {}

    def scan(self, progress: ProgressCallback = no_progress,
             cancel: CancelToken | None = None) -> None:
        files = list_images(self.root)
        self._listing = folder_listing(self.root, files)
        self.items = [SourceItem(rel, rel, str(self.root / rel)) for rel, _, _ in self._listing]
        self.skipped = []
        progress(1.0, f"{len(self.items)} images in {self.root.name}")

    def fingerprint(self) -> str:
        return digest("folder", str(self.root), self.max_side, self._listing)

    def load(self, item: SourceItem) -> np.ndarray:
        image = load_rgb(item.path, draft_side=self.max_side)
        self._full[item.key] = _full_size(item.path, image)
        return downscale_to(image, self.max_side)[0]

    def source_size(self, item: SourceItem) -> tuple[int, int] | None:
        return self._full.get(item.key)


def _full_size(path: str, decoded: np.ndarray) -> tuple[int, int]:
    """The upright (H, W) of the file at ``path`` (its decoded copy may be a draft)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
    except OSError:
        return decoded.shape[:2]
    if orientation in (5, 6, 7, 8):  # EXIF rotations by 90 degrees swap the sides
        w, h = h, w
    return h, w


# ------------------------------------------------------------------------------------------
# Face chips
# ------------------------------------------------------------------------------------------
def chip_cache_dir() -> Path:
    from desktop.paths import user_dirs

    return user_dirs().cache / "explore" / "chips" / CHIP_CACHE_VERSION


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FaceChipSource(ImageSource):
    """Every face in the images under ``root``, as an aligned 150 x 150 chip.

    ``engine_factory`` makes the face engine (detector, landmarks, alignment) on first
    need; by default :class:`desktop.face.api.FaceEngine`."""

    def __init__(self, root: str | os.PathLike[str],
                 engine_factory: Callable[[], Any] | None = None) -> None:
        root = Path(root).expanduser().resolve()
        super().__init__("faces", f"faces in {root.name or root}", f"the folder {root}")
        self.root = root
        self._engine_factory = engine_factory
        self._engine: Any = None
        self._listing: list[tuple[str, int, int]] = []
        self._chips: dict[str, tuple[Path, int]] = {}  # item key -> (cache file, index)

    def chip_faces(self) -> bool:
        return True

    def _engine_now(self) -> Any:
        if self._engine is None:
            if self._engine_factory is not None:
                self._engine = self._engine_factory()
            else:
                from desktop.face.api import FaceEngine

                self._engine = FaceEngine()
        return self._engine

    def _faces_of(self, path: Path) -> Path:
        """The cache file holding the chips of every face in ``path`` (made if missing)."""
        sha = _file_sha256(path)
        cached = chip_cache_dir() / sha[:2] / f"{sha}.npz"
        if cached.is_file():
            try:
                with np.load(cached, allow_pickle=False) as z:
                    if z["chips"].ndim == 4:
                        return cached
            except (OSError, ValueError, KeyError):
                log.warning("ignoring unreadable chip cache entry %s", cached)
        image = load_rgb(path)  # before the engine: a bad file loads no models
        faces = self._engine_now().detect(image)
        chips = np.stack([f.chip for f in faces]) if faces else np.zeros((0, 150, 150, 3),
                                                                           np.uint8)
        boxes = np.array([f.box for f in faces], np.int32).reshape(-1, 4)
        _atomic_npz(cached, chips=chips.astype(np.uint8), boxes=boxes)
        return cached

    def scan(self, progress: ProgressCallback = no_progress,
             cancel: CancelToken | None = None) -> None:
        files = list_images(self.root)
        self._listing = folder_listing(self.root, files)
        self.items, self.skipped, self._chips = [], [], {}
        for i, (rel, _, _) in enumerate(self._listing):
            if cancel is not None:
                cancel.checkpoint()
            progress(i / max(1, len(self._listing)),
                     f"Finding faces: {i + 1} / {len(self._listing)} images")
            path = self.root / rel
            try:
                cached = self._faces_of(path)
                with np.load(cached, allow_pickle=False) as z:
                    count = len(z["chips"])
            except ImageError as exc:
                self.skipped.append(Skipped(str(path), exc.message))
                continue
            except OSError as exc:
                self.skipped.append(Skipped(str(path), f"cannot read: {exc.strerror or exc}"))
                continue
            if count == 0:
                self.skipped.append(Skipped(str(path), "no face found"))
            for face in range(count):
                key = f"{rel}#face{face + 1}"
                label = rel if count == 1 else f"{rel} · face {face + 1}"
                self.items.append(SourceItem(key, label, str(path)))
                self._chips[key] = (cached, face)
        progress(1.0, f"{len(self.items)} faces in {len(self._listing)} images")

    def fingerprint(self) -> str:
        return digest("faces", CHIP_CACHE_VERSION, str(self.root), self._listing)

    def load(self, item: SourceItem) -> np.ndarray:
        try:
            cached, face = self._chips[item.key]
            with np.load(cached, allow_pickle=False) as z:
                return np.ascontiguousarray(z["chips"][face])
        except KeyError as exc:
            raise ImageError(f"No face chip for {item.label}; scan the folder again.") from exc
        except (OSError, ValueError, IndexError) as exc:
            raise ImageError(f"The face chip of {item.label} cannot be read: {exc}") from exc


class GalleryChipSource(ImageSource):
    """The aligned face chips stored with the gallery's templates (one item each)."""

    def __init__(self, db_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__("gallery", "the gallery's face chips", "the gallery")
        self.db_path = db_path
        self._chips: dict[str, bytes] = {}
        self._ids: list[int] = []

    def chip_faces(self) -> bool:
        return True

    def scan(self, progress: ProgressCallback = no_progress,
             cancel: CancelToken | None = None) -> None:
        from desktop.store.gallery import open_gallery

        gallery = open_gallery(self.db_path, create=False, maintenance=False)
        try:
            names = {p.id: p.name for p in gallery.people()}
            templates = gallery.templates(with_chips=True)
        finally:
            gallery.close()
        self.items, self._chips, self._ids = [], {}, []
        counts: dict[int, int] = {}
        for t in templates:
            counts[t.person_id] = counts.get(t.person_id, 0) + 1
            key = f"template:{t.id}"
            name = names.get(t.person_id, f"person {t.person_id}")
            self.items.append(SourceItem(key, f"{name} · photo {counts[t.person_id]}"))
            self._chips[key] = t.chip_jpeg
            self._ids.append(t.id)
        if not self.items:
            raise FacestyleError("The gallery has no face photos yet.",
                                 "Enrol people on the Check-in tab first, or pick a folder.")
        progress(1.0, f"{len(self.items)} face chips in the gallery")

    def fingerprint(self) -> str:
        return digest("gallery", str(self.db_path or ""), self._ids,
                      [hashlib.sha256(self._chips[i.key]).hexdigest() for i in self.items])

    def load(self, item: SourceItem) -> np.ndarray:
        from desktop.store.chips import decode_chip

        try:
            return decode_chip(self._chips[item.key])
        except (KeyError, ValueError) as exc:
            raise ImageError(f"The stored chip of {item.label} cannot be read: {exc}") from exc


def iter_loaded(source: ImageSource, order: list[int], cancel: CancelToken | None = None,
                lookahead: int = 4) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """``(item index, image or None, reason)`` for ``order``, decoded on a helper thread
    ``lookahead`` items ahead of the caller (image decoding releases the GIL, so it
    overlaps the network's work). A failed load gives None and the reason in words."""
    from concurrent.futures import ThreadPoolExecutor

    def load(i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, source.load(source.items[i]), ""
        except ImageError as exc:
            return i, None, exc.message

    with ThreadPoolExecutor(1, thread_name_prefix="explore-load") as pool:
        pending = [pool.submit(load, i) for i in order[:lookahead]]
        next_i = len(pending)
        try:
            while pending:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                result = pending.pop(0).result()
                if next_i < len(order):
                    pending.append(pool.submit(load, order[next_i]))
                    next_i += 1
                yield result
        finally:
            for future in pending:
                future.cancel()
