"""The user's own pipeline through the real retrainer and gate handlers (moto): the code comes
from MODEL_CODE_DIR (the ModelCodeLayer on AWS), its digest goes into the lineage, and code
that fails is a rejection report, never a retried failure."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.domain.model_code import code_digest
from tests.integration.retrain_pipeline import (
    DIRECT_CONFIG,
    MODEL,
    Pipeline,
    decision,
    month,
    only,
    pipeline_in_moto,
)

USER_PIPELINE = """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlops.domain.model_code import columns

    def build(config, alpha=1.0):
        prepare = ColumnTransformer([
            ("numbers", StandardScaler(), columns(config, type="numeric")),
            ("kinds", OneHotEncoder(handle_unknown="ignore"), columns(config, type="categorical")),
        ])
        return Pipeline([("prepare", prepare), ("model", Ridge(alpha=alpha))])

    def broken(config):
        raise RuntimeError("the feature store is down")
"""


def with_factory(function: str) -> str:
    estimator = re.compile(r"\[estimator\]\n(.*\n){2}")
    table = f'[estimator]\nfactory = "house_model:{function}"\ncode = "model_code"\n'
    table += "params = {}\n" if function == "broken" else "params = { alpha = 0.5 }\n"
    return estimator.sub(table, DIRECT_CONFIG, count=1)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "model_code"
    folder.mkdir()
    (folder / "house_model.py").write_text(textwrap.dedent(USER_PIPELINE))
    return folder


@pytest.fixture
def line(code: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setenv("MODEL_CODE_DIR", str(code))
    with pipeline_in_moto() as pipeline:
        yield pipeline


def test_a_user_pipeline_is_trained_gated_and_its_code_digest_kept(
    line: Pipeline, code: Path
) -> None:
    # Given a config naming the user's factory, When data is uploaded
    line.config(with_factory("build"))
    response, judged = line.run("houses-month-00.csv", month(0, rows=800))
    # Then the retrainer trained the user's pipeline and the gate promoted its ONNX export
    assert only(response)["status"] == "staged"
    assert decision(judged)["version"] == "1"
    manifest = line.store.get_json(f"models/{MODEL}/1/manifest.json")
    # And the lineage names the factory and the digest of the code it was built from
    assert manifest["lineage"]["model_code"] == {
        "factory": "house_model:build",
        "folder": str(code),
        **code_digest(code).as_dict(),
    }
    assert manifest["estimator"] == {
        "factory": "house_model:build",
        "code": "model_code",
        "params": {"alpha": 0.5},
    }


def test_a_factory_that_raises_is_a_rejection_report_not_a_retry(line: Pipeline) -> None:
    line.config(with_factory("broken"))
    outcome = only(line.retrain(line.upload("m0.csv", month(0, rows=800))))
    assert outcome["status"] == "rejected"
    reason = outcome["reasons"][0]
    assert "factory house_model:broken raised RuntimeError: the feature store is down" in reason
    report = line.report(outcome["report_uri"])
    assert report["stage"] == "model_code"
    assert line.keys("staging/") == []
