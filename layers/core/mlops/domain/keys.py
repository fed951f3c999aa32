"""S3 object keys that hold a name we do not choose (a user's file name), within S3's limits.

S3 refuses a key over 1,024 bytes of UTF-8 (``KeyTooLongError``) and moto accepts it, so a
long upload name would pass every local test and fail on AWS alone, as a crash and a retry
instead of a report. Every key built from such a name goes through ``bounded_key``.
"""

from __future__ import annotations

import hashlib
import re

from mlops.domain.layout import DATASETS

MAX_KEY_BYTES = 1024  # S3's limit, in bytes of UTF-8
DIGEST_CHARS = 16  # 64 bits of sha256: distinct names get distinct keys
# Model names are key segments (models/<model>/, staging/<model>/...): the template's
# ModelName AllowedPattern, so a config the stack could never serve is refused early.
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
# Control characters (C0, DEL, C1) and lone surrogates (a non-UTF-8 file name decoded with
# surrogateescape: not encodable, so S3 could not even be asked); "/" would split one name
# into "folders" (a listing by Delimiter, the console and `aws s3 cp --recursive` see levels).
_AWKWARD = re.compile(r"[/\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def bounded_key(prefix: str, name: str, suffix: str = "") -> str:
    """``prefix + name + suffix`` within ``MAX_KEY_BYTES``; ``name`` is the user's, the rest ours.

    A name that is clean and fits is kept as it is. Otherwise it becomes a readable head (the
    awkward characters above replaced by ``_``, ``.`` and ``..`` by underscores, cut on a
    character boundary) followed by ``-`` and a digest of the whole original name, so two names
    that differ only past the cut, or only in a replaced character, still get two keys.
    """
    clean = _AWKWARD.sub("_", name)
    if clean in ("", ".", ".."):  # a path segment that means "here" or "up" to file tools
        clean = "_" * max(len(clean), 1)
    key = prefix + clean + suffix
    if clean == name and _utf8_len(key) <= MAX_KEY_BYTES:
        return key
    tag = "-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]
    room = MAX_KEY_BYTES - _utf8_len(prefix + suffix + tag)
    if room < 0:
        raise ValueError(f"no room for a name in a key {prefix!r} ... {suffix!r}")
    head = clean.encode()[:room].decode("utf-8", "ignore")  # drops a character cut in two
    return prefix + head + tag + suffix


def dataset_key(sha256: str, file_name: str) -> str:
    """``datasets/<sha256>/<file name>``: accepted training data, kept immutable for lineage."""
    return bounded_key(f"{DATASETS}{sha256}/", file_name)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
