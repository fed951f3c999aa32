"""The drift evaluator through its real handler, against moto: traffic written by the real
prediction logger (captures, feedback, sketches), a v1 trained by the real pipeline, the retrain
request caught on the bus through a rule with a queue target."""

from __future__ import annotations

import gzip
import json
import math
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest

from mlops import settings
from mlops.adapters import aws
from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain import capture, quality
from mlops.domain.config import ModelConfig
from mlops.domain.ids import uuid7s
from mlops.domain.serving import SAMPLE_SIZE
from mlops.domain.synthetic import MarketConditions, conditions_for_month, csv_bytes, generate
from mlops.services.model_loading import load_version
from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
from mlops.services.training import TrainingService
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, TABLE, import_fresh, moto_resources

MODEL = "house-prices"
BUS = "test-retrain-bus"
NOW = datetime.now(UTC)
ENV = {
    "MODEL_NAME": MODEL,
    "MODEL_BUCKET": BUCKET,
    "CAPTURE_BUCKET": BUCKET,
    "REGISTRY_TABLE": TABLE,
    "RETRAIN_BUS": BUS,
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOps",
}
FEATURES = [
    "sqft",
    "bedrooms",
    "bathrooms",
    "year_built",
    "lot_size",
    "distance_to_center",
    "interest_rate",
    "location",
    "property_type",
]


