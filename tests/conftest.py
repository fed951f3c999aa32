"""Shared fixtures: a small trained model, moto-backed resources, real events."""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

# Powertools reads these when mlops.observability is first imported, as Lambda sets them
# before the handler module loads; set them before anything imports it.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ServerlessMLOpsTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

import boto3
import pytest
from moto import mock_aws
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from mlops.adapters import aws
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.config import ModelConfig, TrainingConfig
from mlops.domain.config_document import load_config
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.services.training import TrainingService
from mlops_cli.emulator.s3_limits import refuse_long_keys

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
BUCKET = "test-artifacts"
TABLE = "test-registry"
REGION = "us-east-1"


def import_fresh(name: str, path: Path) -> ModuleType:
    """Import a handler file afresh under ``name``, as a new Lambda container would."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def predict_instance() -> dict[str, Any]:
    """The house in events/http_predict.json, the instance tests vary field by field."""
    event = load_event("http_predict.json")
    return dict(json.loads(base64.b64decode(event["body"]))["instances"][0])


def http_event(
    name: str,
    body: Any = None,
    *,
    raw: str | None = None,
    headers: dict[str, str] | None = None,
    base64_body: bool = True,
) -> dict[str, Any]:
    """A real-shaped HTTP API event from events/, with its body replaced."""
    event = copy.deepcopy(load_event(name))
    if headers is not None:
        event["headers"] = {**event["headers"], **headers}
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    if text is not None:
        event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
        event["isBase64Encoded"] = base64_body
    return event


@pytest.fixture(scope="session", autouse=True)
def one_training_thread() -> Iterator[None]:
    """Train on one OpenMP thread: on two busy shared cores, OpenMP's spinning threads made
    the histogram booster take 100+ s instead of 2 s (the model is the same either way)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def config() -> ModelConfig:
    """The shipped config with a smaller estimator, so the session's models train fast."""
    base = load_config()
    return replace(
        base,
        estimator=replace(base.estimator, params={**base.estimator.params, "max_iter": 60}),
        training=TrainingConfig(min_rows=50),
    )


@pytest.fixture(scope="session")
def month0_csv() -> bytes:
    return csv_bytes(generate(1500, conditions_for_month(0), seed=7))


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@contextlib.contextmanager
def moto_resources(env: dict[str, str] | None = None) -> Iterator[None]:
    """moto for S3 and DynamoDB with the bucket and registry table created; ``env`` is set
    for the duration (with moto's dummy credentials), and boto3 clients are made afresh."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**AWS_TEST_ENV, **(env or {})}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            aws.client.cache_clear()
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            boto3.client("dynamodb").create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            try:
                yield
            finally:
                aws.client.cache_clear()


@pytest.fixture
def moto() -> Iterator[None]:
    with moto_resources():
        yield


@pytest.fixture
def s3_key_limit() -> Iterator[None]:
    """moto refuses an S3 key over 1,024 bytes of UTF-8 (``KeyTooLongError``), as AWS does;
    moto 5.2.5 stores any key. The retrain ``pipeline`` fixture has it built in."""
    with refuse_long_keys():
        yield


@pytest.fixture
def store(moto: None) -> ModelStore:
    return ModelStore(BUCKET, aws.client("s3"))


@pytest.fixture
def registry(moto: None) -> Registry:
    return Registry(TABLE, aws.client("dynamodb"))


@pytest.fixture
def trainer(store: ModelStore, registry: Registry) -> TrainingService:
    return TrainingService(store, registry, code_version="test")


def emits(source: str, metric: str) -> bool:
    """Whether ``source`` publishes ``metric`` (by its name in ``mlops.metric_names.Metric``)."""
    from mlops.metric_names import Metric

    constants = [k for k, v in vars(Metric).items() if v == metric]
    return bool(constants) and f"name=Metric.{constants[0]}" in source
