"""Any column name a CSV can hold: users keep their names, the ONNX graph gets derived ones."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np
import onnx
import pytest

from mlops.domain.config import ModelConfig
from mlops.domain.config_document import parse_config
from mlops.domain.dataset import parse_csv
from mlops.domain.export import to_onnx_bytes
from mlops.domain.input_names import (
    MAX_NAME_CHARS,
    collisions,
    input_name,
    metric_dimension,
    name_problem,
)
from mlops.domain.schema import Signature
from mlops.domain.scoring import OnnxModel
from mlops.domain.training import train
from mlops.services.training import check_parity, signature_from_training

ODD_NUMERIC = ["mean radius", "od280/od315_of_diluted_wines", "1st floor", "prix (€)", "価格"]
ODD_CATEGORICAL = "catégorie"


@pytest.mark.parametrize(
    ("name", "derived"),
    [
        ("sqft", "sqft"),  # a plain name is its own input name: models trained before still load
        ("mean radius", "mean_radius"),
        ("od280/od315_of_diluted_wines", "od280_od315_of_diluted_wines"),
        ("1st floor", "_1st_floor"),
        ("catégorie", "categorie"),
        ("prix (€)", "prix___"),
    ],
)
def test_input_name_keeps_ascii_letters_digits_and_underscores(name: str, derived: str) -> None:
    assert input_name(name) == derived


def test_a_name_without_ascii_letters_gets_a_stable_digest() -> None:
    assert input_name("価格") == input_name("価格")
    assert input_name("価格").startswith("c_")
    assert input_name("価格") != input_name("値段")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        (" price", "whitespace"),
        ("price\n", "whitespace"),
        ("a\tb", "control character"),
        ("a\u200bb", "control character"),  # zero-width space: invisible in every report
        ("x" * (MAX_NAME_CHARS + 1), f"at most {MAX_NAME_CHARS}"),
    ],
)
def test_names_that_cannot_work_say_why(name: str, problem: str) -> None:
    found = name_problem(name)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("name", ["x" * MAX_NAME_CHARS, "mean radius", "価格", "a/b (c)"])
def test_names_a_csv_can_hold_are_accepted(name: str) -> None:
    assert name_problem(name) is None


def test_collisions_after_derivation_name_both_columns() -> None:
    problems = collisions(
        [("features[0]", "mean radius"), ("features[1]", "area"), ("features[2]", "mean-radius")]
    )
    assert [p.field for p in problems] == ["features[2]"]
    assert "'mean-radius' and 'mean radius'" in problems[0].problem
    assert "'mean_radius'" in problems[0].problem
    assert collisions([("a", "x"), ("b", "y")]) == []


def test_metric_dimensions_are_ascii() -> None:
    assert metric_dimension("mean radius") == "mean radius"
    assert metric_dimension("catégorie") == "categorie"
    assert metric_dimension("価格").isascii()


def _odd_config() -> ModelConfig:
    return parse_config(
        {
            "name": "odd-names",
            "task": "classification",
            "target": "class label",
            "features": [{"name": n, "type": "numeric"} for n in ODD_NUMERIC]
            + [{"name": ODD_CATEGORICAL, "type": "categorical"}],
            "estimator": {"type": "hist_gradient_boosting"},
        }
    )


def _odd_csv(rows: int = 300) -> bytes:
    rng = np.random.default_rng(0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*ODD_NUMERIC, ODD_CATEGORICAL, "class label"])
    for _ in range(rows):
        x = rng.normal(size=len(ODD_NUMERIC))
        group = str(rng.choice(["a", "b"]))
        label = "yes" if x[0] + x[1] + (group == "a") > 0.5 else "no"
        writer.writerow([*np.round(x, 4), group, label])
    return out.getvalue().encode()


def test_odd_column_names_train_export_and_score_with_parity() -> None:
    config = _odd_config()
    trained = train(config, parse_csv(_odd_csv(), config))
    model_bytes = to_onnx_bytes(trained.pipeline, config)

    graph_inputs = [i.name for i in onnx.load_from_string(model_bytes).graph.input]
    assert graph_inputs == [input_name(n) for n in [*ODD_NUMERIC, ODD_CATEGORICAL]]
    signature = signature_from_training(config, trained.train)
    assert signature.names == [*ODD_NUMERIC, ODD_CATEGORICAL]  # users keep their names
    model = OnnxModel(model_bytes, signature, config.task, trained.classes)
    columns = signature.columns([dict.fromkeys(ODD_NUMERIC, 1.0) | {ODD_CATEGORICAL: "a"}], 10)
    assert model.score(columns).values == ["yes"]
    assert check_parity(config, trained, model).passed


def test_a_model_whose_inputs_are_not_the_signature_s_is_refused() -> None:
    config = _odd_config()
    trained = train(config, parse_csv(_odd_csv(), config))
    model_bytes = to_onnx_bytes(trained.pipeline, config)
    signature = signature_from_training(config, trained.train)
    renamed = replace(signature.features[0], name="mean radius (mm)")
    other = Signature((renamed, *signature.features[1:]))
    with pytest.raises(ValueError, match="do not match the signature's"):
        OnnxModel(model_bytes, other, config.task, trained.classes)


@pytest.mark.parametrize(
    ("column", "estimator", "task"),
    [
        ("label", "logistic_regression", "classification"),
        ("probabilities", "hist_gradient_boosting", "classification"),
        ("variable", "ridge", "regression"),
    ],
)
def test_a_column_named_like_an_internal_tensor_exports_and_scores(
    column: str, estimator: str, task: str
) -> None:
    # skl2onnx names its own tensors "label", "probabilities", "variable": the column keeps
    # its name and the internal tensor moves aside
    config = parse_config(
        {
            "name": "clash",
            "task": task,
            "target": "y",
            "features": [{"name": column, "type": "numeric"}, {"name": "x", "type": "numeric"}],
            "estimator": {"type": estimator},
        }
    )
    rng = np.random.default_rng(3)
    rows = [[a, b, ("yes" if a + b > 0 else "no") if task == "classification" else a - b]
            for a, b in rng.normal(size=(200, 2)).round(4)]  # fmt: skip
    body = "\n".join([f"{column},x,y", *(",".join(map(str, r)) for r in rows)]).encode()
    trained = train(config, parse_csv(body, config))
    model = OnnxModel(
        to_onnx_bytes(trained.pipeline, config),
        signature_from_training(config, trained.train),
        config.task,
        trained.classes,
    )
    assert check_parity(config, trained, model).passed
