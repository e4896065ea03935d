"""Face verification on pair lists: read the lists, score the pairs, report the metrics.

Pair lists come in two formats (:func:`read_pairs`):

* CSV, read by its header's column names: ``file_x``, ``file_y`` and ``decision`` (or
  synonyms such as ``img1``/``img2``/``label`` or ``same``; see :data:`CSV_COLUMNS`), in
  any order, other columns ignored (deepface's pair files carry one per model). Without
  a header, exactly three columns ``file_x,file_y,decision``. Commas, semicolons, tabs
  or bars separate the cells (the csv module's sniffer tells which) and cells may be
  quoted. The decision is ``yes``/``no``, ``1``/``0`` (also ``true``/``false``,
  ``same``/``different``); paths are relative to a root folder.
* LFW's ``pairs.txt``: an optional first line of fold counts (``10 300`` or ``6000``),
  then ``name n1 n2`` for a same pair and ``name1 n1 name2 n2`` for a different pair;
  image ``n`` of ``name`` is ``<root>/<name>/<name>_<n:04d>.jpg``.

Scores: every rule gives each pair a *similarity* s (higher = more likely the same
person). The plain threshold rule uses s = -d with d = ||f(x1) - f(x2)||^2 and accepts
d <= tau; the verification head uses s = p, its probability, and accepts p >= 0.5.
Thresholds are always reported in the rule's own units (d, or p).

A pair whose image has no face counts as wrong at *every* threshold: a same pair gets the
lowest possible score and a different pair the highest, so it is wrong in the accuracy,
the ROC and every figure derived from it, and the image is listed (``failed_images``).
An image that cannot be read at all (missing, damaged, not an image) says nothing about
the encoder: its pairs are left out of the figures, and the image is listed
(``unreadable_images``) and its pairs counted (``excluded_pairs``). When no pair is left,
:class:`UnreadableImagesError` names how many images could not be read and the first few.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from desktop.errors import FacestyleError, ImageError
from desktop.face.types import DEFAULT_TAU, FaceEngineLike
from desktop.tasks import CancelToken, ProgressCallback, no_progress

Rule = Literal["threshold", "verifier"]
FAR_LEVELS = (1e-2, 1e-3)
_YES = {"yes", "1", "true", "same", "y", "match"}
_NO = {"no", "0", "false", "different", "n", "diff", "mismatch"}


class PairListError(FacestyleError):
    """A pair list cannot be read or has a malformed line."""


class UnreadableImagesError(FacestyleError):
    """No pair can be scored because the images of every pair could not be read."""


@dataclass(frozen=True)
class Pair:
    """Two image paths (absolute, or relative to the working folder) and the truth."""

    x: Path
    y: Path
    same: bool


# -- reading pair lists ----------------------------------------------------------------


def _parse_decision(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise PairListError(f"{where}: decision {text!r} is not yes/no or 1/0.")


#: Accepted header names of the three columns a CSV pair list needs (compared lower-cased,
#: with spaces and hyphens read as underscores).
CSV_COLUMNS: dict[str, frozenset[str]] = {
    "file_x": frozenset({"file_x", "img1", "img_1", "image1", "image_1", "image_x", "img_x",
                         "file1", "file_1", "path1", "path_1", "path_x", "left"}),
    "file_y": frozenset({"file_y", "img2", "img_2", "image2", "image_2", "image_y", "img_y",
                         "file2", "file_2", "path2", "path_2", "path_y", "right"}),
    "decision": frozenset({"decision", "label", "same", "is_same", "issame", "same_person",
                           "match", "is_match", "target", "truth", "ground_truth", "y_true"}),
}
_DELIMITERS = ",;\t|"


def _column_key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _header_columns(cells: Sequence[str]) -> dict[str, int] | None:
    """``{"file_x": i, "file_y": j, "decision": k}`` (as many as are named; the first match
    of each wins) when ``cells`` is a header row, else None.

    A row is a header when it names both image columns, or names one column and is not a
    valid data row: ``a.jpg,b.jpg,same`` is a pair, ``img1,img2,same`` a header.
    """
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = _column_key(cell)
        for column, names in CSV_COLUMNS.items():
            if key in names and column not in found:
                found[column] = index
    if not found:
        return None
    if "file_x" in found and "file_y" in found:
        return found
    is_pair = len(cells) == 3 and cells[2].strip().lower() in _YES | _NO
    return None if is_pair else found


def _sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The csv dialect of a pair list (delimiter and quoting), from its first lines."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:  # one column, or no consistent delimiter: let the reader say so
        return csv.excel


def read_csv_pairs(text: str, root: Path, name: str = "pair list") -> list[Pair]:
    """Pairs from CSV text, paths under ``root``.

    With a header (a first row naming the columns, see :data:`CSV_COLUMNS`) the columns
    are found by name and any others are ignored; without one, each row must be exactly
    ``file_x,file_y,decision``.
    """
    pairs: list[Pair] = []
    columns: dict[str, int] | None = None
    header_seen = False
    reader = csv.reader(io.StringIO(text), _sniff_dialect(text))
    for row in reader:
        lineno = reader.line_num  # of the row's last line (a quoted cell may span lines)
        cells = [c.strip() for c in row]
        if not cells or all(not c for c in cells) or cells[0].startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            columns = _header_columns(cells)
            if columns is not None:
                missing = [c for c in CSV_COLUMNS if c not in columns]
                if missing:
                    raise PairListError(
                        f"{name}, line {lineno}: the header has no {' or '.join(missing)} "
                        f"column (found: {', '.join(c for c in cells if c) or 'nothing'}).",
                        "Name the columns file_x, file_y and decision (or img1, img2, "
                        "label); other columns are ignored.")
                continue
        if columns is None:
            if len(cells) != 3:
                raise PairListError(
                    f"{name}, line {lineno}: expected file_x,file_y,decision; found "
                    f"{len(cells)} column(s).",
                    "A list with more columns needs a header row naming them, e.g. "
                    "file_x,file_y,decision,...")
            x, y, decision = cells
        else:
            need = max(columns.values()) + 1
            if len(cells) < need:
                raise PairListError(f"{name}, line {lineno}: {len(cells)} column(s), but the "
                                    f"header puts the columns it needs in the first {need}.")
            x, y, decision = (cells[columns[c]] for c in CSV_COLUMNS)
        if not x or not y:
            raise PairListError(f"{name}, line {lineno}: an image path is empty.")
        pairs.append(Pair(root / x, root / y, _parse_decision(decision, f"{name}, line {lineno}")))
    return pairs


def lfw_image(root: Path, person: str, number: str | int) -> Path:
    return root / person / f"{person}_{int(number):04d}.jpg"


def read_lfw_pairs(text: str, root: Path, name: str = "pairs.txt") -> list[Pair]:
    """Pairs from LFW's ``pairs.txt`` (3-column same, 4-column different lines)."""
    pairs: list[Pair] = []
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for lineno, line in enumerate(lines, start=1):
        cells = line.split()
        if lineno == 1 and all(c.isdigit() for c in cells) and len(cells) <= 2:
            continue  # header: folds and pairs per fold, or a single count
        try:
            if len(cells) == 3:
                person, a, b = cells
                pairs.append(Pair(lfw_image(root, person, a), lfw_image(root, person, b), True))
            elif len(cells) == 4:
                p1, a, p2, b = cells
                pairs.append(Pair(lfw_image(root, p1, a), lfw_image(root, p2, b), False))
            else:
                raise ValueError(f"{len(cells)} columns")
        except ValueError as exc:
            raise PairListError(
                f"{name}, line {lineno}: expected 'name n1 n2' or 'name1 n1 name2 n2' ({exc})."
            ) from exc
    return pairs


