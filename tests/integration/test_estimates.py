"""Quality estimated before labels, through the real services against moto: the retrainer fits
the loss model, the gate checks it, the logger scores it (or counts rows unscored when it cannot),
the evaluator reports the ESTIMATE and acts on it only with ``[drift] estimate_retrain``."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.adapters import aws
from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.domain import capture
from mlops.domain.config import ModelConfig
from mlops.domain.estimate import LOSS_MODEL, Calibration, LossModelSpec, fit_calibration
from mlops.domain.estimate_sketch import NO_RELATIVE, LossSums
from mlops.domain.loss_model import FittedLossModel
from mlops.domain.loss_scoring import LossModel
from mlops.domain.sketch import Sketch
from mlops.domain.synthetic import MarketConditions, conditions_for_month, generate
from mlops.errors import ParityError
from mlops.services import candidates
from mlops.services.gate_estimates import check_estimates
from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
from mlops.services.training import TrainingService
from tests.conftest import BUCKET, ROOT
from tests.integration.test_drift_evaluator import Evaluator, evaluator, report

__all__ = ["evaluator"]  # the drift evaluator's fixture, shared

MODEL = "house-prices"
HOUR = 1_714_557_600_000  # 2024-05-01T10:00Z
PREFIX = f"models/{MODEL}/1/"


def _events(rows: int) -> list[LogEvent]:
    columns = generate(rows, conditions_for_month(0), seed=11)
    names = [n for n in columns if n != "price"]
    events = []
    for i in range(rows):
        instance = {n: v.item() if hasattr(v := columns[n][i], "item") else v for n in names}
        (line,) = capture.capture_lines(
            model=MODEL, version="1", alias="production", variant=None,
            request_id=f"r{i}", timestamp_ms=HOUR + i, latency_ms=0.2,
            instances=[instance], prediction_ids=[str(uuid.uuid4())],
            predictions=[float(columns["price"][i])], probabilities=None,
        )  # fmt: skip
        events.append(LogEvent(f"{i:056d}", HOUR + i, line))
    return events


def _sketch(store: ModelStore) -> Sketch:
    s3 = boto3.client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="sketches/")["Contents"]
        if "/rollup/" not in o["Key"]
    ]
    (key,) = keys
    return Sketch.from_dict(json.loads(store.get_bytes(key)))


@pytest.fixture
def v1(trainer: TrainingService, store: ModelStore, config: ModelConfig, month0_csv: bytes) -> None:
    trainer.train_and_register(config, month0_csv, "s3://data/month0.csv")


def _logger(store: ModelStore) -> PredictionLoggerService:
    return PredictionLoggerService(CaptureStore(BUCKET, aws.client("s3")), store, model_name=MODEL)


def test_the_logger_scores_the_loss_model_and_sketches_the_estimated_errors(
    v1: None, store: ModelStore
) -> None:
    summary = _logger(store).store_batch(_events(40))
    part = _sketch(store).estimate
    assert isinstance(part, LossSums)
    assert (part.count, part.unscored, summary.estimate_unscored_rows) == (40, 0, 0)
    assert part.floats()[0] > 0  # estimated absolute errors of house prices
    # MAPE: every row predicted a price, so every scored row has a relative error a / price.
    assert part.relative is not None
    assert part.relative.count == 40
    _, r1, _ = part.relative.floats()
    assert 0 < r1 / 40 < part.floats()[0] / 40  # prices are far above 1: r well below a
    spec = LossModelSpec.from_dict(store.get_json(PREFIX + "baseline.json")["estimate"])
    assert spec.has_mape  # the retrainer measured MAPE's constants on the holdout


def test_rows_the_loss_model_cannot_read_are_unscored_not_guessed(
    v1: None, store: ModelStore
) -> None:
    spec = LossModelSpec.from_dict(store.get_json(PREFIX + "baseline.json")["estimate"])
    scorer = LossModel(
        store.get_bytes(PREFIX + LOSS_MODEL),
        numeric=["sqft", "bedrooms", "bathrooms", "year_built", "lot_size",
                 "distance_to_center", "interest_rate"],
        categorical=["location", "property_type"],
        prediction_input=spec.prediction_input,
    )  # fmt: skip
    good = json.loads(_events(1)[0].message)
    house, price = good["instances"][0], good["predictions"][0]
    rows = [
        {"inputs": house, "prediction": price},
        {"inputs": house | {"sqft": None}, "prediction": price},
        {"inputs": house | {"sqft": "big"}, "prediction": price},
        {"inputs": house | {"bedrooms": True}, "prediction": price},
        {"inputs": house, "prediction": float("nan")},
        {"inputs": None, "prediction": price},  # a truncated capture
        {"inputs": house | {"location": None}, "prediction": price},  # a missing category
    ]
    scored = scorer.score(rows)
    assert scored[0] is not None
    assert scored[1:6] == [None] * 5
    assert scored[6] is not None  # an unknown or missing category is scored, as by the model
    assert scorer.score(rows[:1]) == scored[:1]  # a row's estimate does not depend on its batch


@pytest.mark.parametrize("damage", ["missing", "altered", "not onnx"])
def test_without_a_usable_loss_model_rows_are_unscored_and_nothing_else_changes(
    v1: None, store: ModelStore, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = boto3.client("s3")
    body = store.get_bytes(PREFIX + LOSS_MODEL)
    if damage == "missing":
        s3.delete_object(Bucket=BUCKET, Key=PREFIX + LOSS_MODEL)
    else:
        bad = body[:-1] + bytes([body[-1] ^ 1]) if damage == "altered" else b"not a model"
        s3.put_object(Bucket=BUCKET, Key=PREFIX + LOSS_MODEL, Body=bad)
    summary = _logger(store).store_batch(_events(25))
    part = _sketch(store).estimate
    assert part == LossSums(0, 0, 0, 0, 25, NO_RELATIVE)
    assert summary.estimate_unscored_rows == 25
    assert summary.captured_predictions == 25  # captures and the sketch are written anyway
    assert "loss model unusable" in caplog.text


def test_the_gate_rejects_a_candidate_whose_loss_model_is_not_the_one_described(
    trainer: TrainingService,
    config: ModelConfig,
    month0_csv: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = candidates.estimate_section

    def swapped(trained: Any, config: ModelConfig) -> Any:
        section, loss = real(trained, config)
        assert loss is not None
        other = FittedLossModel(loss.onnx + b"\0", loss.spec, loss.holdout_estimates)
        return section, other

    monkeypatch.setattr(candidates, "estimate_section", swapped)
    with pytest.raises(ParityError, match="not the loss model the baseline names"):
        trainer.train_and_register(config, month0_csv, "s3://data/month0.csv")


def test_the_gate_rejects_a_broken_dle_description(
    trainer: TrainingService,
    config: ModelConfig,
    month0_csv: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = candidates.estimate_section

    def broken(trained: Any, config: ModelConfig) -> Any:
        section, loss = real(trained, config)
        return section | {"mse_ratio": -1.0}, loss

    monkeypatch.setattr(candidates, "estimate_section", broken)
    with pytest.raises(ParityError, match="DLE description is broken: mse_ratio"):
        trainer.train_and_register(config, month0_csv, "s3://data/month0.csv")


def test_a_classifier_s_calibration_is_checked_by_the_gate(config: ModelConfig) -> None:
    rng = np.random.default_rng(0)
    top = rng.uniform(0.5, 1, 400)
    actual = np.where(rng.random(400) < top, "a", "b")
    good = fit_calibration(["a"] * 400, np.column_stack([top, 1 - top]), actual, ["a", "b"])
    assert good is not None
    classifier = replace(config, task="classification")
    doc = {"classes": ["a", "b"]}

    def judged(section: dict[str, Any], classes: list[str] = ["a", "b"]) -> str | None:  # noqa: B006
        files = {"baseline.json": json.dumps({"estimate": section}).encode()}
        return check_estimates(classifier, doc | {"classes": classes}, files, None)  # type: ignore[arg-type]

    assert judged(good.to_dict()) is None
    falling = good.to_dict()
    falling["values"]["a"] = sorted(falling["values"]["a"], reverse=True)
    assert falling["values"]["a"][0] > falling["values"]["a"][-1]
    assert "decrease with confidence" in str(judged(falling))
    assert "other classes" in str(judged(good.to_dict(), ["a", "c"]))
    assert Calibration.from_dict(good.to_dict()) == good


# ----------------------------------------------------------------------------- evaluator


def _stack_config(retrain: bool) -> None:
    text = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    text += (
        "\n[drift]\ndrift_share = 1.0\nquality_tolerance = 0.05\n"
        f"estimate_retrain = {'true' if retrain else 'false'}\n"
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=text.encode())


BIGGER_HOMES = MarketConditions(size_shift=0.8)  # bigger, dearer homes: bigger errors


@pytest.mark.parametrize("retrain", [False, True])
def test_an_estimate_breach_requests_retraining_only_with_estimate_retrain(
    evaluator: Evaluator, retrain: bool
) -> None:
    _stack_config(retrain)
    evaluator.serve(BIGGER_HOMES, 2000, seed=107, labels=False)  # no labels yet
    result = evaluator.run()
    doc = report(evaluator, result)
    estimate = doc["estimate"]
    assert estimate["label"] == "ESTIMATE"
    assert estimate["kind"] == "dle"
    assert estimate["available"], estimate["reason"]
    assert estimate["breach"], estimate["reason"]
    window = estimate["window"]["rmse"]
    assert window["low"] > estimate["holdout"] * 1.05
    assert not doc["verdict"]["dataset_drift"]
    assert not doc["verdict"]["quality_breach"]
    assert doc["verdict"]["estimate_breach"] is True
    assert result["retrain_requested"] is retrain
    assert len(evaluator.requests()) == int(retrain)
    assert doc["headline"].startswith("Estimated quality loss: ESTIMATED RMSE +")
    if not retrain:
        assert any("estimate_retrain is off" in r for r in doc["verdict"]["reasons"])


def test_estimated_and_realized_quality_stand_side_by_side_once_labels_arrive(
    evaluator: Evaluator,
) -> None:
    evaluator.serve(0, 2000, seed=108)  # the same market, labeled
    result = evaluator.run({"window_hours": 24, "act": False})
    doc = report(evaluator, result)
    estimate = doc["estimate"]
    assert estimate["available"]
    assert not estimate["breach"]
    [hour] = estimate["hours"]
    assert hour["rows"] == 2000
    assert hour["labels"] == 2000
    realized = doc["quality"]["metrics"]["rmse"]
    assert hour["realized"] == pytest.approx(realized)
    assert hour["error"] == pytest.approx(hour["estimates"]["rmse"]["value"] - realized)
    assert hour["covered"] is True  # the same market: the interval holds the truth
    html = evaluator.store.get_bytes(result["html"].removeprefix(f"s3://{BUCKET}/")).decode()
    assert "Estimated quality (ESTIMATE, before labels)" in html
    assert 'class="estimated"' in html
    assert 'class="realized"' in html


def test_pure_concept_drift_leaves_the_estimate_where_it_was(evaluator: Evaluator) -> None:
    evaluator.serve(0, 2000, seed=109, price_factor=1.4)  # same inputs, prices 40 % higher
    doc = report(evaluator, evaluator.run({"window_hours": 24, "act": False}))
    assert doc["verdict"]["quality_breach"]  # the labels see it
    estimate = doc["estimate"]
    assert not estimate["breach"]  # the estimate cannot: it never sees a label
    rmse = estimate["window"]["rmse"]["value"]
    assert rmse == pytest.approx(estimate["holdout"], rel=0.15)
    assert doc["quality"]["metrics"]["rmse"] > 2 * rmse


def test_with_mape_as_the_gate_metric_the_estimate_is_of_mape(evaluator: Evaluator) -> None:
    text = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    assert 'metric = "rmse"' in text
    text = text.replace('metric = "rmse"', 'metric = "mape"', 1)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=text.encode())
    evaluator.serve(0, 2000, seed=110)  # the same market, labeled
    result = evaluator.run({"window_hours": 24, "act": False})
    doc = report(evaluator, result)
    estimate = doc["estimate"]
    assert (estimate["metric"], estimate["greater_is_better"]) == ("mape", False)
    assert estimate["available"], estimate["reason"]
    assert estimate["fallback"] == ""
    assert not estimate["breach"], estimate["reason"]
    assert (
        estimate["holdout"] == evaluator.store.get_json(PREFIX + "manifest.json")["metrics"]["mape"]
    )
    assert estimate["no_relative"] == 0  # every house got a price
    [hour] = estimate["hours"]
    realized = doc["quality"]["metrics"]["mape"]
    assert 0 < realized < 1  # a fraction, as live quality keeps it
    assert hour["realized"] == pytest.approx(realized)
    assert hour["covered"] is True, (hour["estimates"]["mape"], realized)
    assert estimate["reason"].startswith("ESTIMATED mape ")
    assert "%" in estimate["reason"]  # shown as a percentage, as live MAPE is
