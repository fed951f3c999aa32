"""Export a fitted pipeline to ONNX with skl2onnx, one input per feature.

Numeric inputs are float64 ``(n, 1)`` and categorical inputs are strings ``(n, 1)``, so the
serving side feeds JSON values without a DataFrame and without a lossy client-side cast. The
graph's inputs carry ``input_names.input_name`` of each column, whatever skl2onnx made of it.
"""

from __future__ import annotations

from typing import Any

from skl2onnx import convert_sklearn
from skl2onnx._supported_operators import sklearn_operator_name_map
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops.domain.config import ModelConfig
from mlops.domain.input_names import input_name
from mlops.errors import ModelCodeError

# ai.onnx.ml 3 is what onnxruntime's tree kernels implement for these ops.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def to_onnx_bytes(pipeline: Pipeline, config: ModelConfig) -> bytes:
    inputs: list[tuple[str, Any]] = [
        (
            f.name,
            DoubleTensorType([None, 1]) if f.type == "numeric" else StringTensorType([None, 1]),
        )
        for f in config.features
    ]
    options: dict[Any, Any] = {}
    if config.task == "classification":
        # A plain probability tensor instead of a list of dicts (ZipMap): cheaper to run and read.
        options[id(pipeline.steps[-1][1])] = {"zipmap": False}
    try:
        model = convert_sklearn(
            pipeline,
            name=config.name,
            initial_types=inputs,
            target_opset=TARGET_OPSET,
            options=options or None,
        )
    except Exception as exc:
        if (step := unconvertible_step(pipeline)) is None:
            raise
        path, estimator = step
        raise ModelCodeError(_no_converter(path, estimator, exc)) from exc
    _rename_inputs(model.graph, [input_name(f.name) for f in config.features])
    model.doc_string = f"{config.name}: {config.task} on {', '.join(config.feature_names)}"
    return bytes(model.SerializeToString())


def unconvertible_step(pipeline: Pipeline) -> tuple[str, Any] | None:
    """The first step (``name__inner`` path, estimator) skl2onnx has no converter for: a class
    it does not know, or a ``FunctionTransformer`` with a function (arbitrary Python)."""
    for path, value in pipeline.get_params(deep=True).items():
        if not isinstance(value, BaseEstimator):
            continue
        if isinstance(value, FunctionTransformer):
            if value.func is not None or value.inverse_func is not None:
                return path, value
        elif type(value) not in sklearn_operator_name_map:
            return path, value
    return None


def _no_converter(path: str, estimator: Any, exc: Exception) -> str:
    kind = type(estimator)
    if isinstance(estimator, FunctionTransformer):
        why = "skl2onnx converts a FunctionTransformer only without a function (the identity)"
    else:
        why = f"skl2onnx has no converter for {kind.__module__}.{kind.__qualname__}"
    return (
        f"cannot export to ONNX: step {path!r} ({kind.__name__}): {why}. Use a step skl2onnx "
        "converts, or register a converter for your class in your model code with "
        "skl2onnx.update_registered_converter(YourClass, alias, shape_calculator, converter) "
        "(https://onnx.ai/sklearn-onnx/auto_tutorial/plot_icustom_converter.html). "
        f"skl2onnx said: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    )


def _rename_inputs(graph: Any, names: list[str]) -> None:
    """Give the graph's inputs (in ``initial_types`` order) our derived names. skl2onnx keeps
    the raw column names for the pipeline's own column selection but sanitises the graph's
    names its own way (``mean radius`` -> ``mean_radius``, ``1st`` -> ``_1st``), which a
    later skl2onnx may change: renaming makes the contract ours."""
    if len(graph.input) != len(names):
        raise ValueError(f"the ONNX graph has {len(graph.input)} inputs for {len(names)} features")
    renamed = {i.name: new for i, new in zip(graph.input, names, strict=True) if i.name != new}
    if not renamed:
        return
    inputs = {i.name for i in graph.input}
    internal = _names(graph) - inputs
    if clash := internal & set(renamed.values()):
        # A column named like one of skl2onnx's own tensors ("label", "probabilities",
        # "variable"): the internal tensor moves aside, the column keeps its name.
        used = internal | inputs | set(renamed.values())
        aside = {name: _fresh(name, used) for name in sorted(clash)}
        _rename_everywhere(graph, aside)
    _rename_everywhere(graph, renamed)


def _names(graph: Any) -> set[str]:
    """Every tensor name the graph (not its subgraphs' locals) defines or reads."""
    names = {n for node in graph.node for n in (*node.input, *node.output)}
    names |= {i.name for i in graph.initializer} | {v.name for v in graph.value_info}
    return names | {o.name for o in graph.output}


def _fresh(name: str, used: set[str]) -> str:
    n = 1
    while f"{name}_{n}" in used:
        n += 1
    used.add(f"{name}_{n}")
    return f"{name}_{n}"


def _rename_everywhere(graph: Any, renamed: dict[str, str]) -> None:
    """Rename tensors wherever the graph names them: inputs, node outputs, initializers,
    value infos and outputs (scoring reads outputs by position), and what every node reads."""
    for collection in (graph.input, graph.initializer, graph.value_info, graph.output):
        for item in collection:
            item.name = renamed.get(item.name, item.name)
    for node in graph.node:
        node.output[:] = [renamed.get(n, n) for n in node.output]
    _rename_uses(graph, renamed)


def _rename_uses(graph: Any, renamed: dict[str, str]) -> None:
    """Rename what the nodes read, in subgraphs too (a ``Scan`` body reads outer names)."""
    for node in graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        for attribute in node.attribute:
            single = [attribute.g] if attribute.HasField("g") else []
            for subgraph in (*single, *attribute.graphs):
                _rename_uses(subgraph, renamed)
