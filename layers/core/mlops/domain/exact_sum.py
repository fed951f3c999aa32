"""Exact sums of float64 values: what a numeric sketch keeps so that its mean does not depend
on how traffic was batched, and how such a sum is written and read back.

Every finite float64 is ``m * 2**(e - 53)`` with frexp's exponent ``e >= -1073`` and
``|m| < 2**53``, so scaling by ``2**SCALE_BITS`` makes each value, and any sum of them, an exact
Python integer. In a document the integer is a hexadecimal float (``0x1b3p-2``): JSON numbers
are doubles, and the exact sum may need more bits.

Reading is bounded: a sum of at most ``2**53 - 1`` finite values is below ``2**(53 + 1024)``,
so its scaled integer has at most ``MAX_BITS`` bits. A document claiming more (``0x1p+2000000000``
would allocate gigabytes) is refused before any integer is built.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

SCALE_BITS = 1126
MAX_BITS = 53 + 1024 + SCALE_BITS  # 2203: the scaled sum of 2**53 - 1 values below 2**1024
_LOW_BITS = 26  # mantissas are summed as two halves, exact in float64 for up to 2**26 rows
_CHUNK = 1 << 24
_HEX_DIGITS = -(-MAX_BITS // 4)  # 551: a longer mantissa is beyond MAX_BITS whatever it says
_HEX_SUM = re.compile(rf"(-?)0x([0-9a-f]{{1,{_HEX_DIGITS}}})p([+-]\d{{1,6}})")


def exact_sum(finite: npt.NDArray[np.float64]) -> int:
    """``sum(finite) * 2**SCALE_BITS`` exactly, vectorised.

    Each value is ``m * 2**(e - 53)`` (``np.frexp``); mantissas are split into 27 high and 26
    low bits, whose per-exponent sums stay below 2**53 and so are exact in float64's
    ``bincount``. Python integers then add the few per-exponent totals exactly.
    """
    total = 0
    for start in range(0, finite.size, _CHUNK):
        mantissa, exponent = np.frexp(finite[start : start + _CHUNK])
        m = np.ldexp(mantissa, 53).astype(np.int64)
        lowest = int(exponent.min())
        index = exponent - lowest
        high = np.bincount(index, weights=(m >> _LOW_BITS).astype(np.float64))
        low = np.bincount(index, weights=(m & ((1 << _LOW_BITS) - 1)).astype(np.float64))
        for offset in np.flatnonzero((high != 0) | (low != 0)):
            exact = (int(high[offset]) << _LOW_BITS) + int(low[offset])
            total += exact << (int(offset) + lowest - 53 + SCALE_BITS)
    return total


def scaled(value: float) -> int:
    """One finite float times ``2**SCALE_BITS``, exactly (its denominator is a power of 2)."""
    numerator, denominator = float(value).as_integer_ratio()
    return numerator << (SCALE_BITS - (denominator.bit_length() - 1))


def to_float(exact: int, divisor: int) -> float:
    """``exact / (divisor * 2**SCALE_BITS)``, correctly rounded (int / int is, in Python)."""
    try:
        return exact / (divisor << SCALE_BITS)
    except OverflowError:
        return float("inf") if exact > 0 else float("-inf")


def to_hex(exact: int) -> str:
    """An exact sum as a hexadecimal float (``float.fromhex`` reads it, rounding)."""
    if exact == 0:
        return "0x0p+0"
    shift = (exact & -exact).bit_length() - 1  # trailing zero bits
    sign = "-" if exact < 0 else ""
    return f"{sign}0x{abs(exact) >> shift:x}p{shift - SCALE_BITS:+d}"


def from_hex(text: Any) -> int:
    """The exact sum a document's hexadecimal float stands for; ``ValueError`` for anything
    else, or for a sum of more than ``MAX_BITS`` bits (checked before shifting)."""
    match = _HEX_SUM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"sum {str(text)[:80]!r} is not an exact hexadecimal sum")
    mantissa, shift = int(match[2], 16), int(match[3]) + SCALE_BITS
    if shift < 0:
        raise ValueError(f"sum {text!r} is finer than any float64")
    if mantissa and mantissa.bit_length() + shift > MAX_BITS:
        raise ValueError(f"sum {text[:80]!r} has more than {MAX_BITS} bits: beyond any float64 sum")
    exact = mantissa << shift
    return -exact if match[1] else exact