@dataclass
class Evaluator:
    handler: ModuleType
    store: ModelStore
    logger: PredictionLoggerService
    queue_url: str
    config: ModelConfig

    def run(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = event if event is not None else {"window_hours": 24}
        return dict(self.handler.lambda_handler(payload, LambdaContext("DriftEvaluatorFunction")))

    def serve(
        self,
        month: int | MarketConditions,
        rows: int,
        *,
        seed: int,
        price_factor: float = 1.0,
        labels: bool = True,
        flood: int = 0,
        delivery: int | None = None,
        time_ordered: bool = False,
        evaluation: bool = False,
    ) -> None:
        """``rows`` predictions of production on ``month`` of the market (or on explicit
        conditions), captured and (with ``labels``) labeled, stored by the real logger as its
        subscription would: ``delivery`` log events (of 200 rows) a batch, all in one by
        default. ``flood``: that many rows have a random 32-character ``location`` and
        ``property_type`` each, as a client with /predict access can send. Ids are random
        (UUIDv4, as before time-ordered ids) unless ``time_ordered`` (UUIDv7, as /predict
        issues now). ``evaluation``: sent as evaluation traffic (log event ids of their own)."""
        conditions = conditions_for_month(month) if isinstance(month, int) else month
        columns = generate(rows, conditions, seed=seed)
        rng = np.random.default_rng(seed)
        for name in ("location", "property_type") if flood else ():
            letters = rng.choice(list(string.ascii_letters), size=(flood, 32))
            columns[name] = [*("".join(r) for r in letters), *columns[name][flood:]]
        loaded = load_version(self.store, Registry(TABLE, aws.client("dynamodb")), MODEL, "1")
        inputs = {n: np.asarray(columns[n]) for n in FEATURES}
        predictions = loaded.model.score(inputs).values
        ts = int((NOW - timedelta(hours=2)).timestamp() * 1000)
        events = []
        first = 10**9 if evaluation else 0
        ids = uuid7s(ts, rows) if time_ordered else [str(uuid.uuid4()) for _ in range(rows)]
        for start in range(0, rows, 200):
            stop = min(rows, start + 200)
            instances = [{n: _plain(columns[n][i]) for n in FEATURES} for i in range(start, stop)]
            for line in capture.capture_lines(
                model=MODEL, version="1", alias="production", variant=None,
                request_id=f"r{start}", timestamp_ms=ts + start, latency_ms=0.3,
                instances=instances, prediction_ids=ids[start:stop],
                predictions=list(predictions[start:stop]), probabilities=None,
                evaluation=evaluation,
            ):  # fmt: skip
                events.append(LogEvent(f"{len(events) + first:056d}", ts + start, line))
        if labels:
            items = [
                {"prediction_id": ids[i], "actual": float(columns["price"][i]) * price_factor}
                for i in range(rows)
            ]
            for line in capture.feedback_line(model=MODEL, timestamp_ms=ts + rows, items=items):
                events.append(LogEvent(f"{len(events) + first:056d}", ts + rows, line))
        size = delivery or len(events)
        for start in range(0, len(events), size):
            self.logger.store_batch(events[start : start + size])

    def requests(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return out
            for message in got["Messages"]:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@pytest.fixture
def evaluator(config: ModelConfig) -> Iterator[Evaluator]:
    with moto_resources(ENV):
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name=BUS)
        queue_url = sqs.create_queue(QueueName="requests")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="retrain",
            EventBusName=BUS,
            EventPattern=json.dumps({"detail-type": ["RetrainRequested"]}),
        )
        events.put_targets(Rule="retrain", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
        store = ModelStore(BUCKET, aws.client("s3"))
        trainer = TrainingService(store, Registry(TABLE, aws.client("dynamodb")), "test")
        trainer.train_and_register(
            config, csv_bytes(generate(3000, conditions_for_month(0), seed=0)), "s3://d/m0.csv"
        )
        settings.drift_settings.cache_clear()
        handler = import_fresh("drift_app_under_test", ROOT / "functions/drift_evaluator/app.py")
        logger = PredictionLoggerService(
            CaptureStore(BUCKET, aws.client("s3")), store, model_name=MODEL
        )
        yield Evaluator(handler, store, logger, queue_url, config)


def report(evaluator: Evaluator, result: dict[str, Any]) -> dict[str, Any]:
    return dict(evaluator.store.get_json(result["report"].removeprefix(f"s3://{BUCKET}/")))


def test_same_market_traffic_is_no_drift_and_requests_nothing(evaluator: Evaluator) -> None:
    evaluator.serve(0, 2000, seed=101)
    result = evaluator.run()
    assert result["status"] == "ok", report(evaluator, result)["verdict"]
    assert not result["dataset_drift"]
    assert not result["quality_breach"]
    assert not result["retrain_requested"]
    assert evaluator.requests() == []
    doc = report(evaluator, result)
    assert doc["rows"] == 2000
    assert doc["quality"]["labels"] == 2000
    assert doc["mode"] == "sketch"


def test_a_moved_market_drifts_and_requests_retraining_with_its_report(
    evaluator: Evaluator,
) -> None:
    # Month 6: rates up, a new district, bigger homes (the generator's knobs)
    evaluator.serve(6, 2000, seed=106)
    result = evaluator.run()
    doc = report(evaluator, result)
    assert result["status"] == "drift", doc["verdict"]
    assert result["retrain_requested"]
    drifted = set(doc["verdict"]["drifted"])
    assert {"interest_rate", "location"} <= drifted
    # The HTML report sits next to the JSON one
    html = evaluator.store.get_bytes(result["html"].removeprefix(f"s3://{BUCKET}/")).decode()
    assert "Dataset drift" in html
    # And the retrain request reached the bus, pointing at the report
    [request] = evaluator.requests()
    assert request["detail-type"] == "RetrainRequested"
    assert request["source"] == "mlops.drift"
    assert request["detail"]["report_uri"] == result["report"]
    assert request["detail"]["model"] == MODEL
    # A second evaluation within the cool-down reports but does not request again
    again = evaluator.run()
    assert again["status"] == "drift"
    assert not again["retrain_requested"]
    assert any("cool-down" in r for r in report(evaluator, again)["verdict"]["reasons"])
    assert evaluator.requests() == []


def test_concept_drift_is_caught_by_live_quality_not_by_feature_tests(
    evaluator: Evaluator,
) -> None:
    # The same inputs as training, but every sale now closes 40 % higher
    evaluator.serve(0, 2000, seed=102, price_factor=1.4)
    result = evaluator.run()
    doc = report(evaluator, result)
    assert not result["dataset_drift"], doc["verdict"]
    assert result["quality_breach"]
    assert result["retrain_requested"]
    assert doc["quality"]["value"] > doc["quality"]["holdout"] * 1.2


@pytest.mark.parametrize(
    ("knob", "feature"),
    [
        (MarketConditions(size_shift=0.3), "sqft"),  # buyers go for bigger homes
        (MarketConditions(new_location_share=0.15), "location"),  # a new district
        (MarketConditions(interest_rate=6.5), "interest_rate"),  # economic conditions
    ],
)
def test_each_feature_knob_of_the_market_is_detected_on_its_feature(
    evaluator: Evaluator, knob: MarketConditions, feature: str
) -> None:
    evaluator.serve(knob, 2000, seed=104, labels=False)
    doc = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    drifted = {f["name"] for f in doc["features"] if f["drifted"]}
    assert feature in drifted, {f["name"]: f["statistics"] for f in doc["features"]}


def test_the_price_level_knob_is_caught_by_live_quality(evaluator: Evaluator) -> None:
    evaluator.serve(MarketConditions(price_level=1.35), 2000, seed=105)
    doc = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    assert doc["verdict"]["quality_breach"]
    assert not doc["verdict"]["dataset_drift"]


def test_an_empty_window_is_insufficient_data(evaluator: Evaluator) -> None:
    result = evaluator.run()
    assert result["status"] == "insufficient_data"
    assert not result["retrain_requested"]
    assert evaluator.requests() == []


def test_a_small_window_is_evaluated_exactly_from_the_captures(evaluator: Evaluator) -> None:
    evaluator.serve(6, 400, seed=7, labels=False)
    result = evaluator.run({"window_hours": 24, "act": False})
    doc = report(evaluator, result)
    assert doc["mode"] == "exact"
    assert result["status"] == "drift"
    assert not result["retrain_requested"]  # act: false reports only
    assert doc["quality"]["labels"] == 0


@pytest.mark.parametrize(("rows", "mode"), [(300, "exact"), (301, "sketch")])
def test_a_window_of_exactly_small_sample_rows_is_read_raw_and_one_more_row_is_not(
    evaluator: Evaluator, rows: int, mode: str
) -> None:
    # Given a stack config whose small windows end at 300 rows (the default 1,000 made small)
    text = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    small = text + "\n[drift]\nsmall_sample_rows = 300\n"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=small.encode())
    evaluator.serve(6, rows, seed=8, labels=False)
    # When
    doc = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    # Then 300 rows are judged from the captures, 301 from the sketches, to the same effect
    assert doc["rows"] == rows
    assert doc["mode"] == mode
    assert {"interest_rate", "location", "sqft"} <= set(doc["verdict"]["drifted"])


