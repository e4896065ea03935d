"""dlib's face landmarks (an ensemble of regression trees), in numpy.

This is the cascade of Kazemi & Sullivan (CVPR 2014) exactly as dlib runs it in
``dlib/image_processing/shape_predictor.h``, reading dlib's shape predictor files with
:mod:`desktop.face.dlib_format` (no dlib at run time). The same reader and predictor serve
both models that ``face_recognition_models`` ships: ``shape_predictor_5_face_landmarks.dat``
(alignment: 5 points, 15 cascades of 500 trees of depth 4) and
``shape_predictor_68_face_landmarks.dat`` (liveness challenges: 68 points in the iBUG
300-W order, eyelids and jaw line included; 15 cascades of 500 trees of depth 4, a 100 MB
file, parsed in about 10 s on first use, then cached):

* Shapes live in the *unit box*: (0, 0) is the face box's top-left corner and (1, 1) its
  bottom-right corner. For dlib's inclusive rectangle ``left, top, right, bottom`` (our box
  ``x, y, w, h`` gives ``right = x + w - 1``), a unit-box point ``(u, v)`` is the image pixel
  ``(left + u * (right - left), top + v * (bottom - top))``.
* Start from the mean shape ``s_0``. Cascade stage ``c`` has F feature pixels (800 in the
  5-point model, 500 in the 68-point one), each stored
  as an anchor landmark plus an offset (``delta``) relative to the mean shape. A least-squares
  similarity transform ``S`` (rotation and scale, no translation) maps the mean shape onto the
  current shape; pixel ``i`` is sampled at ``S @ delta_i + s[anchor_i]``, mapped into the
  image and rounded to the nearest pixel. Its value is the grey intensity
  ``(R + G + B) // 3`` (dlib's integer RGB-to-grey), or 0 outside the image.
* Each of the stage's 500 trees (depth 4) walks from the root: at node ``j`` go left
  (``2j + 1``) when ``I[idx1] - I[idx2] > thresh``, else right (``2j + 2``); the leaf holds a
  (P, 2) shape update. The stage adds all 500 updates to the shape, in float32, in order.
* After 15 stages the shape is mapped to image pixels and, as dlib's ``point`` parts,
  rounded to whole pixels. :meth:`ShapePredictor.predict` rounds too by default: the
  encoder's threshold was set on chips cut from rounded points, and on the faces-dev
  photos unrounded points move dlib's descriptor by up to 0.06 L2 (rounded: 0.001).

The predictor is vectorised over faces and trees. Parsing the file in Python takes a few
seconds, so the parsed arrays are cached in the user cache folder as an ``.npz`` named by
the file's SHA-256; later starts load them in milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from desktop.errors import ImageError
from desktop.face.dlib_format import DlibFormatError, DlibReader
from desktop.model_files import (
    FACE_LANDMARKS,
    FACE_LANDMARKS_68,
    FACE_PACKAGE,
    reinstall_hint,
    require,
)

log = logging.getLogger(__name__)

#: Bumped when the cached array layout changes, so an old cache is never misread.
CACHE_FORMAT = 1

#: S^T for S = [[a, -b], [b, a]] is a * _ROTATION_BASIS[0] + b * _ROTATION_BASIS[1].
_ROTATION_BASIS = np.array([[[1, 0], [0, 1]], [[0, 1], [-1, 0]]], dtype=np.float32)


@dataclass(frozen=True)
class ShapePredictor:
    """A parsed dlib shape predictor: C cascade stages of T trees of depth D each.

    Attributes (P landmarks, F feature pixels per stage, S = 2**D - 1 splits and
    L = 2**D leaves per tree):
        initial_shape: (P, 2) float32, the mean shape in unit-box coordinates.
        split_idx1, split_idx2: (C, T, S) int32, feature-pixel indices compared at each
            split node (nodes in breadth-first order: children of j are 2j+1, 2j+2).
        split_thresh: (C, T, S) float32, go left when I[idx1] - I[idx2] > thresh.
        leaf_values: (C, T, L, P, 2) float32, shape updates in unit-box coordinates.
        anchor_idx: (C, F) int32, the landmark each feature pixel hangs from.
        deltas: (C, F, 2) float32, each feature pixel's offset from its anchor, in the mean
            shape's unit-box coordinates.
    """

    initial_shape: np.ndarray
    split_idx1: np.ndarray
    split_idx2: np.ndarray
    split_thresh: np.ndarray
    leaf_values: np.ndarray
    anchor_idx: np.ndarray
    deltas: np.ndarray

    # -- shape ------------------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        return int(self.initial_shape.shape[0])

    @property
    def num_cascades(self) -> int:
        return int(self.split_idx1.shape[0])

    @property
    def num_trees(self) -> int:
        return int(self.split_idx1.shape[1])

    @property
    def depth(self) -> int:
        return int(self.split_idx1.shape[2] + 1).bit_length() - 1

    def is_consistent(self) -> bool:
        """Whether the arrays have the shapes and index ranges described above."""
        c, t, s = self.split_idx1.shape
        p, f = self.num_parts, self.deltas.shape[1]
        return (
            self.initial_shape.shape == (p, 2)
            and self.split_idx2.shape == self.split_thresh.shape == (c, t, s)
            and self.leaf_values.shape == (c, t, s + 1, p, 2)
            and self.anchor_idx.shape == (c, f)
            and self.deltas.shape == (c, f, 2)
            and (s + 1) & s == 0
            and all(np.all((a >= 0) & (a < f)) for a in (self.split_idx1, self.split_idx2))
            and bool(np.all((self.anchor_idx >= 0) & (self.anchor_idx < p)))
        )

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, *, use_cache: bool = True) -> ShapePredictor:
        """Load a shape predictor file (default: the 5-point model from
        ``face_recognition_models``; :meth:`load_68` for the 68-point one), from the user
        cache when it was parsed before.

        Raises:
            ModelFileError: the file is missing, truncated or not a dlib shape predictor;
                the message names the file and the package that ships it.
        """
        path = Path(path) if path is not None else require(FACE_LANDMARKS)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DlibFormatError(
                f"Cannot read the landmark model {path}: {exc.strerror or exc}",
                reinstall_hint(FACE_PACKAGE),
            ) from exc
        cache_file = _cache_path(hashlib.sha256(data).hexdigest()) if use_cache else None
        if cache_file is not None:
            cached = _read_cache(cache_file)
            if cached is not None:
                return cached
        try:
            predictor = parse_shape_predictor(DlibReader(data, str(path)))
        except DlibFormatError as exc:
            exc.hint = exc.hint or reinstall_hint(FACE_PACKAGE)
            raise
        if cache_file is not None:
            _write_cache(cache_file, predictor)
        return predictor

    @classmethod
    def load_68(cls, *, use_cache: bool = True) -> ShapePredictor:
        """The 68-point model from ``face_recognition_models`` (see :meth:`load`)."""
        return cls.load(require(FACE_LANDMARKS_68), use_cache=use_cache)

    # -- prediction -------------------------------------------------------------------
    def predict(
        self,
        image: np.ndarray,
        boxes: np.ndarray | list | tuple,
        *,
        round_to_pixels: bool = True,
    ) -> np.ndarray:
        """Landmarks of the faces in ``boxes``.

        Args:
            image: (H, W, 3) RGB uint8, or (H, W) grey uint8.
            boxes: (N, 4) face boxes ``x, y, w, h`` in pixels (a single box of 4 numbers
                is accepted too).
            round_to_pixels: round to whole pixels as dlib does (its ``point`` parts);
                False gives the cascade's sub-pixel positions.

        Returns:
            (N, P, 2) float32 landmark ``x, y`` in image pixels, in the model's order. For
            the 5-point model: right eye outer, right eye inner, left eye outer, left eye
            inner corner, bottom of the nose; for the 68-point model, iBUG 300-W's order.
        """
        image = _check_image(image)
        rects = _UnitBoxes.of(boxes)
        n = rects.count
        if n == 0:
            return np.zeros((0, self.num_parts, 2), np.float32)
        plan = self._plan
        shape = np.broadcast_to(self.initial_shape, (n, self.num_parts, 2)).copy()
        # Offsets into the flattened (N, T, S) split decisions.
        split_base = (np.arange(n)[:, None] * self.num_trees + plan.trees) * plan.num_splits
        for c in range(self.num_cascades):
            values = _sample_intensity(image, rects.to_image(self._feature_points(shape, c)))
            go_left = (values.take(plan.idx1[c], axis=1) - values.take(plan.idx2[c], axis=1)
                       > plan.thresh[c]).ravel()  # (N*T*S,): every split at once
            node = np.zeros((n, self.num_trees), np.intp)
            for _ in range(self.depth):  # left child 2j+1, right child 2j+2
                node = 2 * node + 2 - go_left[split_base + node]
            updates = plan.leaf_rows[c][plan.leaf_base + node]  # (N, T, 2P)
            # dlib adds the trees' updates one after another in float32; so do we.
            steps = np.concatenate([shape.reshape(n, 1, -1), updates], axis=1)
            shape = np.add.accumulate(steps, axis=1, dtype=np.float32)[:, -1].reshape(shape.shape)
        points = rects.to_image(shape)
        if round_to_pixels:
            points = np.floor(points + 0.5)
        return points.astype(np.float32)

    @cached_property
    def _plan(self) -> _Plan:
        return _Plan.of(self)

    def _feature_points(self, shape: np.ndarray, c: int) -> np.ndarray:
        """Stage ``c``'s feature pixels (N, F, 2) for the current shapes (N, P, 2), in the
        unit box: ``S @ delta + shape[anchor]`` with S the mean-to-current similarity.

        dlib solves for S in double, casts it to float and does the rest in float; so here.
        """
        ab = shape.reshape(shape.shape[0], -1).astype(np.float64) @ self._plan.similarity
        # S = [[a, -b], [b, a]]; deltas are rows, so multiply by S^T = a*I + b*[[0, 1], [-1, 0]].
        s_transposed = ab.astype(np.float32) @ _ROTATION_BASIS.reshape(2, 4)
        return shape[:, self.anchor_idx[c]] + self.deltas[c] @ s_transposed.reshape(-1, 2, 2)


@dataclass(frozen=True)
class _Plan:
    """Arrays derived once from a :class:`ShapePredictor` for fast prediction."""

    num_splits: int
    trees: np.ndarray  # (1, T) tree numbers
    idx1: np.ndarray  # (C, T*S) intp, split_idx1 flattened per stage
    idx2: np.ndarray  # (C, T*S) intp
    thresh: np.ndarray  # (C, T*S) float32
    leaf_base: np.ndarray  # (1, T): a tree's row in leaf_rows is leaf_base + its final node
    leaf_rows: np.ndarray  # (C, T*L, 2P) float32 leaf updates, one row per leaf
    similarity: np.ndarray  # (2P, 2) float64: flat shape @ this = (a, b) of S

    @classmethod
    def of(cls, sp: ShapePredictor) -> _Plan:
        c, t, num_splits = sp.split_idx1.shape
        num_leaves = num_splits + 1
        # Least-squares similarity from the mean shape s0 to a shape s (Umeyama's solution in
        # closed form for 2-D points): with s0 centred,
        #   a = sum(s0c . s) / |s0c|^2,   b = sum(s0c x s) / |s0c|^2.
        # (The sums over the centred s0 make centring s unnecessary.)
        s0c = sp.initial_shape.astype(np.float64) - sp.initial_shape.mean(axis=0, dtype=np.float64)
        sigma = np.sum(s0c**2)
        to_a = s0c / sigma  # a = sum(s0c_x * x + s0c_y * y) / sigma
        to_b = np.stack([-s0c[:, 1], s0c[:, 0]], axis=1) / sigma  # b = sum(s0c_x*y - s0c_y*x)
        return cls(
            num_splits=num_splits,
            trees=np.arange(t)[None, :],
            idx1=sp.split_idx1.reshape(c, -1).astype(np.intp),
            idx2=sp.split_idx2.reshape(c, -1).astype(np.intp),
            thresh=sp.split_thresh.reshape(c, -1),
            leaf_base=np.arange(t)[None, :] * num_leaves - num_splits,
            leaf_rows=np.ascontiguousarray(sp.leaf_values.reshape(c, t * num_leaves, -1)),
            similarity=np.stack([to_a.ravel(), to_b.ravel()], axis=1),
        )


# -- geometry -------------------------------------------------------------------------
@dataclass(frozen=True)
class _UnitBoxes:
    """The map from each face's unit box to image pixels (dlib's ``unnormalizing_tform``).

    A box ``x, y, w, h`` is dlib's inclusive rectangle ``left = x, top = y,
    right = x + w - 1, bottom = y + h - 1``; unit point (u, v) goes to
    ``(left + u * (right - left), top + v * (bottom - top))``, in float64 as in dlib.
    """

    origin: np.ndarray  # (N, 1, 2) float64 left, top
    scale: np.ndarray  # (N, 1, 2) float64 right - left, bottom - top

    @classmethod
    def of(cls, boxes: np.ndarray | list | tuple) -> _UnitBoxes:
        arr = np.asarray(boxes, dtype=np.float64)
        if arr.ndim == 1 and arr.shape[0] == 4:
            arr = arr[None]
        if arr.size == 0:
            arr = np.zeros((0, 4))
        if arr.ndim != 2 or arr.shape[1] != 4 or not np.all(np.isfinite(arr)):
            raise ValueError(f"boxes must be an (N, 4) array of x, y, w, h; got {arr.shape}")
        return cls(origin=arr[:, None, :2], scale=arr[:, None, 2:] - 1)

    @property
    def count(self) -> int:
        return self.origin.shape[0]

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Unit-box points (N, K, 2) to image pixels (N, K, 2) float64."""
        return self.origin + points.astype(np.float64) * self.scale


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageError("Landmarks need an 8-bit image (numpy uint8 array).")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
        return np.ascontiguousarray(image)  # so that reshape(-1) never copies
    raise ImageError(f"Landmarks need an RGB or grey image; got an array of shape {image.shape}.")