def _looks_like_csv(text: str) -> bool:
    """CSV when the first line names the columns or is split by , or ;. LFW's pairs.txt
    (tab- or space-separated names and numbers) otherwise."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if "," in first or ";" in first:
        return True
    cells = [c for c in re.split(r"[\t|]", first) if c.strip()]
    return _header_columns(cells) is not None


def read_pairs(path: Path, root: Path) -> list[Pair]:
    """Read a CSV pair list or an LFW ``pairs.txt``; the format is told by its content."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PairListError(f"Cannot read the pair list {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PairListError(f"{path} is not a text file.") from exc
    pairs = (read_csv_pairs(text, Path(root), path.name) if _looks_like_csv(text)
             else read_lfw_pairs(text, Path(root), path.name))
    if not pairs:
        raise PairListError(f"{path} lists no pairs.")
    return pairs


# -- metrics ---------------------------------------------------------------------------


@dataclass
class RocCurve:
    """ROC points from strictest to loosest threshold, starting at (0, 0).

    ``thresholds[k]`` is the similarity s at which ``(fpr[k], tpr[k])`` is reached
    (accept s >= threshold); ``thresholds[0]`` is +inf (accept nothing).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


@dataclass
class PairMetrics:
    """The figures of one rule on one pair list (see :meth:`to_json` for the CLI keys)."""

    pairs: int
    accuracy: float  # at the operating threshold ``tau``
    tau: float  # operating threshold, in the rule's units (d, or probability)
    best_threshold: float
    best_accuracy: float
    roc_auc: float
    eer: float
    tar_at_far: dict[str, float]
    failed_images: list[str] = field(default_factory=list)  # no face: their pairs count wrong
    rule: str = "threshold"
    positives: int = 0
    negatives: int = 0
    roc: RocCurve | None = field(default=None, repr=False)
    operating_point: tuple[float, float] | None = None  # (FAR, TAR) at tau
    unreadable_images: list[str] = field(default_factory=list)  # their pairs are left out
    excluded_pairs: int = 0  # pairs left out because an image could not be read

    def to_json(self) -> dict:
        """Exactly the keys ``facestyle eval-pairs --json`` prints (NaN becomes null)."""

        def num(v: float) -> float | None:
            return None if v is None or not math.isfinite(v) else round(float(v), 6)

        return {
            "pairs": self.pairs,
            "accuracy": num(self.accuracy),
            "tau": num(self.tau),
            "best_threshold": num(self.best_threshold),
            "best_accuracy": num(self.best_accuracy),
            "roc_auc": num(self.roc_auc),
            "eer": num(self.eer),
            "tar_at_far": {k: num(v) for k, v in self.tar_at_far.items()},
            "failed_images": list(self.failed_images),
            "unreadable_images": list(self.unreadable_images),
            "excluded_pairs": self.excluded_pairs,
        }

    def score_key(self) -> tuple[float, float]:
        """What "better" means when comparing two encoders: accuracy at tau, then AUC."""
        acc = self.accuracy if math.isfinite(self.accuracy) else -1.0
        auc = self.roc_auc if math.isfinite(self.roc_auc) else -1.0
        return (round(acc, 9), round(auc, 9))


def roc_curve(scores: np.ndarray, same: np.ndarray) -> RocCurve:
    """ROC of similarity scores (higher = same) against the truth; ties share one point."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # the last index of each run of equal scores (s[1:] != s[:-1] is safe with infinities)
    distinct = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1] if len(s) else np.array([], int)
    tp = np.cumsum(y)[distinct]
    fp = np.cumsum(~y)[distinct]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.r_[0.0, np.full(len(tp), np.nan)]
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.r_[0.0, np.full(len(fp), np.nan)]
    return RocCurve(fpr, tpr, np.r_[np.inf, s[distinct]])


