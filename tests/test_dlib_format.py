"""The dlib serialisation reader on small synthetic byte strings (no shared data needed)."""

import math

import numpy as np
import pytest

from desktop.face.dlib_format import (
    DlibFormatError,
    DlibReader,
    encode_float,
    encode_int,
    encode_string,
    encode_tensor,
)


@pytest.mark.parametrize("value", [0, 1, 2, 127, 255, 256, 65535, 2**31, 2**63 - 1])
def test_ints_round_trip_and_use_the_smallest_width(value):
    raw = encode_int(value)
    assert raw[0] & 0x0F == len(raw) - 1
    assert DlibReader(raw).int() == value
    assert DlibReader(encode_int(-value)).int() == -value


def test_known_int_bytes():
    # control byte: low 4 bits = byte count, 0x80 = negative; then little-endian bytes
    assert DlibReader(b"\x02\x34\x12").int() == 0x1234
    assert DlibReader(b"\x81\x05").int() == -5
    r = DlibReader(b"\x01\x07\x01\x08")
    assert (r.int(), r.int(), r.at_end()) == (7, 8, True)


def test_unsigned_refuses_negative_and_bad_control_bytes():
    with pytest.raises(DlibFormatError, match="negative"):
        DlibReader(b"\x81\x05").uint()
    with pytest.raises(DlibFormatError, match="control byte"):
        DlibReader(b"\x00").int()
    with pytest.raises(DlibFormatError, match="control byte"):
        DlibReader(b"\x09" + b"\x00" * 9).int()


def test_floats_are_mantissa_times_two_to_the_exponent():
    # 0.6 as dlib writes it: mantissa 0x99999a, exponent -24
    raw = b"\x03\x9a\x99\x99\x81\x18"
    assert DlibReader(raw).float() == pytest.approx(0.6, rel=1e-7)
    for value in (0.0, 1.0, -2.5, 122.782, 1e-30, -3.25e12):
        assert DlibReader(encode_float(value)).float() == value
    assert DlibReader(encode_float(math.inf)).float() == math.inf
    assert DlibReader(encode_float(-math.inf)).float() == -math.inf
    assert math.isnan(DlibReader(encode_float(math.nan)).float())


def test_strings_bools_and_vectors():
    r = DlibReader(encode_string("con_4") + b"1" + b"0" + encode_int(3) + b"\x01\x01" * 3)
    assert r.string() == "con_4"
    assert r.bool() is True and r.bool() is False
    assert r.vector(r.int) == [1, 1, 1]
    with pytest.raises(DlibFormatError, match="found 'relu_'"):
        DlibReader(encode_string("relu_")).expect_string("con_4", "fc_2")
    with pytest.raises(DlibFormatError, match="neither"):
        DlibReader(b"x").bool()


def test_tensor_layout_is_version_shape_then_raw_float32():
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7
    raw = encode_tensor(values)
    assert raw[:2] == b"\x01\x02"  # version 2
    out = DlibReader(raw).tensor()
    assert out.shape == (2, 3, 2, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, values)
    with pytest.raises(DlibFormatError, match="tensor version"):
        DlibReader(encode_int(3) + raw[2:]).tensor()


def test_matrix_accepts_both_sign_conventions():
    body = b"".join(encode_float(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0))
    new = DlibReader(encode_int(-2) + encode_int(-3) + body).matrix()
    old = DlibReader(encode_int(2) + encode_int(3) + body).matrix()
    np.testing.assert_array_equal(new, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("cut", [1, 5, 20, 40])
def test_truncation_names_the_source_and_the_offset(cut):
    raw = encode_string("loss_metric_2") + encode_tensor(np.ones((1, 2, 2, 2)))
    with pytest.raises(DlibFormatError) as info:
        r = DlibReader(raw[:-cut], source="model.dat")
        r.string()
        r.tensor()
    assert "model.dat" in info.value.message and "byte" in info.value.message


def test_bytes_alias_tensors_and_peeking():
    from desktop.face.dlib_format import encode_alias_tensor

    r = DlibReader(b"\x07" + encode_alias_tensor((1, 32, 1, 1)) + encode_string("input_x"))
    assert r.byte() == 7
    assert r.alias_tensor() == (1, 32, 1, 1)
    start = r.pos
    assert r.peek_string() == "input_x" and r.pos == start  # nothing consumed
    assert r.string() == "input_x" and r.at_end()
    assert r.peek_string() is None  # at the end
    assert DlibReader(encode_int(2) + encode_int(1)).peek_string() is None  # not a string
    assert DlibReader(encode_int(300) + b"x" * 300).peek_string(max_length=256) is None
    with pytest.raises(DlibFormatError, match="alias_tensor version"):
        DlibReader(encode_int(2) + b"\x01\x01" * 4).alias_tensor()
