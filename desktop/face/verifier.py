"""Face verification as binary classification on a pair: a logistic-regression head.

    y_hat = sigma( sum_k w_k x_k + b ),     k = 1..128

over per-dimension features x of the two descriptors f_i = f(x_i), f_j = f(x_j):

* ``abs`` (the course's first form): x_k = |f_ik - f_jk|;
* ``chi2`` (the course's chi-square form): x_k = (f_ik - f_jk)^2 / (|f_ik| + |f_jk| + eps).

The chi-square form as written, (f_i - f_j)^2 / (f_i + f_j), assumes non-negative
features (histograms). dlib's descriptors are signed, so f_ik + f_jk can be zero or
negative and the ratio would blow up or flip sign. Here the denominator is the sum of
*magnitudes* plus ``eps`` = 1e-6: it equals the course's form wherever both values are
non-negative, is never negative, and where both values are zero the feature is 0 (the
numerator is then 0 too), so zeros are safe.

The head is fitted on gallery pairs (:func:`fit_verifier`): every positive pair (two
templates of one person) and sampled negative pairs, the classes weighted to balance, by
Newton's method on the weighted log-loss with a small L2 penalty on w (deterministic, 129
parameters). It belongs to one encoder: ``model_id`` records which, and
:func:`load_verifier` refuses a head made for another.

The decision is ``y_hat >= threshold`` (0.5 by default); :class:`VerifierRule` is the
Matcher's decision rule built on it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from desktop.errors import FacestyleError, ModelFileError
from desktop.paths import user_dirs

Features = Literal["abs", "chi2"]
FEATURES = ("abs", "chi2")
CHI2_EPS = 1e-6
FORMAT_VERSION = 1


def pair_features(fi: np.ndarray, fj: np.ndarray, kind: Features = "abs") -> np.ndarray:
    """(..., D) descriptors to (..., D) features; see the module docstring for the forms."""
    a = np.asarray(fi, dtype=np.float64)
    b = np.asarray(fj, dtype=np.float64)
    if kind == "abs":
        return np.abs(a - b)
    if kind == "chi2":
        return (a - b) ** 2 / (np.abs(a) + np.abs(b) + CHI2_EPS)
    raise FacestyleError(f"Unknown verifier features {kind!r}; use abs or chi2.")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


@dataclass
class VerificationHead:
    """The fitted head: 128 weights and a bias, for one feature form and one encoder."""

    weights: np.ndarray  # (D,) float64
    bias: float
    features: Features = "abs"
    model_id: str = ""
    threshold: float = 0.5  # decide "same" when y_hat >= threshold
    created: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def logit(self, fi: np.ndarray, fj: np.ndarray) -> np.ndarray:
        return pair_features(fi, fj, self.features) @ self.weights + self.bias

    def probability(self, fi: np.ndarray, fj: np.ndarray) -> np.ndarray | float:
        """y_hat, the probability that f_i and f_j are the same person (broadcasts)."""
        p = _sigmoid(self.logit(fi, fj))
        return float(p) if np.ndim(p) == 0 else p

    def same(self, fi: np.ndarray, fj: np.ndarray) -> np.ndarray | bool:
        p = self.probability(fi, fj)
        return bool(p >= self.threshold) if np.ndim(p) == 0 else p >= self.threshold

    # -- files -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "features": self.features, "model_id": self.model_id,
                "weights": [float(w) for w in self.weights], "bias": float(self.bias),
                "threshold": self.threshold, "created": self.created,
                "metrics": self.metrics, "data": self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> VerificationHead:
        weights = np.asarray(raw["weights"], dtype=np.float64)
        if weights.ndim != 1 or not np.isfinite(weights).all():
            raise ValueError("weights must be a finite vector")
        if raw.get("features") not in FEATURES:
            raise ValueError(f"unknown features {raw.get('features')!r}")
        return cls(weights, float(raw["bias"]), raw["features"], str(raw.get("model_id", "")),
                   float(raw.get("threshold", 0.5)), str(raw.get("created", "")),
                   dict(raw.get("metrics", {})), dict(raw.get("data", {})))

    def save(self, path: Path | None = None) -> Path:
        path = Path(path) if path is not None else verifier_path(self.model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
        tmp.replace(path)
        return path


def verifier_path(model_id: str) -> Path:
    """Where the head for one encoder lives: ``data/verifiers/<model id>.json``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_id or "unknown")
    return user_dirs().data / "verifiers" / f"{safe}.json"


