"""The serving path imports no training stack: it must fit the inference function's package."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = ("sklearn", "scipy", "pandas", "skl2onnx", "onnx", "joblib")

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


def test_importing_the_inference_handler_loads_no_training_libraries() -> None:
    # A fresh interpreter imports the handler the way Lambda does (the registry is unreachable
    # here, which the handler tolerates at start).
    env = {
        **os.environ,
        "MODEL_NAME": "m",
        "MODEL_BUCKET": "b",
        "REGISTRY_TABLE": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "t",
    }
    app = ROOT / "functions" / "inference" / "app.py"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(app)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "onnxruntime" in loaded  # the probe really imported the serving path
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_the_cli_promotes_without_importing_the_training_stack() -> None:
    # `mlops promote` is one conditional write; importing scikit-learn took 4 to 17 s.
    probe = (
        "import json, sys\n"
        "import mlops_cli.main, mlops_cli.emulator.target, mlops.services.promotion\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "mlops_cli" in loaded
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_duckdb_ships_in_no_function_and_loads_only_for_mlops_query() -> None:
    # The local query engine is a laptop tool: no layer recipe or shipped module names it
    shipped = [*ROOT.glob("layers/*/requirements*.txt"), *ROOT.glob("layers/*/Makefile")]
    shipped += [*ROOT.glob("functions/*/*"), *(ROOT / "layers" / "core" / "mlops").rglob("*.py")]
    assert shipped
    assert not [p for p in shipped if p.is_file() and "duckdb" in p.read_text().lower()]
    # and the CLI imports it only when a local query runs
    probe = (
        "import json, sys\n"
        "import mlops_cli.main, mlops_cli.commands.query, mlops_cli.query.service\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    assert "duckdb" not in json.loads(out.stdout.strip().splitlines()[-1])
