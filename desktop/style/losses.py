"""The style-transfer objective, term by term, exactly as the course defines it.

Activations ``a`` are ``(1, n_C, n_H, n_W)`` tensors from :class:`~desktop.style.vgg.
VGG19Features` (one image; the batch axis is always 1).

* Content:  ``J_content(C, G) = 1/2 * sum (a[l](C) - a[l](G))^2`` at one layer.
* Gram:     ``G_kk' = sum_ij a_ijk a_ijk'`` (a ``(n_C, n_C)`` matrix, unnormalised).
* Style:    ``J_style^[l](S, G) = 1/(2 n_H n_W n_C)^2 * sum_kk' (G_kk'(S) - G_kk'(G))^2``
  with ``n_H, n_W, n_C`` the generated image's activation shape at layer l.
* TV:       ``TV(G) = sum_ij (G_i+1,j - G_ij)^2 + (G_i,j+1 - G_ij)^2`` over pixels and
  channels of the (Caffe-scaled, 0..255) image: an optional smoothness prior.

and they combine, with :class:`Scale`, :class:`LayerApply` and :class:`SumLoss`, into

    J(G) = alpha * J_content + beta * sum_l lambda_l * J_style^[l] + tv * TV(G)

(see :func:`build_objective`). Since a Gram matrix is a sum over pixels, a style image
whose size differs from G's would have Grams of a different scale; each style Gram target
is therefore rescaled to G's pixel count, ``G(S) * (n_H n_W)_G / (n_H n_W)_S``, which
leaves the formula unchanged when the sizes agree. Several style images mix their
(rescaled) Gram targets with blend weights that sum to 1.

Precision: however the network runs (fp32, bf16), the losses' differences and sums are
computed in fp32 (autocast off). A Gram matrix is computed in the activations' dtype
(for bf16: bf16 inputs, fp32 accumulation inside the matrix unit, one rounding of each
entry to bf16) and then cast to fp32; ``bench/style_speed.py`` measures what this costs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from desktop.style.conv_relu import GradientSink
from desktop.style.scratch import work_like


def _fp32(a: torch.Tensor) -> torch.Tensor:
    """``a`` in fp32 at least (bf16/fp16 are cast up; fp64 stays fp64)."""
    return a if a.dtype in (torch.float32, torch.float64) else a.float()


def _features_matrix(a: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``a`` (1, n_C, n_H, n_W) as a matrix without copying: ``(F, rows_are_pixels)``.

    channels_last activations give F of shape (n_H n_W, n_C), others (n_C, n_H n_W).
    """
    if a.dim() != 4 or a.shape[0] != 1:
        raise ValueError(f"expected activations of shape (1, C, H, W), got {tuple(a.shape)}")
    n_c = a.shape[1]
    if a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous():
        return a.permute(0, 2, 3, 1).reshape(-1, n_c), True
    return a.reshape(n_c, -1), False


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """``G_kk' = sum_ij a_ijk a_ijk'`` for ``a`` (1, n_C, n_H, n_W): an fp32 (n_C, n_C) matrix.

    The product runs in ``a``'s own dtype (bf16 activations use the CPU's bf16 matrix
    units, which accumulate in fp32); the result is returned in fp32 for the loss.
    """
    return _fp32(_gram(a))


def _gram(a: torch.Tensor) -> torch.Tensor:
    """:func:`gram_matrix` in ``a``'s own dtype (bf16 stays bf16)."""
    f, pixel_rows = _features_matrix(a)
    with torch.autocast(a.device.type, enabled=False):
        return f.T @ f if pixel_rows else f @ f.T