def load_verifier(path: Path | None = None, model_id: str | None = None) -> VerificationHead:
    """Load a head from ``path``, or the one saved for ``model_id``.

    Raises:
        FacestyleError: no head has been trained for this encoder.
        ModelFileError: the file is damaged, or was made for another encoder.
    """
    if path is None:
        if model_id is None:
            raise ValueError("give a path or a model_id")
        path = verifier_path(model_id)
    path = Path(path)
    try:
        head = VerificationHead.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise FacestyleError(
            f"No verification head has been trained for encoder {model_id or path}.",
            "Train one with 'facestyle train-verifier' (or from the Model page).") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"The verification head {path} is damaged: {exc}",
                             "Train it again with 'facestyle train-verifier'.") from exc
    if model_id is not None and head.model_id != model_id:
        raise ModelFileError(
            f"The verification head {path} was trained for encoder {head.model_id}, not "
            f"{model_id}; its probabilities would mean nothing.",
            "Train it again for the active encoder with 'facestyle train-verifier'.")
    return head


# -- fitting ------------------------------------------------------------------------------


@dataclass
class PairSample:
    """Index pairs into a set of embeddings, with truth and class-balancing weights."""

    i: np.ndarray
    j: np.ndarray
    same: np.ndarray
    weight: np.ndarray


def sample_pairs(labels: np.ndarray, negatives_per_positive: float = 3.0,
                 max_negatives: int = 200_000, seed: int = 0) -> PairSample:
    """All positive pairs, and negatives sampled uniformly (at least as many as the
    positives when there are that many); weights make each class total half the weight."""
    labels = np.asarray(labels)
    n = len(labels)
    ii, jj = np.triu_indices(n, k=1)
    same = labels[ii] == labels[jj]
    pos_i, pos_j = ii[same], jj[same]
    neg_i, neg_j = ii[~same], jj[~same]
    n_pos, n_neg_all = len(pos_i), len(neg_i)
    if n_pos == 0 or n_neg_all == 0:
        raise FacestyleError(
            "The verification head needs both pairs of one person and pairs of two people.",
            "Enrol at least 2 people, one of them with 2 or more photos.")
    want = min(n_neg_all, max_negatives, max(n_pos, math.ceil(negatives_per_positive * n_pos)))
    pick = np.random.default_rng(seed).choice(n_neg_all, size=want, replace=False)
    i = np.concatenate([pos_i, neg_i[pick]])
    j = np.concatenate([pos_j, neg_j[pick]])
    y = np.concatenate([np.ones(n_pos, bool), np.zeros(want, bool)])
    total = n_pos + want
    w = np.where(y, total / (2 * n_pos), total / (2 * want))
    return PairSample(i, j, y, w)


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
                 l2: float = 1e-3, iterations: int = 100, tol: float = 1e-10
                 ) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression by Newton's method.

    Minimises mean_i c_i * logloss(y_i, sigma(x_i . w + b)) + l2/2 * ||w||^2 (the bias is
    not penalised), with the weights c normalised to mean 1. Returns ``(w, b)``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, dim = x.shape
    c = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    c = c / c.mean()
    xb = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(dim + 1)
    reg = np.full(dim + 1, l2)
    reg[-1] = 0.0
    prev = math.inf
    for _ in range(iterations):
        z = xb @ theta
        p = _sigmoid(z)
        loss = float(np.mean(c * (np.logaddexp(0, z) - y * z)) + 0.5 * l2 * theta[:-1] @ theta[:-1])
        grad = xb.T @ (c * (p - y)) / n + reg * theta
        hess = (xb * (c * p * (1 - p))[:, None]).T @ xb / n + np.diag(reg + 1e-9)
        theta -= np.linalg.solve(hess, grad)
        if abs(prev - loss) < tol:
            break
        prev = loss
    return theta[:-1], float(theta[-1])


