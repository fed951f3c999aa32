"""S3 keys that hold a user's name stay within S3's 1,024 UTF-8 bytes (moto would not tell)."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.domain.config_document import parse_config
from mlops.domain.keys import DIGEST_CHARS, MAX_KEY_BYTES, MODEL_NAME, bounded_key, dataset_key
from mlops.errors import ConfigError
from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT

SHA = "0" * 64
PREFIX = f"datasets/{SHA}/"  # 74 bytes
ROOM = MAX_KEY_BYTES - len(PREFIX)


def size(key: str) -> int:
    return len(key.encode())


def test_a_name_that_makes_the_key_exactly_1024_bytes_is_kept_as_it_is() -> None:
    name = "a" * (ROOM - 4) + ".csv"

    key = dataset_key(SHA, name)

    assert key == PREFIX + name
    assert size(key) == MAX_KEY_BYTES


def test_one_byte_more_keeps_a_readable_head_and_a_digest_within_the_limit() -> None:
    name = "a" * (ROOM - 4) + ".csvx"

    key = dataset_key(SHA, name)

    assert size(key) == MAX_KEY_BYTES
    head, _, digest = key.removeprefix(PREFIX).rpartition("-")
    assert name.startswith(head)
    assert len(head) == ROOM - 1 - DIGEST_CHARS
    assert len(digest) == DIGEST_CHARS


@pytest.mark.parametrize("char", ["é", "€", "😀"])  # 2, 3 and 4 bytes of UTF-8
def test_a_multibyte_character_is_never_cut_in_two(char: str) -> None:
    name = "x" + char * 600  # the cut falls inside a character for at least one offset

    key = dataset_key(SHA, name)

    head = key.removeprefix(PREFIX).rpartition("-")[0]
    assert size(key) <= MAX_KEY_BYTES
    assert size(key) > MAX_KEY_BYTES - len(char.encode())  # only the split character dropped
    assert head == name[: len(head)]
    assert "\ufffd" not in key


def test_two_long_names_that_differ_only_at_the_end_get_two_keys() -> None:
    first, second = "q" * 2000 + "-january.csv", "q" * 2000 + "-february.csv"

    one, other = dataset_key(SHA, first), dataset_key(SHA, second)

    assert one != other
    assert size(one) <= MAX_KEY_BYTES
    assert size(other) <= MAX_KEY_BYTES
    assert one.rpartition("-")[0] == other.rpartition("-")[0]  # the same readable head


def test_our_suffix_survives_the_cut() -> None:
    key = bounded_key("reports/retrain/20261129T010000Z-data-accepted-", "n" * 1000, "-1a2b.json")

    assert size(key) == MAX_KEY_BYTES
    assert key.startswith("reports/retrain/20261129T010000Z-data-accepted-nnn")
    assert key.endswith("-1a2b.json")


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("a/b.csv", "a_b.csv"),  # one name stays one level under its prefix
        ("line\nbreak\r.csv", "line_break_.csv"),
        ("bell\x07del\x7fc1\x85.csv", "bell_del_c1_.csv"),
        ("bad-\udcff.csv", "bad-_.csv"),  # a non-UTF-8 file name, as Python decodes it
        ("..", "__"),
        (".", "_"),
        ("", "_"),
    ],
)
def test_awkward_characters_are_replaced_and_the_original_digested(name: str, head: str) -> None:
    key = dataset_key(SHA, name)

    segment = key.removeprefix(PREFIX)
    assert segment.rpartition("-")[0] == head
    assert len(segment.rpartition("-")[2]) == DIGEST_CHARS
    key.encode()  # S3 can be asked for it: valid UTF-8


def test_names_that_differ_only_in_a_replaced_character_get_two_keys() -> None:
    assert dataset_key(SHA, "a/b.csv") != dataset_key(SHA, "a_b.csv")
    assert dataset_key(SHA, "a\nb.csv") != dataset_key(SHA, "a\rb.csv")


def test_a_key_with_no_room_for_a_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no room"):
        bounded_key("p" * 1020, "a name")


BASE: dict[str, Any] = {
    "task": "regression",
    "target": "y",
    "features": [{"name": "a", "type": "numeric"}],
}


@pytest.mark.parametrize("name", ["m", "House", "-prices", "a/b", "a_b", "x" * 64, "mé"])
def test_a_model_name_the_template_would_refuse_is_a_config_problem(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE | {"name": name})

    assert [p.field for p in caught.value.details] == ["name"]


@pytest.mark.parametrize("name", ["house-prices", "m2", "x" * 63])
def test_a_model_name_the_template_accepts_parses(name: str) -> None:
    assert parse_config(BASE | {"name": name}).name == name


def test_the_model_name_rule_is_the_templates_allowed_pattern() -> None:
    template = load_template(ROOT / "template.yaml")

    assert template["Parameters"]["ModelName"]["AllowedPattern"] == f"^{MODEL_NAME.pattern}$"
