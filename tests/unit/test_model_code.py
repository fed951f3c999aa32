"""The user's own pipeline (``[estimator] factory``): loading it, refusing what cannot work
with a message naming the factory or the step, the float32 cast for trees, the code digest."""

from __future__ import annotations

import shutil
import textwrap
import uuid
from pathlib import Path

import numpy as np
import onnx
import pytest
from skl2onnx.sklapi import CastTransformer

from mlops.domain.config import ModelConfig
from mlops.domain.config_document import parse_config, to_document
from mlops.domain.dataset import Dataset
from mlops.domain.export import to_onnx_bytes
from mlops.domain.input_names import input_name
from mlops.domain.model_code import build_user_pipeline, code_digest, columns
from mlops.domain.training import train
from mlops.errors import ConfigError, ModelCodeError

ODD_NAMES = ["mean radius", "ratio a/b", "größe"]


def model_config(task: str = "regression", **estimator: object) -> ModelConfig:
    features = [{"name": n, "type": "numeric"} for n in ODD_NAMES]
    features.append({"name": "plan", "type": "categorical"})
    return parse_config(
        {
            "name": "own-model",
            "task": task,
            "target": "y",
            "features": features,
            "estimator": {"code": "code", **estimator},
        }
    )


def user_code(folder: Path, body: str) -> tuple[Path, str]:
    """A module of the user's in ``folder`` (a fresh name: imports are cached per process)."""
    module = f"user_model_{uuid.uuid4().hex[:8]}"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(body))
    return folder, module


def dataset(task: str = "regression", rows: int = 240) -> Dataset:
    rng = np.random.default_rng(0)
    columns_ = {n: rng.normal(size=rows) for n in ODD_NAMES}
    columns_["plan"] = rng.choice(np.array(["basic", "pro"], dtype=object), size=rows)
    signal = columns_["mean radius"] * 3 + (columns_["plan"] == "pro") * 2
    target = signal if task == "regression" else (signal > 1).astype(int).astype(str)
    return Dataset(
        columns_,
        np.asarray(target, dtype=object if task != "regression" else float),
        rows,
        "0" * 64,
    )


COLUMN_TRANSFORMER = """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlops.domain.model_code import columns

    def build(config, n_estimators=10):
        prepare = ColumnTransformer([
            ("numbers", StandardScaler(), columns(config, "mean radius", "ratio a/b", "größe")),
            ("plan", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             columns(config, "plan")),
        ])
        model = RandomForestRegressor(n_estimators=n_estimators, random_state=0)
        return Pipeline([("prepare", prepare), ("model", model)])
"""


# ------------------------------------------------------------------------------ the config


def test_a_factory_with_its_code_folder_is_read_and_written_back() -> None:
    config = model_config(factory="my_model:build", params={"alpha": 2.0})
    assert (config.estimator.factory, config.estimator.code) == ("my_model:build", "code")
    assert to_document(config)["estimator"] == {
        "factory": "my_model:build",
        "code": "code",
        "params": {"alpha": 2.0},
    }
    assert parse_config(to_document(config)) == config


@pytest.mark.parametrize(
    ("estimator", "field"),
    [
        ({"factory": "my_model"}, "estimator.factory"),  # no function
        ({"factory": "my model:build"}, "estimator.factory"),
        ({"factory": "my_model:build", "type": "ridge"}, "estimator.type"),
        ({"factory": "my_model:build", "code": ""}, "estimator.code"),
    ],
)
def test_a_factory_config_that_cannot_work_is_refused_naming_the_key(
    estimator: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        model_config(**estimator)
    assert field in [p.field for p in caught.value.details]


def test_code_without_a_factory_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "name": "own-model",
                "task": "regression",
                "target": "y",
                "features": [{"name": "x", "type": "numeric"}],
                "estimator": {"code": "code"},
            }
        )
    assert [p.field for p in caught.value.details] == ["estimator.code"]


# ----------------------------------------------------------------------------- the loader


def test_a_good_factory_gives_an_unfitted_pipeline_with_the_float32_cast_before_its_trees(
    tmp_path: Path,
) -> None:
    folder, module = user_code(tmp_path / "code", COLUMN_TRANSFORMER)
    config = model_config(factory=f"{module}:build", params={"n_estimators": 7})
    pipeline = build_user_pipeline(config, folder)
    assert [name for name, _ in pipeline.steps] == ["prepare", "float32", "model"]
    assert isinstance(pipeline.named_steps["float32"], CastTransformer)
    assert pipeline.named_steps["model"].n_estimators == 7  # [estimator] params reach it
    assert not hasattr(pipeline.named_steps["model"], "estimators_")


