"""Reports as strict JSON: no ``NaN`` or ``Infinity``, which Python writes by default.

``json.dumps`` writes ``NaN``/``Infinity`` literals that no JSON parser but Python's accepts
(browsers, ``jq``, Athena, CloudWatch's embedded metric format all refuse them). A statistic
that is undefined (a NaN p-value) or overflowed is written as ``null``, which every report
reader already treats as "not available".
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float, however deeply nested, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(doc: Any, *, indent: int | None = 2) -> str:
    """``doc`` as strict JSON (``allow_nan=False`` holds: non-finite floats are null); values
    JSON has no type for (datetimes) are written as their text."""
    return json.dumps(finite(doc), indent=indent, default=str, allow_nan=False)
