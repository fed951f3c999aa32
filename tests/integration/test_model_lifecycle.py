"""How the serving path follows the registry: alias moves, failures, tampered artifacts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.adapters import aws
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry, VersionRecord
from mlops.domain.config import ModelConfig, PromotionConfig
from mlops.domain.config_document import parse_config
from mlops.domain.layout import version_prefix
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import InvalidInputError, ModelUnavailableError
from mlops.metric_names import Metric
from mlops.services.model_provider import ModelProvider
from mlops.services.training import TrainingResult, TrainingService
from mlops.settings import InferenceSettings
from mlops_cli.emulator.stack import LambdaContext
from mlops_cli.emulator.template import load_template
from tests.conftest import BUCKET, ROOT, TABLE, http_event, load_event, predict_instance
from tests.integration.conftest import Served, invoker, load_handler_module


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def config(config: ModelConfig) -> ModelConfig:
    """These tests are about serving what was promoted, not about whether it earned it (the
    gate has its own tests): every version that passes parity is promoted."""
    return replace(
        config, promotion=PromotionConfig(min_relative_change=-1.0, min_absolute_change=-1e300)
    )


def promoted(fresh: Served, config: ModelConfig, month: int, uri: str) -> TrainingResult:
    """Train a version and put it in production whatever the gate says: these tests are about
    serving what was promoted (a drifted month is held by the gate, and rightly so)."""
    result = fresh.trainer.train_and_register(config, month_csv(month), uri, promote=False)
    fresh.trainer.promote("house-prices", result.version, force=True, reason="serving test")
    return result


def provider(
    served: Served, clock: FakeClock, refresh: float = 30.0, wait: float = 30.0
) -> ModelProvider:
    """``wait``: how long a request waits for a due re-check; long here, so tests see its
    outcome at once (the bound itself is tested with a hanging endpoint)."""
    return ModelProvider(
        "house-prices",
        "production",
        registry=served.registry,
        store=served.store,
        refresh_seconds=refresh,
        refresh_wait_seconds=wait,
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
    v2 = promoted(fresh, config, 4, "s3://data/month4.csv")
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
    promoted(fresh, config, 2, "s3://data/month2.csv")
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
    # A request waits for the re-check it triggers as long as it takes here, so the version
    # it sees does not depend on how fast this machine is.
    monkeypatch.setenv("ALIAS_REFRESH_WAIT_SECONDS", "30")
    module = load_handler_module()
    invoke = invoker(module)
    assert json.loads(invoke(load_event("http_health.json"))["body"])["model_version"] == "1"
    promoted(fresh, config, 3, "s3://data/month3.csv")
    # When the refresh interval has passed (expire_model stands in for the clock)
    module.service.expire_model()
    response = invoke(load_event("http_predict.json"))
    assert json.loads(response["body"])["model_version"] == "2"
    # Rolling back is moving the alias back; the next re-check serves v1 again.
    fresh.trainer.promote("house-prices", "1")
    module.service.expire_model()
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
    promoted(fresh, config, 5, "s3://data/month5.csv")
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


# ------------------------------------------------------------------ the registry is the anchor


def _replace_artifacts(version: str, model_bytes: bytes, *, fix_manifest: bool) -> None:
    """What an attacker with write access to the bucket (and not the registry) can do."""
    s3 = boto3.client("s3")
    prefix = version_prefix("house-prices", version)
    s3.put_object(Bucket=BUCKET, Key=prefix + "model.onnx", Body=model_bytes)
    if fix_manifest:
        manifest = json.loads(
            s3.get_object(Bucket=BUCKET, Key=prefix + "manifest.json")["Body"].read()
        )
        manifest["artifacts"]["model.onnx"]["sha256"] = hashlib.sha256(model_bytes).hexdigest()
        s3.put_object(Bucket=BUCKET, Key=prefix + "manifest.json", Body=json.dumps(manifest))


def test_a_model_and_manifest_both_replaced_in_the_bucket_are_never_served(
    fresh: Served, config: ModelConfig
) -> None:
    # Given v1 serving and v2 promoted, then v2's model.onnx swapped for another model and its
    # manifest edited to carry the swapped file's sha256
    clock = FakeClock()
    models = provider(fresh, clock)
    assert models.current().version == "1"
    other = fresh.trainer.train_and_register(config, month_csv(6), "s3://d/6.csv", promote=False)
    promoted(fresh, config, 2, "s3://data/month2.csv")
    swapped = fresh.store.get_bytes(version_prefix("house-prices", other.version) + "model.onnx")
    _replace_artifacts("3", swapped, fix_manifest=True)
    # Then a warm container keeps v1, and says why it is not serving v3
    clock.now += 31
    assert models.current().version == "1"
    state = models.state()
    assert (state.served_version, state.alias_version) == ("1", "3")
    assert state.reason is not None
    assert "registry says" in state.reason
    # And a cold container refuses to serve at all
    with pytest.raises(ModelUnavailableError, match="registry says"):
        provider(fresh, FakeClock()).current()


def test_a_manifest_that_disagrees_with_the_registry_is_refused(fresh: Served) -> None:
    # The model bytes are intact, but the manifest names another digest
    s3 = boto3.client("s3")
    key = version_prefix("house-prices", "1") + "manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    manifest["artifacts"]["model.onnx"]["sha256"] = "0" * 64
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest))
    with pytest.raises(ModelUnavailableError, match="the manifest of version 1 says"):
        provider(fresh, FakeClock()).current()


def test_a_manifest_copied_from_another_version_is_refused(
    fresh: Served, config: ModelConfig
) -> None:
    promoted(fresh, config, 2, "s3://data/month2.csv")
    s3 = boto3.client("s3")
    v1 = s3.get_object(Bucket=BUCKET, Key=version_prefix("house-prices", "1") + "manifest.json")
    s3.put_object(
        Bucket=BUCKET,
        Key=version_prefix("house-prices", "2") + "manifest.json",
        Body=v1["Body"].read(),
    )
    with pytest.raises(ModelUnavailableError, match="describes house-prices v1"):
        provider(fresh, FakeClock()).current()


def test_an_alias_naming_an_unregistered_version_is_refused(fresh: Served) -> None:
    # Artifacts for v7 exist in the bucket (copied from v1) but the registry never saw v7
    for name in ("model.onnx", "manifest.json", "baseline.json"):
        data = fresh.store.get_bytes(version_prefix("house-prices", "1") + name)
        fresh.store.put_bytes(version_prefix("house-prices", "7") + name, data)
    fresh.registry.move_alias("house-prices", "production", "7", expected="1")
    with pytest.raises(ModelUnavailableError, match="version 7 of house-prices is not registered"):
        provider(fresh, FakeClock()).current()


@pytest.mark.parametrize(
    ("manifest_body", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "manifest is malformed"),
        (b'{"model_name": "house-prices"}', "manifest is malformed"),
    ],
)
def test_a_malformed_manifest_is_a_503_not_a_500(
    fresh: Served, manifest_body: bytes, match: str
) -> None:
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=version_prefix("house-prices", "1") + "manifest.json",
        Body=manifest_body,
    )
    with pytest.raises(ModelUnavailableError, match=match):
        provider(fresh, FakeClock()).current()
    response = invoker(load_handler_module())(load_event("http_predict.json"))
    assert response["statusCode"] == 503


def test_a_missing_model_file_is_a_503(fresh: Served) -> None:
    s3 = boto3.client("s3")
    key = version_prefix("house-prices", "1") + "model.onnx"
    for item in s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", []):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=item["VersionId"])
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        provider(fresh, FakeClock()).current()


def test_a_model_with_the_right_digest_that_onnxruntime_cannot_load_is_refused(
    fresh: Served, config: ModelConfig
) -> None:
    # Registered through the real service, but the "model" is not an ONNX graph: the digests
    # all agree, so only onnxruntime can refuse it, and it must be a clean 503.
    garbage = b"not an onnx model"
    digest = hashlib.sha256(garbage).hexdigest()
    prefix = version_prefix("house-prices", "9")
    manifest = json.loads(
        fresh.store.get_bytes(version_prefix("house-prices", "1") + "manifest.json")
    )
    manifest["version"] = "9"
    manifest["artifacts"]["model.onnx"]["sha256"] = digest
    fresh.store.put_version(
        "house-prices", "9", {"model.onnx": garbage, "manifest.json": json.dumps(manifest).encode()}
    )
    fresh.registry.put_version(
        VersionRecord(
            "house-prices", "9", "now", prefix + "manifest.json", digest, {}, "registered"
        )
    )
    fresh.registry.move_alias("house-prices", "production", "9", expected="1")
    with pytest.raises(ModelUnavailableError, match="version 9 does not load"):
        provider(fresh, FakeClock()).current()


# ------------------------------------------------------------------ served vs alias, visibly


def test_a_promotion_to_a_broken_version_is_visible_while_the_old_one_serves(
    fresh: Served,
    config: ModelConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ALIAS_REFRESH_WAIT_SECONDS", "30")
    module = load_handler_module()
    invoke = invoker(module)
    # Given v2 promoted with a corrupted model file
    promoted(fresh, config, 2, "s3://data/month2.csv")
    _replace_artifacts("2", b"corrupt", fix_manifest=False)
    module.service.expire_model()
    capsys.readouterr()
    # When clients call the API
    predicted = invoke(load_event("http_predict.json"))
    health = invoke(load_event("http_health.json"))
    described = invoke(load_event("http_model.json"))
    # Then v1 keeps answering, and /health and /model say production names v2 and why not
    assert json.loads(predicted["body"])["model_version"] == "1"
    assert health["statusCode"] == 200
    report = json.loads(health["body"])
    assert report["status"] == "degraded"
    assert (report["model_version"], report["alias_version"]) == ("1", "2")
    assert "sha256" in report["reason"]
    model = json.loads(described["body"])
    assert (model["model_version"], model["alias_version"]) == ("1", "2")
    assert model["aliases"]["production"] == "2"
    # And every request while they differ counts a ServedVersionMismatch (the alarm's metric)
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    mismatches = [m for m in emf if "ServedVersionMismatch" in m]
    assert len(mismatches) == 3
    # When the alias is moved back, the state is consistent again and the metric stops
    fresh.trainer.promote("house-prices", "1")
    module.service.expire_model()
    report = json.loads(invoke(load_event("http_health.json"))["body"])
    assert report == {
        "status": "ok",
        "model_version": "1",
        "alias": "production",
        "alias_version": "1",
    }
    assert "ServedVersionMismatch" not in capsys.readouterr().out


@pytest.mark.parametrize("name", ["ServedVersionMismatchAlarm", "CandidateLoadFailuresAlarm"])
def test_the_alarm_watches_the_metric_the_service_emits(name: str) -> None:
    template = load_template(ROOT / "template.yaml")
    alarm = template["Resources"][name]["Properties"]
    source = (ROOT / "layers/core/mlops/services/model_provider.py").read_text()
    (constant,) = [k for k, v in vars(Metric).items() if v == alarm["MetricName"]]
    assert f"name=Metric.{constant}" in source
    assert (
        alarm["Namespace"]
        == template["Globals"]["Function"]["Environment"]["Variables"][
            "POWERTOOLS_METRICS_NAMESPACE"
        ]
    )
    service = template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"][
        "POWERTOOLS_SERVICE_NAME"
    ]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]


# ------------------------------------------------------------------ a hung dependency


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a hung DynamoDB or S3."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_hung_registry_delays_a_request_by_at_most_the_refresh_wait(
    fresh: Served, hanging_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm container serving v1, with the default wait bound (0.1 s)
    clock = FakeClock()
    models = provider(fresh, clock, wait=InferenceSettings.alias_refresh_wait_seconds)
    assert models.current().version == "1"
    # When the registry starts accepting connections and never answering
    hung = boto3.client("dynamodb", endpoint_url=hanging_endpoint, config=aws.CLIENT_CONFIG)
    monkeypatch.setattr(fresh.registry, "_db", hung)
    clock.now += 31
    started = time.perf_counter()
    loaded = models.current()
    elapsed = time.perf_counter() - started
    # Then the request that triggered the re-check is answered by v1 within the bound
    assert loaded.version == "1"
    assert elapsed < 0.1 + 0.4  # the bound plus scheduling slack on a loaded machine
    # And the requests behind it do not wait at all while the re-check hangs
    started = time.perf_counter()
    for _ in range(100):
        assert models.current().version == "1"
    assert time.perf_counter() - started < 0.1


# ------------------------------------------------------------------ canonical versions


@pytest.mark.parametrize("raw", ["01", " 1", "+2", "\u0661", "abc", "../1", "1.0", "", "0", "-1"])
def test_a_non_canonical_version_is_refused_everywhere(fresh: Served, raw: str) -> None:
    with pytest.raises(InvalidInputError):
        fresh.trainer.promote("house-prices", raw)
    with pytest.raises(InvalidInputError):
        fresh.registry.move_alias("house-prices", "production", raw, expected="1")
    assert fresh.registry.get_alias("house-prices", "production") == "1"


def test_an_alias_record_holding_a_non_canonical_version_is_reported_not_served(
    fresh: Served,
) -> None:
    # An alias written before versions were canonical (or by hand): "01"
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": "model#house-prices"}, "sk": {"S": "alias#production"}},
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": {"S": "01"}},
    )
    with pytest.raises(ModelUnavailableError, match="'01', which is not a version number"):
        provider(fresh, FakeClock()).current()


# ------------------------------------------------------------------ classifier label types


def test_a_classifier_trained_on_integer_labels_answers_integers(inference_env: None) -> None:
    config = parse_config(
        {
            "name": "house-prices",
            "task": "classification",
            "target": "expensive",
            "features": [{"name": "sqft", "type": "numeric"}],
            "estimator": {"type": "logistic_regression", "params": {}},
        }
    )
    columns = generate(600, conditions_for_month(0), seed=4)
    label = (columns["price"] > np.median(columns["price"])).astype(int)
    data = csv_bytes({"sqft": columns["sqft"], "expensive": label.astype(object)})
    TrainingService(
        ModelStore(BUCKET, aws.client("s3")), Registry(TABLE, aws.client("dynamodb")), "test"
    ).train_and_register(config, data, "s3://data/expensive.csv")
    invoke = invoker(load_handler_module())
    body = json.loads(
        invoke(http_event("http_predict.json", {"instances": [{"sqft": 6000}, {"sqft": 600}]}))[
            "body"
        ]
    )
    assert body["predictions"] == [1, 0]
    assert all(type(p) is int for p in body["predictions"])
    assert set(body["probabilities"][0]) == {"0", "1"}  # JSON keys are strings
    described = json.loads(invoke(load_event("http_model.json"))["body"])
    assert described["classes"] == [0, 1]


def test_a_cold_start_against_a_hung_registry_answers_503_within_the_load_wait(
    fresh: Served, hanging_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cold container whose registry accepts connections and never answers
    hung = boto3.client("dynamodb", endpoint_url=hanging_endpoint, config=aws.CLIENT_CONFIG)
    monkeypatch.setattr(fresh.registry, "_db", hung)
    models = ModelProvider(
        "house-prices",
        "production",
        registry=fresh.registry,
        store=fresh.store,
        refresh_seconds=30,
        load_wait_seconds=0.5,
        clock=FakeClock(),
    )
    # When a request arrives, it waits for the load only up to the bound, then gets a 503
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="still loading"):
        models.current()
    assert time.perf_counter() - started < 0.5 + 0.5
