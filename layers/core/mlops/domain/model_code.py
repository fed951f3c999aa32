"""The user's own scikit-learn pipeline: ``[estimator] factory = "module:function"`` in the
folder ``[estimator] code``.

The factory is called as ``function(config, **params)`` (``config``: the ``ModelConfig``;
``params``: ``[estimator] params``) and returns an unfitted estimator or ``Pipeline``. It is fitted
on a 2-D object array of the config's features **in config order** (numbers as floats,
categories as strings), as our own pipeline is: columns are addressed by position, and
``columns(config, "mean radius", ...)`` gives the positions of names. Selecting by name needs a
pandas DataFrame, and pandas (84 MB installed) does not fit next to scikit-learn in the
retrainer's 250 MB; the laptop trains the same way, so a model that trains there retrains on
Lambda. Everything after the factory stays ours: split, fit, metrics, ONNX export, parity,
gate, rollout.

Whatever goes wrong in the user's code (it does not import, raises, returns something that is
not an estimator of the config's task, selects columns by name, fails to fit, answers in the
wrong shape) is a ``ModelCodeError`` naming the factory and the problem: the retrainer reports
it as a rejection instead of failing (and being retried) on it.

Training code: only the retrainer and the CLI import this module.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from skl2onnx.sklapi import CastTransformer
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlops.domain.config import ModelConfig
from mlops.errors import ModelCodeError

# Trees whose splits ONNX Runtime compares in float32: they train behind a float32 cast.
TREE_MODELS: tuple[type[Any], ...] = (
    DecisionTreeClassifier,
    DecisionTreeRegressor,  # and ExtraTree*, their subclasses
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)


@dataclass(frozen=True)
class CodeDigest:
    """sha256 over a code folder: every file's relative path and sha256, sorted by path."""

    sha256: str
    files: int

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "files": self.files}


def code_digest(folder: Path) -> CodeDigest:
    """The digest of ``folder``'s files, the same wherever the folder is copied (the laptop,
    the retrainer's layer): bytecode caches and hidden files and folders are left out."""
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not _ignored(path.relative_to(folder))
    )
    digest = hashlib.sha256()
    for name in files:
        content = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        digest.update(f"{name}\0{content}\n".encode())
    return CodeDigest(digest.hexdigest(), len(files))


def _ignored(relative: Path) -> bool:
    parts = relative.parts
    return any(p.startswith(".") or p == "__pycache__" for p in parts) or relative.suffix == ".pyc"


def columns(config: ModelConfig, *names: str, type: str | None = None) -> list[int]:
    """Positions of features in the matrix the pipeline is fitted on: of ``names`` (in the
    order given), or of every feature of ``type`` (``"numeric"``, ``"categorical"``).

    ``ColumnTransformer([("scale", StandardScaler(), columns(config, "mean radius"))])``
    """
    if names and type is not None:
        raise ValueError("columns(): pass names or type, not both")
    features = config.feature_names
    if type is not None:
        if type not in ("numeric", "categorical"):
            raise ValueError(f"columns(): type must be numeric or categorical, got {type!r}")
        return [i for i, f in enumerate(config.features) if f.type == type]
    unknown = [n for n in names if n not in features]
    if unknown:
        raise ValueError(f"columns(): {unknown} not among the config's features {features}")
    return [features.index(n) for n in names]


def load_factory(spec: str, folder: Path | None) -> Callable[..., Any]:
    """Import ``module:function`` with ``folder`` first on ``sys.path``."""
    module_name, _, attribute = spec.partition(":")
    if folder is not None:
        if not folder.is_dir():
            raise ModelCodeError(
                f"factory {spec}: the model code folder {folder} ([estimator] code) does not exist"
            )
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        where = f"from {folder}" if folder is not None else "(no model code folder given)"
        raise ModelCodeError(
            f"factory {spec}: cannot import {module_name} {where}: {_describe(exc)}"
        ) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ModelCodeError(f"factory {spec}: {module_name} has no function {attribute!r}")
    return factory  # type: ignore[no-any-return]