def _fit(emb: np.ndarray, labels: np.ndarray, features: Features, negatives: float,
         l2: float, seed: int) -> tuple[np.ndarray, float, float]:
    sample = sample_pairs(labels, negatives, seed=seed)
    x = pair_features(emb[sample.i], emb[sample.j], features)
    w, b = fit_logistic(x, sample.same, sample.weight, l2=l2)
    correct = (_sigmoid(x @ w + b) >= 0.5) == sample.same
    return w, b, float(np.average(correct, weights=sample.weight))


def fit_verifier(embeddings: np.ndarray, labels: np.ndarray, features: Features = "abs",
                 model_id: str = "", negatives_per_positive: float = 3.0, l2: float = 1e-3,
                 seed: int = 0, data: dict[str, Any] | None = None,
                 heldout_fraction: float = 0.25) -> VerificationHead:
    """Fit the head on the pairs of a labelled set of descriptors (e.g. the gallery).

    Args:
        embeddings: (N, D) descriptors from one encoder (``model_id``).
        labels: (N,) person of each descriptor.
        features: ``abs`` or ``chi2``.
        heldout_fraction: with at least 4 people who have 2+ descriptors, that share of
            them is first held out, the head fitted on the rest and scored on the
            held-out people's pairs (``metrics["heldout_*"]``); the head returned is then
            fitted on everyone.
    Returns:
        the head; ``metrics`` holds its balanced training accuracy, the pair counts and,
        when there were enough people, held-out balanced accuracy and ROC AUC.
    """
    if features not in FEATURES:
        raise FacestyleError(f"Unknown verifier features {features!r}; use abs or chi2.")
    emb = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    metrics: dict[str, Any] = {}
    people, counts = np.unique(labels, return_counts=True)
    repeat = people[counts >= 2]
    if len(repeat) >= 4 and len(people) >= 5:
        rng = np.random.default_rng(seed)
        n_held = max(2, round(heldout_fraction * len(repeat)))
        held = rng.choice(repeat, size=min(n_held, len(repeat) - 2), replace=False)
        mask = np.isin(labels, held)
        w, b, _ = _fit(emb[~mask], labels[~mask], features, negatives_per_positive, l2, seed)
        test = sample_pairs(labels[mask], negatives_per_positive, seed=seed)
        e = emb[mask]
        p = _sigmoid(pair_features(e[test.i], e[test.j], features) @ w + b)
        from desktop.face.evaluation import probability_metrics

        m = probability_metrics(p, test.same)
        metrics.update({
            "heldout_people": len(held), "heldout_pairs": len(test.same),
            "heldout_balanced_accuracy": float(np.average((p >= 0.5) == test.same,
                                                          weights=test.weight)),
            "heldout_roc_auc": m.roc_auc,
        })
    w, b, train_acc = _fit(emb, labels, features, negatives_per_positive, l2, seed)
    sample = sample_pairs(labels, negatives_per_positive, seed=seed)
    metrics.update({
        "train_pairs": len(sample.same),
        "train_positives": int(sample.same.sum()),
        "train_negatives": int((~sample.same).sum()),
        "train_balanced_accuracy": train_acc,
    })
    return VerificationHead(w, b, features, model_id, 0.5,
                            dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                            metrics, dict(data or {}))


class VerifierRule:
    """The head as the Matcher's decision rule (``desktop.face.matching.DecisionRule``):
    ``accept(d, query, template)`` returns ``(y_hat >= threshold, y_hat)``; the UI shows
    y_hat where it shows d."""

    probabilistic = True

    def __init__(self, head: VerificationHead, threshold: float | None = None) -> None:
        self.head = head
        self.threshold = head.threshold if threshold is None else float(threshold)
        self.name = f"verifier-{head.features}"

    def accept(self, d: float, query: np.ndarray, template: np.ndarray) -> tuple[bool, float]:
        p = float(self.head.probability(query, template))
        return p >= self.threshold, p
