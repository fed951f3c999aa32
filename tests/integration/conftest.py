from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from mlops import bootstrap, settings
from mlops.adapters import aws
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.config import ModelConfig
from mlops.services.training import TrainingResult, TrainingService
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, TABLE, import_fresh, moto_resources
from tests.integration.retrain_pipeline import Pipeline, pipeline_in_moto

APP = ROOT / "functions" / "inference" / "app.py"
INFERENCE_ENV = {
    "MODEL_NAME": "house-prices",
    "MODEL_BUCKET": BUCKET,
    "REGISTRY_TABLE": TABLE,
    "ALIAS_REFRESH_SECONDS": "30",
    "MAX_INSTANCES": "50",
    "MAX_BODY_BYTES": "20000",
}
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


class BeforeWrite:
    """A DynamoDB client that runs ``competitor`` once, just before the first ``operation``
    call that ``when`` accepts (any, by default) goes out: a writer that read the registry,
    then lost the race to the write."""

    operation = "update_item"

    def __init__(
        self,
        client: Any,
        competitor: Callable[[], object],
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self._client = client
        self._competitor: Callable[[], object] | None = competitor
        self._when = when

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name != self.operation:
            return method

        def write(**kwargs: Any) -> Any:
            if self._competitor is not None and (self._when is None or self._when(kwargs)):
                competitor, self._competitor = self._competitor, None
                competitor()
            return method(**kwargs)

        return write


class BeforeTransaction(BeforeWrite):
    """``BeforeWrite`` for the registry's transactions (``TransactWriteItems``)."""

    operation = "transact_write_items"


def writes_item(sk: str) -> Callable[[dict[str, Any]], bool]:
    """``when`` for ``BeforeWrite``: a transaction that writes (not only checks) item ``sk``,
    e.g. ``alias#production``: the race is run just before that one, whatever came first."""

    def matches(kwargs: dict[str, Any]) -> bool:
        return any(
            op.get("Key", op.get("Item", {})).get("sk", {}).get("S") == sk
            for item in kwargs.get("TransactItems", [])
            for kind, op in item.items()
            if kind != "ConditionCheck"
        )

    return matches


def load_handler_module() -> ModuleType:
    """Import functions/inference/app.py afresh, as a new Lambda container would."""
    bootstrap.inference_service.cache_clear()
    settings.inference_settings.cache_clear()
    return import_fresh("inference_app_under_test", APP)


def invoker(module: ModuleType) -> Invoke:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return dict(module.lambda_handler(event, LambdaContext("inference-test")))

    return invoke


@dataclass
class Served:
    """A registered v1 in moto and a freshly imported inference handler serving it."""

    invoke: Invoke
    module: ModuleType
    v1: TrainingResult
    trainer: TrainingService
    store: ModelStore
    registry: Registry


@pytest.fixture(scope="module")
def served(config: ModelConfig, month0_csv: bytes) -> Iterator[Served]:
    """Module-scoped: training once keeps the handler tests fast. Tests that change the
    registry or storage use ``fresh`` instead."""
    with moto_resources(INFERENCE_ENV):
        yield _serve(config, month0_csv)
    sys.modules.pop("inference_app_under_test", None)


@pytest.fixture
def fresh(config: ModelConfig, month0_csv: bytes) -> Iterator[Served]:
    with moto_resources(INFERENCE_ENV):
        yield _serve(config, month0_csv)


@pytest.fixture
def inference_env() -> Iterator[None]:
    with moto_resources(INFERENCE_ENV):
        yield


def _serve(config: ModelConfig, month0_csv: bytes) -> Served:
    store = ModelStore(BUCKET, aws.client("s3"))
    registry = Registry(TABLE, aws.client("dynamodb"))
    trainer = TrainingService(store, registry, code_version="test")
    v1 = trainer.train_and_register(config, month0_csv, "s3://data/month0.csv")
    module = load_handler_module()
    return Served(invoker(module), module, v1, trainer, store, registry)


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """The retraining handlers against moto (see tests/integration/retrain_pipeline.py)."""
    with pipeline_in_moto() as line:
        yield line


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for the tests that look at a report as a person would: Debian's
    package, installed by the project's script when missing (skips, saying why, if it can't)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure_chromium.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = shutil.which("chromium")
    if result.returncode != 0 or not found:
        pytest.skip(f"no headless Chromium: {(result.stderr or result.stdout).strip()}")
    return found


# Last: the module imports names defined above (a shared fixture set, like ``pipeline``).
from tests.integration.rollout_stack import rollout_models, rollout_stack  # noqa: E402, F401
