"""Convolution shapes in 1D, 2D and 3D: the course's formula, checked by torch.

For an input of ``n`` samples per dimension, a filter of ``f``, stride ``s`` and padding
``p`` (zeros on both sides), each output dimension is

    n_out = floor((n + 2p - f) / s) + 1

A layer with ``c`` input channels and ``n_f`` filters has ``f^d * c`` weights per filter
plus one bias, ``(f^d * c + 1) * n_f`` parameters in all, whatever the input size; its
output has ``n_f`` channels. The same rule covers a 1D signal (an ECG trace, ``14 x 1``
with a ``5 x 1`` filter gives ``10``), a 2D image and a 3D volume or video clip.

:func:`conv_shape` computes all of it; :func:`torch_output_shape` runs the same layer in
torch (``Conv1d``/``Conv2d``/``Conv3d``) and returns the shape torch gives, the check the
Explore tab shows beside the formula. :func:`window` says which input samples one output
position sees (the drawing's highlighted filter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from desktop.errors import FacestyleError

#: Above this many multiply-adds the torch check runs on the meta device (shapes only).
REAL_CHECK_MAX_MACS = 50_000_000
DIM_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def output_size(n: int, f: int, s: int = 1, p: int = 0) -> int:
    """floor((n + 2p - f) / s) + 1: the output length along one dimension.

    Raises:
        ValueError: a size below 1, a negative padding, or a filter larger than the
            padded input (no output position fits).
    """
    if n < 1 or f < 1 or s < 1 or p < 0:
        raise ValueError("sizes, filter and stride must be at least 1, padding at least 0")
    if f > n + 2 * p:
        raise ValueError(f"the filter ({f}) is larger than the padded input "
                         f"({n} + 2·{p} = {n + 2 * p})")
    return (n + 2 * p - f) // s + 1


@dataclass(frozen=True)
class ConvSpec:
    """One convolution layer and its input. Tuples hold one value per dimension."""

    dims: int
    size: tuple[int, ...]
    channels: int = 1
    filter: tuple[int, ...] = (3,)
    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] = (0,)
    filters: int = 1

    @classmethod
    def make(cls, dims: int, size: int | tuple[int, ...], channels: int = 1,
             filter: int | tuple[int, ...] = 3, stride: int | tuple[int, ...] = 1,
             padding: int | tuple[int, ...] = 0, filters: int = 1) -> ConvSpec:
        """A spec from scalars (same in every dimension) or per-dimension tuples.

        Raises:
            FacestyleError: dims not 1, 2 or 3, or a tuple of the wrong length.
        """
        if dims not in (1, 2, 3):
            raise FacestyleError(f"dims must be 1, 2 or 3, not {dims}.")

        def per_dim(value: int | tuple[int, ...], what: str) -> tuple[int, ...]:
            values = (value,) * dims if isinstance(value, int) else tuple(value)
            if len(values) == 1:
                values = values * dims
            if len(values) != dims:
                raise FacestyleError(f"{what} needs 1 or {dims} values, got {len(values)}.")
            return tuple(int(v) for v in values)

        return cls(dims, per_dim(size, "the input size"), int(channels),
                   per_dim(filter, "the filter size"), per_dim(stride, "the stride"),
                   per_dim(padding, "the padding"), int(filters))


@dataclass(frozen=True)
class ConvShape:
    """What :func:`conv_shape` works out for a :class:`ConvSpec`."""

    spec: ConvSpec
    output: tuple[int, ...]  # per dimension
    weights: int  # f^d * c * n_f
    biases: int  # n_f
    macs: int  # multiply-adds for one input

    @property
    def parameters(self) -> int:
        return self.weights + self.biases

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(c, *size)``, torch's order without the batch."""
        return (self.spec.channels, *self.spec.size)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(n_f, *output)``, torch's order without the batch."""
        return (self.spec.filters, *self.output)

    def formula_lines(self) -> list[str]:
        """One line per dimension: ``height: floor((14 + 2·0 - 5) / 1) + 1 = 10``."""
        spec = self.spec
        return [
            f"{name}: floor(({n} + 2·{p} - {f}) / {s}) + 1 = {o}"
            for name, n, p, f, s, o in zip(DIM_NAMES[spec.dims], spec.size, spec.padding,
                                           spec.filter, spec.stride, self.output, strict=True)
        ]

    def parameter_line(self) -> str:
        spec = self.spec
        taps = " x ".join(str(f) for f in spec.filter)
        return (f"({taps} x {spec.channels} + 1) x {spec.filters} = {self.parameters:,} "
                f"parameters ({self.weights:,} weights, {self.biases:,} biases)")


