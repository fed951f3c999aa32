"""The one place text enters HTML and SVG markup: escaped, with invisible characters shown.

Report text is user data (feature and category names come from whoever trained the model), so
every string a page shows goes through ``escape``; markup is only ever built around its result.
Control and format characters, the bidirectional overrides among them, are shown as their code
points (``[U+202E]``): they could otherwise reorder or hide what a person reads.
"""

from __future__ import annotations

import html
import re

# Every C0/C1 control, every Unicode format character (Cf: bidirectional embeddings, overrides,
# isolates and marks, zero-width spaces, the BOM, tag characters) except the zero-width
# (non-)joiners that Persian, Indic scripts and emoji sequences need, and lone surrogates
# (a JSON "\ud800" decodes to one, and it cannot even be encoded as UTF-8).
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\ufff9-\ufffb\ud800-\udfff\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)


def _visible(text: str) -> str:
    """``text`` with each control or format character shown as its code point."""
    return _INVISIBLE.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)


def escape(value: object) -> str:
    """``value`` as markup text: escaped (quotes too, so it is safe in attributes), controls
    made visible; None as nothing."""
    return html.escape(_visible("" if value is None else str(value)), quote=True)
