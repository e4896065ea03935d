"""The matcher: best template per person, the open-set margin rule, exactness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from desktop.face import matching
from desktop.face.matching import DecisionRule, Matcher, ThresholdRule
from desktop.face.types import DEFAULT_TAU, EMBEDDING_DIM


def unit(i: int) -> np.ndarray:
    v = np.zeros(EMBEDDING_DIM, np.float32)
    v[i] = 1.0
    return v


def at_distance(base: np.ndarray, axis: int, d: float) -> np.ndarray:
    """base moved along a unit axis (orthogonal to base) so that ||out - base||^2 = d."""
    return (base + math.sqrt(d) * unit(axis)).astype(np.float32)


def brute_force(gallery: np.ndarray, pids: np.ndarray, q: np.ndarray):
    """Reference: float64 per-template loop; best d per person; sorted (d, pid)."""
    best: dict[int, float] = {}
    for e, p in zip(gallery.astype(np.float64), pids, strict=True):
        d = float(np.sum((q.astype(np.float64) - e) ** 2))
        if d < best.get(int(p), math.inf):
            best[int(p)] = d
    return sorted((d, p) for p, d in best.items())


def test_best_template_per_person_is_used():
    base = unit(0) * 1.4
    # Ada has a far template (d 0.9) and a near one (d 0.1); Bob one template at d 0.5
    gallery = np.stack([at_distance(base, 1, 0.9), at_distance(base, 2, 0.1),
                        at_distance(base, 3, 0.5)])
    m = Matcher(gallery, [1, 1, 2], {1: "Ada", 2: "Bob"}, [10, 11, 12], margin=0.03)
    r = m.identify_one(base)
    assert r.accepted and r.name == "Ada" and r.person_id == 1
    assert r.d == pytest.approx(0.1, abs=1e-6)
    assert r.d_second == pytest.approx(0.5, abs=1e-6)  # Bob, not Ada's other template
    assert r.second_name == "Bob"
    assert r.template_id == 11


def test_open_set_margin_rule_on_hand_made_vectors():
    base = unit(0) * 1.4
    gallery = np.stack([at_distance(base, 1, 0.20), at_distance(base, 2, 0.22)])
    names = {1: "Ada", 2: "Bob"}
    strict = Matcher(gallery, [1, 2], names, margin=0.03)
    r = strict.identify_one(base)
    assert not r.accepted and r.name is None and r.person_id is None
    assert r.nearest_name == "Ada" and r.second_name == "Bob"
    assert "ambiguous" in r.reason
    assert r.margin == pytest.approx(0.02, abs=1e-6)

    loose = strict.with_settings(margin=0.01)
    r = loose.identify_one(base)
    assert r.accepted and r.name == "Ada"

    # beyond tau: Unknown even with a clear margin
    far = Matcher(np.stack([at_distance(base, 1, 0.40), at_distance(base, 2, 0.9)]), [1, 2],
                  names, margin=0.03)
    r = far.identify_one(base)
    assert not r.accepted and "not accepted" in r.reason and r.d == pytest.approx(0.40, abs=1e-6)
    # exactly at tau is accepted (d <= tau)
    at_tau = Matcher(np.stack([at_distance(base, 1, 0.25)]), [1], names, tau=0.25, margin=0.03)
    assert at_tau.identify_one(base).accepted


def test_single_person_has_no_runner_up():
    base = unit(5) * 1.3
    m = Matcher(np.stack([at_distance(base, 1, 0.1)]), [7], {7: "Solo"})
    r = m.identify_one(base)
    assert r.accepted and r.d_second == math.inf and r.second_id is None


def test_empty_gallery_is_unknown():
    m = Matcher.empty(model_id="x")
    r = m.identify(np.zeros((2, EMBEDDING_DIM), np.float32))
    assert len(r) == 2 and not r[0].accepted and r[0].d == math.inf
    assert "empty" in r[0].reason
    assert m.nearest_people(np.zeros(EMBEDDING_DIM), k=3) == []


@pytest.mark.parametrize("small_product", [0, 1 << 30], ids=["gemm", "einsum"])
@pytest.mark.parametrize("scale", [0.12, 10.0])
def test_exact_against_brute_force(scale, small_product, monkeypatch):
    rng = np.random.default_rng(1)
    n_people = 300
    counts = rng.integers(1, 6, n_people)
    pids = np.repeat(np.arange(100, 100 + n_people), counts)
    rng.shuffle(pids)  # templates of one person need not be adjacent
    gallery = (rng.normal(size=(len(pids), EMBEDDING_DIM)) * scale).astype(np.float32)
    # queries: near-copies of templates (tight races between people) and random points
    near = gallery[rng.integers(0, len(pids), 20)] + rng.normal(size=(20, EMBEDDING_DIM)
                                                                ).astype(np.float32) * scale * 0.05
    queries = np.concatenate([near, (rng.normal(size=(10, EMBEDDING_DIM)) * scale)]
                             ).astype(np.float32)
    names = {int(p): f"p{p}" for p in np.unique(pids)}
    # small blocks, to exercise the chunked path as well
    monkeypatch.setattr(matching, "_BLOCK_ELEMENTS", len(pids) * 7)
    monkeypatch.setattr(matching, "_SMALL_PRODUCT", small_product)  # both product paths
    m = Matcher(gallery, pids, names, tau=1e9, margin=0.0)
    results = m.identify(queries)
    for q, r in zip(queries, results, strict=True):
        ref = brute_force(gallery, pids, q)
        assert r.nearest_id == ref[0][1] and r.second_id == ref[1][1]
        assert r.d == pytest.approx(ref[0][0], rel=1e-12, abs=1e-12)
        assert r.d_second == pytest.approx(ref[1][0], rel=1e-12, abs=1e-12)
        top = m.nearest_people(q, k=5)
        assert [(n.person_id) for n in top] == [p for _, p in ref[:5]]
        assert [n.d for n in top] == pytest.approx([d for d, _ in ref[:5]], rel=1e-12)


def test_near_ties_are_resolved_exactly():
    """Two people whose d differ by less than float32 can resolve in the expansion."""
    rng = np.random.default_rng(3)
    q = (rng.normal(size=EMBEDDING_DIM) * 0.12).astype(np.float32)
    a = q.copy()
    a[0] += np.float32(0.5)
    b = q.copy()
    b[1] += np.float32(0.5)
    b[2] += np.float32(2e-4)  # b is further by 4e-8 in d
    others = (rng.normal(size=(50, EMBEDDING_DIM)) * 0.12).astype(np.float32)
    gallery = np.concatenate([others, b[None], a[None]])
    pids = np.concatenate([np.arange(50) + 10, [2, 1]])
    names = {int(p): str(p) for p in pids}
    r = Matcher(gallery, pids, names, tau=1.0, margin=0.0).identify_one(q)
    ref = brute_force(gallery, pids, q)
    assert ref[0][1] == 1 and r.nearest_id == 1 and r.second_id == 2
    assert r.d == ref[0][0] and r.d_second == ref[1][0]


def test_custom_decision_rule_replaces_threshold():
    class AlwaysNo:
        name = "head(v1)"

        def __init__(self):
            self.calls = []

        def accept(self, d, query, template):
            self.calls.append((d, query.shape, template.shape))
            return False, 0.1

    rule = AlwaysNo()
    assert isinstance(rule, DecisionRule)
    base = unit(0) * 1.4
    m = Matcher(np.stack([at_distance(base, 1, 0.05)]), [1], {1: "Ada"}, rule=rule)
    r = m.identify_one(base)
    assert not r.accepted and r.rule == "head(v1)" and r.score == 0.1
    assert rule.calls[0][0] == pytest.approx(0.05, abs=1e-6)
    assert rule.calls[0][1:] == ((EMBEDDING_DIM,), (EMBEDDING_DIM,))
    # tau alone keeps the custom rule; the threshold rule is the default otherwise
    assert m.with_settings(tau=0.5).rule is rule
    plain = Matcher(np.stack([at_distance(base, 1, 0.05)]), [1], {1: "Ada"})
    assert isinstance(plain.rule, ThresholdRule) and plain.rule.tau == DEFAULT_TAU
    assert plain.with_settings(tau=0.01).identify_one(base).accepted is False


def test_with_settings_shares_the_matrix():
    rng = np.random.default_rng(0)
    m = Matcher(rng.normal(size=(10, EMBEDDING_DIM)), np.arange(10), {i: str(i) for i in range(10)})
    m2 = m.with_settings(tau=0.5, margin=0.1)
    assert m2._emb is m._emb and m2.tau == 0.5 and m2.margin == 0.1 and m.tau == DEFAULT_TAU
    assert len(m2) == 10 and m2.n_people == 10 and m2.nbytes >= 10 * EMBEDDING_DIM * 4


def test_input_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shape"):
        Matcher(rng.normal(size=(3, 64)), [1, 2, 3], {1: "a", 2: "b", 3: "c"})
    with pytest.raises(ValueError, match="no name"):
        Matcher(rng.normal(size=(2, EMBEDDING_DIM)), [1, 2], {1: "a"})
    with pytest.raises(ValueError, match="person ids"):
        Matcher(rng.normal(size=(2, EMBEDDING_DIM)), [1], {1: "a"})
    m = Matcher(rng.normal(size=(2, EMBEDDING_DIM)), [1, 2], {1: "a", 2: "b"})
    with pytest.raises(ValueError, match="NaN"):
        m.identify(np.full(EMBEDDING_DIM, np.nan))
    with pytest.raises(ValueError, match="shape"):
        m.identify(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="margin"):
        m.with_settings(margin=-1)
