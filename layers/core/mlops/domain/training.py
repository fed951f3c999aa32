"""Training: a scikit-learn pipeline fitted on validated data, with holdout metrics.

Only the retrainer and the CLI import this module; the inference path never does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.domain.config import ModelConfig
from mlops.domain.dataset import Dataset
from mlops.domain.model_code import (
    TREE_MODELS,
    build_user_pipeline,
    casts_to_float32,
    check_outputs,
    with_float32_cast,
)
from mlops.errors import ConfigError, ModelCodeError

ESTIMATOR_CLASSES: dict[tuple[str, str], type[Any]] = {
    ("regression", "hist_gradient_boosting"): HistGradientBoostingRegressor,
    ("regression", "random_forest"): RandomForestRegressor,
    ("regression", "gradient_boosting"): GradientBoostingRegressor,
    ("regression", "ridge"): Ridge,
    ("classification", "hist_gradient_boosting"): HistGradientBoostingClassifier,
    ("classification", "random_forest"): RandomForestClassifier,
    ("classification", "gradient_boosting"): GradientBoostingClassifier,
    ("classification", "logistic_regression"): LogisticRegression,
}


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    train: Dataset
    holdout: Dataset
    metrics: dict[str, float]
    classes: tuple[str, ...]
    overlap_rows: int = 0  # rows of ``extra`` dropped: the new data has them too


def build_pipeline(config: ModelConfig, code: Path | None = None) -> Pipeline:
    """The user's pipeline when the config names a factory (``code``: the folder it is in,
    see ``mlops.domain.model_code``); else ours: scale numeric columns, one-hot encode
    categoricals (unseen categories ignored), then the configured estimator. Columns are
    addressed by position in ``config.features``."""
    if config.estimator.factory:
        return build_user_pipeline(config, code)
    numeric = [i for i, f in enumerate(config.features) if f.type == "numeric"]
    categorical = [i for i, f in enumerate(config.features) if f.type == "categorical"]
    parts: list[tuple[str, Any, list[int]]] = []
    if numeric:
        parts.append(("numeric", StandardScaler(), numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
        parts.append(("categorical", encoder, categorical))
    try:
        estimator_class = ESTIMATOR_CLASSES[(config.task, config.estimator.type)]
        estimator = estimator_class(**config.estimator.params)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"cannot build estimator {config.estimator.type!r}: {exc}") from exc
    # ONNX Runtime's tree ensembles compare in float32: a tree gets a cast in front
    # (``CastTransformer``), so scikit-learn trains and predicts on the values ONNX will see.
    return with_float32_cast(
        Pipeline([("prepare", ColumnTransformer(parts)), ("estimator", estimator)])
    )


def row_keys(data: Dataset) -> npt.NDArray[np.uint64]:
    """A 64-bit key per row from its feature values and target: equal rows, equal keys, the
    same in every process. (Python's ``hash`` of a string changes with the process's seed:
    the split, which orders rows by key, would too, and one file trained twice would give two
    holdouts.) Text is hashed once per distinct value. Collisions are negligible."""
    keys = np.zeros(data.rows, dtype=np.uint64)
    for values in (*data.columns.values(), data.target):
        if values.dtype == object:
            seen: dict[str, int] = {}
            part = np.fromiter(
                (_text_key(str(v), seen) for v in values), dtype=np.int64, count=data.rows
            )
        else:
            numbers = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 -> 0.0
            part = numbers.view(np.int64)
        keys = keys * np.uint64(1_000_003) ^ part.view(np.uint64)
    return keys


def _text_key(text: str, seen: dict[str, int]) -> int:
    """A 64-bit hash of ``text`` that no process seed changes, computed once per value."""
    key = seen.get(text)
    if key is None:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        key = seen[text] = int.from_bytes(digest, "little", signed=True)
    return key


def split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A seeded random train/holdout split. Identical rows (features and target) go to the same
    side: a row pasted twice must not be both learned and measured."""
    rng = np.random.default_rng(seed)
    cut = max(1, round(data.rows * fraction))
    keys = row_keys(data)
    groups, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if len(groups) == data.rows:  # no repeated row: a plain permutation
        order = rng.permutation(data.rows)
        return data.take(np.sort(order[cut:])), data.take(np.sort(order[:cut]))
    order = rng.permutation(len(groups))
    taken = int(np.searchsorted(np.cumsum(counts[order]), cut)) + 1
    in_holdout = np.zeros(len(groups), dtype=bool)
    in_holdout[order[: min(taken, len(groups) - 1)]] = True  # keep a group to train on
    mask = in_holdout[inverse]
    return data.take(np.flatnonzero(~mask)), data.take(np.flatnonzero(mask))


def without_rows_of(extra: Dataset, data: Dataset) -> Dataset:
    """``extra`` less the rows ``data`` also has (same features and target)."""
    keep = ~np.isin(row_keys(extra), row_keys(data))
    return extra if keep.all() else extra.take(np.flatnonzero(keep))