@pytest.mark.parametrize(("rows", "mode"), [(400, "exact"), (2000, "sketch")])
def test_a_config_feature_the_baseline_lacks_is_reported_not_judged(
    evaluator: Evaluator, rows: int, mode: str
) -> None:
    # Given a stack config that names a feature v1 was not trained with
    text = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    extra = text.replace(
        "[estimator]", '[[features]]\nname = "garage_spaces"\ntype = "numeric"\n\n[estimator]'
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=extra.encode())
    evaluator.serve(6, rows, seed=10, labels=False)
    # When (before: exact mode raised ValueError, sketch mode left the feature out unsaid)
    result = evaluator.run({"window_hours": 24, "act": False})
    doc = report(evaluator, result)
    # Then the run reports, the feature is listed as not judged with the reason, and the
    # other nine are judged and counted
    assert doc["mode"] == mode
    garage = next(f for f in doc["features"] if f["name"] == "garage_spaces")
    assert garage["judged"] is False
    assert "no numeric feature 'garage_spaces'" in garage["note"]
    assert result["status"] == "drift"
    assert doc["drift_share"] == len(doc["verdict"]["drifted"]) / 9


def test_a_corrupt_sketch_is_skipped_and_reported(evaluator: Evaluator) -> None:
    evaluator.serve(0, 1500, seed=103, labels=False)
    hour = NOW - timedelta(hours=2)
    key = f"sketches/model={MODEL}/version=1/dt={hour:%Y-%m-%d}/hour={hour:%H}/corrupt.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"{broken")
    result = evaluator.run()
    doc = report(evaluator, result)
    assert result["status"] == "ok"
    assert [s["key"] for s in doc["sources"]["skipped"]] == [key]


def test_a_version_without_baseline_is_reported(evaluator: Evaluator) -> None:
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"models/{MODEL}/1/baseline.json")
    result = evaluator.run()
    assert result["status"] == "insufficient_data"
    assert any("no baseline.json" in r for r in report(evaluator, result)["verdict"]["reasons"])


def test_an_event_that_is_not_a_schedule_or_a_request_is_refused(evaluator: Evaluator) -> None:
    with pytest.raises(Exception, match="window_hours"):
        evaluator.run({"window_hours": 0})


