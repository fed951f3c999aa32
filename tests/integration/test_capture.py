"""Capture and feedback through the real inference handler: every prediction and every label
becomes a log line on stdout (the subscription's input), and capture never fails a request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.domain.capture import parse_capture_line
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import http_event, load_event, predict_instance
from tests.integration.conftest import Served, load_handler_module

HOUSE = predict_instance()


def log_records(out: str, kind: str) -> list[dict[str, Any]]:
    records = []
    for line in out.splitlines():
        if line.startswith("{") and f'"type":"{kind}"' in line:
            records.append(parse_capture_line(line))
    return records


def test_a_prediction_is_written_as_one_capture_line(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    event = http_event("http_predict.json", {"instances": [HOUSE, HOUSE], "request_id": "r-7"})
    response = json.loads(served.invoke(event)["body"])
    (record,) = log_records(capsys.readouterr().out, "capture")
    assert record["model"] == "house-prices"
    assert record["version"] == response["model_version"] == "1"
    assert record["request_id"] == "r-7"
    assert record["prediction_ids"] == response["prediction_ids"]
    assert record["predictions"] == response["predictions"]
    assert record["instances"] == [HOUSE, HOUSE]
    assert (record["part"], record["parts"]) == (1, 1)


def test_without_a_client_request_id_the_gateways_is_used(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    event = load_event("http_predict.json")
    served.invoke(event)
    (record,) = log_records(capsys.readouterr().out, "capture")
    assert record["request_id"] == event["requestContext"]["requestId"]


def test_a_failed_capture_still_answers_and_is_counted(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(line: str) -> None:
        raise OSError("stdout is gone")

    monkeypatch.setattr(served.module.service, "_emit", broken)
    capsys.readouterr()
    response = served.invoke(load_event("http_predict.json"))
    assert response["statusCode"] == 200
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert any(m.get("CaptureFailures") == [1.0] for m in emf)


def test_a_sample_rate_of_zero_captures_nothing(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPTURE_SAMPLE_RATE", "0")
    module = load_handler_module()
    capsys.readouterr()
    for _ in range(20):
        response = module.lambda_handler(load_event("http_predict.json"), LambdaContext("t"))
        assert response["statusCode"] == 200
    assert log_records(capsys.readouterr().out, "capture") == []
    # Except evaluation traffic: kept out of every verdict, its capture is its audit trail
    event = http_event("http_predict.json", {"instances": [HOUSE], "evaluation": True})
    module.lambda_handler(event, LambdaContext("t"))
    (record,) = log_records(capsys.readouterr().out, "capture")
    assert record["source"] == "evaluation"


def test_feedback_is_accepted_and_written_as_a_feedback_line(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = served.invoke(load_event("http_feedback.json"))
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {"accepted": 1}
    (record,) = log_records(capsys.readouterr().out, "feedback")
    assert record["model"] == "house-prices"
    assert record["feedback"] == [
        {"prediction_id": "2f1b2c1e-6d3a-4c7e-9a4e-0d7f5f4b2a11", "actual": 405000}
    ]


def test_a_single_label_for_an_id_not_yet_captured_is_accepted(served: Served) -> None:
    body = {"prediction_id": "00000000-0000-4000-8000-000000000000", "actual": 1.5}
    response = served.invoke(http_event("http_feedback.json", body))
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {"accepted": 1}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"prediction_id": "2f1b2c1e-6d3a-4c7e-9a4e-0d7f5f4b2a11", "actual": "high"},
            400,
            "actual",
        ),
        ({"feedback": [{"prediction_id": "nope", "actual": 1}]}, 400, "feedback[0].prediction_id"),
        ({"feedback": []}, 400, "feedback"),
        (
            {
                "feedback": [{"prediction_id": "2f1b2c1e-6d3a-4c7e-9a4e-0d7f5f4b2a11", "actual": 1}]
                * 51
            },
            413,
            "feedback",
        ),
    ],
)
def test_bad_feedback_is_a_4xx_naming_the_field(
    served: Served, body: Any, status: int, field: str
) -> None:
    response = served.invoke(http_event("http_feedback.json", body))
    assert response["statusCode"] == status
    fields = [d["field"] for d in json.loads(response["body"])["error"].get("details", [])]
    assert field in fields


PID = "2f1b2c1e-6d3a-4c7e-9a4e-0d7f5f4b2a11"


def _ids(count: int) -> list[str]:
    return [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # One label among several whose square overflows float64: RMSE would be infinite
        (
            {"feedback": [{"prediction_id": i, "actual": 405000} for i in _ids(3)]
             + [{"prediction_id": _ids(4)[3], "actual": 1e308}]},
            "feedback[3].actual",
        ),
        ({"prediction_id": PID, "actual": -1e155}, "actual"),
        ({"prediction_id": PID, "actual": 10**200}, "actual"),  # an integer, as JSON allows
    ],
)  # fmt: skip
def test_a_label_whose_square_overflows_is_refused_naming_it(
    served: Served, capsys: pytest.CaptureFixture[str], body: Any, field: str
) -> None:
    # Given a real-shaped POST /feedback event holding such a label
    capsys.readouterr()
    response = served.invoke(http_event("http_feedback.json", body))
    # Then it is a 400 invalid_input naming the field, and no label of the request is logged
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["code"] == "invalid_input"
    [detail] = [d for d in error["details"] if d["field"] == field]
    assert "square must be finite" in detail["problem"]
    assert log_records(capsys.readouterr().out, "feedback") == []


def test_a_label_just_inside_the_square_limit_is_accepted(served: Served) -> None:
    body = {"prediction_id": PID, "actual": 1.34e154}
    response = served.invoke(http_event("http_feedback.json", body))
    assert response["statusCode"] == 202


@pytest.mark.parametrize(
    ("flag", "source"),
    [({}, None), ({"evaluation": False}, None), ({"evaluation": True}, "evaluation")],
)
def test_the_capture_says_evaluation_only_for_evaluation_requests(
    served: Served, capsys: pytest.CaptureFixture[str], flag: dict[str, Any], source: str | None
) -> None:
    capsys.readouterr()
    response = served.invoke(http_event("http_predict.json", {"instances": [HOUSE]} | flag))
    result = json.loads(response["body"])
    (record,) = log_records(capsys.readouterr().out, "capture")  # the strict parser's view
    assert record.get("source") == source
    assert record["prediction_ids"] == result["prediction_ids"]
