"""The inference handler through real HTTP API events, against moto and the real ONNX model."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import http_event, load_event, predict_instance
from tests.integration.conftest import Served

HOUSE = predict_instance()


def body(response: dict[str, Any]) -> Any:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


def test_predict_returns_a_price_with_ids_from_the_production_version(served: Served) -> None:
    # Given the production model and the event SAM generates for POST /predict
    response = served.invoke(load_event("http_predict.json"))
    # Then the prediction comes from v1, with one id per prediction
    assert response["statusCode"] == 200
    result = body(response)
    assert result["model_version"] == served.v1.version == "1"
    assert len(result["predictions"]) == len(result["prediction_ids"]) == 1
    assert 150_000 < result["predictions"][0] < 900_000
    assert "probabilities" not in result


def test_a_batch_is_scored_in_order_and_request_id_is_echoed(served: Served) -> None:
    small = {**HOUSE, "sqft": 900, "bedrooms": 1, "location": "countryside"}
    big = {**HOUSE, "sqft": 4200, "bedrooms": 6, "location": "downtown"}
    response = served.invoke(
        http_event("http_predict.json", {"instances": [small, big, small], "request_id": "r-1"})
    )
    result = body(response)
    assert response["statusCode"] == 200
    low, high, again = result["predictions"]
    assert low < high
    assert low == again
    assert len(set(result["prediction_ids"])) == 3
    assert result["request_id"] == "r-1"


def test_plain_text_bodies_work_like_base64_ones(served: Served) -> None:
    encoded = body(served.invoke(http_event("http_predict.json", {"instances": [HOUSE]})))
    plain = body(
        served.invoke(http_event("http_predict.json", {"instances": [HOUSE]}, base64_body=False))
    )
    assert plain["predictions"] == encoded["predictions"]


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "field"),
    [
        ({"raw": "{not json"}, 400, "invalid_input", "body"),
        ({"raw": ""}, 400, "invalid_input", "body"),
        ({"raw": "[1, 2]"}, 400, "invalid_input", "body"),
        ({"raw": '"instances"'}, 400, "invalid_input", "body"),
        ({"body": {}}, 400, "invalid_input", "instances"),
        ({"body": {"instances": []}}, 400, "invalid_input", "instances"),
        ({"body": {"instances": {"sqft": 1}}}, 400, "invalid_input", "instances"),
        ({"body": {"instances": [HOUSE], "model": "x"}}, 400, "invalid_input", "model"),
        ({"body": {"instances": [HOUSE], "request_id": 7}}, 400, "invalid_input", "request_id"),
        (
            {"body": {"instances": [{**HOUSE, "sqft": "abc"}]}},
            400,
            "invalid_input",
            "instances[0].sqft",
        ),
        (
            {"raw": '{"instances": [' + json.dumps(HOUSE).replace("1850", "NaN") + "]}"},
            400,
            "invalid_input",
            "instances[0].sqft",
        ),
        (
            {"raw": '{"instances": [' + json.dumps(HOUSE).replace("1850", "Infinity") + "]}"},
            400,
            "invalid_input",
            "instances[0].sqft",
        ),
        (
            {"body": {"instances": [{**HOUSE, "sqft": 10}]}},
            400,
            "invalid_input",
            "instances[0].sqft",
        ),
        (
            {"body": {"instances": [{**HOUSE, "garage": 1}]}},
            400,
            "invalid_input",
            "instances[0].garage",
        ),
        (
            {"body": {"instances": [{k: v for k, v in HOUSE.items() if k != "location"}]}},
            400,
            "invalid_input",
            "instances[0].location",
        ),
        ({"body": {"instances": [HOUSE] * 51}}, 413, "payload_too_large", "instances"),
        (
            {"raw": json.dumps({"instances": [HOUSE] * 49, "pad": "x" * 20000})},
            413,
            "payload_too_large",
            "body",
        ),
        (
            {"body": {"instances": [HOUSE]}, "headers": {"content-type": "text/csv"}},
            415,
            "unsupported_media_type",
            "headers.content-type",
        ),
    ],
)
def test_bad_requests_get_a_4xx_json_error_naming_the_field(
    served: Served, kwargs: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = served.invoke(http_event("http_predict.json", **kwargs))
    assert response["statusCode"] == status
    error = body(response)["error"]
    assert error["code"] == code
    assert field in [d["field"] for d in error["details"]]
    assert "Traceback" not in response["body"]


def test_get_model_describes_the_signature_metrics_and_aliases(served: Served) -> None:
    response = served.invoke(load_event("http_model.json"))
    model = body(response)
    assert response["statusCode"] == 200
    assert model["model_version"] == "1"
    assert model["task"] == "regression"
    assert model["target"] == "price"
    assert model["aliases"] == {"production": "1", "candidate": None}
    assert model["metrics"] == pytest.approx(served.v1.metrics)
    features = {f["name"]: f for f in model["signature"]["features"]}
    assert features["sqft"] == {"name": "sqft", "type": "numeric", "min": 200.0, "max": 20000.0}
    assert features["location"]["categories"] == sorted(
        ["countryside", "downtown", "riverside", "suburbs", "uptown"]
    )
    assert model["created_at"]


def test_health_reports_the_served_version(served: Served) -> None:
    response = served.invoke(load_event("http_health.json"))
    assert response["statusCode"] == 200
    assert body(response) == {
        "status": "ok",
        "model_version": "1",
        "alias": "production",
        "alias_version": "1",
    }


def test_an_unknown_route_is_a_json_404(served: Served) -> None:
    event = load_event("http_model.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/models"
    event["routeKey"] = "GET /models"
    response = served.invoke(event)
    assert response["statusCode"] == 404
    assert body(response)["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "encoded_body",
    [
        base64.b64encode(b'{"instances": [{"location": "\xff"}]}').decode(),  # not UTF-8
        "not base64 at all!",
    ],
)
def test_undecodable_bodies_are_a_400_on_the_body(served: Served, encoded_body: str) -> None:
    event = load_event("http_predict.json")
    event["body"] = encoded_body
    response = served.invoke(event)
    assert response["statusCode"] == 400
    assert body(response)["error"]["details"][0]["field"] == "body"


def test_an_unexpected_failure_is_a_json_500_without_internals(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the model runtime raising something we never anticipated.
    loaded = served.module.service._provider.current()

    def broken(_: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(loaded.model, "score", broken)
    response = served.invoke(load_event("http_predict.json"))
    assert response["statusCode"] == 500
    assert body(response) == {"error": {"code": "internal_error", "message": "internal error"}}
    assert "secret" not in response["body"]


# --- evaluation traffic ("evaluation": true) -------------------------------------------------


def answer(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    response = served.invoke(http_event("http_predict.json", body))
    assert response["statusCode"] == 200, response["body"]
    return dict(json.loads(response["body"]))


@pytest.mark.parametrize("flag", [{}, {"evaluation": False}, {"evaluation": True}])
def test_an_evaluation_request_is_answered_exactly_like_any_other(
    served: Served, flag: dict[str, Any]
) -> None:
    plain = answer(served, {"instances": [HOUSE, HOUSE], "request_id": "r-1"})
    result = answer(served, {"instances": [HOUSE, HOUSE], "request_id": "r-1"} | flag)
    expected = {"model_version", "predictions", "prediction_ids", "request_id"}
    assert result.keys() == plain.keys() == expected
    assert result["predictions"] == plain["predictions"]
    assert len(set(result["prediction_ids"])) == 2  # ids to send feedback for


@pytest.mark.parametrize("value", [1, 0, "true", "yes", None, [], {}])
def test_an_evaluation_flag_that_is_not_a_boolean_is_a_400_naming_it(
    served: Served, value: Any
) -> None:
    response = served.invoke(
        http_event("http_predict.json", {"instances": [HOUSE], "evaluation": value})
    )
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["code"] == "invalid_input"
    assert [d["field"] for d in error["details"]] == ["evaluation"]
    assert "expected true or false" in error["details"][0]["problem"]
