"""Receptive fields against brute force: perturb one input pixel, see which outputs change.

Two probes:

* the *structural* probe runs a one-channel copy of the network's own modules (same
  kernels, strides, padding, pooling and residual wiring, every weight 1, no bias) on
  images that are 1 at one pixel and 0 elsewhere; an output is reached exactly when it is
  non-zero (everything stays >= 0 and only grows by sums, so nothing cancels and no ReLU
  or max pool hides it).
  Cheap enough to sweep whole rows and columns through VGG19 down to relu5_4.
* the *real* probe runs the networks with their trained weights on a random image and a
  copy with one pixel changed by 1000, in one batch, and compares.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from desktop.explore.networks import ENCODER_STAGES, VGG_LAYERS, _skeleton, layers_of
from desktop.explore.receptive_field import (
    Field,
    Geometry,
    input_field,
    merge,
    trace,
    trace_named,
    window,
)
from desktop.face.encoder import Affine, ResidualUnit
from desktop.style.conv_relu import FrozenConvReLU, MaxPool2x2


# -- a one-channel copy of a network, every weight 1 --------------------------------------
def structural_copy(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*(structural_copy(m) for m in module))
    if isinstance(module, nn.Conv2d):
        conv = nn.Conv2d(1, 1, module.kernel_size, module.stride, module.padding,
                         module.dilation, bias=False)
        return _ones(conv)
    if isinstance(module, FrozenConvReLU):
        return _ones(nn.Conv2d(1, 1, module.weight.shape[-1], 1, 1, bias=False))
    if isinstance(module, MaxPool2x2):
        return nn.MaxPool2d(2, 2)
    if isinstance(module, nn.MaxPool2d):
        return nn.MaxPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.AvgPool2d):
        return nn.AvgPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, ResidualUnit):
        unit = ResidualUnit(1, 1, isinstance(module.skip, nn.AvgPool2d))
        for conv in (unit.conv1, unit.conv2):
            _ones(conv)
            nn.init.zeros_(conv.bias)
        return unit  # its own forward: add_prev zero-pads the smaller branch
    if isinstance(module, nn.ReLU | nn.Identity | Affine):
        return nn.Identity()
    raise TypeError(type(module))


def _ones(conv: nn.Conv2d) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.fill_(1.0)
    return conv


def structural_probe(names, modules, height, width, pixels) -> dict[str, torch.Tensor]:
    """{layer: (len(pixels), n_H, n_W) bool}: which positions each pixel reaches."""
    chain = [structural_copy(m) for m in modules]
    x = torch.zeros(len(pixels), 1, height, width)
    for k, (r, c) in enumerate(pixels):
        x[k, 0, r, c] = 1.0
    out = {}
    with torch.no_grad():
        for name, module in zip(names, chain, strict=True):
            x = module(x)
            out[name] = x[:, 0] > 0
    return out


def real_probe(forward, height, width, pixels, bump=1000.0) -> dict[str, torch.Tensor]:
    """{layer: (len(pixels), n_H, n_W) bool}: positions that change when the pixel changes
    (the unchanged image is the batch's first, so every image runs the same kernels)."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 3, height, width, generator=g) * 50
    x = base.repeat(len(pixels) + 1, 1, 1, 1)
    for k, (r, c) in enumerate(pixels):
        x[k + 1, :, r, c] += bump
    with torch.no_grad():
        out = forward(x)
    return {name: (y[1:] != y[:1]).any(dim=1) for name, y in out.items()}


def predicted(field: Field, pixels) -> torch.Tensor:
    """(len(pixels), n_H, n_W) bool: positions whose support holds each pixel."""
    s = field.support
    return torch.stack([(s[0] <= r) & (r <= s[1]) & (s[2] <= c) & (c <= s[3])
                        for r, c in pixels])


def sweep(height: int, width: int, rows, cols) -> list[tuple[int, int]]:
    """Every pixel of the given rows and of the given columns."""
    pixels = [(r, c) for r in rows for c in range(width)]
    pixels += [(r, c) for c in cols for r in range(height) if (r, c) not in pixels]
    return pixels


# -- arithmetic ------------------------------------------------------------------------------
def test_geometry_composes_kernel_stride_and_padding():
    g = Geometry().then(3, 1, 1)  # VGG conv1_1
    assert (g.size, g.jump, g.start) == (3, 1, -1)
    g = g.then(3, 1, 1).then(2, 2, 0)  # conv1_2, pool1
    assert (g.size, g.jump, g.start) == (6, 2, -2)
    assert g.span(3) == (4, 10)
    assert g.box(1, 2) == (2, 0, 8, 6)
    assert g.centre(0) == 0.5
    assert Geometry().then(3, 1, 0, dilation=2).size == 5
    both = Geometry(5, 2, -2).union(Geometry(2, 2, 0))
    assert (both.size, both.jump, both.start) == (5, 2, -2)
    with pytest.raises(ValueError):
        Geometry(3, 1, 0).union(Geometry(3, 2, 0))


def test_vgg19_and_encoder_fields_as_the_tab_states_them():
    vgg = {i.name: i for i in layers_of("vgg19")}
    assert [vgg[n].geometry.size for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                           "relu5_1")] == [3, 10, 24, 68, 156]
    assert [vgg[n].geometry.jump for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                           "relu5_1")] == [1, 2, 4, 8, 16]
    assert vgg["relu5_4"].geometry.size == 252 and vgg["relu5_1"].channels == 512
    enc = {i.name: i.geometry for i in layers_of("encoder")}
    # stem: conv 7x7/2 then max pool 3x3/2 -> 7 + 2*2 = 11 px, stride 4, no padding
    assert (enc["stem"].size, enc["stem"].jump, enc["stem"].start) == (11, 4, 0)
    # level4: 3 identity units, each two 3x3 convs on a stride-4 grid: + 3 * 16
    assert (enc["level4"].size, enc["level4"].jump) == (59, 4)
    assert [enc[n].jump for n in ENCODER_STAGES] == [4, 4, 8, 16, 32, 64]
    assert [enc[n].size for n in ENCODER_STAGES] == sorted(enc[n].size for n in ENCODER_STAGES)


