"""The triplet loss and its mining rules on hand-made embeddings with known answers.

Four 1-D embeddings, two people: a0 = 0, a1 = 1 (person 0); b0 = 1.2, b1 = 3 (person 1).
Squared distances: d(a0,a1) = 1, d(a0,b0) = 1.44, d(a0,b1) = 9, d(a1,b0) = 0.04,
d(a1,b1) = 4, d(b0,b1) = 3.24. With alpha = 0.5 the 8 valid triplets (A, P, N) give
L = d(A,P) - d(A,N) + 0.5:

    (a0,a1,b0) 0.06 semi-hard   (a0,a1,b1) -7.5     (a1,a0,b0) 1.46 hard   (a1,a0,b1) -2.5
    (b0,b1,a0) 2.30 hard        (b0,b1,a1) 3.70 hard (b1,b0,a0) -5.26     (b1,b0,a1) -0.26
"""

from __future__ import annotations

import pytest
import torch

from desktop.face.training.triplet import pairwise_squared_distances, triplet_loss

EMB = torch.tensor([[0.0], [1.0], [1.2], [3.0]])
LABELS = torch.tensor([0, 0, 1, 1])
ALPHA = 0.5


def test_distance_matrix_is_squared_l2():
    d = pairwise_squared_distances(EMB)
    assert d[0, 1] == pytest.approx(1.0)
    assert d[1, 2] == pytest.approx(0.04)
    assert d[2, 3] == pytest.approx(3.24)
    assert torch.allclose(d, d.T)
    assert torch.all(d.diagonal() == 0)


def test_all_mining_averages_over_active_triplets():
    loss, stats = triplet_loss(EMB, LABELS, ALPHA, "all")
    assert stats.valid == 8
    assert stats.active == 4
    assert stats.active_fraction == pytest.approx(0.5)
    assert stats.total == pytest.approx(0.06 + 1.46 + 2.30 + 3.70)
    assert stats.mined == 4
    assert float(loss) == pytest.approx(7.52 / 4)


def test_semi_hard_mining_keeps_only_negatives_inside_the_margin():
    loss, stats = triplet_loss(EMB, LABELS, ALPHA, "semi-hard")
    assert stats.mined == 1  # only (a0, a1, b0): 1 < 1.44 < 1.5
    assert float(loss) == pytest.approx(0.06)
    assert stats.active_fraction == pytest.approx(0.5)  # independent of the rule


def test_batch_hard_uses_furthest_positive_and_nearest_negative_per_anchor():
    loss, stats = triplet_loss(EMB, LABELS, ALPHA, "batch-hard")
    # anchors: a0 -> 1 - 1.44 + .5 = .06; a1 -> 1 - .04 + .5 = 1.46;
    #          b0 -> 3.24 - .04 + .5 = 3.70; b1 -> max(3.24 - 4 + .5, 0) = 0
    assert stats.mined == 4
    assert float(loss) == pytest.approx((0.06 + 1.46 + 3.70 + 0.0) / 4)


def test_semi_hard_gradient_moves_only_the_mined_triplet():
    emb = EMB.clone().requires_grad_(True)
    loss, _ = triplet_loss(emb, LABELS, ALPHA, "semi-hard")
    loss.backward()
    # L = (a0 - a1)^2 - (a0 - b0)^2 + alpha; b1 is in no mined triplet
    assert emb.grad[3].abs().item() == 0
    assert emb.grad[0].item() == pytest.approx(2 * (0 - 1) - 2 * (0 - 1.2))
    assert emb.grad[1].item() == pytest.approx(-2 * (0 - 1))
    assert emb.grad[2].item() == pytest.approx(2 * (0 - 1.2))


def test_collapsed_embeddings_make_every_triplet_active_with_loss_alpha():
    emb = torch.zeros(6, 4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for rule in ("all", "batch-hard"):
        loss, stats = triplet_loss(emb, labels, 0.3, rule)
        assert stats.active_fraction == 1.0
        assert float(loss) == pytest.approx(0.3)
    _, stats = triplet_loss(emb, labels, 0.3, "semi-hard")
    assert stats.mined == 0  # d(A,N) = d(A,P): not strictly further, so not semi-hard


def test_well_separated_people_give_zero_loss_and_no_active_triplets():
    emb = torch.tensor([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5]])
    for rule in ("all", "semi-hard", "batch-hard"):
        loss, stats = triplet_loss(emb, LABELS, 0.2, rule)
        assert float(loss) == 0.0
        assert stats.active == 0


def test_unknown_mining_rule_is_refused():
    with pytest.raises(ValueError, match="mining"):
        triplet_loss(EMB, LABELS, 0.2, "hardest")
