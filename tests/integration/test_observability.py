"""What the inference handler publishes: EMF metrics on stdout and structured log lines,
through the real handler and the events in events/."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mlops.observability import logger
from tests.conftest import TABLE, http_event, load_event, predict_instance
from tests.integration.conftest import Served, invoker, load_handler_module

NAMESPACE = "ServerlessMLOpsTest"  # POWERTOOLS_METRICS_NAMESPACE, set in tests/conftest.py
HOUSE = predict_instance()


class PowertoolsLines(logging.Handler):
    """Each record as the JSON line Powertools' formatter writes, parsed back."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(logger.registered_formatter.format(record)))

    def with_message(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["message"] == message]


@pytest.fixture
def logs() -> Iterator[PowertoolsLines]:
    # Powertools' Logger hands its StreamHandler the sys.stdout of the moment
    # mlops.observability was imported; capsys swaps sys.stdout per test, so it never sees
    # log lines. The Logger wraps a standard logging.Logger named after the service: a handler
    # on it receives every record the Logger emits (with its extra keys), and Powertools'
    # own formatter turns each into the exact JSON line Lambda would print.
    handler = PowertoolsLines()
    std_logger = logging.getLogger(logger.service)
    std_logger.addHandler(handler)
    try:
        yield handler
    finally:
        std_logger.removeHandler(handler)


def emf_documents(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents Powertools' Metrics printed to stdout at flush (it calls print)."""
    out = capsys.readouterr().out
    return [
        doc
        for line in out.splitlines()
        if line.startswith("{")
        for doc in [json.loads(line)]
        if "_aws" in doc
    ]


def only_document(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    documents = emf_documents(capsys)
    assert len(documents) == 1, documents
    return documents[0]


def declared(document: dict[str, Any]) -> dict[str, str]:
    """Metric name → unit, as declared in the EMF metadata."""
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}


def values(document: dict[str, Any], name: str) -> list[float]:
    """A metric's values in one document (EMF allows a number or a list of numbers)."""
    raw = document[name]
    return list(raw) if isinstance(raw, list) else [raw]


def dimensions(document: dict[str, Any]) -> set[str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {name for group in directive["Dimensions"] for name in group}


def test_a_prediction_publishes_its_latency_and_row_count(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request for three houses
    capsys.readouterr()
    event = http_event("http_predict.json", {"instances": [HOUSE, HOUSE, HOUSE]})
    # When it is served
    response = served.invoke(event)
    # Then one EMF document carries both metrics, in the configured namespace
    assert response["statusCode"] == 200
    document = only_document(capsys)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    assert declared(document) == {"PredictLatency": "Milliseconds", "PredictedRows": "Count"}
    assert values(document, "PredictedRows") == [3]
    (latency,) = values(document, "PredictLatency")
    assert latency > 0
    assert "code" not in dimensions(document)


def test_the_row_count_of_the_sample_event_is_one(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert served.invoke(load_event("http_predict.json"))["statusCode"] == 200
    assert values(only_document(capsys), "PredictedRows") == [1]


def test_an_invalid_request_publishes_request_errors_by_code(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = served.invoke(http_event("http_predict.json", raw="{not json"))
    assert response["statusCode"] == 400
    document = only_document(capsys)
    assert declared(document) == {"RequestErrors": "Count"}
    assert values(document, "RequestErrors") == [1]
    assert "code" in dimensions(document)
    assert document["code"] == "invalid_input"


def test_the_error_code_dimension_does_not_leak_into_the_next_request(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request that failed (its flush carried code=invalid_input)
    served.invoke(http_event("http_predict.json", body={}))
    capsys.readouterr()
    # When the next request succeeds
    assert served.invoke(load_event("http_predict.json"))["statusCode"] == 200
    # Then its metrics carry no error code
    document = only_document(capsys)
    assert "code" not in dimensions(document)
    assert "code" not in document


def test_loading_a_model_logs_its_version(served: Served, logs: PowertoolsLines) -> None:
    # When a new container starts (the handler module is imported and warms the model)
    load_handler_module()
    # Then one INFO line says which version it loaded
    (line,) = logs.with_message("model loaded")
    assert line["level"] == "INFO"
    assert line["model_version"] == served.v1.version == "1"
    assert line["model_name"] == "house-prices"
    assert line.get("previous_version") is None  # Powertools drops keys whose value is None


def test_a_failed_refresh_keeps_the_model_and_says_so(
    served: Served,
    capsys: pytest.CaptureFixture[str],
    logs: PowertoolsLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a container serving v1 from its own copy of the registry (so deleting that
    # table leaves the module's shared one alone); the request waits up to 5 s for the
    # re-check, so its outcome is applied, logged and flushed by this very request
    table = _copy_registry_table("observability-registry")
    monkeypatch.setenv("REGISTRY_TABLE", table)
    monkeypatch.setenv("ALIAS_REFRESH_WAIT_SECONDS", "5")
    module = load_handler_module()
    invoke = invoker(module)
    assert logs.with_message("model loaded")
    # When the registry disappears and the alias is due for a re-check
    boto3.client("dynamodb").delete_table(TableName=table)
    module.service.expire_model()
    capsys.readouterr()
    response = invoke(load_event("http_predict.json"))
    # Then v1 still answers
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["model_version"] == "1"
    # And the failure is counted
    document = only_document(capsys)
    assert declared(document)["ModelRefreshFailures"] == "Count"
    assert values(document, "ModelRefreshFailures") == [1]
    # And one WARNING line names the version kept and why
    (line,) = logs.with_message("refresh failed; keeping the loaded model")
    assert line["level"] == "WARNING"
    assert line["model_version"] == "1"
    assert table in line["error"]


def _copy_registry_table(name: str) -> str:
    db = boto3.client("dynamodb")
    described = db.describe_table(TableName=TABLE)["Table"]
    db.create_table(
        TableName=name,
        KeySchema=described["KeySchema"],
        AttributeDefinitions=described["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in db.scan(TableName=TABLE)["Items"]:
        db.put_item(TableName=name, Item=item)
    return name