def test_residual_paths_take_the_larger_field_and_missing_branches_add_nothing():
    field = input_field(3, 8)
    conv = window(field, 3, 2, 0)  # 1 x 3 positions
    pool = window(field, 2, 2, 0)  # 1 x 4 positions
    both = merge(conv, pool)
    assert both.support.shape[1:] == (1, 4)
    assert both.support_box(0, 2) == (4, 0, 7, 3)  # conv [4, 6] x [0, 2] and pool
    assert both.support_box(0, 3) == (6, 0, 8, 2)  # only the pool branch reaches it
    assert both.geometry == Geometry(3, 2, 0)


def test_fused_vgg19_traces_like_the_plain_one():
    import numpy as np

    from desktop.style.vgg import VGG19Features
    from desktop.style.vgg_weights import CONV_CHANNELS

    blank = {name: (np.zeros((c_out, c_in, 3, 3), np.float32), np.zeros(c_out, np.float32))
             for name, (c_in, c_out) in CONV_CHANNELS.items()}
    fused = VGG19Features("relu5_1", fused=True, weights=blank)
    assert any(isinstance(m, FrozenConvReLU) for m in fused.layers)
    assert any(isinstance(m, MaxPool2x2) for m in fused.layers)
    names, modules = _skeleton("vgg19")
    plain = trace_named(names, modules, input_field(40, 50))
    traced = trace_named(fused.names, fused.layers, input_field(40, 50))
    for name in fused.names:
        assert traced[name].geometry == plain[name].geometry, name
        assert torch.equal(traced[name].support, plain[name].support), name


def test_tracer_refuses_modules_it_does_not_know():
    with pytest.raises(TypeError):
        trace(nn.Upsample(scale_factor=2), input_field())
    with pytest.raises(TypeError):
        trace(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), input_field())
    with pytest.raises(TypeError):
        trace(nn.MaxPool2d(2, ceil_mode=True), input_field())


