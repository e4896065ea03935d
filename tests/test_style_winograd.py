"""The style network's Winograd convolutions (NNPACK) for CPUs whose oneDNN kernels are AVX2."""

import pytest
import torch

from desktop import device
from desktop.style import conv_relu
from desktop.style.vgg import VGG19Features

needs_nnpack = pytest.mark.skipif(
    not torch.backends.nnpack.is_available(),
    reason="this torch build has no NNPACK (the Winograd path is then never chosen)")


@pytest.fixture
def fresh_choice(monkeypatch):
    """winograd_conv() decided anew under the test's monkeypatches, and again after it."""
    monkeypatch.delenv(device.WINOGRAD_ENV, raising=False)
    device.winograd_conv.cache_clear()
    yield
    device.winograd_conv.cache_clear()


@needs_nnpack
@pytest.mark.parametrize("kind, expected", [("AVX2", True), ("AVX-512", False), ("AMX", False)])
def test_winograd_is_chosen_only_where_onednn_has_just_avx2(monkeypatch, fresh_choice, kind,
                                                            expected):
    monkeypatch.setattr(device, "cpu_kind", lambda: kind)
    assert device.winograd_conv() is expected


@needs_nnpack
@pytest.mark.parametrize("value, kind, expected", [("0", "AVX2", False), ("off", "AVX2", False),
                                                   ("1", "AMX", True), ("on", "AVX-512", True)])
def test_environment_forces_the_choice_both_ways(monkeypatch, fresh_choice, value, kind,
                                                 expected):
    monkeypatch.setattr(device, "cpu_kind", lambda: kind)
    monkeypatch.setenv(device.WINOGRAD_ENV, value)
    assert device.winograd_conv() is expected


def test_without_nnpack_winograd_is_never_chosen(monkeypatch, fresh_choice):
    monkeypatch.setattr(device, "cpu_kind", lambda: "AVX2")
    monkeypatch.setenv(device.WINOGRAD_ENV, "1")
    monkeypatch.setattr(torch.backends.nnpack, "is_available", lambda: False)
    assert device.winograd_conv() is False


@needs_nnpack
@pytest.mark.parametrize("kind, expected", [("AVX2", "Winograd"), ("AMX", "direct")])
def test_doctor_says_how_the_style_convolutions_run(monkeypatch, fresh_choice, kind, expected):
    from desktop.commands.doctor import Report, report_style_convolutions

    monkeypatch.setattr(device, "cpu_kind", lambda: kind)
    report = Report()
    report_style_convolutions(report)
    assert report.sections["torch"]["style fp32 convolutions"].startswith(expected)
    assert "winograd_conv" not in device.system_summary()  # said once, in that row


@needs_nnpack
def test_style_device_line_names_winograd_only_for_fp32_on_the_cpu(monkeypatch):
    from desktop.style.precision import Precision

    monkeypatch.setattr("desktop.style.precision.winograd_conv", lambda: True)
    cpu = torch.device("cpu")
    assert Precision("fp32", cpu).describe().endswith(", Winograd)")
    assert "Winograd" not in Precision("bf16", cpu).describe()
    monkeypatch.setattr("desktop.style.precision.winograd_conv", lambda: False)
    assert "Winograd" not in Precision("fp32", cpu).describe()


_NNPACK_CONV = conv_relu._winograd


def _features_and_gradient(winograd: bool, monkeypatch, calls: list[tuple],
                           min_positions: int = 0):
    monkeypatch.setattr(conv_relu, "winograd_conv", lambda: winograd)
    monkeypatch.setattr(conv_relu, "WINOGRAD_MIN_POSITIONS", min_positions)
    def counting(x, weight, bias):
        calls.append(tuple(x.shape))
        return _NNPACK_CONV(x, weight, bias)

    monkeypatch.setattr(conv_relu, "_winograd", counting)
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2"]
    torch.manual_seed(3)
    x = (torch.rand(1, 3, 40, 56) * 255 - 120).requires_grad_(True)
    net = VGG19Features("relu4_2", fused=True)
    feats = net(x, layers)
    sum((feats[n] ** 2).mean() for n in layers).backward()
    return {n: f.detach() for n, f in feats.items()}, x.grad


@needs_nnpack
def test_winograd_network_gives_the_direct_networks_features_and_gradients(monkeypatch):
    direct_calls: list[tuple] = []
    f0, g0 = _features_and_gradient(False, monkeypatch, direct_calls)
    wino_calls: list[tuple] = []
    f1, g1 = _features_and_gradient(True, monkeypatch, wino_calls)
    assert direct_calls == []
    # relu1_1 ... relu4_2 is 10 conv+ReLU layers: each runs forward and adjoint on NNPACK
    assert len(wino_calls) == 20
    assert (1, 3, 40, 56) in wino_calls and (1, 512, 5, 7) in wino_calls
    for name, f in f0.items():
        scale = float(f.abs().max())
        assert scale > 0
        assert float((f - f1[name]).abs().max()) < 1e-4 * scale, name
    assert float((g0 - g1).norm() / g0.norm()) < 1e-4
    assert not torch.equal(g0, g1)  # really a different algorithm, not the same kernel


@needs_nnpack
def test_small_maps_keep_the_direct_convolutions(monkeypatch):
    # 40x56 = 2,240 positions: NNPACK; after the first pooling (20x28 = 560) and deeper:
    # direct, where NNPACK's per-call kernel transform costs more than it saves
    assert 560 < conv_relu.WINOGRAD_MIN_POSITIONS <= 2240
    calls: list[tuple] = []
    f1, g1 = _features_and_gradient(True, monkeypatch, calls,
                                    min_positions=conv_relu.WINOGRAD_MIN_POSITIONS)
    # conv1_1 and conv1_2, forward and adjoint
    assert sorted(calls) == sorted([(1, 3, 40, 56), (1, 64, 40, 56), (1, 64, 40, 56),
                                    (1, 64, 40, 56)])
    f0, g0 = _features_and_gradient(False, monkeypatch, [])
    # a rounding difference can flip a ReLU or a max-pooling choice at a near-tie, which
    # moves a few gradient values (measured 7e-4 here; all-NNPACK networks: 7e-5 to 7e-4)
    assert float((g0 - g1).norm() / g0.norm()) < 2e-3
    for name, f in f0.items():
        assert float((f - f1[name]).abs().max()) < 1e-4 * float(f.abs().max()), name


def test_winograd_leaves_bf16_and_channels_last_maps_alone(monkeypatch):
    monkeypatch.setattr(conv_relu, "winograd_conv", lambda: True)
    monkeypatch.setattr(conv_relu, "WINOGRAD_MIN_POSITIONS", 36)
    x = torch.zeros(1, 8, 6, 6)
    assert conv_relu._winograd_applies(x)
    assert not conv_relu._winograd_applies(torch.zeros(1, 8, 5, 6))  # under the minimum
    assert not conv_relu._winograd_applies(x.to(torch.bfloat16))
    assert not conv_relu._winograd_applies(torch.zeros(1, 8, 6, 6).contiguous(
        memory_format=torch.channels_last))
    monkeypatch.setattr(conv_relu, "winograd_conv", lambda: False)
    assert not conv_relu._winograd_applies(x)
