"""The triplet loss of the course, on a batch of embeddings, with three ways to mine.

For an anchor A, a positive P (same person) and a negative N (someone else)::

    L(A, P, N) = max(d(A, P) - d(A, N) + alpha, 0),      J = sum_i L(A_i, P_i, N_i)

with d the *squared* L2 distance ||f(x1) - f(x2)||^2, the same d the check-in threshold tau
is applied to. One forward pass of a P x K batch gives the N x N distance matrix, and every
(A, P, N) in the batch is read off it; the mining rule picks which triplets enter J:

* ``all``: every valid triplet; J is divided by the number of *active* ones (L > 0), so
  the many easy triplets (L = 0) do not dilute the gradient ("batch all", Hermans et al.).
* ``semi-hard``: the triplets with d(A,P) < d(A,N) < d(A,P) + alpha, i.e. the negative is
  further than the positive but still inside the margin (FaceNet); J is their mean. A step
  with none has loss 0.
* ``batch-hard``: for each anchor, its furthest positive and its nearest negative; J is
  the mean over anchors (Hermans et al.).

Whatever the rule, :attr:`TripletStats.active_fraction` is the fraction of *all* valid
triplets in the batch with L > 0: the number the UI plots per step to show learning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Mining = Literal["all", "semi-hard", "batch-hard"]
MINING_RULES: tuple[str, ...] = ("all", "semi-hard", "batch-hard")


@dataclass
class TripletStats:
    """One batch's triplet loss and what the mining found (plain floats and ints)."""

    loss: float  # the value optimised: J divided as the mining rule says
    total: float  # J = sum of L over the mined triplets
    valid: int  # triplets (A, P, N) with A != P, label(A) = label(P) != label(N)
    active: int  # valid triplets with L > 0
    mined: int  # triplets (or anchors, for batch-hard) that entered J
    mean_ap: float  # mean d(A, P) over positive pairs in the batch
    mean_an: float  # mean d(A, N) over negative pairs in the batch

    @property
    def active_fraction(self) -> float:
        return self.active / self.valid if self.valid else 0.0


def pairwise_squared_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """(N, D) embeddings to the (N, N) matrix of d = ||e_i - e_j||^2 (exact, float32)."""
    e = embeddings.float()
    diff = e[:, None, :] - e[None, :, :]
    return (diff * diff).sum(-1)


def triplet_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive (N, N), negative (N, N))`` boolean masks: same label and i != j; other label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.2,
    mining: Mining = "semi-hard",
) -> tuple[torch.Tensor, TripletStats]:
    """The batch triplet loss (a differentiable scalar) and its statistics.

    Args:
        embeddings: (N, D) float tensor, f(x) for each image of the batch.
        labels: (N,) integer identity of each image.
        margin: alpha, in units of squared L2 distance.
        mining: ``all``, ``semi-hard`` or ``batch-hard`` (see the module docstring).
    """
    if mining not in MINING_RULES:
        raise ValueError(f"unknown mining rule {mining!r}; use one of {', '.join(MINING_RULES)}")
    d = pairwise_squared_distances(embeddings)
    pos, neg = triplet_masks(labels.to(d.device))
    d_ap = d[:, :, None]  # (A, P, 1)
    d_an = d[:, None, :]  # (A, 1, N)
    valid = pos[:, :, None] & neg[:, None, :]  # (A, P, N)
    losses = d_ap - d_an + margin  # L before the hinge, for every (A, P, N)
    active = valid & (losses > 0)
    n_valid = int(valid.sum())
    n_active = int(active.sum())

    if mining == "all":
        total = torch.where(active, losses, torch.zeros_like(losses)).sum()
        n_mined = n_active
        loss = total / max(n_active, 1)
    elif mining == "semi-hard":
        semi = valid & (d_an > d_ap) & (d_an < d_ap + margin)
        total = torch.where(semi, losses, torch.zeros_like(losses)).sum()
        n_mined = int(semi.sum())
        loss = total / max(n_mined, 1)
    else:  # batch-hard
        inf = torch.finfo(d.dtype).max
        hardest_pos = torch.where(pos, d, torch.full_like(d, -inf)).max(dim=1).values
        hardest_neg = torch.where(neg, d, torch.full_like(d, inf)).min(dim=1).values
        has_both = pos.any(dim=1) & neg.any(dim=1)
        per_anchor = torch.clamp(hardest_pos - hardest_neg + margin, min=0)
        per_anchor = torch.where(has_both, per_anchor, torch.zeros_like(per_anchor))
        total = per_anchor.sum()
        n_mined = int(has_both.sum())
        loss = total / max(n_mined, 1)

    with torch.no_grad():
        mean_ap = float(d[pos].mean()) if bool(pos.any()) else 0.0
        mean_an = float(d[neg].mean()) if bool(neg.any()) else 0.0
    stats = TripletStats(
        loss=float(loss.detach()),
        total=float(total.detach()),
        valid=n_valid,
        active=n_active,
        mined=n_mined,
        mean_ap=mean_ap,
        mean_an=mean_an,
    )
    return loss, stats