class _StyleLossFunction(torch.autograd.Function):
    """``J = c * sum (G(a) - A)^2`` and its gradient ``dJ/da = 4c * (G(a) - A) a``.

    The gradient is Gatys et al.'s eq. (6) (there ``c = 1/(4 N^2 M^2)``): one matrix
    product instead of autograd's two products and a sum through ``a.T @ a``.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, target: torch.Tensor, c: float,  # type: ignore[override]
                sink: GradientSink | None = None, role: Hashable = None) -> torch.Tensor:
        with torch.autocast(a.device.type, enabled=False):
            # G(a) in fp32 minus the target, in place on the fresh copy (a mixed-dtype
            # subtraction is 3x slower at 512x512 here), then the squared norm as one dot
            diff = _fp32(_gram(a)).sub_(target)  # fp32 (n_C, n_C)
            flat = diff.view(-1)
            ctx.save_for_backward(a, diff)
            ctx.c = c
            ctx.sink = sink
            ctx.role = role
            return torch.dot(flat, flat) * c

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):  # type: ignore[override]
        a, diff = ctx.saved_tensors
        f, pixel_rows = _features_matrix(a)
        with torch.autocast(a.device.type, enabled=False):
            d = (diff * (4.0 * ctx.c * grad_loss)).to(a.dtype)  # symmetric
            # a full-size map: into the job's work space (desktop.style.scratch), named by
            # this loss; it lives until the layer that made ``a`` has read it
            out = work_like(("style gradient", ctx.role), f)
            if pixel_rows:  # f: (n_H n_W, n_C) -> grad (1, n_H, n_W, n_C) viewed as NCHW
                grad = torch.mm(f, d, out=out).view(1, a.shape[2], a.shape[3], a.shape[1])
                grad = grad.permute(0, 3, 1, 2)
            else:
                grad = torch.mm(d, f, out=out).view(a.shape)
        if ctx.sink is not None and ctx.sink.deposit(grad):
            return None, None, None, None, None  # the next layer's backward adds it
        return grad, None, None, None, None


class _ContentLossFunction(torch.autograd.Function):
    """``J = 1/2 ||a - A||^2`` (fp32) and its gradient ``dJ/da = a - A`` in ``a``'s dtype.

    Like the style loss, it leaves its gradient in the layer's :class:`GradientSink` when
    there is one, so the next layer's backward adds it instead of autograd.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, target: torch.Tensor,  # type: ignore[override]
                sink: GradientSink | None = None) -> torch.Tensor:
        with torch.autocast(a.device.type, enabled=False):
            # a copy in fp32 (at least), a's memory layout, then minus A in place (one
            # fresh map, not two: measured 10x faster than a.float() - A here)
            diff = a.to(torch.promote_types(a.dtype, torch.float32), copy=True).sub_(target)
            flat = _features_matrix(diff)[0].reshape(-1)  # a view: no copy
            ctx.save_for_backward(diff)
            ctx.grad_dtype = a.dtype
            ctx.sink = sink
            return torch.dot(flat, flat) * 0.5

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):  # type: ignore[override]
        (diff,) = ctx.saved_tensors
        grad = (diff * grad_loss).to(ctx.grad_dtype)
        if ctx.sink is not None and ctx.sink.deposit(grad):
            return None, None, None
        return grad, None, None


class ContentLoss(nn.Module):
    """``1/2 * ||a(C) - a(G)||^2`` against a fixed content activation ``target``."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", _fp32(target.detach()))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return _ContentLossFunction.apply(a, self.target, getattr(a, "grad_sink", None))


class StyleLoss(nn.Module):
    """``1/(2 n_H n_W n_C)^2 * sum (G(S) - G(a))^2`` against a fixed Gram ``target``.

    ``target_gram`` must already be on G's scale (see :func:`style_gram_target`).
    """

    def __init__(self, target_gram: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", _fp32(target_gram.detach()))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        _, n_c, n_h, n_w = a.shape
        return _StyleLossFunction.apply(a, self.target, 1.0 / float(2 * n_h * n_w * n_c) ** 2,
                                        getattr(a, "grad_sink", None), self)


class TVLoss(nn.Module):
    """Squared total variation of the image: sum of squared neighbour differences."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        with torch.autocast(image.device.type, enabled=False):
            x = _fp32(image)
            dh = x[..., 1:, :] - x[..., :-1, :]
            dw = x[..., :, 1:] - x[..., :, :-1]
            return dh.pow(2).sum() + dw.pow(2).sum()


