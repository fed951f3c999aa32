"""Prediction ids: UUIDv7 (RFC 9562), time-ordered, so a label names its prediction's hour.

The first 48 bits are the prediction's Unix time in milliseconds (the capture's ``ts``), then
the version (7), 74 random bits and the variant. A label for an id is therefore joined by
reading the capture partition of that hour alone, never a window of them (DESIGN §5, cost
model). The random bits still make ids unguessable (74 bits from ``os.urandom``).
"""

from __future__ import annotations

import os
import uuid

_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1


def uuid7s(ms: int, count: int) -> list[str]:
    """``count`` UUIDv7 strings for the millisecond ``ms`` (one ``urandom`` call)."""
    pool = os.urandom(10 * count)
    head = (ms & _MS_MASK) << 80 | 0x7 << 76
    out = []
    for i in range(count):
        bits = int.from_bytes(pool[10 * i : 10 * i + 10], "big")
        value = head | (bits >> 68) << 64 | 0b10 << 62 | (bits & _RAND_B_MASK)
        out.append(str(uuid.UUID(int=value)))
    return out


def uuid7_ms(text: object) -> int | None:
    """The millisecond a UUIDv7 string was made, or None for anything else (a UUIDv4 from
    before time-ordered ids, or a client's made-up id)."""
    if not isinstance(text, str) or len(text) != 36:
        return None
    try:
        value = uuid.UUID(text)
    except ValueError:
        return None
    if value.version != 7 or value.variant != uuid.RFC_4122:
        return None
    return value.int >> 80