def train(
    config: ModelConfig, data: Dataset, extra: Dataset | None = None, code: Path | None = None
) -> TrainedModel:
    """Fit on a train split of ``data`` (plus all of ``extra``: older files, labeled traffic)
    and measure on the holdout, which comes from ``data`` alone: the newest rows are the ones
    the model must do well on, and the champion is scored on the same rows. Rows of ``extra``
    that ``data`` has too (an upload of labeled traffic) are dropped before the split, so no
    holdout row is trained on. ``code``: the folder of the config's factory, if it has one."""
    train_set, holdout = split(data, config.training.holdout_fraction, config.training.seed)
    overlap = 0
    if extra is not None and extra.rows:
        kept = without_rows_of(extra, data)
        overlap = extra.rows - kept.rows
        if kept.rows:
            train_set = Dataset.concat([train_set, kept])
    pipeline = build_pipeline(config, code)
    try:
        measured = _fit(pipeline, train_set, holdout, config)
    except ModelCodeError:
        raise
    except Exception as exc:
        if not config.estimator.factory:
            raise
        raise ModelCodeError(
            f"the pipeline of factory {config.estimator.factory} failed to fit or predict: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    classes = tuple(str(c) for c in getattr(pipeline, "classes_", ()))
    return TrainedModel(
        pipeline=pipeline,
        train=train_set,
        holdout=holdout,
        metrics=measured,
        classes=classes,
        overlap_rows=overlap,
    )


def _fit(
    pipeline: Pipeline, train_set: Dataset, holdout: Dataset, config: ModelConfig
) -> dict[str, float]:
    """Fit in place and return the holdout metrics."""
    target = train_set.target if config.task == "regression" else train_set.target.astype(str)
    pipeline.fit(train_set.matrix(config.feature_names), target)
    if casts_to_float32(pipeline) and isinstance(pipeline.steps[-1][1], TREE_MODELS):
        floor_thresholds_to_float32(pipeline.steps[-1][1])
    if config.estimator.factory:
        check_outputs(pipeline, holdout.matrix(config.feature_names), config)
    return evaluate(pipeline, holdout, config)


def floor_thresholds_to_float32(estimator: Any) -> None:
    """Round every split threshold down to the nearest float32, in place.

    Trees see float32 inputs (``CastTransformer``), but scikit-learn stores a split threshold
    as a float64 midpoint between two training values. When those two values are adjacent
    float32 numbers, the midpoint rounds (to even) onto one of them in ONNX's float32 graph,
    and that exact value takes the other branch: a user's dataset failed the parity gate by
    1.6 % this way. No float32 lies between a threshold and its float32 floor, so for every
    float32 input ``x <= t`` and ``x <= floor32(t)`` agree: scikit-learn's predictions do not
    change, and ONNX's comparison becomes exact.
    """
    if hasattr(estimator, "_predictors"):  # HistGradientBoosting*
        for predictors in estimator._predictors:
            for predictor in predictors:
                nodes = predictor.nodes
                split = ~nodes["is_leaf"].astype(bool)
                nodes["num_threshold"][split] = _floor32(nodes["num_threshold"][split])
        return
    if hasattr(estimator, "tree_"):  # a single DecisionTree* or ExtraTree*
        trees = np.asarray([estimator], dtype=object)
    else:  # RandomForest*, ExtraTrees* and GradientBoosting* (DecisionTree* inside)
        trees = np.asarray(getattr(estimator, "estimators_", [])).ravel()
    for tree in trees:
        structure = tree.tree_
        split = structure.children_left != -1
        structure.threshold[split] = _floor32(structure.threshold[split])


def _floor32(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def evaluate(pipeline: Pipeline, data: Dataset, config: ModelConfig) -> dict[str, float]:
    x = data.matrix(config.feature_names)
    if config.task == "regression":
        y = data.target.astype(np.float64)
        predicted = pipeline.predict(x)
        return regression_metrics(y, predicted)
    y_labels = data.target.astype(str)
    predicted = pipeline.predict(x)
    proba = pipeline.predict_proba(x)
    classes = list(pipeline.classes_)
    out = {
        "accuracy": float(skm.accuracy_score(y_labels, predicted)),
        "f1_macro": float(skm.f1_score(y_labels, predicted, average="macro")),
        "log_loss": float(skm.log_loss(y_labels, proba, labels=classes)),
    }
    if len(set(y_labels)) == len(classes):  # ROC-AUC needs every class in the holdout
        if len(classes) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_labels == classes[1], proba[:, 1]))
        else:
            out["roc_auc"] = float(
                skm.roc_auc_score(y_labels, proba, multi_class="ovr", labels=classes)
            )
    return out


def regression_metrics(y: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> dict[str, float]:
    y = np.asarray(y, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
        "mae": float(skm.mean_absolute_error(y, predicted)),
        "r2": float(skm.r2_score(y, predicted)),
        "mape": float(skm.mean_absolute_percentage_error(y, predicted)),
    }
