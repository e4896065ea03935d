"""The conv-shape panel's arithmetic equals what torch's Conv1d/2d/3d give."""

from __future__ import annotations

import pytest

from desktop.errors import FacestyleError
from desktop.explore.conv_shapes import (
    EXAMPLES,
    ConvSpec,
    conv_shape,
    output_size,
    torch_output_shape,
    window,
)

CASES = [
    # dims, input size, channels, filter, stride, padding, filters
    (1, 14, 1, 5, 1, 0, 16),  # the course's ECG example: 14 x 1, 5 x 1 filter -> 10
    (1, 100, 2, 7, 3, 2, 4),
    (1, 9, 1, 9, 1, 0, 1),  # filter as long as the signal: one output
    (2, 6, 3, 3, 1, 0, 2),
    (2, 7, 1, 3, 2, 0, 1),
    (2, (39, 27), 3, (3, 5), (2, 1), (1, 2), 10),
    (2, 32, 3, 5, 1, 2, 8),  # 'same'
    (2, 8, 4, 3, 3, 1, 5),  # stride that does not divide evenly: floor
    (3, 14, 1, 5, 1, 0, 16),  # the course's 3D example: 14 x 14 x 14 -> 10 x 10 x 10
    (3, (16, 20, 24), 3, (3, 5, 5), (1, 2, 2), (1, 2, 0), 6),
    (3, (5, 9, 9), 2, 3, 2, 1, 3),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(CASES)])
def test_output_shape_equals_torch(case):
    spec = ConvSpec.make(*case)
    shape = conv_shape(spec)
    got, ran = torch_output_shape(spec)
    assert ran  # small enough to run for real
    assert got == shape.output_shape
    assert len(shape.formula_lines()) == spec.dims


def test_the_course_examples():
    ecg = conv_shape(ConvSpec.make(1, 14, 1, 5, 1, 0, 16))
    assert ecg.output_shape == (16, 10)
    assert ecg.parameters == (5 * 1 + 1) * 16
    ct = conv_shape(ConvSpec.make(3, 14, 1, 5, 1, 0, 16))
    assert ct.output == (10, 10, 10) and ct.parameters == (125 + 1) * 16
    assert output_size(7, 3, 2, 0) == 3 and output_size(6, 3, 1, 1) == 6
    assert conv_shape(ConvSpec.make(2, 6, 3, 3)).formula_lines() == [
        "height: floor((6 + 2·0 - 3) / 1) + 1 = 4", "width: floor((6 + 2·0 - 3) / 1) + 1 = 4"]
    for spec in EXAMPLES.values():
        assert torch_output_shape(spec)[0] == conv_shape(spec).output_shape


def test_a_large_layer_is_checked_on_the_meta_device():
    spec = ConvSpec.make(3, (64, 224, 224), 64, 3, 1, 1, 64)
    got, ran = torch_output_shape(spec)
    assert not ran and got == (64, 64, 224, 224) == conv_shape(spec).output_shape


def test_impossible_layers_are_refused_in_words():
    with pytest.raises(FacestyleError, match="larger than the padded input"):
        conv_shape(ConvSpec.make(2, 3, 1, 5))
    with pytest.raises(FacestyleError, match="at least 1"):
        conv_shape(ConvSpec.make(1, 10, 1, 3, 0))
    with pytest.raises(FacestyleError, match="1 or 2 values"):
        ConvSpec.make(2, (3, 4, 5))
    with pytest.raises(FacestyleError):
        ConvSpec.make(4, 3)


def test_window_says_which_inputs_one_output_sees():
    spec = ConvSpec.make(2, 7, 1, 3, 2, 1)
    assert window(spec, (0, 0)) == ((-1, 1), (-1, 1))  # hangs over the padding
    assert window(spec, (2, 3)) == ((3, 5), (5, 7))
