"""The layer recipes (layers/*/Makefile: pinned wheels, trimming, stripping, bytecode) produce
packages that still work. Lambda's arm64 binaries cannot run here, so the same recipes are
built for this machine's CPU and Python and exercised in an interpreter that sees only them."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.domain.config import ModelConfig
from mlops.domain.dataset import parse_csv
from mlops.domain.export import to_onnx_bytes
from mlops.domain.scoring import OnnxModel
from mlops.domain.training import train
from mlops.services.training import signature_from_training
from tests.conftest import ROOT

LAYERS = {"core": "CoreLayer", "onnxruntime": "OnnxRuntimeLayer", "training": "TrainingLayer"}
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("layers")
    sites = {}
    for folder, target in LAYERS.items():
        subprocess.run(
            [
                "make",
                "-s",
                "-C",
                str(ROOT / "layers" / folder),
                f"build-{target}",
                f"ARTIFACTS_DIR={out / target}",
                f"ARCH={platform.machine()}",
                f"PYTHON_VERSION={HOST_PYTHON}",
                f"PIP={sys.executable} -m pip",
                f"PYC_PYTHON={sys.executable}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        sites[folder] = out / target / "python"
    return sites


def run_isolated(paths: list[Path], code: str) -> str:
    """Run ``code`` in an interpreter without site-packages: only the stdlib and ``paths``."""
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    result = subprocess.run(
        [sys.executable, "-S", "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_trimmed_serving_layers_score_like_the_dev_environment(
    built: dict[str, Path], config: ModelConfig, month0_csv: bytes, tmp_path: Path
) -> None:
    trained = train(config, parse_csv(month0_csv, config))
    signature = signature_from_training(config, trained.train)
    model_bytes = to_onnx_bytes(trained.pipeline, config)
    (tmp_path / "model.onnx").write_bytes(model_bytes)
    (tmp_path / "signature.json").write_text(json.dumps(signature.as_dict()))
    rows = [
        {
            f.name: (
                float(trained.holdout.columns[f.name][i])
                if f.type == "numeric"
                else str(trained.holdout.columns[f.name][i])
            )
            for f in config.features
        }
        for i in range(5)
    ]
    expected = (
        OnnxModel(model_bytes, signature, "regression").score(signature.columns(rows, 10)).values
    )
    out = run_isolated(
        [built["core"], built["onnxruntime"]],
        f"""
import json, sys
from mlops.domain.schema import Signature
from mlops.domain.scoring import OnnxModel
signature = Signature.from_dict(json.load(open({str(tmp_path / "signature.json")!r})))
model = OnnxModel(open({str(tmp_path / "model.onnx")!r}, "rb").read(), signature, "regression")
values = model.score(signature.columns({rows!r}, 10)).values
heavy = sorted(m for m in ("sklearn", "scipy", "pandas") if m in sys.modules)
print(json.dumps({{"values": values, "heavy": heavy}}))
""",
    )
    result = json.loads(out)
    assert result["values"] == expected
    assert result["heavy"] == []


def test_the_trimmed_training_layer_trains_and_exports(built: dict[str, Path]) -> None:
    out = run_isolated(
        [built["core"], built["training"]],
        """
import json
from mlops.domain.config_document import load_config
from mlops.domain.dataset import parse_csv
from mlops.domain.export import to_onnx_bytes
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.domain.training import train
config = load_config()
data = parse_csv(csv_bytes(generate(600, conditions_for_month(0), seed=1)), config)
trained = train(config, data)
print(json.dumps({"bytes": len(to_onnx_bytes(trained.pipeline, config)),
                  "r2": trained.metrics["r2"]}))
""",
    )
    result = json.loads(out)
    assert result["bytes"] > 10_000
    assert result["r2"] > 0.5


def test_recipes_leave_no_tests_headers_or_stale_bytecode(built: dict[str, Path]) -> None:
    for site in built.values():
        assert not list(site.rglob("tests"))
        assert not list(site.rglob("*.h"))
        assert not (site / "bin").exists()
        tags = {p.name.split(".")[-2] for p in site.rglob("*.pyc")}
        assert tags == {f"cpython-{HOST_PYTHON.replace('.', '')}"}
    assert not (built["training"] / "onnx" / "backend" / "test").exists()