def conv_shape(spec: ConvSpec) -> ConvShape:
    """The output size per dimension, parameter and multiply-add counts of ``spec``.

    Raises:
        FacestyleError: the layer cannot be applied (with the reason in words).
    """
    if spec.channels < 1 or spec.filters < 1:
        raise FacestyleError("Channels and the number of filters must be at least 1.")
    try:
        output = tuple(output_size(n, f, s, p) for n, f, s, p in zip(
            spec.size, spec.filter, spec.stride, spec.padding, strict=True))
    except ValueError as exc:
        raise FacestyleError(f"This convolution has no output: {exc}.",
                             "Use a smaller filter, more padding or a larger input.") from exc
    taps = math.prod(spec.filter)
    weights = taps * spec.channels * spec.filters
    return ConvShape(spec, output, weights, spec.filters, weights * math.prod(output))


def torch_output_shape(spec: ConvSpec) -> tuple[tuple[int, ...], bool]:
    """The output shape torch's ``Conv{d}d`` gives for ``spec`` (without the batch), and
    whether it really ran (False: a large layer, checked on the meta device, which
    computes shapes only).

    Raises:
        FacestyleError: torch refuses the layer (its message is kept).
    """
    import torch
    from torch import nn

    conv_cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spec.dims]
    macs = math.prod(spec.filter) * spec.channels * spec.filters * math.prod(
        max(1, n) for n in spec.size)
    device = "cpu" if macs <= REAL_CHECK_MAX_MACS else "meta"
    try:
        layer = conv_cls(spec.channels, spec.filters, spec.filter, spec.stride, spec.padding,
                         device=device)
        x = torch.zeros((1, spec.channels, *spec.size), device=device)
        with torch.no_grad():
            y = layer(x)
    except (RuntimeError, ValueError) as exc:
        raise FacestyleError(f"torch refuses this convolution: {exc}") from exc
    return tuple(int(v) for v in y.shape[1:]), device == "cpu"


def window(spec: ConvSpec, position: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """The input samples output ``position`` sees, per dimension: ``(first, last)`` in
    input indices, inclusive; indices below 0 or past the end are padding."""
    return tuple((o * s - p, o * s - p + f - 1) for o, s, p, f in zip(
        position, spec.stride, spec.padding, spec.filter, strict=True))


#: The course's examples, for the panel's preset menu: name -> spec.
EXAMPLES: dict[str, ConvSpec] = {
    "1D: ECG trace, 14 x 1, 16 filters of 5": ConvSpec.make(1, 14, 1, 5, 1, 0, 16),
    "2D: RGB image 6 x 6 x 3, 2 filters of 3 x 3": ConvSpec.make(2, 6, 3, 3, 1, 0, 2),
    "2D: 39 x 39 x 3, 10 filters of 3, stride 1": ConvSpec.make(2, 39, 3, 3, 1, 0, 10),
    "2D: 7 x 7, 3 x 3 filter, stride 2 (course)": ConvSpec.make(2, 7, 1, 3, 2, 0, 1),
    "2D: 'same' padding, 32 x 32 x 3, 5 x 5, p = 2": ConvSpec.make(2, 32, 3, 5, 1, 2, 8),
    "3D: CT volume 14 x 14 x 14 x 1, 16 filters of 5": ConvSpec.make(3, 14, 1, 5, 1, 0, 16),
    "3D: video clip 16 frames 112 x 112 x 3, 3 x 3 x 3": ConvSpec.make(
        3, (16, 112, 112), 3, 3, 1, 1, 64),
}
