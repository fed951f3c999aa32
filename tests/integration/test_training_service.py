"""Train → export → parity → register → promote, against moto."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.config import ModelConfig, ParityConfig
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import ConflictError, DataValidationError, ParityError
from mlops.services.training import TrainingService

PREFIX = "models/house-prices/"


def keys(store: ModelStore, prefix: str = PREFIX) -> list[str]:
    listing = store._s3.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_a_trained_version_is_stored_registered_and_promoted(
    trainer: TrainingService,
    store: ModelStore,
    registry: Registry,
    config: ModelConfig,
    month0_csv: bytes,
) -> None:
    # When v1 is trained from month 0
    result = trainer.train_and_register(config, month0_csv, "s3://data/month0.csv")
    # Then its five artifacts exist, the registry knows it and production points at it
    assert result.version == "1"
    assert result.promoted
    assert keys(store) == [
        PREFIX + "1/baseline.json",
        PREFIX + "1/golden.json.gz",
        PREFIX + "1/loss_model.onnx",  # DLE's loss model (a regressor's estimate)
        PREFIX + "1/manifest.json",
        PREFIX + "1/model.onnx",
    ]
    assert registry.aliases("house-prices") == {"production": "1"}
    record = registry.get_version("house-prices", "1")
    assert record is not None
    assert record.manifest_key == PREFIX + "1/manifest.json"
    # And the manifest's checksums and lineage are true to the bytes stored
    manifest = store.get_json(PREFIX + "1/manifest.json")
    model = store.get_bytes(PREFIX + "1/model.onnx")
    assert manifest["artifacts"]["model.onnx"]["sha256"] == hashlib.sha256(model).hexdigest()
    assert record.model_sha256 == hashlib.sha256(model).hexdigest()
    baseline = store.get_bytes(PREFIX + "1/baseline.json")
    assert manifest["artifacts"]["baseline.json"]["sha256"] == hashlib.sha256(baseline).hexdigest()
    loss_model = store.get_bytes(PREFIX + "1/loss_model.onnx")
    digest = hashlib.sha256(loss_model).hexdigest()
    assert manifest["artifacts"]["loss_model.onnx"]["sha256"] == digest
    assert json.loads(baseline)["estimate"]["sha256"] == digest
    lineage = manifest["lineage"]
    assert lineage["data"] == [
        {
            "uri": "s3://data/month0.csv",
            "sha256": hashlib.sha256(month0_csv).hexdigest(),
            "rows": 1500,
            "role": "new",
        }
    ]
    assert lineage["train_rows"] + lineage["holdout_rows"] == 1500
    assert lineage["parent_version"] is None
    assert lineage["code_version"] == "test"
    assert manifest["libraries"]["scikit-learn"]
    assert manifest["libraries"]["onnxruntime"]
    assert manifest["parity"]["passed"] is True
    assert set(manifest["metrics"]) == {"rmse", "mae", "r2", "mape"}
    assert manifest["metrics"]["r2"] > 0.8
    assert json.loads(baseline)["numeric"]["sqft"]["edges"]


def test_the_next_version_records_its_parent_and_can_stay_unpromoted(
    trainer: TrainingService,
    registry: Registry,
    store: ModelStore,
    config: ModelConfig,
    month0_csv: bytes,
) -> None:
    trainer.train_and_register(config, month0_csv, "s3://data/a.csv")
    month3 = csv_bytes(generate(1200, conditions_for_month(3), seed=3))
    result = trainer.train_and_register(config, month3, "s3://data/b.csv", promote=False)
    assert result.version == "2"
    assert not result.promoted
    assert registry.aliases("house-prices") == {"production": "1"}
    assert store.get_json(PREFIX + "2/manifest.json")["lineage"]["parent_version"] == "1"
    assert [v.version for v in registry.list_versions("house-prices")] == ["1", "2"]


def test_bad_training_data_is_rejected_and_nothing_is_registered(
    trainer: TrainingService,
    store: ModelStore,
    registry: Registry,
    config: ModelConfig,
    month0_csv: bytes,
) -> None:
    broken = month0_csv.replace(b"riverside", b"riverside,extra", 1)
    with pytest.raises(DataValidationError) as caught:
        trainer.train_and_register(config, broken, "s3://data/bad.csv")
    assert "cells" in caught.value.details[0].problem
    assert keys(store, "") == []
    assert registry.aliases("house-prices") == {}


def test_a_model_failing_the_parity_gate_is_not_registered(
    trainer: TrainingService,
    store: ModelStore,
    registry: Registry,
    config: ModelConfig,
    month0_csv: bytes,
) -> None:
    strict = replace(config, parity=ParityConfig(rtol=0.0, atol=0.0))
    with pytest.raises(ParityError, match="parity gate"):
        trainer.train_and_register(strict, month0_csv, "s3://data/month0.csv")
    assert keys(store) == []
    assert registry.list_versions("house-prices") == []


def test_promotion_is_a_conditional_write_that_loses_a_race(
    trainer: TrainingService,
    registry: Registry,
    config: ModelConfig,
    month0_csv: bytes,
) -> None:
    trainer.train_and_register(config, month0_csv, "s3://data/a.csv")
    # (more of the same market: a drifted month is held until live labels clear it)
    more = csv_bytes(generate(3000, conditions_for_month(0), seed=3))
    second = trainer.train_and_register(config, more, "s3://data/b.csv", promote=False)
    assert second.status == "candidate"
    # A promoter that read production as "2" (stale) must not overwrite the real state.
    with pytest.raises(ConflictError):
        registry.move_alias("house-prices", "production", "1", expected="2")
    assert trainer.promote("house-prices", "2") == "1"
    assert registry.get_alias("house-prices", "production") == "2"
    with pytest.raises(ConflictError, match="not registered"):
        trainer.promote("house-prices", "9")


def test_a_version_is_immutable_in_s3(store: ModelStore) -> None:
    store.put_version("m", "1", {"model.onnx": b"a", "manifest.json": b"{}"})
    with pytest.raises(ConflictError):
        store.put_version("m", "1", {"model.onnx": b"b", "manifest.json": b"{}"})
    assert store.get_bytes("models/m/1/model.onnx") == b"a"
