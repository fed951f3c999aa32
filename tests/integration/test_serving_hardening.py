"""Defects an adversarial review found in the serving slice, each pinned by a test.

Every test goes through the real handler with real-shaped events (events/), moto and the real
ONNX model; each failed before its fix.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import AWS_TEST_ENV, ROOT, http_event, load_event, predict_instance
from tests.integration.conftest import INFERENCE_ENV, Served

HOUSE = predict_instance()
MAX_INSTANCES = int(INFERENCE_ENV["MAX_INSTANCES"])
MAX_BODY_BYTES = int(INFERENCE_ENV["MAX_BODY_BYTES"])


def body(response: dict[str, Any]) -> Any:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


def problems(response: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["problem"] for d in body(response)["error"]["details"]}


def raw_predict(served: Served, text: str | bytes) -> dict[str, Any]:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    event = load_event("http_predict.json")
    event["body"] = base64.b64encode(data).decode()
    return served.invoke(event)


# ------------------------------------------------------------------ 1. client input, never a 500


# The tests' body limit is 20,000 bytes; 9,000 levels is far past any interpreter's JSON
# recursion limit (about 1,000 on 3.11), which is what 100,000 levels hit in production.
@pytest.mark.parametrize(
    "text",
    ["[" * 9000 + "]" * 9000, '{"a":' * 3000 + "1" + "}" * 3000],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_is_a_400_on_the_body(served: Served, text: str) -> None:
    assert len(text) <= MAX_BODY_BYTES
    response = raw_predict(served, text)
    assert response["statusCode"] == 400
    assert "nested too deeply" in problems(response)["body"]


@pytest.mark.parametrize(
    "literal",
    [str(10**400), "9" * 5000, "-" + "9" * 5000],
    ids=["10**400", "5000 digits", "-5000 digits"],
)
def test_huge_integer_literals_in_a_feature_are_a_400_naming_it(
    served: Served, literal: str
) -> None:
    text = json.dumps({"instances": [HOUSE]}).replace('"sqft": 1850', f'"sqft": {literal}')
    assert literal in text
    response = raw_predict(served, text)
    assert response["statusCode"] == 400
    problem = problems(response)["instances[0].sqft"]
    assert problem.startswith("expected a finite number")
    assert len(response["body"]) < 1000  # the number is not echoed back


def test_a_huge_integer_request_id_is_a_400_naming_it(served: Served) -> None:
    text = json.dumps({"instances": [HOUSE], "request_id": 0}).replace("0}", "9" * 5000 + "}")
    response = raw_predict(served, text)
    assert response["statusCode"] == 400
    assert "request_id" in problems(response)


def test_a_lone_surrogate_in_a_category_is_a_400_naming_it(served: Served) -> None:
    response = raw_predict(served, '{"instances": [' + json.dumps(HOUSE)[:-1] + "}]}")
    assert response["statusCode"] == 200  # the unmodified house scores
    text = json.dumps({"instances": [{**HOUSE, "location": "x\ud800"}]})
    assert "\\ud800" in text  # JSON's own escape, as a hostile client sends it
    response = raw_predict(served, text)
    assert response["statusCode"] == 400
    assert "surrogate" in problems(response)["instances[0].location"]


def test_a_lone_surrogate_in_request_id_is_refused_not_echoed(served: Served) -> None:
    text = json.dumps({"instances": [HOUSE], "request_id": "r-\udfff"})
    response = raw_predict(served, text)
    assert response["statusCode"] == 400
    assert "request_id" in problems(response)
    assert "udfff" not in response["body"]


@pytest.mark.parametrize(("length", "status"), [(128, 200), (129, 400)])
def test_request_id_length_is_bounded_at_128(served: Served, length: int, status: int) -> None:
    response = served.invoke(
        http_event("http_predict.json", {"instances": [HOUSE], "request_id": "r" * length})
    )
    assert response["statusCode"] == status


def test_invalid_utf8_is_a_400_not_silently_replaced(served: Served) -> None:
    data = json.dumps({"instances": [{**HOUSE, "location": "LOC"}]}).encode()
    response = raw_predict(served, data.replace(b"LOC", b"\xff\xfe"))
    assert response["statusCode"] == 400
    assert "UTF-8" in problems(response)["body"]


def test_base64_with_characters_outside_its_alphabet_is_refused(served: Served) -> None:
    # Without validate=True, b64decode drops the "*" and the request would score.
    event = load_event("http_predict.json")
    encoded = event["body"]
    event["body"] = encoded[:8] + "*" + encoded[8:]
    response = served.invoke(event)
    assert response["statusCode"] == 400
    assert "base64" in body(response)["error"]["message"]


def test_numbers_in_messages_are_short(served: Served) -> None:
    response = served.invoke(
        http_event("http_predict.json", {"instances": [{**HOUSE, "sqft": 1e308}]})
    )
    assert problems(response)["instances[0].sqft"] == "must be <= 20000, got 1e+308"


# ------------------------------------------------------------------ bounds: on them and one past


def _padded_body(size: int) -> str:
    text = json.dumps({"instances": [HOUSE]})
    return text + " " * (size - len(text))  # JSON allows trailing whitespace


@pytest.mark.parametrize("base64_body", [True, False], ids=["base64", "plain"])
@pytest.mark.parametrize(("size", "status"), [(MAX_BODY_BYTES, 200), (MAX_BODY_BYTES + 1, 413)])
def test_body_size_limit_is_exact(
    served: Served, size: int, status: int, base64_body: bool
) -> None:
    event = http_event("http_predict.json", raw=_padded_body(size), base64_body=base64_body)
    response = served.invoke(event)
    assert response["statusCode"] == status


@pytest.mark.parametrize(("rows", "status"), [(MAX_INSTANCES, 200), (MAX_INSTANCES + 1, 413)])
def test_instance_limit_is_exact(served: Served, rows: int, status: int) -> None:
    response = served.invoke(http_event("http_predict.json", {"instances": [HOUSE] * rows}))
    assert response["statusCode"] == status
    if status == 200:
        assert len(body(response)["predictions"]) == rows


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (49, "49 problems in instances"),
        (50, "50 problems in instances"),
        (51, "51 problems in instances (first 50 listed)"),
        (54, "54 problems in instances (first 50 listed)"),
    ],
)
def test_the_problem_count_is_exact_and_the_list_capped_at_50(
    served: Served, count: int, message: str
) -> None:
    # Given up to 50 rows with one bad field each, and a second bad field in the first rows
    rows = [{**HOUSE, "sqft": "bad"} for _ in range(min(count, MAX_INSTANCES))]
    for row in rows[: count - len(rows)]:
        row["bedrooms"] = "bad"
    response = served.invoke(http_event("http_predict.json", {"instances": rows}))
    error = body(response)["error"]
    assert error["message"] == message
    assert len(error["details"]) == min(count, 50)


# ------------------------------------------------------------------ 6. whatever event arrives


def _without(path: list[str]) -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_predict.json"))
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return event


def _with(path: list[str], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_predict.json"))
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return event


S3_PUT = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "training-data/x.csv"}},
        }
    ]
}
SQS = {"Records": [{"messageId": "1", "body": "x", "eventSource": "aws:sqs"}]}
SCHEDULE = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events"}
LOGS = {"awslogs": {"data": "H4sIAAAAAAAAAA=="}}


@pytest.mark.parametrize(
    ("event", "field", "source"),
    [
        (None, "event", "this event"),
        ([], "event", "this event"),
        ("GET /health", "event", "this event"),
        (42, "event", "this event"),
        ({}, "requestContext.http.method", "this event"),
        (_without(["requestContext"]), "requestContext.http.method", "this event"),
        (_with(["requestContext", "http"], None), "requestContext.http.method", "this event"),
        (_with(["rawPath"], None), "rawPath", "this event"),
        (_with(["headers"], {"content-type": 5}), "headers", "this event"),
        (_with(["headers"], ["content-type"]), "headers", "this event"),
        (_with(["body"], {"instances": []}), "body", "this event"),
        (_with(["isBase64Encoded"], "yes"), "isBase64Encoded", "this event"),
        (_with(["cookies"], "a=b"), "cookies", "this event"),
        (_with(["queryStringParameters"], {"a": 1}), "queryStringParameters", "this event"),
        (S3_PUT, "requestContext.http.method", "an aws:s3 event"),
        (SQS, "requestContext.http.method", "an aws:sqs event"),
        (SCHEDULE, "requestContext.http.method", "an EventBridge event (Scheduled Event)"),
        (LOGS, "requestContext.http.method", "a CloudWatch Logs subscription event"),
    ],
)
def test_any_malformed_or_misrouted_event_gets_a_json_400_and_a_log_line(
    served: Served, event: Any, field: str, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    response = served.invoke(event)
    assert response["statusCode"] == 400
    error = body(response)["error"]
    assert error["code"] == "invalid_event"
    assert error["message"].endswith(f"not {source}")
    assert error["details"][0]["field"] == field
    logged = [r for r in caplog.records if r.getMessage() == "unrecognised event"]
    assert len(logged) == 1
    assert logged[0].event[:1024] == json.dumps(event)[:1024]


def test_the_logged_copy_of_a_huge_event_is_size_limited(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    response = served.invoke({"Records": [{"payload": "x" * 200_000}]})
    assert response["statusCode"] == 400
    (record,) = [r for r in caplog.records if r.getMessage() == "unrecognised event"]
    assert len(record.event) < 1100
    assert record.event.endswith("characters)")


def test_an_event_nested_too_deeply_to_serialise_is_still_answered(served: Served) -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    response = served.invoke({"Records": deep})
    assert response["statusCode"] == 400


# ------------------------------------------------------------------ 7. no Globals, no failure


def test_the_handler_works_without_the_metrics_namespace_variable(tmp_path: Any) -> None:
    # A fresh interpreter with the function's variables but not the template's Globals: it
    # must answer and publish under the default namespace instead of raising at the flush.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
        "app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)\n"
        "from mlops_cli.emulator.stack import LambdaContext\n"
        "event = json.load(open(sys.argv[2]))\n"
        "print('RESULT ' + json.dumps(app.lambda_handler(event, LambdaContext('f'))))\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("POWERTOOLS_") and k != "AWS_ENDPOINT_URL"
    }
    env |= (
        INFERENCE_ENV
        | AWS_TEST_ENV
        | {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    result = subprocess.run(
        [
            sys.executable,
            str(probe),
            str(ROOT / "functions/inference/app.py"),
            str(ROOT / "events/http_predict.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")]
    # The registry is unreachable, so the answer is a 503, counted under the default namespace
    assert json.loads(line.removeprefix("RESULT "))["statusCode"] == 503
    emf = [json.loads(x) for x in result.stdout.splitlines() if '"_aws"' in x]
    assert emf
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessMLOps"
