"""The logistic-regression verification head: fitting, the chi-square form, files, rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop.errors import FacestyleError, ModelFileError
from desktop.face.verifier import (
    VerificationHead,
    VerifierRule,
    fit_logistic,
    fit_verifier,
    load_verifier,
    pair_features,
    sample_pairs,
    verifier_path,
)


def clustered(people: int = 12, per: int = 5, dim: int = 128, spread: float = 0.05,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors in tight clusters (one per person) far apart: separable pairs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.12, (people, dim))
    labels = np.repeat(np.arange(people), per)
    return centres[labels] + rng.normal(0, spread, (len(labels), dim)), labels


@pytest.mark.parametrize("features", ["abs", "chi2"])
def test_head_fits_separable_pairs(features):
    emb, labels = clustered()
    head = fit_verifier(emb, labels, features, model_id="m1")
    assert head.weights.shape == (128,)
    assert head.metrics["train_balanced_accuracy"] == 1.0
    # new people from the same distribution: the head generalises, it did not memorise
    test_emb, test_labels = clustered(seed=1)
    i, j = np.triu_indices(len(test_labels), 1)
    p = head.probability(test_emb[i], test_emb[j])
    same = test_labels[i] == test_labels[j]
    assert p[same].min() > 0.5 > p[~same].max()
    # small differences are evidence for "same": the weights are mostly negative
    assert (head.weights < 0).mean() > 0.9


def test_negatives_are_sampled_and_weighted_to_balance():
    labels = np.repeat(np.arange(10), 3)  # 30 positives, 405 negatives
    s = sample_pairs(labels, negatives_per_positive=2, seed=0)
    assert s.same.sum() == 30
    assert (~s.same).sum() == 60
    assert s.weight[s.same].sum() == pytest.approx(s.weight[~s.same].sum())
    assert np.all(labels[s.i[s.same]] == labels[s.j[s.same]])
    assert np.all(labels[s.i[~s.same]] != labels[s.j[~s.same]])
    with pytest.raises(FacestyleError, match="pairs of one person"):
        sample_pairs(np.arange(5))  # nobody with two photos


def test_chi_square_features_handle_zeros_and_signs():
    fi = np.array([0.0, 0.0, 0.3, -0.2, 1e-9])
    fj = np.array([0.0, 0.5, -0.3, -0.2, 0.0])
    x = pair_features(fi, fj, "chi2")
    assert np.all(np.isfinite(x))
    assert np.all(x >= 0)
    assert x[0] == 0.0  # both zero: no difference, no blow-up
    assert x[1] == pytest.approx(0.25 / (0.5 + 1e-6))
    assert x[2] == pytest.approx(0.36 / (0.6 + 1e-6))  # f_i + f_j = 0: magnitudes used
    assert x[3] == 0.0
    # for non-negative inputs it is the course's (f_i - f_j)^2 / (f_i + f_j)
    a, b = np.array([0.2, 0.7]), np.array([0.6, 0.1])
    assert pair_features(a, b, "chi2") == pytest.approx((a - b) ** 2 / (a + b), rel=1e-5)
    # descriptors with exact zeros still give a usable head
    emb, labels = clustered()
    emb[:, :10] = 0.0
    head = fit_verifier(emb, labels, "chi2")
    assert np.all(np.isfinite(head.weights))
    assert head.metrics["train_balanced_accuracy"] == 1.0


def test_logistic_regression_recovers_a_known_boundary():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 2))
    true_w, true_b = np.array([2.0, -1.0]), 0.5
    y = rng.random(4000) < 1 / (1 + np.exp(-(x @ true_w + true_b)))
    w, b = fit_logistic(x, y, l2=0.0)
    assert w == pytest.approx(true_w, abs=0.2)
    assert b == pytest.approx(true_b, abs=0.15)


def test_save_load_and_wrong_encoder(tmp_path):
    emb, labels = clustered(people=4, per=3)
    head = fit_verifier(emb, labels, "abs", model_id="office@1234abcd")
    path = head.save()
    assert path == verifier_path("office@1234abcd")
    again = load_verifier(model_id="office@1234abcd")
    assert np.array_equal(again.weights, head.weights)
    assert again.bias == head.bias and again.features == "abs"
    other = tmp_path / "other.json"
    head.save(other)
    with pytest.raises(ModelFileError, match="trained for encoder office@1234abcd"):
        load_verifier(other, model_id="dlib-resnet-v1")
    with pytest.raises(FacestyleError, match="No verification head"):
        load_verifier(model_id="never-trained")
    raw = json.loads(other.read_text())
    raw["weights"][3] = "x"
    other.write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match="damaged"):
        load_verifier(other)


def test_rule_for_the_matcher_returns_decision_and_probability():
    head = VerificationHead(np.full(4, -20.0), 2.0, "abs", "m")
    rule = VerifierRule(head)
    q = np.zeros(4)
    accepted, p = rule.accept(0.0, q, q + 0.01)  # logit 2 - 0.8 > 0
    assert accepted and p == pytest.approx(1 / (1 + np.exp(-1.2)))
    accepted, p = rule.accept(1.0, q, q + 0.5)  # logit 2 - 40 < 0
    assert not accepted and p < 0.01
    assert rule.name == "verifier-abs"


def test_matches_carry_the_heads_probability_and_none_under_the_threshold():
    from desktop.face.matching import Matcher

    emb, labels = clustered(people=4, per=3)
    names = {int(i): f"person {i}" for i in range(4)}
    head = fit_verifier(emb.astype(np.float32), labels, "abs", "m")
    with_head = Matcher(emb, labels, names, rule=VerifierRule(head))
    match = with_head.identify_one(emb[0] + 0.001)
    assert match.accepted and match.name == "person 0"
    assert match.probability is not None and 0.5 <= match.probability <= 1.0
    assert match.probability == match.score
    plain = Matcher(emb, labels, names).identify_one(emb[0] + 0.001)
    assert plain.accepted and plain.probability is None


def test_held_out_people_estimate_is_reported():
    emb, labels = clustered(people=12, per=4)
    head = fit_verifier(emb, labels, "abs")
    assert head.metrics["heldout_people"] == 3
    assert head.metrics["heldout_roc_auc"] == 1.0
    assert head.metrics["heldout_balanced_accuracy"] == 1.0
    few = fit_verifier(*clustered(people=3, per=3))
    assert "heldout_people" not in few.metrics  # too few people to hold any out
