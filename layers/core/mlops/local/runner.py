"""Start the whole local stack: moto + resources, a v1 model if the registry is empty, the API."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlops import __version__
from mlops.adapters.model_store import ModelStore
from mlops.domain.config import ModelConfig, load_config
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import ConfigError
from mlops.local.api import LocalApi
from mlops.local.stack import LocalStack
from mlops.local.target import Target
from mlops.services.training import TrainingResult, TrainingService

# Locally a promotion should show within seconds; on AWS the template's default applies.
LOCAL_PARAMETERS = {"AliasRefreshSeconds": "2"}
BOOTSTRAP_ROWS = 4000
BOOTSTRAP_SEED = 0


@dataclass
class RunningStack:
    stack: LocalStack
    api: LocalApi
    target: Target
    bootstrapped: TrainingResult | None

    @property
    def training_data_uri(self) -> str:
        bucket = self.target.outputs.get("TrainingDataBucketName", "")
        prefix = self.target.outputs.get("TrainingDataPrefix", "training-data/")
        return f"s3://{bucket}/{prefix}"

    @property
    def artifacts_uri(self) -> str:
        return f"s3://{self.target.outputs.get('ArtifactsBucketName', '')}/"

    def stop(self) -> None:
        self.api.stop()
        self.stack.stop()


def archive_dataset(store: ModelStore, data: bytes, filename: str) -> str:
    """Keep an immutable copy of training data under its sha256, for lineage."""
    key = f"datasets/{hashlib.sha256(data).hexdigest()}/{Path(filename).name}"
    store.put_bytes(key, data)
    return store.uri(key)


def training_service(target: Target) -> TrainingService:
    return TrainingService(target.store(), target.registry(), code_version=__version__)


def ensure_model(target: Target, config: ModelConfig) -> TrainingResult | None:
    """Train and promote v1 from month 0 of the synthetic market when nothing is in production."""
    if target.registry().get_alias(target.model_name, "production") is not None:
        return None
    data = csv_bytes(generate(BOOTSTRAP_ROWS, conditions_for_month(0), seed=BOOTSTRAP_SEED))
    uri = archive_dataset(target.store(), data, "houses-month-00.csv")
    return training_service(target).train_and_register(config, data, uri, promote=True)


def start_local(
    template: Path,
    *,
    port: int = 3000,
    moto_port: int | None = None,
    config_path: Path | None = None,
    quiet_functions: bool = False,
    parameters: dict[str, str] | None = None,
) -> RunningStack:
    """``quiet_functions`` keeps the handlers' INFO logs and EMF metrics off the terminal."""
    overrides = (
        {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
        if quiet_functions
        else {}
    )
    stack = LocalStack(
        template,
        moto_port=moto_port,
        parameters=LOCAL_PARAMETERS | (parameters or {}),
        env_overrides=overrides,
    )
    stack.start()
    try:
        target = Target(stack.outputs, "local stack")
        config = load_config(config_path)
        if config.name != target.model_name:
            raise ConfigError(
                f"config model {config.name!r} != template ModelName {target.model_name!r}"
            )
        result = ensure_model(target, config)
        api = LocalApi(stack, port)
        api.start()
        wait_until_healthy(api.url)
    except BaseException:
        stack.stop()
        raise
    return RunningStack(stack, api, target, result)


def wait_until_healthy(url: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer 200 within {timeout:.0f}s ({last})")
