"""Quality estimated before labels (CBPE, DLE): how close, how honest, and what it costs.

    .venv/bin/python benchmarks/foresight_estimates.py [--json] [--hours N] [--rows N]

Every estimate is made by the project's own code, as the stack makes it: the model and the
calibration / loss model come from ``domain.training`` and ``domain.loss_model`` (the loss
model exported to ONNX and scored with onnxruntime, as the logger does), hourly sketch parts
from ``domain.estimate_sketch``, estimates from ``domain.estimate``. Realized quality is
computed on the same rows' labels.

Datasets (all offline):
  covariate shift, classification  ``sklearn.datasets.make_classification`` (8 features, 2
      classes, 3 % flipped labels; seeds 0-3, one dataset, model and holdout each). The model
      trains on the first 5,000 rows; hour h of ``--hours`` draws ``--rows`` rows from the
      other 75,000 with probability proportional to ``exp(b_h * x0)``, b_h rising from 0 to 1
      (the target's shift) or to 2 (``_strong``): the inputs move, the label's dependence on
      them does not (covariate shift).
  covariate shift, regression  ``sklearn.datasets.make_friedman1`` (6 features, noise 1,
      seeds 0-3), the same design with probability ``exp(b_h * (x0 + x1 - 1))``, b_h from 0 to
      2 (target) or 4 (``_strong``).
  demo market  ``domain.synthetic``: a model trained on month 0 (3,000 sales), then months 1-6
      of ``conditions_for_month``, ``--hours``/6 hours each: DLE for price, CBPE for a classifier
      of "price above month 0's median". These months mix covariate shift with concept drift
      (prices and rates move), which an estimate cannot see: their figures show how far off it is.
  pure concept drift  month 0's inputs with every price x1.25: the estimate must not move.
  the demo's countryside  ``mlops demo``'s market (``mlops_cli.demo.market``): a model trained
      on month 8, then ``--hours``/2 hours of month 8 (calm) and of month 9 (80 % of sales move
      to the countryside, where prices are noisiest: covariate shift within what was seen).

Figures (keys of the JSON object's ``figures``):
  cbpe_shift_coverage, dle_shift_coverage   share of hourly windows whose 95 % interval covers
      the realized accuracy / RMSE under covariate shift (target >= 0.90)
  cbpe_shift_mae, dle_shift_mean_rel_error  mean |estimate - realized| (accuracy points;
      relative RMSE error)
  cbpe_shift_f1_coverage, dle_shift_mae_coverage  the same for macro F1 and MAE
  dle_shift_mape_coverage, dle_shift_mape_mean_rel_error  the same for MAPE (r = a / |prediction|
      scaled by the holdout ratio); *_mape_realized/estimated_first_last  in the first and last hour
  *_realized_first/last   realized quality in the first and last hour (the shift is real)
  market_dle_rel_error_by_month, market_cbpe_abs_error_by_month, *_coverage_by_month
  market_dle_mape_rel_error_by_month, market_dle_mape_coverage_by_month  MAPE's, per month
  concept_rmse_realized_ratio, concept_rmse_estimated_ratio  realized and estimated RMSE with
      prices x1.25 over month 0's (the estimate stays ~1.0: it cannot see concept drift)
  countryside_{calm,shift}_mape_realized/estimated/coverage, *_estimate_breach_rate  per hour
      of the demo's months 8 and 9: MAPE realized and ESTIMATED, interval coverage, and the
      share of hours whose estimate breaches with confidence (low end past holdout + 20 %)
  logger_dle_cost_pct, logger_cbpe_cost_pct   the prediction logger's added time per record
      with an estimate (median of ``--runs`` batches of ``--batch`` records through
      ``PredictionLoggerService.store_batch``, as benchmarks/capture.py measures it: S3 writes
      excluded) over the same batches without (target <= 20 %)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers" / "core"))
sys.path.insert(0, str(ROOT / "cli"))

from benchmarks import capture as capture_bench  # noqa: E402

for _key, _value in capture_bench.ENVIRONMENT.items():
    os.environ.setdefault(_key, _value)

TARGET_COVERAGE = 0.90
TARGET_COST_PCT = 20.0
TOLERANCE = 0.2  # [drift] quality_tolerance's default: where a breach begins
TRAIN_ROWS = 5000
POOL_ROWS = 80_000
SEEDS = (0, 1, 2, 3)  # datasets (and holdouts) per experiment
MODERATE, STRONG = 1.0, 2.0  # shift strengths (x2 for the regression's two-feature score)


def _config(features: Sequence[tuple[str, str]], target: str, task: str) -> Any:
    from mlops.domain.config_document import parse_config

    return parse_config(
        {
            "name": "bench",
            "task": task,
            "target": target,
            "features": [{"name": n, "type": t} for n, t in features],
            "estimator": {
                "type": "hist_gradient_boosting",
                "params": {"max_iter": 80, "learning_rate": 0.1, "random_state": 0},
            },
            "training": {"holdout_fraction": 0.25, "min_rows": 50},
        }
    )


def _train(config: Any, columns: Mapping[str, Any]) -> Any:
    from mlops.domain.dataset import parse_csv
    from mlops.domain.synthetic import csv_bytes
    from mlops.domain.training import train

    return train(config, parse_csv(csv_bytes(dict(columns)), config))


def _rows_of(columns: Mapping[str, Any], names: Sequence[str]) -> list[dict[str, Any]]:
    count = len(next(iter(columns.values())))
    return [
        {n: (v.item() if hasattr(v := columns[n][i], "item") else v) for n in names}
        for i in range(count)
    ]


def _shifted_hours(
    x: np.ndarray, score: np.ndarray, hours: int, rows: int, *, strength: float, seed: int
) -> list[np.ndarray]:
    """Row indices per hour, drawn without replacement with weight exp(b_h * score)."""
    rng = np.random.default_rng(seed)
    out = []
    for h in range(hours):
        b = strength * h / max(hours - 1, 1)
        weight = np.exp(b * (score - score.max()))
        out.append(rng.choice(len(x), size=rows, replace=False, p=weight / weight.sum()))
    return out


# ----------------------------------------------------------------------------- CBPE


def _cbpe_hour(trained: Any, config: Any, calibration: Any, columns: Mapping[str, Any]) -> Any:
    from mlops.domain.estimate import cbpe
    from mlops.domain.estimate_sketch import build_cbpe
    from mlops.domain.metrics import classification_metrics

    x = np.column_stack([np.asarray(columns[n], dtype=object) for n in config.feature_names])
    proba = trained.pipeline.predict_proba(x)
    labels = trained.pipeline.predict(x)
    classes = list(trained.classes)
    rows = [
        {"prediction": str(label), "probabilities": dict(zip(classes, map(float, p), strict=True))}
        for label, p in zip(labels, proba, strict=True)
    ]
    part = build_cbpe(calibration, rows)
    estimates = {e.metric: e for e in cbpe(calibration, part.counts)}
    truth = [str(v) for v in columns[config.target]]
    realized = classification_metrics(truth, [str(v) for v in labels], proba, classes)
    return estimates, realized


def cbpe_shift(hours: int, rows: int) -> dict[str, Any]:
    """Hourly coverage over ``SEEDS`` datasets (coverage is a property over repetitions, the
    holdout's draw included) at the target's shift, and at a stronger one."""
    out: dict[str, Any] = {}
    for label, strength in (("", MODERATE), ("_strong", STRONG)):
        runs = [_cbpe_run(seed, hours, rows, strength) for seed in SEEDS]
        out[f"cbpe_shift{label}_coverage"] = round(float(np.mean([r[0] for r in runs])), 3)
        out[f"cbpe_shift{label}_f1_coverage"] = round(float(np.mean([r[1] for r in runs])), 3)
        out[f"cbpe_shift{label}_mae"] = round(float(np.mean([r[2] for r in runs])), 4)
        out[f"cbpe_shift{label}_realized_first_last"] = [round(runs[0][3], 4), round(runs[0][4], 4)]
    return out


def _cbpe_run(seed: int, hours: int, rows: int, strength: float) -> tuple[float, ...]:
    from sklearn.datasets import make_classification

    from mlops.domain.loss_model import calibration_for

    x, y = make_classification(
        n_samples=POOL_ROWS,
        n_features=8,
        n_informative=5,
        n_redundant=1,
        n_classes=2,
        flip_y=0.03,
        class_sep=0.8,
        random_state=seed,
    )
    names = [f"x{i}" for i in range(8)]
    config = _config([(n, "numeric") for n in names], "label", "classification")
    columns = {n: x[:, i] for i, n in enumerate(names)} | {"label": y.astype(str)}
    trained = _train(config, {k: v[:TRAIN_ROWS] for k, v in columns.items()})
    calibration = calibration_for(trained, config)
    assert calibration is not None
    pool = np.arange(TRAIN_ROWS, POOL_ROWS)
    picks = _shifted_hours(x[pool], x[pool, 0], hours, rows, strength=strength, seed=seed + 1)
    covered, f1_covered, errors, realized_acc = 0, 0, [], []
    for pick in picks:
        chosen = {k: v[pool[pick]] for k, v in columns.items()}
        estimates, realized = _cbpe_hour(trained, config, calibration, chosen)
        acc, f1 = estimates["accuracy"], estimates["f1_macro"]
        covered += acc.low <= realized["accuracy"] <= acc.high
        f1_covered += f1.low <= realized["f1_macro"] <= f1.high
        errors.append(abs(acc.value - realized["accuracy"]))
        realized_acc.append(realized["accuracy"])
    return (
        covered / hours,
        f1_covered / hours,
        float(np.mean(errors)),
        realized_acc[0],
        realized_acc[-1],
    )


# ----------------------------------------------------------------------------- DLE


def _loss_model(trained: Any, config: Any) -> tuple[Any, Any]:
    from mlops.domain.loss_model import fit_loss_model
    from mlops.domain.loss_scoring import LossModel

    fitted = fit_loss_model(trained, config)
    assert fitted is not None
    scorer = LossModel(
        fitted.onnx,
        numeric=[f.name for f in config.features if f.type == "numeric"],
        categorical=[f.name for f in config.features if f.type == "categorical"],
        prediction_input=fitted.spec.prediction_input,
    )
    return fitted.spec, scorer


def _dle_hour(
    trained: Any, config: Any, spec: Any, scorer: Any, columns: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    from mlops.domain.estimate import dle
    from mlops.domain.estimate_sketch import build_dle
    from mlops.domain.metrics import regression_metrics

    x = np.column_stack([np.asarray(columns[n], dtype=object) for n in config.feature_names])
    predicted = trained.pipeline.predict(x)
    rows = [
        {"inputs": row, "prediction": float(p)}
        for row, p in zip(_rows_of(columns, config.feature_names), predicted, strict=True)
    ]
    part = build_dle(scorer.score(rows), np.asarray(predicted, dtype=np.float64))
    s1, s2, s4 = part.floats()
    relative = None if part.relative is None else part.relative.floats()
    estimates = {e.metric: e for e in dle(spec, part.count, s1, s2, s4, relative=relative)}
    return estimates, regression_metrics(columns[config.target], predicted)


def dle_shift(hours: int, rows: int) -> dict[str, Any]:
    """As ``cbpe_shift``, for DLE on ``make_friedman1``."""
    out: dict[str, Any] = {}
    for label, strength in (("", 2 * MODERATE), ("_strong", 2 * STRONG)):
        runs = [_dle_run(seed, hours, rows, strength) for seed in SEEDS]
        out[f"dle_shift{label}_coverage"] = round(float(np.mean([r[0] for r in runs])), 3)
        out[f"dle_shift{label}_mae_coverage"] = round(float(np.mean([r[1] for r in runs])), 3)
        out[f"dle_shift{label}_mean_rel_error"] = round(float(np.mean([r[2] for r in runs])), 4)
        out[f"dle_shift{label}_realized_first_last"] = [round(runs[0][3], 4), round(runs[0][4], 4)]
        out[f"dle_shift{label}_mape_coverage"] = round(float(np.mean([r[5] for r in runs])), 3)
        out[f"dle_shift{label}_mape_mean_rel_error"] = round(
            float(np.mean([r[6] for r in runs])), 4
        )
        out[f"dle_shift{label}_mape_realized_first_last"] = [round(v, 4) for v in runs[0][7:9]]
        out[f"dle_shift{label}_mape_estimated_first_last"] = [round(v, 4) for v in runs[0][9:11]]
    return out


def _dle_run(seed: int, hours: int, rows: int, strength: float) -> tuple[float, ...]:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=POOL_ROWS, n_features=6, noise=1.0, random_state=seed)
    names = [f"x{i}" for i in range(6)]
    config = _config([(n, "numeric") for n in names], "y", "regression")
    columns = {n: x[:, i] for i, n in enumerate(names)} | {"y": y}
    trained = _train(config, {k: v[:TRAIN_ROWS] for k, v in columns.items()})
    spec, scorer = _loss_model(trained, config)
    pool = np.arange(TRAIN_ROWS, POOL_ROWS)
    score = x[pool, 0] + x[pool, 1] - 1
    picks = _shifted_hours(x[pool], score, hours, rows, strength=strength, seed=seed + 1)
    covered, mae_covered, errors, realized_rmse = 0, 0, [], []
    mape_covered, mape_errors, realized_mape, estimated_mape = 0, [], [], []
    for pick in picks:
        chosen = {k: v[pool[pick]] for k, v in columns.items()}
        estimates, realized = _dle_hour(trained, config, spec, scorer, chosen)
        rmse, mae = estimates["rmse"], estimates["mae"]
        covered += rmse.low <= realized["rmse"] <= rmse.high
        mae_covered += mae.low <= realized["mae"] <= mae.high
        errors.append(abs(rmse.value - realized["rmse"]) / realized["rmse"])
        realized_rmse.append(realized["rmse"])
        mape = estimates["mape"]
        mape_covered += mape.low <= realized["mape"] <= mape.high
        mape_errors.append(abs(mape.value - realized["mape"]) / realized["mape"])
        realized_mape.append(realized["mape"])
        estimated_mape.append(mape.value)
    return (
        covered / hours,
        mae_covered / hours,
        float(np.mean(errors)),
        realized_rmse[0],
        realized_rmse[-1],
        mape_covered / hours,
        float(np.mean(mape_errors)),
        realized_mape[0],
        realized_mape[-1],
        estimated_mape[0],
        estimated_mape[-1],
    )


# ----------------------------------------------------------------------------- market


def market(hours: int, rows: int) -> dict[str, Any]:
    from mlops.domain.config_document import load_config
    from mlops.domain.loss_model import calibration_for
    from mlops.domain.synthetic import conditions_for_month, generate

    base = load_config()
    config = _config([(f.name, f.type) for f in base.features], "price", "regression")
    month0 = generate(3000, conditions_for_month(0), seed=7)
    trained = _train(config, month0)
    spec, scorer = _loss_model(trained, config)
    median = float(np.median(month0["price"]))
    classify = _config([(f.name, f.type) for f in base.features], "expensive", "classification")

    def with_class(columns: Mapping[str, Any]) -> dict[str, Any]:
        return dict(columns) | {"expensive": np.where(columns["price"] > median, "yes", "no")}

    classifier = _train(classify, with_class(month0))
    calibration = calibration_for(classifier, classify)
    assert calibration is not None
    per_month = max(1, hours // 6)
    dle_err, dle_cov, cbpe_err, cbpe_cov, mape_err, mape_cov = {}, {}, {}, {}, {}, {}
    for month in range(1, 7):
        errors, hits, c_errors, c_hits, m_errors, m_hits = [], 0, [], 0, [], 0
        for h in range(per_month):
            columns = generate(rows, conditions_for_month(month), seed=1000 * month + h)
            estimates, realized = _dle_hour(trained, config, spec, scorer, columns)
            errors.append(abs(estimates["rmse"].value - realized["rmse"]) / realized["rmse"])
            hits += estimates["rmse"].low <= realized["rmse"] <= estimates["rmse"].high
            mape = estimates["mape"]
            m_errors.append(abs(mape.value - realized["mape"]) / realized["mape"])
            m_hits += mape.low <= realized["mape"] <= mape.high
            c_est, c_real = _cbpe_hour(classifier, classify, calibration, with_class(columns))
            c_errors.append(abs(c_est["accuracy"].value - c_real["accuracy"]))
            c_hits += c_est["accuracy"].low <= c_real["accuracy"] <= c_est["accuracy"].high
        dle_err[str(month)] = round(float(np.mean(errors)), 3)
        dle_cov[str(month)] = round(hits / per_month, 3)
        cbpe_err[str(month)] = round(float(np.mean(c_errors)), 4)
        cbpe_cov[str(month)] = round(c_hits / per_month, 3)
        mape_err[str(month)] = round(float(np.mean(m_errors)), 3)
        mape_cov[str(month)] = round(m_hits / per_month, 3)
    # Pure concept drift: month 0's houses, every price x1.25. The inputs do not move.
    calm = generate(rows * per_month, conditions_for_month(0), seed=99)
    moved = dict(calm) | {"price": calm["price"] * 1.25}
    before, real_before = _dle_hour(trained, config, spec, scorer, calm)
    after, real_after = _dle_hour(trained, config, spec, scorer, moved)
    return {
        "market_dle_rel_error_by_month": dle_err,
        "market_dle_coverage_by_month": dle_cov,
        "market_dle_mape_rel_error_by_month": mape_err,
        "market_dle_mape_coverage_by_month": mape_cov,
        "market_cbpe_abs_error_by_month": cbpe_err,
        "market_cbpe_coverage_by_month": cbpe_cov,
        "concept_rmse_realized_ratio": round(real_after["rmse"] / real_before["rmse"], 3),
        "concept_rmse_estimated_ratio": round(after["rmse"].value / before["rmse"].value, 3),
        "concept_rmse_realized": [round(real_before["rmse"]), round(real_after["rmse"])],
        "concept_rmse_estimated": [round(before["rmse"].value), round(after["rmse"].value)],
    }


def countryside(hours: int, rows: int) -> dict[str, Any]:
    """The demo's month 9 (``mlops_cli.demo.market``): buyers move to the countryside, where
    prices are noisiest. A model trained on month 8's sales; hours of month 8 (calm) and of
    month 9; per hour, the MAPE ESTIMATE against the realized MAPE, and how often it breaches
    with confidence (its interval's low end past the holdout + the default 20 % tolerance):
    the demo's one run, made a rate."""
    from mlops.domain.config_document import load_config
    from mlops.domain.metrics import regression_metrics
    from mlops.domain.synthetic import generate
    from mlops_cli.demo.market import demo_conditions

    base = load_config()
    config = _config([(f.name, f.type) for f in base.features], "price", "regression")
    trained = _train(config, generate(3000, demo_conditions(8), seed=8))
    spec, scorer = _loss_model(trained, config)
    holdout = trained.holdout
    held = trained.pipeline.predict(holdout.matrix(config.feature_names))
    bar = regression_metrics(holdout.target, held)["mape"] * (1 + TOLERANCE)
    out: dict[str, Any] = {"countryside_holdout_mape": round(bar / (1 + TOLERANCE), 4)}
    for month, name in ((8, "calm"), (9, "shift")):
        covered = breached = 0
        realized, estimated = [], []
        per_month = max(1, hours // 2)
        for h in range(per_month):
            columns = generate(rows, demo_conditions(month), seed=5000 + 100 * month + h)
            estimates, real = _dle_hour(trained, config, spec, scorer, columns)
            mape = estimates["mape"]
            covered += mape.low <= real["mape"] <= mape.high
            breached += mape.low > bar
            realized.append(real["mape"])
            estimated.append(mape.value)
        out[f"countryside_{name}_mape_realized"] = round(float(np.mean(realized)), 4)
        out[f"countryside_{name}_mape_estimated"] = round(float(np.mean(estimated)), 4)
        out[f"countryside_{name}_mape_coverage"] = round(covered / per_month, 3)
        out[f"countryside_{name}_estimate_breach_rate"] = round(breached / per_month, 3)
    return out


# ----------------------------------------------------------------------------- logger cost


def _logger_seconds(
    baseline: Mapping[str, Any],
    section: Any,
    loss_model: bytes | None,
    events: list[Any],
    runs: int,
) -> tuple[float, float]:
    """Median seconds per batch without and with the estimate, timed alternately (the same
    events, two services on two buckets), so machine noise falls on both alike."""
    import boto3
    from moto import mock_aws

    from mlops.adapters import aws
    from mlops.adapters.model_store import ModelStore
    from mlops.domain.estimate import LOSS_MODEL
    from mlops.domain.layout import version_prefix
    from mlops.observability import metrics
    from mlops.services.prediction_logger import PredictionLoggerService

    with mock_aws():
        aws.client.cache_clear()
        s3 = boto3.client("s3")
        prefix = version_prefix(capture_bench.MODEL, capture_bench.VERSION)
        services = []
        for bucket, doc in (
            ("plain", baseline),
            ("estimate", dict(baseline) | {"estimate": section}),
        ):
            s3.create_bucket(Bucket=bucket)
            s3.put_object(
                Bucket=bucket, Key=prefix + "baseline.json", Body=json.dumps(doc).encode()
            )
            if loss_model is not None:
                s3.put_object(Bucket=bucket, Key=prefix + LOSS_MODEL, Body=loss_model)
            services.append(
                PredictionLoggerService(
                    capture_bench.recording_store(),
                    ModelStore(bucket, aws.client("s3")),
                    model_name=capture_bench.MODEL,
                )
            )
        samples: list[list[float]] = [[], []]
        with open(os.devnull, "w") as sink, capture_bench.quiet(sink):
            summaries = [service.store_batch(events) for service in services]  # warm-up
            for _ in range(runs):
                for index, service in enumerate(services):
                    metrics.clear_metrics()
                    started = time.perf_counter()
                    service.store_batch(events)
                    samples[index].append(time.perf_counter() - started)
            metrics.clear_metrics()
        aws.client.cache_clear()
    assert all(s.missing_baselines == 0 for s in summaries), summaries
    assert summaries[1].estimate_unscored_rows == 0, summaries[1]
    return statistics.median(samples[0]), statistics.median(samples[1])


def _events(
    batch: int, predict: Callable[[list[dict[str, Any]]], tuple[list[Any], Any]]
) -> list[Any]:
    import uuid

    from mlops.domain import capture
    from mlops.services.prediction_logger import LogEvent
    from mlops_cli.emulator.sources.logs import log_event_id

    instances, _ = capture_bench.houses(batch, seed=2)
    predictions, probabilities = predict(instances)
    events = []
    for i in range(batch):
        ts = capture_bench.HOUR + i * 3
        (line,) = capture.capture_lines(
            model=capture_bench.MODEL,
            version=capture_bench.VERSION,
            alias="production",
            variant="production",
            request_id=str(uuid.uuid4()),
            timestamp_ms=ts,
            latency_ms=0.2,
            instances=[instances[i]],
            prediction_ids=[str(uuid.uuid4())],
            predictions=[predictions[i]],
            probabilities=None if probabilities is None else [probabilities[i]],
        )
        events.append(LogEvent(log_event_id(ts), ts, line))
    return events


def logger_cost(batch: int, runs: int) -> dict[str, Any]:
    from mlops.domain.baseline import build_baseline
    from mlops.domain.config_document import load_config
    from mlops.domain.loss_model import estimate_section
    from mlops.domain.synthetic import conditions_for_month, generate

    base = load_config()
    out: dict[str, Any] = {}
    month0 = generate(3000, conditions_for_month(0), seed=7)
    median = float(np.median(month0["price"]))
    for task in ("regression", "classification"):
        target = "price" if task == "regression" else "expensive"
        config = _config([(f.name, f.type) for f in base.features], target, task)
        columns = dict(month0)
        if task == "classification":
            columns[target] = np.where(month0["price"] > median, "yes", "no")
        trained = _train(config, columns)
        section, loss = estimate_section(trained, config)
        x = trained.holdout.matrix(config.feature_names)
        baseline = json.loads(
            json.dumps(
                build_baseline(
                    config.features,
                    trained.train.columns,
                    trained.pipeline.predict(x),
                    task=task,
                    metrics=trained.metrics,
                )
            )
        )
        pipeline = trained.pipeline

        def predict(
            instances: list[dict[str, Any]],
            pipeline: Any = pipeline,
            config: Any = config,
            task: str = task,
        ) -> Any:
            matrix = np.asarray(
                [[i[n] for n in config.feature_names] for i in instances], dtype=object
            )
            if task == "regression":
                return [float(v) for v in pipeline.predict(matrix)], None
            classes = [str(c) for c in pipeline.classes_]
            proba = pipeline.predict_proba(matrix)
            labels = [str(v) for v in pipeline.predict(matrix)]
            return labels, [
                {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)} for row in proba
            ]

        events = _events(batch, predict)
        without, with_estimate = _logger_seconds(
            baseline, section, None if loss is None else loss.onnx, events, runs
        )
        kind = "dle" if task == "regression" else "cbpe"
        out[f"logger_{kind}_cost_pct"] = round(100 * (with_estimate / without - 1), 1)
        out[f"logger_{kind}_us_per_record"] = [
            round(1e6 * without / batch, 1),
            round(1e6 * with_estimate / batch, 1),
        ]
    return out


# ----------------------------------------------------------------------------- main


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        figures: dict[str, Any] = {}
        figures |= cbpe_shift(args.hours, args.rows)
        figures |= dle_shift(args.hours, args.rows)
        figures |= market(args.hours, args.rows)
        figures |= countryside(args.hours, args.rows)
        figures |= logger_cost(args.batch, args.runs)
    targets = {
        "cbpe_shift_coverage": f">= {TARGET_COVERAGE}",
        "dle_shift_coverage": f">= {TARGET_COVERAGE}",
        "logger_dle_cost_pct": f"<= {TARGET_COST_PCT}",
        "logger_cbpe_cost_pct": f"<= {TARGET_COST_PCT}",
    }
    met = {
        "cbpe_shift_coverage": figures["cbpe_shift_coverage"] >= TARGET_COVERAGE,
        "dle_shift_coverage": figures["dle_shift_coverage"] >= TARGET_COVERAGE,
        "logger_dle_cost_pct": figures["logger_dle_cost_pct"] <= TARGET_COST_PCT,
        "logger_cbpe_cost_pct": figures["logger_cbpe_cost_pct"] <= TARGET_COST_PCT,
    }
    return {"figures": figures, "targets": targets, "targets_met": met}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object as the last line")
    parser.add_argument("--hours", type=int, default=60, help="hourly windows per experiment")
    parser.add_argument("--rows", type=int, default=300, help="rows per hourly window")
    parser.add_argument("--batch", type=int, default=1000, help="records per logger batch")
    parser.add_argument("--runs", type=int, default=9, help="logger batches timed (median)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = measure(args)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'figure':<36} value")
    for name, value in result["figures"].items():
        print(f"{name:<36} {value}")
    for name, met in result["targets_met"].items():
        print(f"target {name} {result['targets'][name]}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