def test_a_per_feature_threshold_in_the_stack_config_changes_that_feature_s_verdict(
    evaluator: Evaluator,
) -> None:
    text = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    lenient = text + (
        "\n[drift.features.interest_rate]\n"
        "psi_threshold = 1000\npsi_warn = 999\nwasserstein_threshold = 1000\n"
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=lenient.encode())
    evaluator.serve(MarketConditions(interest_rate=6.5), 2000, seed=104, labels=False)
    doc = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    rate = next(f for f in doc["features"] if f["name"] == "interest_rate")
    assert not rate["drifted"], rate["statistics"]
    assert rate["thresholds"]["psi"] == 1000


def test_operators_get_a_drift_score_per_feature_and_the_alarmed_metrics(
    evaluator: Evaluator, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluator.serve(6, 2000, seed=106, labels=False)
    capsys.readouterr()
    evaluator.run({"window_hours": 24, "act": False})
    blobs = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "_aws" in line
    ]
    scores = {
        b["feature"]: np.ravel(b["FeatureDriftScore"])[0] for b in blobs if "FeatureDriftScore" in b
    }
    assert set(scores) == set(FEATURES)
    assert scores["interest_rate"] > 0.25  # its PSI
    score_blob = next(b for b in blobs if "FeatureDriftScore" in b)
    assert score_blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == [
        "service",
        "model",
        "feature",
    ]
    main = next(b for b in blobs if "DatasetDrift" in b)
    assert np.ravel(main["DatasetDrift"])[0] == 1
    namespaces = {b["_aws"]["CloudWatchMetrics"][0]["Namespace"] for b in blobs}
    assert len(namespaces) == 1  # the per-feature scores go where the alarmed metrics go


def test_a_tiny_window_is_reported_but_never_judged(evaluator: Evaluator) -> None:
    evaluator.serve(6, 150, seed=9, labels=False)  # drifted, but fewer rows than min_rows
    result = evaluator.run()
    doc = report(evaluator, result)
    assert result["status"] == "insufficient_data"
    assert not result["dataset_drift"]
    assert not result["retrain_requested"]
    assert any("150 rows" in r for r in doc["verdict"]["reasons"])


def test_a_flooded_window_is_evaluated_from_bounded_sketches_with_the_exact_unseen_share(
    evaluator: Evaluator,
) -> None:
    # Given 20,000 predictions in batches of 1,000, of which 15,000 name a random location and
    # property type each (the review's flood, scaled down)
    evaluator.serve(0, 20_000, seed=111, labels=False, flood=15_000, delivery=5)
    # When the evaluator runs
    doc = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    # Then it reports from sketches that kept 64 names a feature, not 15,000
    assert (doc["mode"], doc["rows"], doc["sources"]["batches"]) == ("sketch", 20_000, 20)
    hour = NOW - timedelta(hours=2)
    rollup = evaluator.store.get_json(
        f"sketches/model={MODEL}/version=1/rollup/dt={hour:%Y-%m-%d}/hour={hour:%H}.json"
    )
    for name in ("location", "property_type"):
        assert len(rollup["sketch"]["categorical"][name]["unseen_top"]) == 64
    # Its serving digests (what a rollout is judged on) hold at most K samples each
    serving = rollup["sketch"].pop("serving")
    assert all(
        len(digest[column]) <= SAMPLE_SIZE
        for digest in serving.values()
        for column in ("latency_ms", "answers")
    )
    assert len(json.dumps(rollup)) < 30_000  # every unique string kept: over 1 MB
    # And the unseen share is exact: the 15,000 random values (the rest are known ones)
    shares = {
        f["name"]: f["statistics"]["unseen_share"]
        for f in doc["features"]
        if f["type"] == "categorical"
    }
    assert shares == {"location": 15_000 / 20_000, "property_type": 15_000 / 20_000}
    assert set(doc["verdict"]["drifted"]) == {"location", "property_type"}


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("rollup", b"null"),
        ("rollup", b"[]"),
        ("rollup", b"1"),
        ("rollup", b"[" * 100_000 + b"]" * 100_000),
        ("batch", b"[" * 100_000 + b"]" * 100_000),
        ("batch", "version=2"),
        ("batch", "a bin short"),
        ("batch", "sqft missing"),
    ],
)
def test_an_object_that_used_to_stop_the_evaluator_is_skipped_and_listed_in_its_report(
    evaluator: Evaluator, where: str, body: bytes | str
) -> None:
    # Given a window rolled up once, then one of the review's objects that raised
    evaluator.serve(0, 1500, seed=103, labels=False)
    evaluator.run({"window_hours": 24, "act": False})
    hour = NOW - timedelta(hours=2)
    base = f"sketches/model={MODEL}/version=1/"
    partition = f"dt={hour:%Y-%m-%d}/hour={hour:%H}"
    key = f"{base}rollup/{partition}.json" if where == "rollup" else f"{base}{partition}/bad.json"
    if isinstance(body, str):  # a real sketch of the window, damaged
        (batch,) = _keys(base + partition + "/")
        document = evaluator.store.get_json(batch)
        if body == "version=2":
            document["version"] = "2"
        elif body == "a bin short":
            counts = document["numeric"]["sqft"]["counts"]
            counts[-2] += counts.pop()
        else:
            document["numeric"].pop("sqft")
        body = json.dumps(document).encode()
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    # When the evaluator runs, twice
    first = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    second = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    # Then both report the window's 1,500 rows, and the first lists the object it skipped
    assert (first["rows"], second["rows"]) == (1500, 1500)
    assert [s["key"] for s in first["sources"]["skipped"]] == [key]
    assert first["verdict"]["status"] == second["verdict"]["status"] == "ok"