def roc_auc(roc: RocCurve) -> float:
    """Area under the ROC by the trapezoid rule (ties count half, as Mann-Whitney U)."""
    if np.isnan(roc.fpr).any() or np.isnan(roc.tpr).any():
        return float("nan")
    return float(np.sum(np.diff(roc.fpr) * (roc.tpr[1:] + roc.tpr[:-1]) / 2))


def equal_error_rate(roc: RocCurve) -> float:
    """The rate where false accepts equal false rejects (FPR = 1 - TPR), interpolated
    linearly along the ROC segment that crosses it."""
    if np.isnan(roc.fpr).any() or np.isnan(roc.tpr).any():
        return float("nan")
    gap = roc.fpr - (1 - roc.tpr)  # rises from -1 at (0, 0) to +1 at (1, 1)
    k = int(np.argmax(gap >= 0))
    if k == 0:
        return float(roc.fpr[0])
    g0, g1 = gap[k - 1], gap[k]
    t = -g0 / (g1 - g0) if g1 != g0 else 0.0
    return float(roc.fpr[k - 1] + t * (roc.fpr[k] - roc.fpr[k - 1]))


def tar_at_far(roc: RocCurve, far: float) -> float:
    """The highest true-accept rate at a threshold whose false-accept rate is <= ``far``."""
    if np.isnan(roc.fpr).any() or np.isnan(roc.tpr).any():
        return float("nan")
    ok = roc.fpr <= far + 1e-12
    return float(roc.tpr[ok].max())


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """``(threshold s*, accuracy)``: the cut with the highest accuracy, accepting s >= s*.

    s* is the midpoint between the last accepted and the first rejected distinct score
    (finite ones), so it sits in the gap rather than on a sample.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if len(s) == 0:
        return float("nan"), float("nan")
    roc = roc_curve(s, y)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    tp = roc.tpr * n_pos if n_pos else np.zeros_like(roc.tpr)
    fp = roc.fpr * n_neg if n_neg else np.zeros_like(roc.fpr)
    correct = tp + (n_neg - fp)
    k = int(np.argmax(correct))
    finite = np.sort(np.unique(s[np.isfinite(s)]))[::-1]
    accepted = roc.thresholds[k]
    if k == 0:  # accept nothing: just above the highest finite score
        threshold = (finite[0] + 1e-6) if len(finite) else math.inf
    else:
        below = finite[finite < accepted]
        threshold = (accepted + below[0]) / 2 if len(below) and math.isfinite(accepted) \
            else float(accepted)
    return float(threshold), float(correct[k] / len(s))


def pair_metrics(
    scores: np.ndarray,
    same: np.ndarray,
    operating: float,
    rule: Rule = "threshold",
    failed_images: Sequence[str] = (),
) -> PairMetrics:
    """All the figures for one rule.

    Args:
        scores: (M,) similarity s per pair (-d for the threshold rule, p for the head).
        same: (M,) truth.
        operating: the operating threshold *on s* (``-tau`` for the threshold rule).
        rule: names the units of the reported thresholds: ``threshold`` reports them as d
            (= -s), ``verifier`` as p (= s).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    to_units: Callable[[float], float] = (lambda v: -v) if rule == "threshold" else (lambda v: v)
    roc = roc_curve(s, y)
    accept = s >= operating
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    tar = float((accept & y).sum() / n_pos) if n_pos else float("nan")
    far = float((accept & ~y).sum() / n_neg) if n_neg else float("nan")
    best_s, best_acc = best_threshold(s, y)
    return PairMetrics(
        pairs=len(s),
        accuracy=float((accept == y).mean()) if len(s) else float("nan"),
        tau=to_units(operating),
        best_threshold=to_units(best_s),
        best_accuracy=best_acc,
        roc_auc=roc_auc(roc),
        eer=equal_error_rate(roc),
        tar_at_far={f"{f:g}": tar_at_far(roc, f) for f in FAR_LEVELS},
        failed_images=sorted(set(failed_images)),
        rule=rule,
        positives=n_pos,
        negatives=n_neg,
        roc=roc,
        operating_point=(far, tar),
    )


