"""The Model page's words: plain-language explanations, metric names and number formats.

Kept apart from the widgets so the wording can be read (and reviewed) in one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

PAGE_INTRO = (
    "The face encoder turns a face into 128 numbers, close together for photos of the same "
    "person; the decision rule says how close is close enough.")

FINE_TUNE_SUMMARY = (
    "Teach the encoder your own people from the gallery's photos. The result is saved as a "
    "new version: nothing changes at the front desk until you activate it.")

FINE_TUNE_EXPLAINED = (
    "<b>What fine-tuning does.</b> The encoder is shown three photos at a time from the "
    "gallery: two of one person and one of someone else. Each time it is nudged so that "
    "the two photos of the same person come out closer than the other one, by at least "
    "the margin α (this is the <i>triplet loss</i>). A few people are set aside and never "
    "shown, to check honestly whether it really got better on faces it has not seen."
    "<br><b>Is it safe?</b> The result is saved as a new version: nothing changes at the "
    "front desk until you activate it, a guard refuses to activate a version that does "
    "worse than the one in use, and you can roll back at any time. With few people or "
    "photos the encoder can learn the gallery by heart and get worse on new faces; the "
    "set-aside check is there to catch that. Training keeps the computer busy for a few "
    "minutes; check-ins keep working but may be slower meanwhile.")

HEAD_SUMMARY = (
    "A verification head is a small model that gives the probability p that two faces are "
    "the same person; it can replace the plain limit on the distance d.")

HEAD_EXPLAINED = (
    "<b>What the verification head is.</b> Instead of a fixed limit on the distance d, "
    "a small second model looks at how the two faces' 128 numbers differ and gives the "
    "probability p that they show the same person (logistic regression: "
    "p = σ(Σ<sub>k</sub> w<sub>k</sub> x<sub>k</sub> + b)). It learns from the gallery's "
    "photos in a second and belongs to the encoder it was trained for."
    "<br><b>When to use it.</b> It can separate your people better than one distance "
    "limit, but with only a few people in the gallery it can also be less reliable: "
    "compare the figures below before switching. A name is still given only when the "
    "nearest other person is at least the margin further away.")

FEATURE_CHOICES = (
    ("abs", "|f_i − f_j| (recommended)",
     "Absolute differences: one feature per number, how far apart the two faces are on "
     "it."),
    ("chi2", "Chi-square",
     "(f_i − f_j)² / (|f_i| + |f_j|): differences weighted by the size of the numbers; "
     "sometimes better on large galleries."),
)

MINING_CHOICES = (
    ("semi-hard", "Semi-hard (recommended)",
     "Learn from triplets where the other person is already further away than the same "
     "person, but by less than the margin α: informative and stable."),
    ("batch-hard", "Hardest in each batch",
     "For each photo, the most different photo of the same person and the most similar "
     "photo of someone else: learns fastest, can be unstable with few photos."),
    ("all", "All",
     "Every triplet that still breaks the margin: the gentlest choice."),
)

TRAIN_CHOICES = (
    ("final", "Last layer only (safest)",
     "Changes only the final 128 x 256 layer; the rest of the encoder stays as it is."),
    ("last-level", "Last level (recommended)",
     "Changes the last layer and the last block of the network before it: more room to "
     "adapt to your people."),
    ("all", "Whole network",
     "Changes everything: slowest, and the most likely to learn the gallery by heart."),
)

LR_CHOICES = ("0.00001", "0.00003", "0.0001", "0.0003", "0.001")

MARGIN_TIP = ("The margin α in the triplet loss, in units of d: how much closer two photos "
              "of one person must be than a photo of someone else before a triplet stops "
              "teaching anything. 0.2 suits dlib's encoder (its threshold is 0.36).")
EPOCHS_TIP = ("How many times each photo is seen (at most: training stops early when the "
              "set-aside people stop improving).")
LR_TIP = ("How big each nudge is. Smaller is slower but safer; too large can spoil the "
          "pretrained encoder in one step.")
MINING_TIP = ("Which triplets (two photos of one person, one of another) the loss learns "
              "from. Semi-hard: the other person is already further away, but by less than "
              "the margin. Hardest: the worst case in each batch. All: every triplet that "
              "still breaks the margin.")
TRAIN_TIP = ("Which parts of the encoder may change. Last layer only: the safest. Last "
             "level: the last block of the network and the last layer. Whole network: "
             "everything; needs many people.")
NAME_TIP = "The name the new encoder version is saved under (letters, digits, . _ -)."


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    tip: str
    better: str  # "higher" | "lower" | ""
    fmt: Callable[[Any], str]


def pct(value: Any) -> str:
    return "—" if not _finite(value) else f"{100 * float(value):.1f}%"


def num(value: Any, digits: int = 3) -> str:
    return "—" if not _finite(value) else f"{float(value):.{digits}f}"


def integer(value: Any) -> str:
    return "—" if not _finite(value) else f"{int(value)}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


METRIC_ROWS = (
    MetricRow("accuracy", "Right at the setting in use",
              "Share of pairs decided correctly (same / not the same) with the threshold "
              "in use.", "higher", pct),
    MetricRow("best_accuracy", "Right at the best setting",
              "The highest share any threshold could reach on these pairs.", "higher", pct),
    MetricRow("best_threshold", "  …reached at",
              "The threshold giving that best share (d for the distance rule, p for the "
              "head).", "", num),
    MetricRow("roc_auc", "ROC AUC",
              "Area under the ROC curve: 1.0 separates same and different pairs perfectly, "
              "0.5 is guessing.", "higher", lambda v: num(v, 4)),
    MetricRow("eer", "Equal error rate (EER)",
              "The error rate at the threshold where strangers wrongly accepted and true "
              "matches wrongly refused are equally common. Lower is better.", "lower", pct),
    MetricRow("tar_0.01", "Matches found, 1% strangers pass",
              "TAR at FAR 1%: share of true matches accepted at the threshold that lets "
              "through only 1 in 100 strangers.", "higher", pct),
    MetricRow("tar_0.001", "Matches found, 0.1% strangers pass",
              "TAR at FAR 0.1%: the same at 1 in 1000 strangers (needs many pairs to be "
              "meaningful).", "higher", pct),
    MetricRow("pairs", "Pairs measured", "How many pairs of photos the figures come from.",
              "", integer),
)


def metric_values(metrics: Any) -> dict[str, Any]:
    """A :class:`PairMetrics` or its ``to_json()`` dict as flat values for METRIC_ROWS."""
    if metrics is None:
        return {}
    data = metrics if isinstance(metrics, dict) else metrics.to_json()
    tar = data.get("tar_at_far") or {}
    out = {k: data.get(k) for k in ("accuracy", "best_accuracy", "best_threshold", "roc_auc",
                                    "eer", "pairs", "tau")}
    out["tar_0.01"] = tar.get("0.01")
    out["tar_0.001"] = tar.get("0.001")
    return out


def operating_text(metrics: Any) -> str:
    """``d ≤ 0.36`` or ``p ≥ 0.50``: the setting the accuracy is measured at."""
    if metrics is None:
        return ""
    rule = metrics.get("rule", "threshold") if isinstance(metrics, dict) else metrics.rule
    tau = metrics.get("tau") if isinstance(metrics, dict) else metrics.tau
    if not _finite(tau):
        return ""
    return f"p ≥ {tau:.2f}" if rule == "verifier" else f"d ≤ {tau:.2f}"


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def error_html(exc: BaseException) -> str:
    """An exception's message (and hint) as escaped rich text."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    hint = getattr(exc, "hint", None)
    return escape(message) + (f"<br><i>{escape(hint)}</i>" if hint else "")
