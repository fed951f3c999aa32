"""Property-based fuzzing of the inference handler: never a 500, always our error object.

Every input goes through the real ``lambda_handler`` (real HTTP API events, the real ONNX
model in moto), generated the way an attacker would write it: arbitrary JSON with huge and
non-finite numbers and lone surrogates, mutated requests and events, bytes that are not
UTF-8, nesting far deeper than any request, and events from other AWS services. Whatever
arrives, the answer is a JSON object with a status below 500: a prediction per instance, or
``{"error": {"code", "message"[, "details"]}}``. Runs derandomised, so CI is reproducible.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, http_event, load_event, predict_instance
from tests.integration.conftest import INFERENCE_ENV, Invoke, Served

HOUSE = predict_instance()
MAX_INSTANCES = int(INFERENCE_ENV["MAX_INSTANCES"])
MAX_BODY_BYTES = int(INFERENCE_ENV["MAX_BODY_BYTES"])
STATUS_OF_CODE = {
    "invalid_input": 400,
    "invalid_event": 400,
    "not_found": 404,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
}
FUZZ_DEFAULTS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(examples: int) -> settings:
    """Derandomised (reproducible in CI), no deadline (shared CI cores are slow)."""
    return settings(FUZZ_DEFAULTS, max_examples=examples)


@pytest.fixture(scope="module")
def invoke(served: Served) -> Invoke:
    """The real handler of the module's served model (Hypothesis prints just ``invoke``)."""
    return served.invoke


# --- what every answer must look like ------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"the response body holds {name}, which is not JSON")


def assert_our_answer(response: Any, *, rows: int | None = None, predict: bool = True) -> Any:
    """Assert the handler's answer keeps the contract and return its parsed body.

    ``rows``: how many predictions a 2xx must hold, when the request says so.
    ``predict``: a 2xx is a /predict answer (other routes are checked more loosely).
    """
    assert isinstance(response, dict), response
    json.dumps(response)  # the Lambda runtime serialises the result: it must be able to
    status = response["statusCode"]
    assert type(status) is int, status
    assert 200 <= status < 500, f"status {status}: {response.get('body')!r:.500}"
    if hypothesis.currently_in_test_context():
        hypothesis.event(f"status {status}")  # --hypothesis-show-statistics shows what was reached
    headers = {str(k).lower(): v for k, v in (response.get("headers") or {}).items()}
    assert headers.get("content-type") == "application/json", response.get("headers")
    assert not response.get("isBase64Encoded")
    text = response["body"]
    assert isinstance(text, str)
    text.encode("utf-8")  # API Gateway sends UTF-8: no lone surrogate may reach it
    assert "Traceback" not in text
    body = json.loads(text, parse_constant=_reject_constant)
    if status < 300:
        _assert_success(body, rows=rows, predict=predict)
    else:
        _assert_error(body, status)
    return body


def _assert_success(body: Any, *, rows: int | None, predict: bool) -> None:
    assert isinstance(body, dict)
    assert isinstance(body.get("model_version"), str)
    if not predict:
        return
    predictions, ids = body["predictions"], body["prediction_ids"]
    assert isinstance(predictions, list)
    assert isinstance(ids, list)
    assert len(predictions) == len(ids) == len(set(ids))
    assert all(isinstance(p, int | float) and math.isfinite(p) for p in predictions)
    assert all(isinstance(i, str) and i for i in ids)
    if rows is not None:
        assert len(predictions) == rows


def _assert_error(body: Any, status: int) -> None:
    assert isinstance(body, dict)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) in ({"code", "message"}, {"code", "message", "details"}), error
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert STATUS_OF_CODE.get(error["code"]) == status, (status, error)
    if "details" in error:
        assert isinstance(error["details"], list)
        for detail in error["details"]:
            assert isinstance(detail, dict)
            assert set(detail) == {"field", "problem"}, detail
            assert isinstance(detail["field"], str)
            assert isinstance(detail["problem"], str)


def error_code(response: dict[str, Any]) -> str:
    return str(json.loads(response["body"])["error"]["code"])


