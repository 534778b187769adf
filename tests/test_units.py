"""Parsing of parameter counts and FLOP budgets (property tests + named forms)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaling.errors import ScalingError
from scaling.units import format_quantity, parse_flops, parse_params


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e13", 1e13), ("1.5e12", 1.5e12), ("2T", 2e12), ("2TFLOP", 2e12), ("500G", 5e11),
     ("2 tflops", 2e12), (3e9, 3e9)],
)
def test_flops_forms(text, expected):
    assert parse_flops(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("text", "expected"),
                         [("0.5B", 5e8), ("500M", 5e8), (5e8, 5e8), ("7b", 7e9), ("1.8B", 1.8e9)])
def test_param_forms(text, expected):
    assert parse_params(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("bad", ["", "abc", "2X", "-1", "0", "nan", "inf", "1e13 apples", True])
def test_bad_flops_raise_scaling_error(bad):
    with pytest.raises(ScalingError, match="--flops"):
        parse_flops(bad)


def test_params_reject_flop_unit():
    with pytest.raises(ScalingError, match="0.5B"):
        parse_params("2TFLOP")


@given(st.text(max_size=20))
def test_parse_never_raises_anything_but_scaling_error(text):
    try:
        value = parse_flops(text)
    except ScalingError:
        return
    assert math.isfinite(value) and value > 0


@given(st.floats(min_value=1e-3, max_value=1e20, allow_nan=False))
def test_format_roundtrip_is_close(value):
    number, _, suffix = format_quantity(value).partition(" ")
    assert parse_flops(number + suffix) == pytest.approx(value, rel=5e-3)