# -- structural probe: every VGG19 ReLU layer and every encoder stage, exactly -----------
def test_vgg19_fields_equal_a_structural_probe_down_to_relu5_4():
    names, modules = _skeleton("vgg19")
    h, w = 45, 290  # odd sizes: pools drop the last row/column
    pixels = sweep(h, w, rows=(0, 22, 44), cols=(0, 1, 145, 289))
    probe = structural_probe(names, modules, h, w, pixels)
    fields = trace_named(names, modules, input_field(h, w))
    for name in VGG_LAYERS:
        assert torch.equal(predicted(fields[name], pixels), probe[name]), name


def test_encoder_fields_equal_a_structural_probe_at_every_stage():
    names, modules = _skeleton("encoder")
    pixels = sweep(150, 150, rows=(0, 75, 146, 147, 149), cols=(0, 149))
    probe = structural_probe(names, modules, 150, 150, pixels)
    fields = trace_named(names, modules, input_field(150, 150))
    for name in ENCODER_STAGES:
        assert torch.equal(predicted(fields[name], pixels), probe[name]), name
    # the stem's floor division drops the last 3 rows and columns: nothing sees them
    assert not probe["level0"][pixels.index((149, 75))].any()


def test_nominal_fields_match_the_exact_support_inside_the_image_for_vgg19():
    """The crop shown is the nominal box; inside the image it is exactly what the unit
    depends on, at every position of every layer."""
    names, modules = _skeleton("vgg19")
    h, w = 37, 53
    fields = trace_named(names, modules, input_field(h, w))
    for name in VGG_LAYERS:
        field = fields[name]
        for i in range(field.support.shape[1]):
            for j in range(field.support.shape[2]):
                x0, y0, x1, y1 = field.geometry.box(i, j)
                clipped = (max(x0, 0), max(y0, 0), min(x1, w), min(y1, h))
                assert field.support_box(i, j) == clipped, (name, i, j)


def test_encoder_support_lies_inside_the_nominal_field():
    names, modules = _skeleton("encoder")
    fields = trace_named(names, modules, input_field(150, 150))
    differs = 0
    for name in ENCODER_STAGES:
        field = fields[name]
        for i in range(field.support.shape[1]):
            for j in range(field.support.shape[2]):
                x0, y0, x1, y1 = field.geometry.box(i, j)
                sx0, sy0, sx1, sy1 = field.support_box(i, j)
                assert x0 <= sx0 and y0 <= sy0 and sx1 <= x1 and sy1 <= y1, (name, i, j)
                differs += (sx0, sy0, sx1, sy1) != (max(x0, 0), max(y0, 0), min(x1, 150),
                                                    min(y1, 150))
    assert differs > 0  # the far-end positions that lose a branch, and the dropped pixels


# -- real probe: the trained networks ----------------------------------------------------
@pytest.mark.slow
def test_vgg19_fields_equal_a_probe_of_the_trained_network():
    from desktop.style.vgg import VGG19Features

    net = VGG19Features("relu3_1")
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    h, w = 30, 64
    pixels = sweep(h, w, rows=(0, 15), cols=(0, 32, 63))
    probe = real_probe(lambda x: net(x, layers), h, w, pixels)
    names, modules = _skeleton("vgg19")
    fields = trace_named(names, modules, input_field(h, w))
    for name in layers:
        assert torch.equal(predicted(fields[name], pixels), probe[name]), name


@pytest.mark.slow
def test_encoder_fields_hold_what_a_probe_of_the_trained_encoder_sees():
    """With trained weights a ReLU can hide a pixel's effect, so the probe may see less
    than the structural support, never more; at the stem they agree exactly."""
    from desktop.face.encoder import FaceEncoder

    encoder = FaceEncoder.from_dlib(device="cpu").eval()

    def forward(x):
        out = {}
        for name in ENCODER_STAGES:
            x = getattr(encoder, name)(x)
            out[name] = x
        return out

    pixels = sweep(150, 150, rows=(0, 75), cols=())
    probe = real_probe(forward, 150, 150, pixels)
    fields = trace_named(*_skeleton("encoder"), input_field(150, 150))
    for name in ENCODER_STAGES:
        want = predicted(fields[name], pixels)
        assert not (probe[name] & ~want).any(), name
        agree = (probe[name] == want).float().mean().item()
        assert agree > 0.99, (name, agree)
    assert torch.equal(predicted(fields["stem"], pixels), probe["stem"])
