"""The dlib network reader on small synthetic network files (no shared data needed), and
on the real model files from face_recognition_models."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.errors import ModelFileError
from desktop.face import dlib_nets
from desktop.face.dlib_format import (
    DlibFormatError,
    encode_alias_tensor,
    encode_bool,
    encode_float,
    encode_int,
    encode_string,
    encode_tensor,
)
from desktop.face.dlib_nets import (
    DETECTOR_DEFINITION,
    ENCODER_DEFINITION,
    add_prev,
    avg_pool_everything,
    con,
    expected_nesting,
    fc_no_bias,
    input_layer,
    load_network,
    pair,
    parse_network,
    relu,
    tag,
)

# A tiny network in dlib's own style: fc_no_bias<3, avg_pool_everything<relu<add_prev1<
#   con<2,3,3,1,1, tag1<relu<con<2,3,3,1,1, input_rgb_image_sized<4>>>>>>>>>>
TINY = fc_no_bias(3, avg_pool_everything(relu(add_prev(1, con(2, 3, 3, 1, 1, tag(1, relu(
    con(2, 3, 3, 1, 1, input_layer("input_rgb_image_sized<4>")))))))))


def _multipliers() -> bytes:
    return b"".join(encode_float(v) for v in (1.0, 1.0, 1.0, 0.0))


def con_bytes(weight: np.ndarray, bias: np.ndarray, stride=1, padding=1, version="con_4") -> bytes:
    n, k, nr, nc = weight.shape
    params = np.concatenate([weight.ravel(), bias.ravel()]).reshape(-1, 1, 1, 1)
    out = encode_string(version) + encode_tensor(params)
    out += b"".join(encode_int(v) for v in (n, nr, nc, stride, stride, padding, padding))
    out += encode_alias_tensor((n, k, nr, nc)) + encode_alias_tensor((1, n, 1, 1))
    out += _multipliers()
    if version in ("con_5", "con_6"):
        out += encode_bool(True)
    if version == "con_6":
        out += encode_bool(False)
    return out


def relu_bytes() -> bytes:
    return encode_string("relu_2") + encode_bool(False)


def pool_bytes(nr: int, nc: int, stride: int, padding: int) -> bytes:
    return encode_string("avg_pool_2") + b"".join(
        encode_int(v) for v in (nr, nc, stride, stride, padding, padding))


def fc_bytes(weight_in_out: np.ndarray) -> bytes:
    n_in, n_out = weight_in_out.shape
    out = encode_string("fc_2") + encode_int(n_out) + encode_int(n_in)
    out += encode_tensor(weight_in_out.reshape(-1, 1, 1, 1))
    out += encode_alias_tensor((n_in, n_out, 1, 1)) + encode_alias_tensor((1, n_out, 1, 1))
    out += encode_int(1) + _multipliers()  # FC_NO_BIAS
    return out


def bookkeeping(on_input: bool = False) -> bytes:
    empty = encode_tensor(np.zeros((0, 0, 0, 0), np.float32))
    out = encode_bool(True) + encode_bool(False) + encode_bool(False) + empty * 3
    return out + (encode_int(1) if on_input else b"")


def tiny_network_bytes(rng: np.random.Generator, con_version: str = "con_4") -> tuple[bytes, dict]:
    w1 = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal(2).astype(np.float32)
    w2 = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    b2 = rng.standard_normal(2).astype(np.float32)
    fc = rng.standard_normal((2, 3)).astype(np.float32)
    raw = encode_int(1) + encode_string("loss_metric_2") + encode_float(0.04) + encode_float(0.6)
    raw += b"".join(encode_int(v) for v in expected_nesting(TINY))
    raw += encode_string("input_rgb_image_sized")
    raw += b"".join(encode_float(m) for m in (122.782, 117.001, 104.298))
    raw += encode_int(4) + encode_int(4)
    raw += con_bytes(w1, b1, version=con_version) + bookkeeping(on_input=True)
    raw += relu_bytes() + bookkeeping()
    raw += con_bytes(w2, b2, version=con_version) + bookkeeping()
    raw += encode_string("add_prev_") + bookkeeping()
    raw += relu_bytes() + bookkeeping()
    raw += pool_bytes(0, 0, 1, 0) + bookkeeping()
    raw += fc_bytes(fc) + bookkeeping()
    return raw, {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "fc": fc}


@pytest.mark.parametrize("con_version", ["con_4", "con_5", "con_6"])
def test_tiny_network_parses_into_torch_layouts(con_version):
    raw, truth = tiny_network_bytes(np.random.default_rng(0), con_version)
    net = parse_network(raw, "tiny.dat")
    assert net.loss == pytest.approx({"name": "loss_metric_2", "margin": 0.04,
                                      "distance_threshold": 0.6})
    assert net.input["name"] == "input_rgb_image_sized" and net.input["size"] == (4, 4)
    assert net.input["mean"] == pytest.approx((122.782, 117.001, 104.298))
    assert [layer.kind for layer in net.layers] == [
        "con", "relu", "con", "add_prev", "relu", "avg_pool", "fc"]
    con1 = net.layers[0]
    assert con1.fields["stride"] == (1, 1) and con1.fields["padding"] == (1, 1)
    np.testing.assert_array_equal(con1.arrays["weight"], truth["w1"])
    np.testing.assert_array_equal(con1.arrays["bias"], truth["b1"])
    np.testing.assert_array_equal(net.layers[2].arrays["weight"], truth["w2"])
    # dlib's fc weight is (in, out) for x @ W; torch's Linear wants (out, in)
    np.testing.assert_array_equal(net.layers[-1].arrays["weight"], truth["fc"].T)
    assert [layer.kind for layer in net.parametrised()] == ["con", "con", "fc"]
    assert pair(net, TINY, "loss_metric", "input_rgb_image_sized") is net


def test_pairing_catches_a_different_network():
    raw, _ = tiny_network_bytes(np.random.default_rng(1))
    net = parse_network(raw, "tiny.dat")
    with pytest.raises(DlibFormatError, match=r"tiny\.dat.*nesting"):
        pair(net, ENCODER_DEFINITION, "loss_metric", "input_rgb_image_sized")
    with pytest.raises(DlibFormatError, match="loss layer is loss_metric_2, expected loss_mmod"):
        pair(net, TINY, "loss_mmod", "input_rgb_image_sized")
    other = fc_no_bias(3, avg_pool_everything(relu(add_prev(1, con(2, 3, 3, 1, 1, tag(1, relu(
        con(5, 3, 3, 1, 1, input_layer("x")))))))))
    with pytest.raises(DlibFormatError, match=r"layer 0 .* expected num_filters=5"):
        pair(net, other, "loss_metric", "input_rgb_image_sized")


@pytest.mark.parametrize("cut", [1, 7, 100, 250])
def test_truncated_network_names_the_file(cut):
    raw, _ = tiny_network_bytes(np.random.default_rng(2))
    with pytest.raises(DlibFormatError) as info:
        parse_network(raw[:-cut], "tiny.dat")
    assert "tiny.dat" in info.value.message and "byte" in info.value.message


def test_unknown_layer_and_foreign_bytes_are_refused():
    raw, _ = tiny_network_bytes(np.random.default_rng(3))
    with pytest.raises(DlibFormatError, match="found 'con_9'"):
        parse_network(raw.replace(b"con_4", b"con_9"), "tiny.dat")
    with pytest.raises(DlibFormatError, match="loss layer version"):
        parse_network(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "photo.png")
    with pytest.raises(DlibFormatError):
        parse_network(b"", "empty.dat")


def test_nesting_rule():
    # tag/skip write version 1, add_layer 2, the layer on the input 3
    assert expected_nesting(TINY) == [2, 2, 2, 2, 2, 1, 2, 3]
    assert expected_nesting(DETECTOR_DEFINITION) == [2] * 18 + [3]
    counts = {k: sum(op.kind == k for op in ENCODER_DEFINITION)
              for k in ("con", "affine", "relu", "add_prev", "avg_pool", "max_pool", "fc")}
    assert counts == {"con": 29, "affine": 29, "relu": 29, "add_prev": 14, "avg_pool": 5,
                      "max_pool": 1, "fc": 1}


def test_load_network_caches_and_rebuilds_a_corrupt_cache(tmp_path, monkeypatch):
    raw, truth = tiny_network_bytes(np.random.default_rng(4))
    path = tmp_path / "tiny.dat"
    path.write_bytes(raw)
    first = load_network(path, TINY, "loss_metric", "input_rgb_image_sized")
    cache = dlib_nets.cache_path(path, dlib_nets.file_sha256(path))
    assert cache.is_file()

    calls = []
    real_parse = dlib_nets.parse_network
    monkeypatch.setattr(dlib_nets, "parse_network",
                        lambda *a, **k: calls.append(1) or real_parse(*a, **k))
    second = load_network(path, TINY, "loss_metric", "input_rgb_image_sized")
    assert calls == []  # served from the cache
    np.testing.assert_array_equal(second.layers[0].arrays["weight"], truth["w1"])
    np.testing.assert_array_equal(second.layers[-1].arrays["weight"],
                                  first.layers[-1].arrays["weight"])

    cache.write_bytes(b"not a torch file")
    third = load_network(path, TINY, "loss_metric", "input_rgb_image_sized")
    assert calls == [1]  # parsed again
    np.testing.assert_array_equal(third.layers[2].arrays["bias"], truth["b2"])
    assert cache.stat().st_size > 100  # and rewritten

    # a changed file has a different hash, so a stale cache is never used
    raw2, truth2 = tiny_network_bytes(np.random.default_rng(5))
    path.write_bytes(raw2)
    fourth = load_network(path, TINY, "loss_metric", "input_rgb_image_sized")
    np.testing.assert_array_equal(fourth.layers[0].arrays["weight"], truth2["w1"])


def test_missing_and_truncated_files_name_file_package_and_fix(tmp_path):
    from desktop.model_files import FACE_ENCODER

    with pytest.raises(ModelFileError) as info:
        load_network(tmp_path / FACE_ENCODER, ENCODER_DEFINITION, "loss_metric", "input_")
    assert FACE_ENCODER in info.value.message
    assert "face_recognition_models" in info.value.hint and "pip install" in info.value.hint

    raw, _ = tiny_network_bytes(np.random.default_rng(6))
    bad = tmp_path / FACE_ENCODER
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError) as info:
        load_network(bad, TINY, "loss_metric", "input_rgb_image_sized")
    assert str(bad) in info.value.message and "truncated" in info.value.message
    assert "face_recognition_models" in info.value.hint


def test_real_model_files_pair_with_dlibs_example_definitions():
    from desktop.face.encoder import load_encoder_network
    from desktop.model_files import FACE_DETECTOR, FACE_ENCODER, require

    enc = load_encoder_network(require(FACE_ENCODER), use_cache=False)
    assert enc.loss["distance_threshold"] == pytest.approx(0.6)
    assert enc.loss["margin"] == pytest.approx(0.04)
    assert enc.input["size"] == (150, 150)
    assert enc.input["mean"] == pytest.approx((122.782, 117.001, 104.298))
    versions = [layer.version for layer in enc.layers]
    assert versions.count("con_4") == 29 and versions.count("add_prev_") == 14

    det = load_network(require(FACE_DETECTOR), DETECTOR_DEFINITION, "loss_mmod",
                       "input_rgb_image_pyramid", use_cache=False)
    assert det.loss["detector_windows"] == [(80, 80, "")]
    assert det.input["name"] == "input_rgb_image_pyramid"
    assert det.input["pyramid_padding"] == 10 and det.input["pyramid_outer_padding"] == 11
    assert [layer.kind for layer in det.parametrised()].count("affine") == 6