# --- hostile JSON ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawJson:
    """JSON text written verbatim: literals Python's json cannot write, like 5000-digit ints."""

    text: str

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 24 else f"{self.text[:12]}...<{len(self.text)}>"
        return f"RawJson({shown!r})"


def to_json(value: Any) -> str:
    """JSON text for ``value``, writing NaN/Infinity as the bare literals Python accepts,
    lone surrogates as ``\\ud800`` escapes and ``RawJson`` as is."""
    if isinstance(value, RawJson):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


SURROGATES = ["\ud800", "\udfff", "a\udc80b", "\ud83d"]


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Any text: every code point, and often lone surrogates, which break encoders.
    (``st.text`` alone almost never draws a surrogate, so they are mixed in as a list.)"""
    every = st.characters(codec=None, categories=None)
    return st.one_of(
        st.text(every, max_size=max_size),
        st.lists(st.one_of(every, st.sampled_from(SURROGATES)), max_size=max_size).map("".join),
    )


hostile_text = st.one_of(
    texts(30),
    st.sampled_from(
        [*SURROGATES, "", " ", "\x00", "\u2028", "\ufeff", "NaN", "riverside", "r" * 129]
    ),
)
HUGE_LITERALS = {
    "5000 nines": "9" * 5000,
    "minus 5000 ones": "-" + "1" * 5000,
    "10**4300": "1" + "0" * 4300,
    "1e400": "1e400",
    "-1E+999": "-1E+999",
    "1e-400": "1e-400",
    "-0": "-0",
}
huge_int_literals = st.sampled_from(sorted(HUGE_LITERALS)).map(lambda k: RawJson(HUGE_LITERALS[k]))
big_ints = st.tuples(
    st.sampled_from([1, -1]), st.sampled_from([10, 2]), st.sampled_from([400, 64])
).map(lambda t: t[0] * t[1] ** t[2])  # ±10**400 overflows float64; ±2**64 overflows int64
numbers = st.one_of(
    st.integers(),
    big_ints,
    st.floats(),  # nan and ±inf included: written as NaN / Infinity
    huge_int_literals,
)
scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def predict_event(payload: bytes, *, base64_body: bool, content_type: str | None = None) -> Any:
    """http_predict.json carrying ``payload``: base64 as API Gateway sends binary, or plain
    text (bytes that are not UTF-8 become lone surrogates, ``\udc80``..., so none is lost)."""
    event = copy.deepcopy(load_event("http_predict.json"))
    if base64_body:
        event["body"] = base64.b64encode(payload).decode()
    else:
        event["body"] = payload.decode("utf-8", errors="surrogateescape")
    event["isBase64Encoded"] = base64_body
    if content_type is None:
        del event["headers"]["content-type"]
    else:
        event["headers"]["content-type"] = content_type
    return event


def encode(text: str) -> bytes:
    # A lone surrogate becomes the invalid UTF-8 a careless client would write (CESU-8).
    return text.encode("utf-8", errors="surrogatepass")


# --- 1. /predict bodies -----------------------------------------------------------------------


@fuzz(120)
@given(value=json_values, base64_body=st.booleans())
def test_any_json_body_gets_our_answer(invoke: Invoke, value: Any, base64_body: bool) -> None:
    payload = encode(to_json(value))
    response = invoke(predict_event(payload, base64_body=base64_body))
    assert_our_answer(response)


@dataclass
class PredictRequest:
    """A valid request for ``count`` houses, then changed the way a hostile client would."""

    count: int
    replaced: dict[tuple[int, str], Any] = field(default_factory=dict)  # (row, feature) → value
    dropped: set[tuple[int, str]] = field(default_factory=set)
    added: dict[tuple[int, str], Any] = field(default_factory=dict)  # (row, unknown key) → value
    rows_replaced: dict[int, Any] = field(default_factory=dict)  # row → any JSON instead
    request_id: Any = None  # None: absent
    extra_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def untouched(self) -> bool:
        return not (
            self.replaced or self.dropped or self.added or self.rows_replaced or self.extra_fields
        )

    @property
    def valid_request_id(self) -> bool:
        rid = self.request_id
        return rid is None or (
            isinstance(rid, str) and 0 < len(rid) <= 128 and not set(rid) & _SURROGATE_SET
        )

    def body(self) -> dict[str, Any]:
        instances: list[Any] = []
        for row in range(self.count):
            instance: dict[str, Any] = dict(HOUSE)
            for (r, name), value in self.replaced.items():
                if r == row:
                    instance[name] = value
            for r, name in self.dropped:
                if r == row:
                    instance.pop(name, None)
            for (r, key), value in self.added.items():
                if r == row and key not in HOUSE:
                    instance[key] = value
            instances.append(self.rows_replaced.get(row, instance))
        body: dict[str, Any] = {"instances": instances}
        if self.request_id is not None:
            body["request_id"] = self.request_id
        for key, value in self.extra_fields.items():
            if key not in body:
                body[key] = value
        return body


_SURROGATE_SET = {chr(c) for c in range(0xD800, 0xE000)}


@st.composite
def predict_requests(draw: st.DrawFn) -> PredictRequest:
    count = draw(st.integers(0, MAX_INSTANCES + 10))
    rows = st.integers(0, max(count - 1, 0))
    features = st.sampled_from(sorted(HOUSE))
    return PredictRequest(
        count=count,
        replaced=draw(st.dictionaries(st.tuples(rows, features), json_values, max_size=3)),
        dropped=draw(st.sets(st.tuples(rows, features), max_size=3)),
        added=draw(st.dictionaries(st.tuples(rows, hostile_text), json_values, max_size=3)),
        rows_replaced=draw(st.dictionaries(rows, json_values, max_size=2)),
        request_id=draw(st.one_of(st.none(), hostile_text, json_values)),
        extra_fields=draw(st.dictionaries(hostile_text, json_values, max_size=2)),
    )


@fuzz(150)
@given(request=predict_requests(), base64_body=st.booleans())
@example(request=PredictRequest(1, replaced={(0, "sqft"): 10**400}), base64_body=True)
@example(request=PredictRequest(1, replaced={(0, "sqft"): RawJson("9" * 5000)}), base64_body=True)
@example(request=PredictRequest(1, request_id=RawJson("9" * 5000)), base64_body=True)
@example(request=PredictRequest(1, replaced={(0, "location"): "\ud800"}), base64_body=True)
@example(request=PredictRequest(1, request_id="\ud800"), base64_body=True)
@example(request=PredictRequest(MAX_INSTANCES), base64_body=False)
@example(request=PredictRequest(MAX_INSTANCES + 1), base64_body=True)
@example(request=PredictRequest(1, added={(0, ""): 1, (0, "\udfff"): 2}), base64_body=True)
def test_mutated_requests_get_our_answer(
    invoke: Invoke, request: PredictRequest, base64_body: bool
) -> None:
    # Given a valid request with some of its houses, fields or ids changed
    payload = encode(to_json(request.body()))
    # When it is posted
    response = invoke(predict_event(payload, base64_body=base64_body))
    # Then the answer keeps the contract, and what is decidable from the request holds
    assert_our_answer(response, rows=request.count)
    status = response["statusCode"]
    if len(payload) > MAX_BODY_BYTES:
        assert status == 413
    elif request.valid_request_id and not request.extra_fields:
        if request.count == 0:
            assert (status, error_code(response)) == (400, "invalid_input")
        elif request.count > MAX_INSTANCES:
            assert (status, error_code(response)) == (413, "payload_too_large")
        elif request.untouched:
            assert status == 200, response["body"]


class LongBytes(bytes):
    """Bytes that Hypothesis reports by their start and length, not 20,000 brackets."""

    def __repr__(self) -> str:
        return f"LongBytes({bytes(self[:24])!r}...<{len(self)} bytes>)"


def nested(n: int, kind: str) -> LongBytes:
    """A body nested ``n`` deep: far past what any request needs (3 levels)."""
    text = {
        "arrays": "[" * n + "]" * n,
        "objects": '{"a":' * n + "1" + "}" * n,
        "unclosed": "[" * n,
        "instances": '{"instances":' + "[" * n + "]" * n + "}",
        "in_a_feature": '{"instances":[{"sqft":' + "[" * n + "]" * n + "}]}",
    }[kind]
    return LongBytes(encode(text))


nesting = st.builds(
    nested,
    # Most deep bodies fit MAX_BODY_BYTES, so they reach the parser; the rest get a 413.
    st.one_of(st.integers(1, 100_000), st.integers(500, MAX_BODY_BYTES // 5)),
    st.sampled_from(["arrays", "objects", "unclosed", "instances", "in_a_feature"]),
)
not_utf8 = st.sampled_from(
    [
        b'{"instances": [{"location": "\xff"}]}',
        b'{"instances": [{"location": "\xed\xa0\x80"}]}',  # an encoded surrogate
        b'{"instances": [{"location": "\xc0\xaf"}]}',  # overlong
        b'{"request_id": "\xf4\x90\x80\x80"}',  # beyond U+10FFFF
        b"\xef\xbb\xbf" + encode(json.dumps({"instances": [HOUSE]})),  # a UTF-8 BOM
        json.dumps({"instances": [HOUSE]}).encode("utf-16"),
        json.dumps({"instances": [HOUSE]}).encode("utf-32-be"),
        b"\x00" * 64,
    ]
)
truncated = st.integers(0, 200).map(lambda n: encode(json.dumps({"instances": [HOUSE]}))[:n])
raw_payloads = st.one_of(
    st.binary(max_size=300),
    texts(100).map(encode),
    nesting,
    not_utf8,
    truncated,
)


@fuzz(120)
@given(payload=raw_payloads, base64_body=st.booleans())
@example(payload=nested(100_000, "arrays"), base64_body=True)
@example(payload=nested(100_000, "objects"), base64_body=True)
@example(payload=nested(MAX_BODY_BYTES // 2 - 1, "arrays"), base64_body=True)
@example(payload=nested(MAX_BODY_BYTES // 6 - 1, "objects"), base64_body=False)
@example(payload=nested(5_000, "in_a_feature"), base64_body=True)
@example(payload=b'{"instances": [{"location": "\xff"}]}', base64_body=True)
@example(payload=b'{"instances": [{"location": "\xff"}]}', base64_body=False)
def test_raw_bodies_get_our_answer(invoke: Invoke, payload: bytes, base64_body: bool) -> None:
    response = invoke(predict_event(payload, base64_body=base64_body))
    assert_our_answer(response)
    if len(payload) > MAX_BODY_BYTES:
        assert response["statusCode"] == 413


JSON_MEDIA = ["application/json", "Application/JSON; charset=utf-8", "application/problem+json"]
OTHER_MEDIA = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"]


@fuzz(40)
@given(
    content_type=st.one_of(
        st.none(), st.sampled_from(JSON_MEDIA + OTHER_MEDIA + [";", " ", "\ud800"]), hostile_text
    ),
    base64_body=st.booleans(),
)
def test_content_types_get_our_answer(
    invoke: Invoke, content_type: str | None, base64_body: bool
) -> None:
    payload = encode(json.dumps({"instances": [HOUSE]}))
    event = predict_event(payload, base64_body=base64_body, content_type=content_type)
    response = invoke(event)
    assert_our_answer(response, rows=1)
    if content_type is None or content_type in JSON_MEDIA:
        assert response["statusCode"] == 200
    elif content_type in OTHER_MEDIA:
        assert (response["statusCode"], error_code(response)) == (415, "unsupported_media_type")


@fuzz(60)
@given(body=st.one_of(hostile_text, st.text(st.characters(codec="ascii"), max_size=80)))
@example(body="{not json")
@example(body=json.dumps({"instances": [HOUSE]}))  # plain JSON flagged as base64
@example(body="é")
@example(body="eyJ9\ud800")
def test_bodies_that_are_not_base64_get_our_answer(invoke: Invoke, body: str) -> None:
    event = load_event("http_predict.json")
    event["body"] = body
    event["isBase64Encoded"] = True
    assert_our_answer(invoke(event))


@fuzz(60)
@given(body=texts(80))
@example(body='{"instances": [{"location": "\ud800"}]}')  # a raw lone surrogate in the str
@example(body='{"request_id": "\udcff"}')
def test_plain_bodies_with_any_characters_get_our_answer(invoke: Invoke, body: str) -> None:
    event = load_event("http_predict.json")
    event["body"] = body
    event["isBase64Encoded"] = False
    assert_our_answer(invoke(event))


# --- 2. whole events ------------------------------------------------------------------------


class HugeInt(int):
    """An int past Python's 4300-digit str() limit, with a repr that does not raise (for
    Hypothesis' reports). JSON cannot carry it, but a test or a Python caller can."""

    def __repr__(self) -> str:
        return f"HugeInt(<{self.bit_length()} bits>)"


