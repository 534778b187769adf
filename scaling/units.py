"""Parsing of human-written quantities: parameter counts ("0.5B") and FLOPs ("2TFLOP").

Both accept a plain number (``5e8``, ``"1.5e12"``) or a number followed by an SI suffix
(K, M, G or B, T, P, E). ``B`` (billion) and ``G`` (giga) are the same factor 1e9.
FLOP strings may end in ``FLOP``/``FLOPs`` (a rate, ``FLOP/s``, is refused: budgets are FLOPs
per request). Numbers are read as decimals, so one size is one size: ``4.1B`` and ``4100M``
give the same float.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from scaling.errors import ScalingError

SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
#: Below this a plain parameter count (no unit) is ambiguous: 0.5, 7 or 70 mean billions.
MIN_PLAIN_PARAMS = 1e5

_QUANTITY = re.compile(
    r"^\s*(?P<num>[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)\s*(?P<suffix>[KMGBTPE]?)\s*"
    r"(?P<unit>FLOPS?|FLOP/S)?\s*$",
    re.IGNORECASE,
)


def parse_quantity(value: str | float | int, *, what: str = "value", unit: str = "") -> float:
    """Return ``value`` as a positive finite float, reading SI suffixes (``2T`` -> 2e12).

    ``unit`` is an optional trailing unit word that is accepted and ignored (``"FLOP"``).
    Raises :class:`ScalingError` naming ``what`` and the accepted forms.
    """
    if isinstance(value, bool):
        raise ScalingError(f"{what} must be a number such as 5e8 or 0.5B, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _QUANTITY.match(str(value))
        forms = "1e13, 2T, 500G, 2TFLOP" if unit.upper() == "FLOP" else "5e8, 500M, 0.5B"
        if match is None or (match["unit"] and unit.upper() != "FLOP"):
            raise ScalingError(f"{what} must look like {forms}; got {value!r}")
        if match["unit"] and match["unit"].upper() == "FLOP/S":
            raise ScalingError(f"{what} is FLOPs per request, not a rate: got {value!r}; "
                               f"write e.g. {forms}")
        try:
            number = float(Decimal(match["num"]) * Decimal(repr(SUFFIX[match["suffix"].upper()])))
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            raise ScalingError(f"{what} must look like {forms}; got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ScalingError(f"{what} must be a positive finite number, got {value!r}")
    return number


def parse_params(value: str | float | int, *, what: str = "llm_params") -> float:
    """Parameter count from ``5e8``, ``"500M"`` or ``"0.5B"``.

    A plain number (no unit) below 1e5 is refused when it cannot be a count of parameters:
    below 1,000 (``0.5``, ``7``, ``70`` mean billions) or not a whole number.
    """
    number = parse_quantity(value, what=what)
    plain = not isinstance(value, str) or not re.search(r"[KMGBTPE]\s*$", value.strip(), re.I)
    if plain and number < MIN_PLAIN_PARAMS and (number < 1e3 or number != int(number)):
        hint = (f"write the size with its unit, e.g. {value}B or {value}M" if number < 1e3
                else "a parameter count is a whole number; write it with a unit, e.g. 0.5B")
        raise ScalingError(f"{what} {value!r} has no unit and is too small to be a parameter "
                           f"count; {hint}")
    return number


def parse_range(value, default: tuple[float, float], *, what: str,
                parse) -> tuple[float, float]:
    """``"LOW:HIGH"`` (or a pair) -> floats through ``parse``; an empty or ``inf`` end is
    unbounded; ``None`` gives ``default``."""
    if value is None:
        return default
    if isinstance(value, str):
        parts = value.replace(",", ":").split(":")
        if len(parts) != 2:
            raise ScalingError(f"{what} must look like LOW:HIGH (e.g. 0.5B:72B or 1:576), "
                               f"got {value!r}")
        value = tuple(math.inf if p.strip().lower() in ("", "inf") else p for p in parts)
    lo, hi = (v if v == math.inf else parse(v) for v in value)
    if not lo <= hi:
        raise ScalingError(f"{what} must have LOW <= HIGH, got {lo:g} > {hi:g}")
    return float(lo), float(hi)


def parse_flops(value: str | float | int, *, what: str = "--flops") -> float:
    """FLOPs from ``1e13``, ``"2T"``, ``"500G"`` or ``"2TFLOP"``."""
    return parse_quantity(value, what=what, unit="FLOP")


def format_quantity(value: float, *, unit: str = "") -> str:
    """Short human form: 1.23e13 -> '12.3 T' (+unit)."""
    for suffix, factor in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6),
                           ("K", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {suffix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def format_params(value: float) -> str:
    """A parameter count as model names write it: 7e9 -> '7B', 5e8 -> '500M', 3.6e5 -> '360K'."""
    for suffix, factor in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"