class Scale(nn.Module):
    """``scale * module(...)``: a weight (alpha, beta, lambda_l, tv) on a loss."""

    def __init__(self, module: nn.Module, scale: float) -> None:
        super().__init__()
        self.module = module
        self.scale = float(scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"

    def forward(self, *args: object) -> torch.Tensor:
        return self.scale * self.module(*args)


class LayerApply(nn.Module):
    """Applies a loss to one layer's activation picked from a ``{layer: a}`` dict."""

    def __init__(self, module: nn.Module, layer: str) -> None:
        super().__init__()
        self.module = module
        self.layer = layer

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}"

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.module(features[self.layer])


class SumLoss(nn.ModuleList):
    """The sum of its losses, all called with the same arguments."""

    def forward(self, *args: object) -> torch.Tensor:
        total = None
        for loss in self:
            value = loss(*args)
            total = value if total is None else total + value
        if total is None:
            raise ValueError("SumLoss has no terms")
        return total


@dataclass
class LossTerms:
    """The weighted terms of J for one evaluation (0-dim fp32 tensors). ``temporal``
    (gamma * J_temporal, :mod:`desktop.style.temporal`) is there for video frames only."""

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor
    temporal: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor:
        total = self.content + self.style + self.tv
        return total if self.temporal is None else total + self.temporal

    def floats(self) -> dict[str, float]:
        return {"content": float(self.content.detach()), "style": float(self.style.detach()),
                "tv": float(self.tv.detach()), "total": float(self.total.detach()),
                "temporal": float(self.temporal.detach()) if self.temporal is not None
                else 0.0}


class Objective(nn.Module):
    """``J = alpha J_content + beta sum_l lambda_l J_style^[l] + tv TV (+ gamma J_temporal)``,
    term by term.

    ``forward(features, image)`` takes G's activations ``{layer: a}`` and G itself
    (for TV and the temporal term of a video frame) and returns the weighted
    :class:`LossTerms`.
    """

    def __init__(self, content: nn.Module | None, style: nn.Module | None,
                 tv: nn.Module | None, temporal: nn.Module | None = None) -> None:
        super().__init__()
        self.content = content
        self.style = style
        self.tv = tv
        self.temporal = temporal

    def forward(self, features: Mapping[str, torch.Tensor], image: torch.Tensor) -> LossTerms:
        zero = image.new_zeros((), dtype=torch.float32)
        return LossTerms(
            content=self.content(features) if self.content is not None else zero,
            style=self.style(features) if self.style is not None else zero,
            tv=self.tv(image) if self.tv is not None else zero,
            temporal=self.temporal(image) if self.temporal is not None else None,
        )


def style_gram_target(style_features: Sequence[Mapping[str, torch.Tensor]], layer: str,
                      blend: Sequence[float], n_pixels: int) -> torch.Tensor:
    """Blend of the style images' Grams at ``layer``, each rescaled to G's ``n_pixels``.

    ``blend`` holds one non-negative weight per style image and sums to 1.
    """
    target = None
    for features, weight in zip(style_features, blend, strict=True):
        a = features[layer]
        scaled = gram_matrix(a) * (n_pixels / float(a.shape[2] * a.shape[3]))
        term = weight * scaled
        target = term if target is None else target + term
    if target is None:
        raise ValueError("at least one style image is needed")
    return target


def build_objective(alpha: float, beta: float, content_layer: str,
                    content_target: torch.Tensor | None,
                    style_layers: Mapping[str, float],
                    style_targets: Mapping[str, torch.Tensor], tv_weight: float,
                    temporal: nn.Module | None = None) -> Objective:
    """Assemble J from its parts. Terms whose weight is 0 are left out (cost nothing).

    ``style_targets`` maps each style layer to its (blended, rescaled) Gram target;
    ``temporal`` is a video frame's weighted temporal term on the image, if any
    (:meth:`desktop.style.temporal.TemporalTerm.at`).
    """
    content = None
    if alpha and content_target is not None:
        content = Scale(LayerApply(ContentLoss(content_target), content_layer), alpha)
    style_terms = [Scale(LayerApply(StyleLoss(style_targets[layer]), layer), weight)
                   for layer, weight in style_layers.items() if weight]
    style = Scale(SumLoss(style_terms), beta) if beta and style_terms else None
    tv = Scale(TVLoss(), tv_weight) if tv_weight else None
    return Objective(content, style, tv, temporal)