def _sample_intensity(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Grey values at the nearest pixels to ``points`` (N, F, 2); 0 outside the image.

    Returns (N, F) float32. RGB becomes grey as dlib does it: ``(R + G + B) // 3``.
    """
    h, w = image.shape[:2]
    xy = np.floor(points + 0.5)
    x, y = xy[..., 0], xy[..., 1]
    outside = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    flat = (y * w + x).astype(np.intp)
    flat[outside] = 0
    if image.ndim == 3:
        rgb = image.reshape(-1)
        flat *= 3
        grey = (rgb[flat].astype(np.uint16) + rgb[flat + 1] + rgb[flat + 2]) // 3
    else:
        grey = image.reshape(-1)[flat]
    values = grey.astype(np.float32)
    values[outside] = 0
    return values


# -- parsing --------------------------------------------------------------------------
def parse_shape_predictor(reader: DlibReader) -> ShapePredictor:
    """Read a serialised ``dlib::shape_predictor`` (version 1).

    Layout: version; ``initial_shape`` (a column matrix of 2P floats); ``forests`` (a vector
    of cascades, each a vector of trees; a tree is its splits ``(idx1, idx2, thresh)`` then
    its leaf values, each a column matrix); ``anchor_idx`` (per cascade, a vector of
    integers); ``deltas`` (per cascade, a vector of ``(x, y)`` floats).

    Raises:
        DlibFormatError: anything out of place, with the byte offset.
    """
    version = reader.int("the shape predictor version")
    if version != 1:
        raise reader.error("the shape predictor version", f"found {version}, expected 1")
    initial = reader.matrix("the initial shape")
    if initial.size == 0 or initial.size % 2 or initial.shape[1] != 1:
        raise reader.error("the initial shape", f"bad shape {initial.shape}")
    num_parts = initial.size // 2

    cascades = []
    for _c in range(reader.uint("the number of cascades")):
        trees = []
        for _t in range(reader.uint("the number of trees")):
            splits = reader.vector(
                lambda: (reader.uint("a split index"), reader.uint("a split index"),
                         reader.float("a split threshold")),
                "the splits",
            )
            leaves = reader.matrices(reader.uint("the leaves"), "a leaf value")
            trees.append((splits, leaves))
        cascades.append(trees)
    anchors = reader.vector(lambda: reader.vector(reader.uint, "anchor indices"), "anchors")
    deltas = reader.vector(
        lambda: reader.vector(lambda: (reader.float(), reader.float()), "deltas"), "deltas"
    )
    if not reader.at_end():
        raise reader.error("the end of the file", f"{reader.remaining} unexpected bytes")
    return _to_arrays(reader, initial, cascades, anchors, deltas, num_parts)


def _to_arrays(reader, initial, cascades, anchors, deltas, num_parts) -> ShapePredictor:
    """Check the parsed lists are a complete, uniform forest and pack them as arrays."""
    what = "the regression trees"
    if not cascades or len(anchors) != len(cascades) or len(deltas) != len(cascades):
        raise reader.error(what, "cascade, anchor and delta counts differ")
    num_trees = len(cascades[0])
    if num_trees == 0:
        raise reader.error(what, "the first cascade has no trees")
    num_splits = len(cascades[0][0][0])
    num_pixels = len(anchors[0])
    if (num_splits + 1) & num_splits:
        raise reader.error(what, "trees are not complete binary trees")
    for c, trees in enumerate(cascades):
        if len(trees) != num_trees or len(anchors[c]) != num_pixels or len(deltas[c]) != num_pixels:
            raise reader.error(what, f"cascade {c} differs in size from the first")
        for splits, leaves in trees:
            if len(splits) != num_splits or len(leaves) != num_splits + 1:
                raise reader.error(what, f"cascade {c} has a tree of another depth")
            if any(leaf.size != 2 * num_parts for leaf in leaves):
                raise reader.error(what, "a leaf's size does not match the shape")
    split_arr = np.array([[s for s, _ in trees] for trees in cascades], dtype=np.float64)
    idx1 = split_arr[..., 0].astype(np.int32)
    idx2 = split_arr[..., 1].astype(np.int32)
    anchor_arr = np.asarray(anchors, dtype=np.int32)
    if idx1.max() >= num_pixels or idx2.max() >= num_pixels or anchor_arr.max() >= num_parts:
        raise reader.error(what, "an index points past the feature pixels or landmarks")
    leaves = np.array([[np.stack(lv) for _, lv in trees] for trees in cascades], np.float32)
    c, t = idx1.shape[:2]
    return ShapePredictor(
        initial_shape=initial.reshape(num_parts, 2).astype(np.float32),
        split_idx1=idx1,
        split_idx2=idx2,
        split_thresh=split_arr[..., 2].astype(np.float32),
        leaf_values=leaves.reshape(c, t, num_splits + 1, num_parts, 2),
        anchor_idx=anchor_arr,
        deltas=np.asarray(deltas, dtype=np.float32),
    )


# -- cache ----------------------------------------------------------------------------
def _cache_path(digest: str) -> Path:
    from desktop.paths import user_dirs

    return user_dirs().cache / f"shape_predictor-{digest[:24]}-v{CACHE_FORMAT}.npz"


def _read_cache(path: Path) -> ShapePredictor | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            predictor = ShapePredictor(**{f.name: npz[f.name] for f in fields(ShapePredictor)})
        if not predictor.is_consistent():
            raise ValueError("arrays of unexpected shapes")
        return predictor
    except Exception as exc:  # a damaged cache is rebuilt, never fatal
        log.warning("ignoring unreadable landmark cache %s: %s", path, exc)
        return None


def _write_cache(path: Path, predictor: ShapePredictor) -> None:
    """Write the arrays atomically (temp file + rename); failure only logs a warning."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{f.name: getattr(predictor, f.name) for f in fields(predictor)})
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        log.warning("not caching the parsed landmark model in %s: %s", path.parent, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