HUGE = HugeInt(10**5000)
# Python values, as the Lambda runtime would hand them over.
event_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        big_ints,
        st.just(HUGE),
        st.floats(),
        hostile_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def deep_list(n: int) -> Any:
    value: Any = []
    for _ in range(n):
        value = [value]
    return value


def deep_dict(n: int) -> Any:
    value: Any = {}
    for _ in range(n):
        value = {"requestContext": value}
    return value


@fuzz(60)
@given(event=event_values)
@example(event=None)
@example(event=[])
@example(event="POST /predict")
@example(event=HUGE)
@example(event={})
def test_any_value_as_the_event_is_an_invalid_event(invoke: Invoke, event: Any) -> None:
    response = invoke(event)
    assert_our_answer(response)
    if not (isinstance(event, dict) and "requestContext" in event):
        assert (response["statusCode"], error_code(response)) == (400, "invalid_event")


@pytest.mark.parametrize("event", [deep_list(100_000), deep_dict(100_000)], ids=["list", "dict"])
def test_events_nested_100000_deep_are_an_invalid_event(invoke: Invoke, event: Any) -> None:
    # Not Hypothesis examples: its reporting would recurse through them.
    response = invoke(event)
    assert_our_answer(response)
    assert (response["statusCode"], error_code(response)) == (400, "invalid_event")