def distance_metrics(d: np.ndarray, same: np.ndarray, tau: float = DEFAULT_TAU,
                     failed_images: Sequence[str] = ()) -> PairMetrics:
    """:func:`pair_metrics` for the plain threshold rule on squared distances d."""
    return pair_metrics(-np.asarray(d, dtype=np.float64), same, -tau, "threshold", failed_images)


def probability_metrics(p: np.ndarray, same: np.ndarray, threshold: float = 0.5,
                        failed_images: Sequence[str] = ()) -> PairMetrics:
    """:func:`pair_metrics` for the verification head on probabilities p."""
    return pair_metrics(np.asarray(p, dtype=np.float64), same, threshold, "verifier",
                        failed_images)


# -- embedding the images of a pair list -----------------------------------------------


@dataclass
class PairEmbeddings:
    """The descriptor of every pair's two images (NaN rows where an image failed).

    ``failed_images`` had no face (their pairs count as wrong); ``unreadable`` could not
    be read (their pairs, marked in ``excluded``, are left out of the figures).
    """

    x: np.ndarray  # (M, 128) float32
    y: np.ndarray  # (M, 128) float32
    same: np.ndarray  # (M,) bool
    ok: np.ndarray  # (M,) bool: both images gave a face
    failed_images: dict[str, str]  # path -> reason (no face found)
    model_id: str = ""
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why it was not read
    excluded: np.ndarray | None = None  # (M,) bool: an image of the pair is unreadable
    images: int = 0  # distinct images of the pair list

    def squared_distances(self) -> np.ndarray:
        """d per pair; failed pairs get the value that is wrong at any threshold."""
        d = np.sum((self.x - self.y) ** 2, axis=1, dtype=np.float64)
        return np.where(self.ok, d, np.where(self.same, np.inf, -np.inf))

    def scored(self) -> PairEmbeddings:
        """The pairs whose two images could be read: the ones the figures are made of."""
        if self.excluded is None or not self.excluded.any():
            return self
        keep = ~self.excluded
        return PairEmbeddings(self.x[keep], self.y[keep], self.same[keep], self.ok[keep],
                              self.failed_images, self.model_id, self.unreadable,
                              np.zeros(int(keep.sum()), bool), self.images)

    def require_scorable(self, display: Callable[[str], str] = str, shown: int = 5) -> None:
        """Raise :class:`UnreadableImagesError` when no pair is left to score, naming how
        many images could not be read and the first ``shown``; ``display`` turns a path
        into the text shown (e.g. relative to the root)."""
        if len(self.same) and (self.excluded is None or not self.excluded.all()):
            return
        if not len(self.same):
            raise UnreadableImagesError("The pair list has no pairs to score.")
        paths = sorted(self.unreadable)
        first = [self.unreadable[p].replace(p, display(p)).rstrip(".") for p in paths[:shown]]
        more = f"; and {len(paths) - shown} more" if len(paths) > shown else ""
        total = self.images or len(paths)
        raise UnreadableImagesError(
            f"{len(paths)} of {total} images could not be read, so no pair can be scored: "
            + "; ".join(first) + more + ".",
            "Check that the image paths in the pair list are relative to the root folder.")


