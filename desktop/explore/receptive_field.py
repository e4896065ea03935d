"""Receptive fields, worked out from a network's own modules.

Along one axis, a layer's grid is described by three integers (:class:`Geometry`):

* ``size`` r: how many input pixels one position's field spans;
* ``jump`` j: how many input pixels apart neighbouring positions are (the layer's total
  stride);
* ``start`` a: the first input pixel of position 0's field (negative where padding lets
  the field hang over the image's edge).

Position ``i`` sees input pixels ``a + i*j ... a + i*j + r - 1``. A window layer with
kernel k, stride s, padding p and dilation d (a convolution or a pooling) after it gives

    r' = r + d (k - 1) j,   j' = j s,   a' = a - p j

and elementwise layers (ReLU, affine, batch norm) change nothing. Where two paths meet
(a residual unit: y = relu(branch(x) + skip(x))) the field is the union of the paths'
fields, which for the same jump is again an interval: from the smaller start to the
larger end. These are the *nominal* fields: every position of a layer gets one of the
same size, so crops of it line up; near the borders they hang over the image, and the
Explore tab pads them rather than shifting them.

:attr:`Field.support` is the *exact* dependency instead: for each position of a map of a
given input size, the first and last input row and column that can change it. It is
propagated by the same window arithmetic on coordinate maps (a window's support is the
smallest box holding its inputs' supports: a max pooling of the coordinate maps with the
layer's own kernel, stride and padding, padding excluded), and it also follows dlib's
``add_prev``, which zero-pads the smaller of two residual branches at the far end: there
the missing branch contributes nothing. Inside the image the nominal field and the
support agree for VGG19; for the face encoder they differ at the positions that lose a
branch. Tests compare the support with a brute-force probe (perturb one input pixel, see
which outputs change) for VGG19 and the encoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_MISSING_LO = float("inf")
_MISSING_HI = float("-inf")


@dataclass(frozen=True)
class Geometry:
    """A layer's receptive field along one axis (the same along both for square layers)."""

    size: int = 1
    jump: int = 1
    start: int = 0

    def then(self, kernel: int, stride: int = 1, padding: int = 0,
             dilation: int = 1) -> Geometry:
        """The geometry after a window layer (convolution or pooling)."""
        reach = dilation * (kernel - 1)
        return Geometry(self.size + reach * self.jump, self.jump * stride,
                        self.start - padding * self.jump)

    def union(self, other: Geometry) -> Geometry:
        """Where two paths meet: the smallest interval holding both fields.

        Raises:
            ValueError: the paths have different strides (their grids do not line up).
        """
        if other.jump != self.jump:
            raise ValueError(f"paths with strides {self.jump} and {other.jump} cannot be added")
        first = min(self.start, other.start)
        last = max(self.start + self.size - 1, other.start + other.size - 1)
        return Geometry(last - first + 1, self.jump, first)

    def span(self, index: int) -> tuple[int, int]:
        """Input pixels ``(first, end)`` (end exclusive) of position ``index``'s field."""
        first = self.start + index * self.jump
        return first, first + self.size

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` in input pixels (x1, y1 exclusive) of position (row, col);
        may reach outside the image."""
        y0, y1 = self.span(row)
        x0, x1 = self.span(col)
        return x0, y0, x1, y1

    def centre(self, index: float) -> float:
        """The input coordinate (pixel centres at integers) of position ``index``'s centre."""
        return self.start + index * self.jump + (self.size - 1) / 2


@dataclass(frozen=True)
class Field:
    """A layer's nominal :class:`Geometry` and, when traced for an input size, the exact
    ``support``: a float64 tensor (4, n_H, n_W) holding, per position, the first and last
    input row, then the first and last input column that can change it (inclusive)."""

    geometry: Geometry
    support: torch.Tensor | None = None

    def support_box(self, row: int, col: int) -> tuple[int, int, int, int] | None:
        """``(x0, y0, x1, y1)`` (exclusive ends) of the input pixels that can change
        position (row, col); None when nothing reaches it or no support was traced."""
        if self.support is None:
            return None
        r0, r1, c0, c1 = (float(v) for v in self.support[:, row, col])
        if r0 > r1 or c0 > c1:
            return None
        return int(c0), int(r0), int(c1) + 1, int(r1) + 1


def input_field(height: int | None = None, width: int | None = None) -> Field:
    """The input's own field: every pixel sees itself. With a size, the support starts
    as each pixel's own coordinates."""
    if height is None or width is None:
        return Field(Geometry())
    rows = torch.arange(height, dtype=torch.float64).view(height, 1).expand(height, width)
    cols = torch.arange(width, dtype=torch.float64).view(1, width).expand(height, width)
    return Field(Geometry(), torch.stack([rows, rows, cols, cols]).contiguous())


def _pair(value: int | tuple[int, ...] | str, what: str) -> int:
    if isinstance(value, str):
        raise TypeError(f"{what}={value!r}: give the padding as numbers")
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(set(values)) != 1:
        raise TypeError(f"non-square {what} {values}: this tracer handles square layers")
    return int(values[0])


def _window_support(support: torch.Tensor, kernel: int, stride: int, padding: int,
                    dilation: int) -> torch.Tensor:
    """The support after a window layer: per output position, the smallest box holding
    the supports of the inputs its window covers (padding covers nothing)."""
    lo = torch.cat([support[0:1], support[2:3]])
    hi = torch.cat([support[1:2], support[3:4]])
    pad = (padding,) * 4
    neg_lo = F.pad(-lo, pad, value=_MISSING_HI)  # min(lo) = -max(-lo); padding never wins
    hi = F.pad(hi, pad, value=_MISSING_HI)
    new_lo = -F.max_pool2d(neg_lo, kernel, stride, 0, dilation)
    new_hi = F.max_pool2d(hi, kernel, stride, 0, dilation)
    return torch.stack([new_lo[0], new_hi[0], new_lo[1], new_hi[1]])


def window(field: Field, kernel: int, stride: int = 1, padding: int = 0,
           dilation: int = 1) -> Field:
    """``field`` after a window layer (convolution or pooling, floor mode)."""
    support = field.support
    if support is not None:
        support = _window_support(support, kernel, stride, padding, dilation)
    return Field(field.geometry.then(kernel, stride, padding, dilation), support)


def _grow(support: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``support`` padded at its far ends (bottom, right) with positions nothing reaches,
    as dlib's ``add_prev`` zero-pads the smaller branch."""
    dh, dw = height - support.shape[1], width - support.shape[2]
    if not (dh or dw):
        return support
    lo = F.pad(support[0::2], (0, dw, 0, dh), value=_MISSING_LO)
    hi = F.pad(support[1::2], (0, dw, 0, dh), value=_MISSING_HI)
    return torch.stack([lo[0], hi[0], lo[1], hi[1]])


def merge(a: Field, b: Field) -> Field:
    """Two paths added (``add_prev``: the smaller zero-padded at its far ends)."""
    geometry = a.geometry.union(b.geometry)
    if a.support is None or b.support is None:
        return Field(geometry)
    h = max(a.support.shape[1], b.support.shape[1])
    w = max(a.support.shape[2], b.support.shape[2])
    sa, sb = _grow(a.support, h, w), _grow(b.support, h, w)
    lo = torch.minimum(sa[0::2], sb[0::2])
    hi = torch.maximum(sa[1::2], sb[1::2])
    return Field(geometry, torch.stack([lo[0], hi[0], lo[1], hi[1]]))


def _is_pointwise(module: nn.Module) -> bool:
    from desktop.face.encoder import Affine

    return isinstance(module, nn.ReLU | nn.Identity | nn.BatchNorm2d | nn.Dropout | Affine)


def trace(module: nn.Module, field: Field) -> Field:
    """``field`` after ``module``: a convolution, a pooling, an elementwise layer, a
    sequence of them, or one of the app's composite layers (VGG's fused conv + ReLU and
    2x2 max pool, the encoder's residual units).

    Raises:
        TypeError: a module whose geometry this tracer does not know (teach it here
            rather than guess), or one whose padding is not zeros.
    """
    from desktop.face.encoder import ResidualUnit
    from desktop.style.conv_relu import FrozenConvReLU, MaxPool2x2

    if _is_pointwise(module):
        return field
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise TypeError(f"{module}: only zero padding is traced")
        return window(field, _pair(module.kernel_size, "kernel"), _pair(module.stride, "stride"),
                      _pair(module.padding, "padding"), _pair(module.dilation, "dilation"))
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        if module.ceil_mode:
            raise TypeError(f"{module}: ceil mode is not traced")
        stride = module.stride if module.stride is not None else module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return window(field, _pair(module.kernel_size, "kernel"), _pair(stride, "stride"),
                      _pair(module.padding, "padding"), _pair(dilation, "dilation"))
    if isinstance(module, FrozenConvReLU):  # 3x3, stride 1, padding 1 by construction
        return window(field, int(module.weight.shape[-1]), 1, 1)
    if isinstance(module, MaxPool2x2):
        return window(field, 2, 2, 0)
    if isinstance(module, ResidualUnit):
        branch = trace_all((module.conv1, module.affine1, module.conv2, module.affine2), field)
        return merge(branch, trace(module.skip, field))
    if isinstance(module, nn.Sequential):
        return trace_all(module, field)
    raise TypeError(f"no receptive-field rule for {type(module).__name__}")


def trace_all(modules: Iterable[nn.Module], field: Field) -> Field:
    """``field`` after each of ``modules`` in turn."""
    for module in modules:
        field = trace(module, field)
    return field


def trace_named(names: Sequence[str], modules: Sequence[nn.Module], field: Field
                ) -> dict[str, Field]:
    """The field after each named module of a chain, by name."""
    out: dict[str, Field] = {}
    for name, module in zip(names, modules, strict=True):
        field = trace(module, field)
        out[name] = field
    return out
