"""Prediction ids (UUIDv7 text) and request bodies: the hot path's two shortcuts keep their
contracts (time-ordered valid UUIDs; long integer literals still read as before)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from mlops.domain.ids import uuid7_ms, uuid7s
from mlops.http import read_json_body

MS = 1_765_000_000_123


def test_ids_are_rfc9562_version_7_carrying_their_millisecond() -> None:
    ids = uuid7s(MS, 2000)
    parsed = [uuid.UUID(text) for text in ids]
    # canonical lowercase 8-4-4-4-12 text, as str(uuid.UUID) writes it
    assert ids == [str(u) for u in parsed]
    assert {u.version for u in parsed} == {7}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert {uuid7_ms(text) for text in ids} == {MS}
    assert len(set(ids)) == len(ids)


def test_every_random_bit_varies() -> None:
    # 74 random bits: rand_a (12), the bit after the variant, rand_b's 61 others. Over 2,000
    # ids a stuck bit would show as a column of equal values.
    values = [uuid.UUID(text).int for text in uuid7s(MS, 2000)]
    random_bits = [*range(64, 76), *range(0, 62)]
    for bit in random_bits:
        seen = {(v >> bit) & 1 for v in values}
        assert seen == {0, 1}, f"bit {bit} never changes"


def test_the_millisecond_is_kept_to_48_bits() -> None:
    assert uuid7_ms(uuid7s(0, 1)[0]) == 0
    assert uuid7_ms(uuid7s(2**48 - 1, 1)[0]) == 2**48 - 1


def body_event(text: str) -> APIGatewayProxyEventV2:
    return APIGatewayProxyEventV2(
        {
            "body": base64.b64encode(text.encode()).decode(),
            "isBase64Encoded": True,
            "headers": {"content-type": "application/json"},
        }
    )


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("12345678901234567890", 12345678901234567890),  # 20 digits: an int, exactly
        ("123456789012345678901", 1.2345678901234568e20),  # 21 digits: read as a float
        ("1" + "0" * 400, float("inf")),  # past float64: inf, refused later by its field
        ("1" + "0" * 5000, float("inf")),  # past Python's 4,300-digit int limit
    ],
)
def test_long_integer_literals_read_as_before(literal: str, expected: float) -> None:
    body = read_json_body(body_event(f'{{"instances": [{{"sqft": {literal}}}]}}'), 10**6)
    value = body["instances"][0]["sqft"]
    assert value == expected
    assert type(value) is type(expected)


def test_digits_inside_a_string_do_not_change_how_numbers_read() -> None:
    text = json.dumps({"request_id": "9" * 30, "instances": [{"beds": 3}]})
    body = read_json_body(body_event(text), 10**6)
    assert body == {"request_id": "9" * 30, "instances": [{"beds": 3}]}
