"""The temporal term of video style transfer (Ruder, Dosovitskiy and Brox, 2016).

For frame ``i`` with the earlier stylised frames warped onto it,

    J_temporal(G) = sum_j sum_p c_j(p) * ||G(p) - warp(G_{i-j})(p)||^2 / D,   D = 3 H W

over pixels ``p`` and the three channels of G in 0..255 units (the Caffe-scaled image the
loop optimises; the mean pixel cancels in the difference). ``c_j`` is 1 where the flow
from frame ``i`` back to ``i-j`` is reliable and 0 elsewhere
(:func:`desktop.style.flow.reliability`). With one earlier frame this is the paper's
short-term loss; with several it is their long-term loss when each ``c_j`` keeps only the
pixels no nearer frame already covers (:func:`long_term_weights`).

The frame's objective is then

    J_i(G) = alpha J_content + beta sum_l lambda_l J_style^[l] + gamma J_temporal

with ``gamma`` the temporal weight (:class:`~desktop.style.losses.Scale`). Like the
content and style losses (:mod:`desktop.style.losses`) the term is one autograd step with
its gradient written out, ``dJ/dG = 2 c (G - W) / D``, computed in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from desktop.style import images as imgs
from desktop.style.losses import Scale
from desktop.style.vgg import preprocess


class _TemporalLossFunction(torch.autograd.Function):
    """``J = sum c (x - W)^2 / D`` and ``dJ/dx = 2 c (x - W) / D`` (x: the image, fp32)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, targets: torch.Tensor,  # type: ignore[override]
                weights: torch.Tensor, d: float) -> torch.Tensor:
        # x (1, 3, H, W); targets (k, 3, H, W); weights (k, 1, H, W): k earlier frames
        with torch.autocast(x.device.type, enabled=False):
            diff = x.detach().to(torch.promote_types(x.dtype, torch.float32)) - targets
            weighted = diff * weights  # c (x - W)
            ctx.save_for_backward(weighted)
            ctx.d = d
            return torch.dot(weighted.view(-1), diff.view(-1)) / d

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):  # type: ignore[override]
        (weighted,) = ctx.saved_tensors
        grad = weighted.sum(dim=0, keepdim=True).mul_(2.0 * grad_loss / ctx.d)
        return grad, None, None, None


class TemporalLoss(nn.Module):
    """``sum_j sum c_j (x - W_j)^2 / D`` against warped earlier frames ``W_j``.

    ``targets``: ``(k, 3, H, W)`` in the image's units (Caffe, 0..255 range);
    ``weights``: ``(k, 1, H, W)`` or ``(k, H, W)``, non-negative (Ruder et al.'s are 0 or 1).
    """

    def __init__(self, targets: torch.Tensor, weights: torch.Tensor) -> None:
        super().__init__()
        if weights.dim() == 3:
            weights = weights.unsqueeze(1)
        if targets.dim() != 4 or targets.shape[1] != 3:
            raise ValueError(f"targets must be (k, 3, H, W), got {tuple(targets.shape)}")
        if weights.shape != (targets.shape[0], 1, *targets.shape[2:]):
            raise ValueError(f"weights {tuple(weights.shape)} do not match targets "
                             f"{tuple(targets.shape)}")
        if not bool((weights >= 0).all()):
            raise ValueError("the weights c must be non-negative")
        self.register_buffer("targets", targets.detach().float())
        self.register_buffer("weights", weights.detach().float())

    @property
    def d(self) -> float:
        """D = 3 H W: the number of values in one frame."""
        return float(3 * self.targets.shape[2] * self.targets.shape[3])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return _TemporalLossFunction.apply(image, self.targets, self.weights, self.d)


def long_term_weights(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Ruder et al.'s long-term weights from the short-range masks, nearest frame first:
    ``c_long(j) = max(c(j) - sum_{k<j} c(k), 0)``, so each pixel is tied to the nearest
    earlier frame where it is visible and to no other."""
    out: list[np.ndarray] = []
    covered = None
    for mask in masks:
        mask = mask.astype(np.float32)
        keep = mask if covered is None else np.maximum(mask - covered, 0.0)
        out.append(keep)
        covered = keep if covered is None else np.minimum(covered + keep, 1.0)
    return out


@dataclass
class TemporalTerm:
    """The earlier stylised frames warped onto the current one, with their weights; builds
    ``gamma * J_temporal`` at whatever size the loop optimises (:meth:`at`).

    ``warped``: ``(H, W, 3)`` RGB images (uint8 or float 0..255), nearest frame first;
    ``masks``: ``(H, W)`` 0/1 weights ``c_j`` for each (already made long-term if wanted).
    """

    gamma: float
    warped: list[np.ndarray]
    masks: list[np.ndarray]

    def __post_init__(self) -> None:
        if len(self.warped) != len(self.masks) or not self.warped:
            raise ValueError("a temporal term needs one mask per warped frame, and at least one")
        if not np.isfinite(self.gamma) or self.gamma < 0:
            raise ValueError("the temporal weight must be a non-negative number")

    def at(self, height: int, width: int, device: torch.device) -> nn.Module | None:
        """``Scale(TemporalLoss, gamma)`` for a ``height x width`` G, or None when gamma
        is 0 (the term costs nothing then)."""
        if not self.gamma:
            return None
        targets = torch.cat([preprocess(imgs.resize(np.asarray(w, np.float32), height, width))
                             for w in self.warped])
        weights = torch.stack([
            torch.from_numpy(_resize_mask(m, height, width)) for m in self.masks])
        return Scale(TemporalLoss(targets, weights), self.gamma).to(device)


def _resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 0/1 mask at another size (nearest: it stays 0/1)."""
    mask = np.asarray(mask, np.float32)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(mask)
