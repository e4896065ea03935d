"""One-shot identification against the gallery: exact nearest person, open-set rule.

The gallery lives in memory as one C-contiguous float32 matrix ``E`` (N, 128) of the raw
descriptors f(x) (norm about 1.4), sorted by person, with their squared norms
``|e_j|^2`` precomputed. For queries ``Q`` (M, 128) the squared distance is expanded as

    d(q, e_j) = |q|^2 + |e_j|^2 - 2 q.e_j

so the whole search is one matrix product ``Q @ E.T`` (a BLAS GEMM), plus a per-person
minimum (``np.minimum.reduceat`` over each person's contiguous block of templates).

Why the raw matrix and not an L2-normalised one: d, what the UI shows and tau applies to,
is defined on the raw vectors, whose norms vary from face to face. Cosine similarity on
normalised rows would rank differently from d, and converting back needs the norms anyway
(d = |q|^2 + |e|^2 - 2|q||e|cos). Keeping raw rows with their norms costs the same one GEMM
and has one rounding step fewer.

Exactness: the expansion in float32 can be off by about 1e-6 (cancellation between terms
near 2). It is only used to *shortlist*: every person whose approximate best d lies
within a proven error bound of the runner-up is re-scored exactly, as
``sum((q - e)^2)`` in float64 over all of that person's templates. The reported d and the
ranking of the two nearest people are therefore those of an exhaustive float64 brute
force (``tests/test_matching.py`` checks it), not of an approximate index.

Open-set rule (see :meth:`Matcher.identify`): a name is given only when the nearest
person's d passes the decision rule (by default d <= tau) **and** the nearest *other*
person is at least ``margin`` further away; otherwise the face is Unknown.

A :class:`Matcher` is immutable after construction, so one instance can be shared by any
number of threads; a changed gallery or setting gives a new instance (cheap for settings:
:meth:`Matcher.with_settings` shares the matrix).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from desktop.face.types import DEFAULT_TAU, EMBEDDING_DIM

#: Default open-set margin in d: the nearest other person must be at least this much
#: further than the nearest one. See docs/benchmarks.md ("Open-set margin") for the
#: faces-dev figures.
DEFAULT_MARGIN = 0.03

#: Relative bound used to shortlist people for the exact float64 re-scoring; the float32
#: expansion's error is below ~2 * 128 * 2**-24 * (|q|^2 + |e|^2) (Higham's gamma_n bound
#: for a 128-term dot product), about 1.5e-5 * (|q|^2 + |e|^2); 1e-4 leaves a wide margin.
_SHORTLIST_REL_TOL = 1e-4

#: Products of at most this many query-template pairs run single-threaded in numpy.
_SMALL_PRODUCT = 1 << 16

#: Queries are processed in chunks so that the (chunk, N) distance block stays below this
#: many float32 elements (128 MB).
_BLOCK_ELEMENTS = 32_000_000


#: Plain-language help for the settings dialog and the CLI.
TAU_EXPLANATION = (
    "How alike a face must be to an enrolled person to be named (the threshold tau on the "
    "distance d). Lower: fewer mix-ups with strangers, but people are more often left "
    "Unknown (bad light, glasses, a turned head). Higher: people are recognised more "
    "easily, but a stranger is more likely to be taken for someone enrolled. The default, "
    "0.36, is the one dlib's model was trained for.")
MARGIN_EXPLANATION = (
    "How much closer the best match must be than the next enrolled person. It guards "
    "against look-alikes: when two people are almost equally close the face stays Unknown "
    "instead of getting a coin-toss name. 0 turns it off; the default, 0.03, is about the "
    "amount d moves between two video frames of the same face.")


# ----------------------------------------------------------------------------- decision


@runtime_checkable
class DecisionRule(Protocol):
    """Decides whether a query is the same person as its nearest template.

    ``name`` is recorded on every check-in ("which rule decided"). ``accept`` gets the
    exact squared distance d, the query descriptor and the nearest template's descriptor
    (both raw float32 (128,)) and returns ``(accepted, score)`` where ``score`` is the
    rule's own confidence (higher means surer it is the same person). A rule whose score
    is a probability in [0, 1] may set the optional attribute ``probabilistic = True``;
    matches then carry it as ``probability`` and the UI shows it as p.

    The threshold rule below is the default; a learned verification head (logistic
    regression on |f_i - f_j|) plugs in by implementing this protocol.
    """

    name: str

    def accept(self, d: float, query: np.ndarray, template: np.ndarray) -> tuple[bool, float]:
        ...


@dataclass(frozen=True)
class ThresholdRule:
    """Accept when d <= tau (dlib's rule: tau = 0.6^2 = 0.36). Score is ``tau - d``."""

    tau: float = DEFAULT_TAU
    probabilistic = False  # its score, tau - d, is not a probability

    @property
    def name(self) -> str:
        return f"threshold(tau={self.tau:.4g})"

    def accept(self, d: float, query: np.ndarray, template: np.ndarray) -> tuple[bool, float]:
        return bool(d <= self.tau), float(self.tau - d)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Match:
    """The answer for one query face.

    Attributes:
        person_id: the recognised person's id, or None when Unknown.
        name: their display name, or None when Unknown.
        d: squared distance to the nearest person's best template (inf: empty gallery).
        d_second: squared distance to the nearest *other* person (inf when there is none).
        accepted: True when a name is given.
        reason: one short sentence for logs and tooltips.
        rule: the deciding rule's ``name``.
        score: the rule's score for the nearest person (nan: empty gallery).
        nearest_id / nearest_name: the nearest person even when not accepted (None: empty).
        second_id / second_name: the nearest other person (None when there is none).
        template_id: the nearest person's best template (its database id, or its row).
        probability: P(same person) from a probabilistic rule (the verification head);
            None under the plain threshold.
    """

    person_id: int | None
    name: str | None
    d: float
    d_second: float
    accepted: bool
    reason: str
    rule: str
    score: float
    nearest_id: int | None
    nearest_name: str | None
    second_id: int | None
    second_name: str | None
    template_id: int | None

    probability: float | None = None

    @property
    def margin(self) -> float:
        """d_second - d (inf when there is no other person)."""
        return self.d_second - self.d


@dataclass(frozen=True)
class Neighbour:
    """One person near a query: their best template's exact d."""

    person_id: int
    name: str
    d: float
    template_id: int


# ----------------------------------------------------------------------------- matcher


def _sq_minus_2dot(q: np.ndarray, emb: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """(m, N) float32 ``sq[j] - 2 q_i . emb_j``.

    Small products (m * N <= ``_SMALL_PRODUCT``, e.g. 3 faces against 20,000 templates)
    run single-threaded in numpy's own loops (``einsum``): under a millisecond or two, and
    never waiting on a thread pool that other work (the face encoder, other programs)
    may be holding. Larger ones are one fused GEMM (``torch.addmm`` on zero-copy views):
    torch's CPU GEMM was about 2x faster than numpy's OpenBLAS for this skinny shape
    (few queries, many templates) in ``bench/gallery_search.py``, and it runs on the
    intra-op thread pool the encoder already uses, rather than a second pool of BLAS
    threads competing for the same cores.
    """
    torch = _torch() if q.shape[0] * emb.shape[0] > _SMALL_PRODUCT else None
    if torch is None:
        dots = np.einsum("ij,kj->ik", q, emb)
        dots *= -2.0
        dots += sq
        return dots
    out = torch.addmm(torch.from_numpy(sq), torch.from_numpy(q), torch.from_numpy(emb).T,
                      beta=1.0, alpha=-2.0)
    return out.numpy()


@functools.cache
def _torch():
    """torch, imported on first use of a large product (None when not installed)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the app
        return None
    return torch


def _as_queries(queries: np.ndarray) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != EMBEDDING_DIM:
        raise ValueError(f"queries must have shape (M, {EMBEDDING_DIM}), got {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("queries contain NaN or infinity")
    return np.ascontiguousarray(q)


class Matcher:
    """Exact nearest-person search over a gallery of templates, with the open-set rule.

    Args:
        embeddings: (N, 128) raw descriptors (any float dtype; stored as float32).
        person_ids: (N,) the person each template belongs to.
        names: person id -> display name (every id in ``person_ids`` must be present).
        template_ids: (N,) ids reported in :attr:`Match.template_id` (default: row index).
        tau: threshold on d for the default :class:`ThresholdRule`.
        margin: the open-set margin on d (0 disables it).
        rule: a :class:`DecisionRule` replacing the threshold rule.
        model_id: the encoder the embeddings come from (informational; the caller must
            only ever pass templates of the active encoder).
        revision: the gallery revision the templates were read at (see
            ``Gallery.revision()``), so a holder can tell when to rebuild.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        person_ids: Sequence[int] | np.ndarray,
        names: Mapping[int, str],
        template_ids: Sequence[int] | np.ndarray | None = None,
        *,
        tau: float = DEFAULT_TAU,
        margin: float = DEFAULT_MARGIN,
        rule: DecisionRule | None = None,
        model_id: str | None = None,
        revision: int | None = None,
    ) -> None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.size == 0:
            emb = emb.reshape(0, EMBEDDING_DIM)
        if emb.ndim != 2 or emb.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (N, {EMBEDDING_DIM}), got {emb.shape}")
        if not np.isfinite(emb).all():
            raise ValueError("embeddings contain NaN or infinity")
        pids = np.asarray(person_ids, dtype=np.int64).reshape(-1)
        if pids.shape[0] != emb.shape[0]:
            raise ValueError(f"{emb.shape[0]} embeddings but {pids.shape[0]} person ids")
        tids = (np.arange(emb.shape[0], dtype=np.int64) if template_ids is None
                else np.asarray(template_ids, dtype=np.int64).reshape(-1))
        if tids.shape[0] != emb.shape[0]:
            raise ValueError(f"{emb.shape[0]} embeddings but {tids.shape[0]} template ids")
        missing = set(np.unique(pids).tolist()) - set(names)
        if missing:
            raise ValueError(f"no name for person ids {sorted(missing)[:5]}")
        if margin < 0 or not math.isfinite(margin):
            raise ValueError(f"margin must be a finite number >= 0, got {margin}")

        order = np.argsort(pids, kind="stable")  # each person's templates contiguous
        self._emb = np.ascontiguousarray(emb[order])
        self._sq = np.einsum("ij,ij->i", self._emb, self._emb)  # (N,) float32 |e_j|^2
        self._pid_sorted = pids[order]
        self._tid = tids[order]
        starts = (np.flatnonzero(np.diff(self._pid_sorted)) + 1) if len(pids) else np.array([])
        self._starts = np.concatenate([[0], starts]).astype(np.intp) if len(pids) else \
            np.zeros(0, dtype=np.intp)
        self._ends = np.concatenate([self._starts[1:], [len(pids)]]).astype(np.intp)
        self._people = self._pid_sorted[self._starts] if len(pids) else np.zeros(0, np.int64)
        self._one_per_person = len(self._people) == len(pids)
        self._max_sq = float(self._sq.max()) if len(pids) else 0.0
        self._names = {int(k): str(v) for k, v in names.items()}
        self.tau = float(tau)
        self.margin = float(margin)
        self.rule: DecisionRule = rule if rule is not None else ThresholdRule(self.tau)
        self.model_id = model_id
        self.revision = revision

    # -- construction helpers

    @classmethod
    def empty(cls, model_id: str | None = None, **settings: object) -> Matcher:
        """A matcher over no templates: every query is Unknown."""
        return cls(np.zeros((0, EMBEDDING_DIM), np.float32), [], {}, model_id=model_id,
                   **settings)  # type: ignore[arg-type]

    def with_settings(self, *, tau: float | None = None, margin: float | None = None,
                      rule: DecisionRule | None = None) -> Matcher:
        """A new matcher sharing this one's matrix, with other tau / margin / rule.

        Passing ``tau`` alone (no ``rule``) keeps a custom rule, else resets the threshold.
        """
        new = object.__new__(Matcher)
        new.__dict__.update(self.__dict__)
        if tau is not None:
            new.tau = float(tau)
            if rule is None and isinstance(self.rule, ThresholdRule):
                new.rule = ThresholdRule(new.tau)
        if margin is not None:
            if margin < 0 or not math.isfinite(margin):
                raise ValueError(f"margin must be a finite number >= 0, got {margin}")
            new.margin = float(margin)
        if rule is not None:
            new.rule = rule
        return new

    # -- size

    def __len__(self) -> int:
        """Number of templates."""
        return int(self._emb.shape[0])

    @property
    def n_people(self) -> int:
        return len(self._people)

    @property
    def nbytes(self) -> int:
        """Memory held by the gallery matrix and its index arrays, in bytes."""
        return int(self._emb.nbytes + self._sq.nbytes + self._pid_sorted.nbytes
                   + self._tid.nbytes + self._starts.nbytes + self._ends.nbytes
                   + self._people.nbytes)

    def name_of(self, person_id: int) -> str | None:
        return self._names.get(int(person_id))

    # -- search core

    def _approx_person_d(self, q: np.ndarray) -> np.ndarray:
        """(m, P) float32 approximate best d per person, for a block of queries."""
        dots = _sq_minus_2dot(q, self._emb, self._sq)  # (m, N) |e|^2 - 2 q.e, one GEMM
        if not self._one_per_person:
            dots = np.minimum.reduceat(dots, self._starts, axis=1)
        dots += np.einsum("ij,ij->i", q, q)[:, None]
        return dots

    def _exact_person(self, q64: np.ndarray, p: int) -> tuple[float, int]:
        """Exact float64 best d over person ``p``'s templates, and that template's row."""
        a, b = self._starts[p], self._ends[p]
        diff = self._emb[a:b].astype(np.float64) - q64
        d = np.einsum("ij,ij->i", diff, diff)
        k = int(np.argmin(d))
        return float(d[k]), a + k

    def _ranked(self, q: np.ndarray, approx: np.ndarray, k: int) -> list[tuple[float, int, int]]:
        """The k nearest people as exact (d, person index, template row), nearest first.

        Every person whose approximate d is within the error bound of the k-th smallest is
        re-scored exactly, so the result equals an exhaustive float64 search.
        """
        P = approx.shape[0]
        k = min(k, P)
        if k == 0:
            return []
        kth = np.partition(approx, k - 1)[k - 1] if k < P else approx.max()
        tol = _SHORTLIST_REL_TOL * (float(q @ q) + self._max_sq) + 1e-7
        shortlist = np.flatnonzero(approx <= kth + tol)
        q64 = q.astype(np.float64)
        scored = []
        for p in shortlist:
            d, row = self._exact_person(q64, int(p))
            scored.append((d, int(p), row))
        scored.sort(key=lambda t: (t[0], int(self._people[t[1]])))
        return scored[:k]

    def _blocks(self, q: np.ndarray):
        n = max(1, len(self))
        step = max(1, _BLOCK_ELEMENTS // n)
        for start in range(0, q.shape[0], step):
            block = q[start:start + step]
            yield block, self._approx_person_d(block)

    # -- public API

    def identify(self, queries: np.ndarray) -> list[Match]:
        """Identify each query descriptor, (M, 128) or (128,), by the open-set rule.

        A name is given only when (1) the nearest person's best template passes the
        decision rule (default: d <= tau) and (2) the nearest other person's d is at least
        ``margin`` larger. Otherwise the Match is Unknown (person_id None) and ``reason``
        says which condition failed. d and d_second are exact (see the module docstring).
        """
        q = _as_queries(queries)
        if len(self) == 0:
            return [self._unknown_empty() for _ in range(q.shape[0])]
        out: list[Match] = []
        for block, approx in self._blocks(q):
            for i in range(block.shape[0]):
                out.append(self._decide(block[i], self._ranked(block[i], approx[i], 2)))
        return out

    def identify_one(self, query: np.ndarray) -> Match:
        """:meth:`identify` for a single (128,) descriptor."""
        return self.identify(np.asarray(query).reshape(1, -1))[0]

    def nearest_people(self, query: np.ndarray, k: int = 3) -> list[Neighbour]:
        """The k people nearest to one (128,) descriptor, with exact d, nearest first.

        Used by enrolment to warn "looks like X, d = ..." before saving a new person.
        """
        q = _as_queries(query)
        if q.shape[0] != 1:
            raise ValueError("nearest_people takes one descriptor")
        if len(self) == 0 or k <= 0:
            return []
        approx = self._approx_person_d(q)[0]
        return [
            Neighbour(int(self._people[p]), self._names[int(self._people[p])], d,
                      int(self._tid[row]))
            for d, p, row in self._ranked(q[0], approx, k)
        ]

    # -- decisions

    def _unknown_empty(self) -> Match:
        return Match(None, None, math.inf, math.inf, False, "the gallery is empty",
                     self.rule.name, math.nan, None, None, None, None, None)

    def _decide(self, q: np.ndarray, ranked: list[tuple[float, int, int]]) -> Match:
        d1, p1, row1 = ranked[0]
        pid1 = int(self._people[p1])
        name1 = self._names[pid1]
        if len(ranked) > 1:
            d2, p2, _ = ranked[1]
            pid2: int | None = int(self._people[p2])
            name2: str | None = self._names[pid2]
        else:
            d2, pid2, name2 = math.inf, None, None
        ok, score = self.rule.accept(d1, q, self._emb[row1])
        if not ok:
            reason = f"nearest is {name1} at d = {d1:.3f}, not accepted by {self.rule.name}"
        elif d2 - d1 < self.margin:
            ok = False
            reason = (f"ambiguous: {name1} at d = {d1:.3f} but {name2} at d = {d2:.3f} "
                      f"(margin {d2 - d1:.3f} < {self.margin:.3f})")
        else:
            reason = f"{name1} at d = {d1:.3f}"
        return Match(
            person_id=pid1 if ok else None,
            name=name1 if ok else None,
            d=d1,
            d_second=d2,
            accepted=ok,
            reason=reason,
            rule=self.rule.name,
            score=score,
            nearest_id=pid1,
            nearest_name=name1,
            second_id=pid2,
            second_name=name2,
            template_id=int(self._tid[row1]),
            probability=float(score) if getattr(self.rule, "probabilistic", False) else None,
        )
