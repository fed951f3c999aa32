"""Adversarial review of the rollout verdict (``domain.rollout``), its config and the CLI's
``--rollout`` parsing.

Tests whose comment starts with ``# DEFECT:`` reproduce a defect found in review: each FAILS
today because of it. The others pin behaviours the review attacked and found safe.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from dataclasses import replace
from importlib import resources
from typing import Any

import numpy as np
import pytest

from mlops.domain.config import RolloutConfig
from mlops.domain.config_document import parse_config
from mlops.domain.rollout import RolloutVerdict, judge_rollout
from mlops.errors import ConfigError
from mlops_cli.commands.promote import rollout_arg

HOUR = 3_600_000
DELAY = 72 * HOUR
FAST = RolloutConfig(mode="canary", min_bake_minutes=0, min_requests=100, min_labels=30)


def _rows(
    version: str,
    predictions: list[Any],
    *,
    variant: str,
    ids: list[str] | None = None,
    latency: float = 4.0,
    ts: int = 1_000,
    **extra: Any,
) -> list[dict[str, Any]]:
    ids = ids or [f"{version}-{i}" for i in range(len(predictions))]
    return [
        {
            "prediction_id": pid,
            "request_id": f"req-{pid}",
            "ts": ts,
            "version": version,
            "variant": variant,
            "prediction": p,
            "latency_ms": latency,
        }
        | extra
        for pid, p in zip(ids, predictions, strict=True)
    ]


def _labels(ids: list[str], actuals: Any, ts: int = 2_000) -> list[dict[str, Any]]:
    return [
        {"prediction_id": pid, "actual": float(a), "ts": ts, "model": "m"}
        for pid, a in zip(ids, actuals, strict=True)
    ]


def _judge(
    production: list[dict[str, Any]],
    candidate: list[dict[str, Any]],
    feedback: list[dict[str, Any]] | None = None,
    *,
    mode: str = "canary",
    config: RolloutConfig = FAST,
    elapsed: float = 2 * 3600,
    task: str = "regression",
    metric: str = "rmse",
    classes: tuple[Any, ...] = (),
) -> RolloutVerdict:
    return judge_rollout(
        mode=mode,
        task=task,
        classes=classes,
        metric=metric,
        greater_is_better=metric in ("accuracy", "f1_macro", "roc_auc", "r2"),
        production_rows=production,
        candidate_rows=candidate,
        feedback_rows=feedback or [],
        label_delay_ms=DELAY,
        elapsed_seconds=elapsed,
        config=config,
    )


# ================================================================================ findings


def test_a_candidate_answering_null_to_half_the_requests_is_not_promoted() -> None:
    # Fixed: a candidate whose ONNX output is NaN/inf for some inputs answers clients
    # `NaN` (json.dumps allows it: invalid JSON for strict parsers) and is captured as
    # `"prediction": null`. The verdict counts such rows as requests but neither as errors
    # (only `candidate_error` is) nor in the labeled sample, so with require_labels = false
    # it is promoted with "error rate 0%". Fix: count candidate rows without a usable
    # prediction as errors (and refuse non-finite outputs at inference: a 5xx for canary
    # requests falls back to production, counted as candidate_error).
    production = _rows("1", [250_000.0] * 400, variant="production")
    candidate = _rows("2", [None if i % 2 else 250_000.0 for i in range(400)], variant="canary")
    config = replace(FAST, require_labels=False)
    verdict = _judge(production, candidate, config=config)
    assert verdict.decision == "rollback", verdict.reasons


def test_nulls_on_the_hard_half_do_not_make_a_candidate_look_better() -> None:
    # Fixed: the same survivorship with labels required: live quality is measured only on
    # the rows the candidate answered with a number. A candidate that answers null on every
    # hard (large-error) request looks far better than production and is promoted.
    rng = np.random.default_rng(0)
    n = 400
    actual = rng.normal(300_000, 50_000, 2 * n)
    hard = np.arange(2 * n) % 2 == 1
    noise = np.where(hard, 80_000.0, 5_000.0)
    predicted = actual + rng.normal(0, 1, 2 * n) * noise
    prod_ids = [f"p{i}" for i in range(n)]
    cand_ids = [f"c{i}" for i in range(n)]
    production = _rows("1", [float(v) for v in predicted[:n]], variant="production", ids=prod_ids)
    candidate = _rows(
        "2",
        [None if hard[n + i] else float(predicted[n + i]) for i in range(n)],
        variant="canary",
        ids=cand_ids,
    )
    feedback = _labels(prod_ids, actual[:n]) + _labels(cand_ids, actual[n:])
    verdict = _judge(production, candidate, feedback)
    assert verdict.decision != "promote", verdict.reasons


def test_a_candidate_that_never_served_a_request_is_not_promoted_on_inconclusive() -> None:
    # Fixed: with on_inconclusive = "promote", max_bake_hours with no evidence at all
    # promotes. A candidate that never loads in any container (onnxruntime refuses its
    # opset, an S3 policy hides it: inference logs CandidateLoadFailures and serves
    # production) has 0 candidate rows while production served thousands; after 24 h it
    # becomes production, and every cold start then fails to load it (503s). Fix: never
    # promote without min_requests candidate requests (treat "production has traffic, the
    # candidate none" as a breach), whatever on_inconclusive says.
    production = _rows("1", [250_000.0] * 5_000, variant="production")
    config = replace(FAST, on_inconclusive="promote", max_bake_hours=24.0)
    verdict = _judge(production, [], config=config, elapsed=25 * 3600)
    assert verdict.decision != "promote", verdict.reasons


@pytest.mark.parametrize(
    "name",
    [
        "max_bake_hours",  # never inconclusive: the rollout bakes for ever
        "min_bake_minutes",  # never baked: never promoted
        "max_latency_ratio",  # the latency bound is NaN: never breached
        "max_quality_degradation",  # never passes, never breaches; NaN in the JSON report
        "latency_slack_ms",
        "max_disagreement",
        "max_prediction_psi",
    ],
)
def test_a_rollout_config_with_nan_is_refused(name: str) -> None:
    # Fixed: parse_config refuses NaN only where its check happens to be written as
    # `not lo <= x <= hi`; `x < 0` checks accept NaN (TOML `nan`). settings.py already
    # refuses nan/inf for the same reason ("nan compares false with everything").
    # Fix: refuse non-finite floats in every [rollout] field (and [drift]/[promotion]).
    shipped = resources.files("mlops.defaults").joinpath("house_prices.toml").read_text()
    raw = tomllib.loads(shipped)
    raw["rollout"] = dict(raw["rollout"], **{name: math.nan})
    with pytest.raises(ConfigError):
        parse_config(raw)


def test_a_nan_latency_ratio_silently_disables_the_latency_breach() -> None:
    # Fixed: the consequence of the above: a candidate 50x slower than production passes.
    production = _rows("1", [1.0] * 300, variant="production", latency=4.0)
    candidate = _rows("2", [1.0] * 300, variant="canary", latency=200.0)
    verdict = _judge(production, candidate, config=replace(FAST, max_latency_ratio=math.nan))
    assert verdict.check("latency_p95").status == "breach"


def test_a_nan_tolerance_never_reaches_the_json_report_as_nan() -> None:
    # Fixed: LiveQuality.as_dict copies `tolerance` (and `confidence`) unfiltered, so the
    # report written with json.dumps holds a bare NaN (invalid JSON: browsers' JSON.parse,
    # jq, Athena's JSON SerDe refuse it).
    production = _rows("1", [1.0] * 50, variant="production")
    verdict = _judge(production, [], config=replace(FAST, max_quality_degradation=math.nan))
    json.dumps(verdict.as_dict(), allow_nan=False)


def test_a_canary_share_too_small_to_route_or_store_is_refused() -> None:
    # DEFECT (low): `--rollout canary:1e-300` is accepted: it routes no request, ever (the
    # rollout can only end by on_inconclusive), and DynamoDB numbers stop at 1e-130, so on
    # AWS the start fails with a ValidationException (StorageError) AFTER start() archived
    # the rollout it superseded. Fix: a floor such as 0.01 % in the CLI and start_rollout.
    with pytest.raises(argparse.ArgumentTypeError):
        rollout_arg("canary:1e-300")


# =========================================================================== pinned (safe)


@pytest.mark.parametrize(
    "text",
    [
        "canary:0",
        "canary:-5",
        "canary:nan",
        "canary:NaN",
        "canary:inf",
        "canary:1e9",
        "canary:100.0001",
        "canary:abc",
        "canary:5%",
        "shadow:5",
        "direct:5",
        "CANARY",
        "blue-green",
        "",
    ],
)
def test_bad_rollout_options_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rollout_arg(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("canary", ("canary", 10.0)),
        ("canary:20", ("canary", 20.0)),
        ("canary:100", ("canary", 100.0)),
        ("canary:0.5", ("canary", 0.5)),
        ("shadow", ("shadow", 10.0)),
        ("direct", ("direct", 10.0)),
    ],
)
def test_good_rollout_options_parse(text: str, expected: tuple[str, float]) -> None:
    assert rollout_arg(text) == expected


def test_a_shadow_identical_to_production_is_promoted_with_a_zero_width_interval() -> None:
    rng = np.random.default_rng(1)
    actual = rng.normal(300_000, 50_000, 200)
    predicted = [float(v) for v in actual + rng.normal(0, 20_000, 200)]
    ids = [f"x{i}" for i in range(200)]
    production = _rows("1", predicted, variant="production", ids=ids)
    candidate = _rows("2", predicted, variant="shadow", ids=ids)
    verdict = _judge(production, candidate, _labels(ids, actual), mode="shadow")
    assert verdict.decision == "promote", verdict.reasons
    assert (verdict.quality.ci_low, verdict.quality.ci_high) == (0.0, 0.0)
    json.dumps(verdict.as_dict(), allow_nan=False)


def test_too_few_labels_never_decide_on_quality_even_when_they_look_awful() -> None:
    # 29 labels per variant (30 needed), the candidate 10x worse on them: wait, not rollback
    rng = np.random.default_rng(2)
    actual = rng.normal(300_000, 50_000, 58)
    prod_ids, cand_ids = [f"p{i}" for i in range(29)], [f"c{i}" for i in range(29)]
    production = _rows(
        "1",
        [float(v) for v in actual[:29] + 1_000],
        variant="production",
        ids=prod_ids,
    )
    candidate = _rows(
        "2", [float(v) for v in actual[29:] + 100_000], variant="canary", ids=cand_ids
    )
    feedback = _labels(prod_ids, actual[:29]) + _labels(cand_ids, actual[29:])
    verdict = _judge(production, candidate, feedback, config=replace(FAST, min_requests=20))
    assert verdict.check("quality").status == "pending"
    assert verdict.decision == "wait", verdict.reasons


def test_labels_on_shadow_predictions_join_both_variants_and_are_paired() -> None:
    rng = np.random.default_rng(3)
    actual = rng.normal(300_000, 50_000, 100)
    ids = [f"s{i}" for i in range(100)]
    production = _rows("1", [float(v) + 30_000 for v in actual], variant="production", ids=ids)
    candidate = _rows("2", [float(v) + 1_000 for v in actual], variant="shadow", ids=ids)
    verdict = _judge(production, candidate, _labels(ids, actual), mode="shadow")
    assert verdict.quality.paired
    assert (verdict.quality.production_labels, verdict.quality.candidate_labels) == (100, 100)
    assert verdict.decision == "promote", verdict.reasons


def test_log_loss_without_probabilities_waits_rather_than_guessing() -> None:
    classes = ("cheap", "dear")
    ids_p, ids_c = [f"p{i}" for i in range(60)], [f"c{i}" for i in range(60)]
    proba = {"cheap": 0.8, "dear": 0.2}
    production = _rows("1", ["cheap"] * 60, variant="production", ids=ids_p, probabilities=proba)
    candidate = _rows("2", ["cheap"] * 60, variant="canary", ids=ids_c)  # no probabilities
    feedback = [
        {"prediction_id": pid, "actual": "cheap", "ts": 2_000, "model": "m"}
        for pid in ids_p + ids_c
    ]
    verdict = _judge(
        production,
        candidate,
        feedback,
        task="classification",
        metric="log_loss",
        classes=classes,
        config=replace(FAST, min_requests=50),
    )
    assert verdict.quality.candidate_labels == 0
    assert verdict.decision == "wait", verdict.reasons
