"""Feature visualisation: the objective rises, the regularisers are what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desktop.errors import FacestyleError
from desktop.explore.networks import open_network
from desktop.explore.visualize import (
    ImageParameterisation,
    VisSettings,
    random_transform,
    visualize,
)


def test_fourier_parameterisation_gives_a_valid_image_with_a_1_over_f_spectrum():
    g = torch.Generator().manual_seed(0)
    param = ImageParameterisation(32, 48, "fourier", decorrelate=True, generator=g)
    rgb = param()
    assert rgb.shape == (1, 3, 32, 48) and rgb.min() > 0 and rgb.max() < 1
    assert param.scale[0, 0, 0, 0, 0] == 48  # the DC term: 1 / (1 / max(H, W))
    assert param.scale.max() == 48 and param.scale.min() < 2
    assert param.param.shape == (1, 3, 32, 25, 2)
    pixels = ImageParameterisation(32, 48, "pixels", decorrelate=False, generator=g)
    assert pixels.param.shape == (1, 3, 32, 48)
    assert torch.equal(pixels.mix, torch.eye(3))
    mix = param.mix
    assert torch.linalg.norm(mix, dim=0).max() == pytest.approx(1.0)


def test_random_transforms_shift_scale_and_rotate():
    rng = np.random.default_rng(0)
    x = torch.rand(1, 3, 64, 64)
    outs = [random_transform(x, rng) for _ in range(4)]
    assert all(o.shape == (1, 3, 64 + 24 - 12, 64 + 24 - 12) for o in outs)
    assert not torch.allclose(outs[0], outs[1])


@pytest.mark.parametrize("network, layer, objective", [("vgg19", "relu2_1", "channel"),
                                                       ("encoder", "level4", "unit")])
def test_gradient_ascent_raises_the_objective_and_yields_every_step(network, layer, objective):
    settings = VisSettings(network=network, layer=layer, unit=3, objective=objective,
                           steps=12, size=64, device="cpu", precision="fp32", lr=0.1)
    reports = list(visualize(settings))
    assert [r.step for r in reports] == list(range(1, 13))
    size = 150 if network == "encoder" else 64
    assert reports[-1].image.shape == (size, size, 3) and reports[-1].image.dtype == np.uint8
    first = np.mean([r.objective for r in reports[:3]])
    last = np.mean([r.objective for r in reports[-3:]])
    assert last > first
    assert not np.array_equal(reports[0].image, reports[-1].image)


def test_same_seed_same_image_and_bad_settings_are_refused():
    net = open_network("vgg19", "cpu", "fp32")
    settings = VisSettings(layer="relu1_1", unit=0, steps=3, size=40, precision="fp32",
                           device="cpu")
    a = list(visualize(settings, net))[-1].image
    b = list(visualize(settings, net))[-1].image
    np.testing.assert_array_equal(a, b)
    with pytest.raises(FacestyleError, match="units 0 to 63"):
        next(visualize(VisSettings(layer="relu1_1", unit=64, device="cpu"), net))
    with pytest.raises(FacestyleError, match="no layer"):
        next(visualize(VisSettings(layer="relu9_9", device="cpu"), net))
    with pytest.raises(FacestyleError):
        VisSettings(objective="mean").check()


def test_a_unit_silent_on_grey_still_gets_a_gradient():
    """relu2_1 unit 0 gives 0 on the starting image; its pre-ReLU value still rises."""
    net = open_network("vgg19", "cpu", "fp32")
    settings = VisSettings(layer="relu2_1", unit=0, steps=20, size=48, precision="fp32",
                           device="cpu", transforms=False)
    reports = list(visualize(settings, net))
    assert reports[-1].objective > reports[0].objective
    assert len({r.image.tobytes() for r in reports}) > 1