def face_descriptor(path: Path, engine: FaceEngineLike) -> tuple[np.ndarray | None, str]:
    """The descriptor of the main face in one photo: the largest (a pair list's photo may
    show bystanders). ``(None, reason)`` when no face is found.

    Raises:
        ImageError: the file cannot be read as an image.
    """
    from desktop.imageio import load_rgb

    faces = [f for f in engine.detect(load_rgb(path)) if f.chip is not None]
    if not faces:
        return None, "no face found"
    main = max(faces, key=lambda f: f.box[2] * f.box[3])
    return np.asarray(engine.embed(np.asarray(main.chip)[None]), np.float32)[0], ""


def embed_pairs(
    pairs: Sequence[Pair],
    engine: FaceEngineLike,
    *,
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> PairEmbeddings:
    """Detect, align and embed every distinct image of the pairs once.

    An image without a face goes to ``failed_images``; one that cannot be read goes to
    ``unreadable`` and its pairs are marked ``excluded`` (see :meth:`PairEmbeddings.scored`).
    """
    images = sorted({p.x for p in pairs} | {p.y for p in pairs})
    cache: dict[Path, np.ndarray | None] = {}
    failed: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for k, path in enumerate(images, start=1):
        if cancel is not None:
            cancel.checkpoint()
        try:
            desc, reason = face_descriptor(path, engine)
        except ImageError as exc:
            desc, reason = None, ""
            unreadable[str(path)] = exc.message
        cache[path] = desc
        if desc is None and reason:
            failed[str(path)] = reason
        progress(k / len(images), f"images {k}/{len(images)}")
    dim = next((v.shape[0] for v in cache.values() if v is not None), 128)
    nan = np.full(dim, np.nan, np.float32)
    x = np.stack([cache[p.x] if cache[p.x] is not None else nan for p in pairs])
    y = np.stack([cache[p.y] if cache[p.y] is not None else nan for p in pairs])
    ok = np.array([cache[p.x] is not None and cache[p.y] is not None for p in pairs])
    same = np.array([p.same for p in pairs], bool)
    excluded = np.array([str(p.x) in unreadable or str(p.y) in unreadable for p in pairs], bool)
    return PairEmbeddings(x, y, same, ok, failed, str(getattr(engine, "model_id", "")),
                          unreadable, excluded, len(images))


def verifier_scores(emb: PairEmbeddings, head) -> np.ndarray:
    """The head's p per pair; failed pairs get the score that is wrong at any threshold."""
    p = np.zeros(len(emb.same), np.float64)
    if emb.ok.any():
        p[emb.ok] = np.asarray(head.probability(emb.x[emb.ok], emb.y[emb.ok]), np.float64)
    return np.where(emb.ok, p, np.where(emb.same, -np.inf, np.inf))


def evaluate_embeddings(emb: PairEmbeddings, tau: float = DEFAULT_TAU,
                        head=None) -> dict[str, PairMetrics]:
    """``{"threshold": metrics}``, plus ``"verifier"`` when a head is given, on the pairs
    whose images could be read (see :class:`PairEmbeddings`).

    Raises:
        UnreadableImagesError: no pair is left to score.
    """
    emb.require_scorable()
    scored = emb.scored()
    failed = sorted(emb.failed_images)
    out = {"threshold": distance_metrics(scored.squared_distances(), scored.same, tau, failed)}
    if head is not None:
        out["verifier"] = pair_metrics(verifier_scores(scored, head), scored.same,
                                       head.threshold, "verifier", failed)
    excluded = int(emb.excluded.sum()) if emb.excluded is not None else 0
    for metrics in out.values():
        metrics.unreadable_images = sorted(emb.unreadable)
        metrics.excluded_pairs = excluded
    return out


# -- the ROC plot ----------------------------------------------------------------------


@dataclass
class RocSeries:
    """One curve of the plot: a label, its metrics (with ``roc`` and ``operating_point``)."""

    label: str
    metrics: PairMetrics
    color: tuple[int, int, int]


SERIES_COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_roc(series: Sequence[RocSeries], title: str = "ROC", size: tuple[int, int] = (720, 640),
             log_far: bool = False) -> np.ndarray:
    """Draw ROC curves (TAR against FAR) with axes, ticks, a legend and each rule's operating
    point; returns an RGB uint8 image. ``log_far`` puts FAR on a log axis (1e-3 .. 1)."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", (w, h), (255, 255, 255))
    dr = ImageDraw.Draw(img)
    left, right, top, bottom = 78, 24, 48, 70
    pw, ph = w - left - right, h - top - bottom
    small, normal = _font(14), _font(17)

    def fx(far: float) -> float:
        if log_far:
            far = min(max(far, 1e-3), 1.0)
            return left + (math.log10(far) + 3) / 3 * pw
        return left + far * pw

    def fy(tar: float) -> float:
        return top + (1 - tar) * ph

    # grid and ticks
    xticks = [1e-3, 1e-2, 1e-1, 1.0] if log_far else [i / 5 for i in range(6)]
    for t in xticks:
        x = fx(t)
        dr.line([(x, top), (x, top + ph)], fill=(230, 230, 230))
        label = f"{t:g}"
        tw = dr.textlength(label, font=small)
        dr.text((x - tw / 2, top + ph + 6), label, fill=(60, 60, 60), font=small)
    for i in range(6):
        t = i / 5
        y = fy(t)
        dr.line([(left, y), (left + pw, y)], fill=(230, 230, 230))
        label = f"{t:.1f}"
        tw = dr.textlength(label, font=small)
        dr.text((left - tw - 8, y - 8), label, fill=(60, 60, 60), font=small)
    if not log_far:  # chance line
        for k in range(0, 40, 2):
            a, b = k / 40, (k + 1) / 40
            dr.line([(fx(a), fy(a)), (fx(b), fy(b))], fill=(170, 170, 170))
    dr.rectangle([left, top, left + pw, top + ph], outline=(40, 40, 40), width=1)

    # axis labels and title
    xl = "false accept rate (FAR)" + (", log scale" if log_far else "")
    dr.text((left + pw / 2 - dr.textlength(xl, font=normal) / 2, h - 32), xl,
            fill=(20, 20, 20), font=normal)
    ylabel = Image.new("RGB", (220, 24), (255, 255, 255))
    ImageDraw.Draw(ylabel).text((0, 2), "true accept rate (TAR)", fill=(20, 20, 20), font=normal)
    ylabel = ylabel.rotate(90, expand=True)
    img.paste(ylabel, (10, int(top + ph / 2 - 110)))
    dr.text((left, 14), title, fill=(0, 0, 0), font=normal)

    # curves and operating points
    legend_y = top + ph - 24 * len(series) - 8
    for idx, s in enumerate(series):
        roc = s.metrics.roc
        if roc is None or np.isnan(roc.fpr).any():
            continue
        pts = [(fx(float(f)), fy(float(t))) for f, t in zip(roc.fpr, roc.tpr, strict=True)]
        pts.append((fx(1.0), fy(1.0)))
        # the first curve widest, so a later one drawn over it leaves its edges visible
        dr.line(pts, fill=s.color, width=max(2, 6 - 2 * idx), joint="curve")
        if s.metrics.operating_point is not None:
            far, tar = s.metrics.operating_point
            if math.isfinite(far) and math.isfinite(tar):
                cx, cy = fx(far), fy(tar)
                dr.ellipse([cx - 7, cy - 7, cx + 7, cy + 7], outline=(0, 0, 0), width=2,
                           fill=s.color)
        unit = "d" if s.metrics.rule == "threshold" else "p"
        op = ">=" if s.metrics.rule == "verifier" else "<="
        text = (f"{s.label}: AUC {s.metrics.roc_auc:.4f}, EER {s.metrics.eer:.3f}, "
                f"dot at {unit} {op} {s.metrics.tau:.3g}")
        ly = legend_y + 24 * idx
        lx = left + pw - 16 - max(dr.textlength(text, font=small), 10) - 30
        dr.rectangle([lx - 6, ly - 3, left + pw - 8, ly + 20], fill=(255, 255, 255))
        dr.line([(lx, ly + 9), (lx + 22, ly + 9)], fill=s.color, width=4)
        dr.text((lx + 28, ly + 1), text, fill=(20, 20, 20), font=small)
    return np.asarray(img)


def save_roc_png(path: Path, series: Sequence[RocSeries], title: str = "ROC",
                 log_far: bool = False) -> Path:
    from desktop.imageio import save_png

    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, draw_roc(series, title=title, log_far=log_far), {"Software": "facestyle"})
    return path
