"""Model version numbers: parsed once, canonically, wherever a version enters the system.

A version is a positive decimal integer written in ASCII digits without sign, spaces or
leading zeros ("3", never "03", " 3", "+3" or "٣"). Anything else is refused rather than
normalised, so an alias can only ever hold a string that names an existing S3 prefix.
"""

from __future__ import annotations

import re

from mlops.errors import InvalidInputError, Problem

_CANONICAL = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)


def parse_version(raw: object, field: str = "version") -> str:
    """``raw`` as a canonical version string, or ``InvalidInputError`` naming ``field``."""
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if isinstance(text, str) and _CANONICAL.fullmatch(text):
        return text
    shown = repr(raw) if not isinstance(raw, str) or len(raw) <= 40 else repr(raw[:37] + "...")
    raise InvalidInputError(
        f"{shown} is not a version number",
        [
            Problem(
                field, f"expected a version number like 3 (digits, no leading zero), got {shown}"
            )
        ],
    )