def _keys(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


# --- never silent: nothing non-finite published, the verdict said as it is, a heartbeat ------


def strict_json(text: str) -> Any:
    """JSON as every parser but Python's reads it: ``NaN``/``Infinity`` are errors."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def emf_lines(out: str) -> list[dict[str, Any]]:
    """Every embedded-metric line printed, each parsed as CloudWatch would (strictly)."""
    return [
        strict_json(line) for line in out.splitlines() if line.startswith("{") and "_aws" in line
    ]


def metric_values(out: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for blob in emf_lines(out):
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                values[metric["Name"]] = float(np.ravel(blob[metric["Name"]])[0])
    return values


def stored_report(evaluator: Evaluator, result: dict[str, Any]) -> dict[str, Any]:
    key = result["report"].removeprefix(f"s3://{BUCKET}/")
    return dict(strict_json(evaluator.store.get_bytes(key).decode()))


def label_captured(evaluator: Evaluator, actual: Callable[[int, float], Any]) -> None:
    """Label every stored capture: ``actual(index, prediction)``, written as stored feedback
    (what older data may hold: the logger stores what the log line says)."""
    s3 = boto3.client("s3")
    rows = []
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"captures/model={MODEL}/")
    for obj in sorted(listed.get("Contents", []), key=lambda o: o["Key"]):
        body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        rows += [json.loads(line) for line in body.splitlines() if line.strip()]
    items = [
        {"prediction_id": row["prediction_id"], "actual": actual(i, row["prediction"])}
        for i, row in enumerate(rows)
    ]
    ts = int((NOW - timedelta(hours=1)).timestamp() * 1000)
    lines = capture.feedback_line(model=MODEL, timestamp_ms=ts, items=items)
    evaluator.logger.store_batch([LogEvent(f"9{i:055d}", ts, line) for i, line in enumerate(lines)])


@pytest.mark.parametrize("time_ordered", [True, False], ids=["folded-labels", "legacy-ids"])
def test_a_stored_label_too_large_to_square_is_skipped_and_counted(
    evaluator: Evaluator, capsys: pytest.CaptureFixture[str], time_ordered: bool
) -> None:
    # Given 300 labeled predictions, one labeled 1e308 (accepted before /feedback refused it)
    evaluator.serve(0, 300, seed=111, labels=False, time_ordered=time_ordered)
    label_captured(evaluator, lambda i, p: 1e308 if i == 7 else p * 1.02)
    capsys.readouterr()
    # When the evaluator runs
    result = evaluator.run()
    # Then live quality is measured on the other 299, and the skipped one is counted
    doc = stored_report(evaluator, result)
    assert doc["sources"]["labels"]["folded"]["legacy"] is not time_ordered
    assert doc["quality"]["skipped_labels"] == 1
    assert doc["quality"]["labels"] == 299
    assert math.isfinite(doc["quality"]["value"])
    assert all(math.isfinite(v) for v in doc["quality"]["metrics"].values())
    assert not result["quality_breach"]
    assert not result["retrain_requested"]
    # And every metric line is valid JSON, the live metric among them
    published = metric_values(capsys.readouterr().out)
    assert published["QualityBreach"] == 0
    assert math.isfinite(published["LiveQuality"])


def test_labels_whose_squares_overflow_together_publish_no_live_metric(
    evaluator: Evaluator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given labels each just inside the limit, whose squared errors overflow when summed
    evaluator.serve(0, 300, seed=112, labels=False)
    label_captured(evaluator, lambda i, p: 1.3e154 if i < 3 else p)
    capsys.readouterr()
    result = evaluator.run()
    # Then the report says why there is no RMSE, and holds no NaN or infinity anywhere
    doc = stored_report(evaluator, result)
    assert doc["quality"]["value"] is None
    assert "rmse" not in doc["quality"]["metrics"]
    assert "not finite" in doc["quality"]["reason"]
    assert not result["quality_breach"]
    # And the metric lines stay valid, without a LiveQuality
    published = metric_values(capsys.readouterr().out)
    assert "LiveQuality" not in published
    assert published["QualityBreach"] == 0


def test_a_non_finite_live_quality_is_never_published_nor_written(
    evaluator: Evaluator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given live quality that came out infinite, whatever computed it
    measured = quality.measure

    def infinite(*args: Any, **kwargs: Any) -> quality.QualityResult:
        result = measured(*args, **kwargs)
        rmse = {"rmse": math.inf, "r2": math.nan}
        return replace(result, value=math.inf, breach=True, metrics=rmse)

    monkeypatch.setattr(quality, "measure", infinite)
    evaluator.serve(0, 300, seed=113)
    capsys.readouterr()
    # When the evaluator runs
    result = evaluator.run({"window_hours": 24, "act": False})
    # Then the breach is published on a valid line, the infinite value is not
    published = metric_values(capsys.readouterr().out)
    assert published["QualityBreach"] == 1
    assert "LiveQuality" not in published
    # And the JSON report is strict JSON: the values are null
    doc = stored_report(evaluator, result)
    assert doc["quality"]["value"] is None
    assert doc["quality"]["metrics"] == {"rmse": None, "r2": None}


def test_every_completed_run_publishes_the_heartbeat_even_without_data(
    evaluator: Evaluator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no traffic at all
    capsys.readouterr()
    # When the evaluator runs
    result = evaluator.run()
    # Then it reports that, and still says it ran (the dead man's switch's metric)
    assert result["status"] == "insufficient_data"
    assert metric_values(capsys.readouterr().out)["DriftEvaluations"] == 1


def test_a_concept_shift_is_headlined_as_a_quality_loss_everywhere(
    evaluator: Evaluator,
) -> None:
    # Given the training market's inputs, but every sale closing at twice the price
    evaluator.serve(0, 2000, seed=114, price_factor=2.0)
    # When the evaluator runs
    result = evaluator.run()
    doc = stored_report(evaluator, result)
    # Then the verdict is a quality loss, not "ok", with the change in its headline
    assert not result["dataset_drift"], doc["verdict"]
    assert result["status"] == doc["verdict"]["status"] == "quality_loss"
    assert result["retrain_requested"]
    holdout, live = doc["quality"]["holdout"], doc["quality"]["value"]
    change = round((live - holdout) / holdout * 100)
    assert doc["headline"] == result["headline"] == f"Quality loss: live RMSE +{change:,} %"
    # And the HTML page heads with the same words, never a green "No drift"
    html = evaluator.store.get_bytes(result["html"].removeprefix(f"s3://{BUCKET}/")).decode()
    assert f'<h1 id="verdict">{doc["headline"]}</h1>' in html
    assert "No drift" not in html
    assert '<header class="verdict tone-drift">' in html


@pytest.mark.parametrize("time_ordered", [True, False])
def test_evaluation_traffic_is_in_no_drift_or_live_quality_and_its_labels_are_counted(
    evaluator: Evaluator, time_ordered: bool
) -> None:
    # Given live traffic like training, and a labeled holdout sent as evaluation traffic that
    # would drift (month 6) and breach quality (40 % dearer) if it were counted
    evaluator.serve(0, 2000, seed=101, time_ordered=time_ordered)
    evaluator.serve(6, 500, seed=106, price_factor=1.4, evaluation=True, time_ordered=time_ordered)
    result = evaluator.run()
    doc = report(evaluator, result)
    # Then drift and live quality are those of the live traffic alone
    assert result["status"] == "ok", doc["verdict"]
    assert not result["quality_breach"]
    assert (doc["rows"], doc["quality"]["labels"]) == (2000, 2000)
    # And the report says how many evaluation labels the fold left out (ids that name their
    # hour; older ids are read the old way, where evaluation rows are skipped too)
    folded = doc["sources"]["labels"]["folded"]
    assert folded["evaluation"] == (500 if time_ordered else 0)