def event_paths(event: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every top-level key, and every key of headers, requestContext and requestContext.http."""
    paths: list[tuple[str, ...]] = [(k,) for k in event]
    paths += [("headers", k) for k in event["headers"]]
    paths += [("requestContext", k) for k in event["requestContext"]]
    paths += [("requestContext", "http", k) for k in event["requestContext"]["http"]]
    return paths


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()  # the mutation that removes the key
EVENT_FILES = ["http_predict.json", "http_model.json", "http_health.json"]
PATHS = {name: event_paths(load_event(name)) for name in EVENT_FILES}


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, tuple[str, ...], Any]:
    name = draw(st.sampled_from(EVENT_FILES))
    path = draw(st.sampled_from(PATHS[name]))
    return name, path, draw(st.one_of(st.just(DELETE), event_values))


def mutate(name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return event


@fuzz(250)
@given(mutation=mutated_events())
@example(mutation=("http_predict.json", ("requestContext", "stage"), DELETE))
@example(mutation=("http_predict.json", ("requestContext", "stage"), {"a": 1}))
@example(mutation=("http_predict.json", ("requestContext", "http", "method"), DELETE))
@example(mutation=("http_predict.json", ("rawPath",), None))
@example(mutation=("http_predict.json", ("body",), {"instances": [HOUSE]}))
@example(mutation=("http_predict.json", ("isBase64Encoded",), "true"))
@example(mutation=("http_predict.json", ("headers", "content-type"), 1))
@example(mutation=("http_model.json", ("requestContext",), DELETE))
def test_mutated_events_get_our_answer(
    invoke: Invoke, mutation: tuple[str, tuple[str, ...], Any]
) -> None:
    # Given a real HTTP API event with one key removed or replaced by any value
    name, path, value = mutation
    event = mutate(name, path, value)
    # When the function is invoked with it
    response = invoke(event)
    # Then the answer keeps the contract; a wrongly typed key the resolver reads is named
    is_predict = name == "http_predict.json"
    assert_our_answer(response, rows=1 if is_predict else None, predict=is_predict)
    if refused_by_name(path, value):
        assert (response["statusCode"], error_code(response)) == (400, "invalid_event")


def refused_by_name(path: tuple[str, ...], value: Any) -> bool:
    """Whether the mutation breaks a key the resolver reads, so the event must be refused."""
    replaced = value is not DELETE
    return (
        path in [("requestContext",), ("requestContext", "http")]
        or (path == ("requestContext", "http", "method") and not isinstance(value, str))
        or (path == ("rawPath",) and not isinstance(value, str))
        or (path == ("body",) and replaced and not isinstance(value, str | None))
        or (path == ("isBase64Encoded",) and replaced and not isinstance(value, bool))
        or (path == ("headers",) and replaced and value is not None and not _strings(value))
        or (path[0] == "headers" and len(path) == 2 and replaced and not isinstance(value, str))
    )


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


@fuzz(40)
@given(headers=st.dictionaries(hostile_text, event_values, min_size=1, max_size=4))
@example(headers={"content-type": None})
@example(headers={"content-type": ["application/json"]})
@example(headers={"x-count": HUGE})
def test_headers_with_any_values_get_our_answer(invoke: Invoke, headers: dict[str, Any]) -> None:
    event = http_event("http_predict.json", {"instances": [HOUSE]})
    event["headers"] = {**event["headers"], **headers}
    response = invoke(event)
    assert_our_answer(response, rows=1)
    if not all(isinstance(v, str) for v in event["headers"].values()):
        assert (response["statusCode"], error_code(response)) == (400, "invalid_event")


# Events of other triggers, trimmed from `sam local generate-event` (SAM CLI 1.x).
MISROUTED: dict[str, Any] = {
    "s3 put": {
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "example-bucket", "arn": "arn:aws:s3:::example-bucket"},
                    "object": {"key": "test/key", "size": 1024},
                },
            }
        ]
    },
    "sqs receive-message": {
        "Records": [
            {
                "messageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
                "receiptHandle": "MessageReceiptHandle",
                "body": "Hello from SQS!",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:MyQueue",
                "awsRegion": "us-east-1",
            }
        ]
    },
    "cloudwatch scheduled-event": {
        "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "1970-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ExampleRule"],
        "detail": {},
    },
    "cloudwatch logs": {"awslogs": {"data": "H4sIAAAAAAAAAHWPwQqCQBCGX0Xm7EFtK+smZBEUgXoL"}},
    "sns notification": {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"Type": "Notification", "Message": "example message"},
            }
        ]
    },
    "apigateway aws-proxy": {
        "body": "eyJ0ZXN0IjoiYm9keSJ9",
        "resource": "/{proxy+}",
        "path": "/predict",
        "httpMethod": "POST",
        "isBase64Encoded": True,
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"httpMethod": "POST", "path": "/prod/predict", "stage": "prod"},
    },
}


def assert_invalid_event(response: dict[str, Any]) -> None:
    assert_our_answer(response)
    assert (response["statusCode"], error_code(response)) == (400, "invalid_event")


@pytest.mark.parametrize("trigger", sorted(MISROUTED))
def test_misrouted_events_are_an_invalid_event(invoke: Invoke, trigger: str) -> None:
    assert_invalid_event(invoke(copy.deepcopy(MISROUTED[trigger])))


SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
SAM_TRIGGERS = ["s3 put", "sqs receive-message", "cloudwatch scheduled-event", "cloudwatch logs"]


def test_events_the_sam_cli_generates_are_an_invalid_event(invoke: Invoke) -> None:
    # Given the current SAM CLI's events for other triggers (skipped where it is absent)
    sam = str(SAM) if SAM.exists() else shutil.which("sam")
    if sam is None:
        pytest.skip("SAM CLI not installed")
    quiet = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    runs = [
        subprocess.Popen(
            [sam, "local", "generate-event", *trigger.split()],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=quiet,
        )
        for trigger in SAM_TRIGGERS
    ]
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0
        # When each is sent to the inference function, then it is refused by name
        assert_invalid_event(invoke(json.loads(out)))