def test_names_with_spaces_slashes_and_umlauts_map_to_positions() -> None:
    config = model_config(factory="m:build")
    assert columns(config, "größe", "mean radius") == [2, 0]
    assert columns(config, type="categorical") == [3]
    with pytest.raises(ValueError, match=r"\['radius'\] not among"):
        columns(config, "radius")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("import not_installed_anywhere\ndef build(config): pass\n", "cannot import"),
        ("def build(config):\n    raise ValueError('no such column: age')\n", "raised ValueError"),
        ("def build(config):\n    return {'model': 'ridge'}\n", "returned dict, not a scikit"),
        ("def other(config): pass\n", "has no function 'build'"),
        (
            "from sklearn.linear_model import LogisticRegression\n"
            "def build(config):\n    return LogisticRegression()\n",
            "which is not a regressor",
        ),
        (
            "from sklearn.compose import ColumnTransformer\n"
            "from sklearn.linear_model import Ridge\nfrom sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler\n"
            "def build(config):\n"
            "    ct = ColumnTransformer([('n', StandardScaler(), ['mean radius'])])\n"
            "    return make_pipeline(ct, Ridge())\n",
            "selects columns by name",
        ),
    ],
    ids=["import-error", "exception", "wrong-type", "no-function", "wrong-task", "by-name"],
)
def test_user_code_that_cannot_give_a_model_is_a_model_code_error_naming_the_factory(
    tmp_path: Path, body: str, expected: str
) -> None:
    folder, module = user_code(tmp_path / "code", body)
    config = model_config(factory=f"{module}:build")
    with pytest.raises(ModelCodeError) as caught:
        build_user_pipeline(config, folder)
    assert f"factory {module}:build" in caught.value.message
    assert expected in caught.value.message


def test_a_missing_code_folder_is_named(tmp_path: Path) -> None:
    config = model_config(factory="user_model_absent:build")
    with pytest.raises(ModelCodeError, match="does not exist"):
        build_user_pipeline(config, tmp_path / "nowhere")


def test_a_pipeline_that_fails_to_fit_is_a_model_code_error(tmp_path: Path) -> None:
    # Given a plain pipeline that cannot take the categorical column (a string)
    folder, module = user_code(
        tmp_path / "code",
        "from sklearn.linear_model import Ridge\ndef build(config):\n    return Ridge()\n",
    )
    config = model_config(factory=f"{module}:build")
    with pytest.raises(ModelCodeError, match=f"factory {module}:build failed to fit"):
        train(config, dataset(), code=folder)


def test_a_user_pipeline_trains_and_exports_with_the_derived_input_names(tmp_path: Path) -> None:
    folder, module = user_code(tmp_path / "code", COLUMN_TRANSFORMER)
    config = model_config(factory=f"{module}:build")
    trained = train(config, dataset(), code=folder)
    assert trained.metrics["r2"] > 0.5
    model = to_onnx_bytes(trained.pipeline, config)
    names = [i.name for i in onnx.load_from_string(model).graph.input]
    assert names == [input_name(n) for n in config.feature_names]
    assert names[:2] == ["mean_radius", "ratio_a_b"]


# ------------------------------------------------------------------------------- export


def test_a_step_skl2onnx_cannot_convert_is_named_with_how_to_register_one(
    tmp_path: Path,
) -> None:
    # Given a pipeline with a FunctionTransformer running a lambda (arbitrary Python)
    folder, module = user_code(
        tmp_path / "code",
        """
        import numpy as np
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        def build(config):
            logs = FunctionTransformer(lambda x: np.log1p(np.abs(x.astype(float))))
            prepare = ColumnTransformer([("logs", logs, [0, 1, 2])])
            return Pipeline([("prepare", prepare), ("model", Ridge())])
        """,
    )
    config = model_config(factory=f"{module}:build")
    trained = train(config, dataset(), code=folder)
    # When it is exported, Then the error names the step, its class and the way out
    with pytest.raises(ModelCodeError) as caught:
        to_onnx_bytes(trained.pipeline, config)
    message = caught.value.message
    assert "step 'prepare__logs' (FunctionTransformer)" in message
    assert "update_registered_converter" in message


def test_a_class_of_the_users_without_a_converter_is_named(tmp_path: Path) -> None:
    folder, module = user_code(
        tmp_path / "code",
        """
        from sklearn.linear_model import Ridge

        class ShrunkRidge(Ridge):
            pass

        def build(config):
            return ShrunkRidge()
        """,
    )
    config = model_config(factory=f"{module}:build")
    only_numbers = dataset()
    only_numbers.columns["plan"] = np.zeros(only_numbers.rows)
    trained = train(config, only_numbers, code=folder)
    with pytest.raises(ModelCodeError, match=rf"step 'model' \(ShrunkRidge\).*{module}"):
        to_onnx_bytes(trained.pipeline, config)


# ------------------------------------------------------------------------------- digest


def test_the_code_digest_follows_the_files_not_their_place_or_bytecode(tmp_path: Path) -> None:
    folder, module = user_code(tmp_path / "code", COLUMN_TRANSFORMER)
    (folder / "helpers").mkdir()
    (folder / "helpers" / "extra.py").write_text("X = 1\n")
    first = code_digest(folder)
    assert first.files == 2
    # Copied elsewhere (the layer), with bytecode and hidden files around: the same digest
    copy = tmp_path / "opt" / "model_code"
    shutil.copytree(folder, copy)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / f"{module}.cpython-313.pyc").write_bytes(b"\0")
    (copy / ".empty").write_text("")
    assert code_digest(copy) == first
    # A changed file changes it; so does a renamed one
    (copy / "helpers" / "extra.py").write_text("X = 2\n")
    assert code_digest(copy).sha256 != first.sha256
    (copy / "helpers" / "extra.py").write_text("X = 1\n")
    (copy / "helpers" / "extra.py").rename(copy / "helpers" / "other.py")
    assert code_digest(copy).sha256 != first.sha256