def build_user_pipeline(config: ModelConfig, folder: Path | None) -> Pipeline:
    """The factory's estimator, unfitted, checked, as a ``Pipeline`` (a bare estimator becomes
    its only step). A tree model last gets our float32 cast before it (``CastTransformer``),
    unless the user's pipeline already casts there."""
    spec = config.estimator.factory
    factory = load_factory(spec, folder)
    try:
        made = factory(config, **config.estimator.params)
    except (Exception, SystemExit) as exc:
        raise ModelCodeError(f"factory {spec} raised {_describe(exc)}") from exc
    if not (hasattr(made, "fit") and hasattr(made, "get_params")):
        raise ModelCodeError(
            f"factory {spec} returned {type(made).__name__}, not a scikit-learn estimator "
            "or Pipeline"
        )
    try:
        estimator = clone(made)  # unfitted, whatever the factory did with it
    except (TypeError, RuntimeError) as exc:
        raise ModelCodeError(f"factory {spec} returned an invalid estimator: {exc}") from exc
    wanted = is_classifier if config.task == "classification" else is_regressor
    if not wanted(estimator):
        kind = "a classifier" if config.task == "classification" else "a regressor"
        raise ModelCodeError(
            f"factory {spec} returned {type(estimator).__name__}, which is not {kind}: "
            f"this model's task is {config.task}"
        )
    if config.task == "classification" and not hasattr(estimator, "predict_proba"):
        raise ModelCodeError(
            f"factory {spec} returned {type(estimator).__name__}, which has no predict_proba: "
            "the gate and serving need class probabilities"
        )
    for path, transformer in _column_transformers(estimator):
        for name, _, selected in transformer.transformers:
            if _by_name(selected):
                raise ModelCodeError(
                    f"factory {spec}: ColumnTransformer {path or 'step'} -> {name!r} selects "
                    f"columns by name or selector ({selected!r}), which scikit-learn allows "
                    "only on a pandas DataFrame, and pandas does not fit in the retrainer. "
                    "The pipeline is fitted on the config's features in config order: select "
                    "by position, e.g. columns(config, 'a name', ...) from "
                    "mlops.domain.model_code"
                )
    pipeline = estimator if isinstance(estimator, Pipeline) else Pipeline([("model", estimator)])
    return with_float32_cast(pipeline)


def with_float32_cast(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with ``CastTransformer`` before a tree model that has none in front."""
    final = pipeline.steps[-1][1]
    if not isinstance(final, TREE_MODELS) or casts_to_float32(pipeline):
        return pipeline
    name = "float32" if "float32" not in pipeline.named_steps else "mlops_float32"
    steps = [*pipeline.steps[:-1], (name, CastTransformer(dtype=np.float32))]
    return Pipeline([*steps, pipeline.steps[-1]])


def casts_to_float32(pipeline: Pipeline) -> bool:
    """A float32 cast right before the final step: trees then see what ONNX will see."""
    if len(pipeline.steps) < 2:
        return False
    before = pipeline.steps[-2][1]
    return isinstance(before, CastTransformer) and np.dtype(before.dtype) == np.float32


def check_outputs(pipeline: Pipeline, x: npt.NDArray[Any], config: ModelConfig) -> None:
    """One prediction per row (regression), one probability per class (classification)."""
    spec = config.estimator.factory
    rows = x.shape[0]
    if config.task == "regression":
        shape = np.shape(pipeline.predict(x))
        if shape != (rows,):
            raise ModelCodeError(
                f"the pipeline of factory {spec} predicts shape {shape} for {rows} rows; a "
                "regression model predicts one number per row"
            )
        return
    classes = getattr(pipeline, "classes_", None)
    shape = np.shape(pipeline.predict_proba(x))
    if classes is None or shape != (rows, len(classes)):
        raise ModelCodeError(
            f"the pipeline of factory {spec} gives probabilities of shape {shape} for {rows} "
            f"rows and classes {classes}; one probability per class per row is needed"
        )


def _column_transformers(estimator: Any) -> Iterator[tuple[str, ColumnTransformer]]:
    if isinstance(estimator, ColumnTransformer):
        yield "", estimator
    for path, value in estimator.get_params(deep=True).items():
        if isinstance(value, ColumnTransformer):
            yield path, value


def _by_name(selected: Any) -> bool:
    if isinstance(selected, str) or callable(selected):
        return True
    if isinstance(selected, list | tuple | np.ndarray):
        return any(isinstance(item, str) for item in selected)
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
