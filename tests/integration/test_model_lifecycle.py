"""How the serving path follows the registry: alias moves, failures, tampered artifacts."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.adapters import aws
from mlops.adapters.model_store import ModelStore, version_prefix
from mlops.adapters.registry import Registry
from mlops.domain.config import ModelConfig, parse_config
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import ModelUnavailableError
from mlops.local.stack import LambdaContext
from mlops.services.inference import ModelProvider
from mlops.services.training import TrainingService
from tests.conftest import BUCKET, TABLE, http_event, load_event, predict_instance
from tests.integration.conftest import Served, load_handler_module


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(served: Served, clock: FakeClock, refresh: float = 30.0) -> ModelProvider:
    return ModelProvider(
        "house-prices",
        "production",
        registry=served.registry,
        store=served.store,
        refresh_seconds=refresh,
        clock=clock,
    )


def month_csv(month: int) -> bytes:
    return csv_bytes(generate(1500, conditions_for_month(month), seed=month + 11))


def test_without_a_registered_model_every_route_answers_503_not_500(
    inference_env: None,
) -> None:
    module = load_handler_module()
    for name in ("http_predict.json", "http_model.json", "http_health.json"):
        response = module.lambda_handler(load_event(name), LambdaContext("t"))
        assert response["statusCode"] == 503, name
        assert json.loads(response["body"])["error"]["code"] == "model_unavailable"


def test_a_promotion_is_served_after_the_refresh_interval_without_a_redeploy(
    fresh: Served, config: ModelConfig
) -> None:
    # Given a warm provider serving v1
    clock = FakeClock()
    models = provider(fresh, clock, refresh=30)
    assert models.current().version == "1"
    # When v2 is trained and promoted
    v2 = fresh.trainer.train_and_register(config, month_csv(4), "s3://data/month4.csv")
    assert v2.version == "2"
    # Then v1 keeps serving until the refresh interval passes, then v2 serves
    clock.now += 29
    assert models.current().version == "1"
    clock.now += 2
    assert models.current().version == "2"
    assert models.aliases == {"production": "2"}


def test_the_loaded_model_keeps_serving_when_the_registry_and_s3_fail(fresh: Served) -> None:
    clock = FakeClock()
    models = provider(fresh, clock)
    assert models.current().version == "1"
    # When the registry table and the model objects disappear
    boto3.client("dynamodb").delete_table(TableName=TABLE)
    s3 = boto3.client("s3")
    for item in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"], VersionId=item["VersionId"])
    clock.now += 31
    # Then the refresh fails quietly and v1 still predicts
    loaded = models.current()
    assert loaded.version == "1"
    columns = loaded.manifest.signature.columns([predict_instance()], max_instances=1)
    assert loaded.model.score(columns).values[0] > 0


def test_a_tampered_model_is_never_loaded_and_the_old_one_keeps_serving(
    fresh: Served, config: ModelConfig
) -> None:
    clock = FakeClock()
    models = provider(fresh, clock)
    assert models.current().version == "1"
    # Given v2 registered but its model.onnx replaced after registration
    fresh.trainer.train_and_register(config, month_csv(2), "s3://data/month2.csv")
    v1_bytes = fresh.store.get_bytes(version_prefix("house-prices", "1") + "model.onnx")
    boto3.client("s3").put_object(
        Bucket=BUCKET, Body=v1_bytes, Key=version_prefix("house-prices", "2") + "model.onnx"
    )
    clock.now += 31
    # Then the sha256 check refuses v2 and v1 keeps serving
    assert models.current().version == "1"
    # And a cold container, with nothing loaded, answers unavailable rather than serving it
    with pytest.raises(ModelUnavailableError, match="sha256"):
        provider(fresh, FakeClock()).current()


def test_the_handler_serves_the_new_version_after_promotion(
    fresh: Served, config: ModelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A container whose refresh interval is 1 s sees a promotion within a second.
    monkeypatch.setenv("ALIAS_REFRESH_SECONDS", "0.001")
    invoke = _fresh_handler()
    assert json.loads(invoke(load_event("http_health.json"))["body"])["model_version"] == "1"
    fresh.trainer.train_and_register(config, month_csv(3), "s3://data/month3.csv")
    response = invoke(load_event("http_predict.json"))
    assert json.loads(response["body"])["model_version"] == "2"
    # Rolling back is moving the alias back; the next request serves v1 again.
    fresh.trainer.promote("house-prices", "1")
    response = invoke(load_event("http_predict.json"))
    assert json.loads(response["body"])["model_version"] == "1"


def _fresh_handler() -> Any:
    module = load_handler_module()
    return lambda event: module.lambda_handler(event, LambdaContext("t"))


def test_a_snapstart_restore_makes_the_next_request_recheck_the_alias(
    fresh: Served, config: ModelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lambda's runtime provides snapshot_restore_py; stand in for it to capture the hook.
    hooks: list[Any] = []
    runtime_module = types.ModuleType("snapshot_restore_py")
    runtime_module.register_after_restore = hooks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime_module)
    invoke = _fresh_handler()  # init: loads v1, registers the hook (the snapshot point)
    assert len(hooks) == 1
    # A promotion happens while the snapshot sits in the cache
    fresh.trainer.train_and_register(config, month_csv(5), "s3://data/month5.csv")
    assert json.loads(invoke(load_event("http_health.json"))["body"])["model_version"] == "1"
    # When Lambda restores an environment from the snapshot
    hooks[0]()
    # Then its first request serves the current production version
    assert json.loads(invoke(load_event("http_health.json"))["body"])["model_version"] == "2"


def test_a_classification_model_serves_labels_and_probabilities(inference_env: None) -> None:
    # Given a classifier registered under the served model name
    config = parse_config(
        {
            "name": "house-prices",
            "task": "classification",
            "target": "band",
            "features": [
                {"name": "sqft", "type": "numeric", "min": 200},
                {"name": "location", "type": "categorical"},
            ],
            "estimator": {"type": "hist_gradient_boosting", "params": {"max_iter": 30}},
        }
    )
    columns = generate(800, conditions_for_month(0), seed=3)
    band = np.where(columns["price"] > np.median(columns["price"]), "high", "low")
    data = csv_bytes(
        {"sqft": columns["sqft"], "location": columns["location"], "band": band.astype(object)}
    )
    trainer = TrainingService(
        ModelStore(BUCKET, aws.client("s3")),
        Registry(TABLE, aws.client("dynamodb")),
        code_version="test",
    )
    trainer.train_and_register(config, data, "s3://data/bands.csv")
    module = load_handler_module()
    # When two houses are scored through the handler
    event = http_event(
        "http_predict.json",
        {
            "instances": [
                {"sqft": 5200, "location": "downtown"},
                {"sqft": 700, "location": "countryside"},
            ]
        },
    )
    response = module.lambda_handler(event, LambdaContext("t"))
    # Then each gets a label and a probability per class, summing to one
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["predictions"] == ["high", "low"]
    for probabilities in body["probabilities"]:
        assert set(probabilities) == {"high", "low"}
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert body["probabilities"][0]["high"] > 0.5
    described = json.loads(
        module.lambda_handler(load_event("http_model.json"), LambdaContext("t"))["body"]
    )
    assert described["task"] == "classification"
    assert described["classes"] == ["high", "low"]
