"""Start the whole local stack: moto + resources, a v1 model if the registry is empty, the API."""

from __future__ import annotations

import hashlib
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from mlops import __version__
from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import load_config
from mlops.domain.kept_data import kept_metadata
from mlops.domain.keys import bounded_key, dataset_key
from mlops.domain.layout import config_key
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import ConfigError, StorageError
from mlops.services.stack_config import DEFAULT_CONFIG
from mlops.services.training import TrainingResult, TrainingService
from mlops_cli.emulator.api import LocalApi
from mlops_cli.emulator.runtime import LogLine
from mlops_cli.emulator.stack import LocalStack
from mlops_cli.emulator.state import Counts
from mlops_cli.emulator.target import Target

# Locally a promotion should show within seconds, and training shares two cores with
# everything else (OpenMP threads that outnumber free cores spin instead of working); on AWS
# the template's defaults apply.
LOCAL_PARAMETERS = {"AliasRefreshSeconds": "2", "TrainingThreads": "1"}
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

    def stop(self, *, save_to: Path | None = None) -> Counts | None:
        """Stop; with ``save_to``, keep the stack's state there for the next start."""
        self.api.stop()
        return self.stack.stop(save_to=save_to)


def archive_dataset(store: ModelStore, data: bytes, filename: str) -> str:
    """Keep an immutable copy of training data under its sha256, for lineage."""
    key = dataset_key(hashlib.sha256(data).hexdigest(), Path(filename).name)
    store.put_bytes(key, data)
    return store.uri(key)


def keep_training_data(target: Target, data: bytes, filename: str, version: str) -> str:
    """Keep the data v``version`` was trained from under the training prefix, where uploads go,
    so a retrain the drift evaluator requests has data (``domain.kept_data``: the upload
    notification this write fires is skipped by the retrainer, reported)."""
    bucket = target.output("TrainingDataBucketName")
    key = bounded_key(target.output("TrainingDataPrefix"), Path(filename).name)
    metadata = kept_metadata(version, hashlib.sha256(data).hexdigest())
    try:
        client("s3").put_object(Bucket=bucket, Key=key, Body=data, Metadata=metadata)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot keep the training data in s3://{bucket}/{key}: {exc}") from exc
    return f"s3://{bucket}/{key}"


def publish_config(target: Target, config_path: Path | None) -> str:
    """Keep the config the stack serves where the retrainer reads it (``config/<model>.toml``
    in the artifacts bucket): an upload retrains the model the stack was started with."""
    if config_path is None:
        text = resources.files("mlops.defaults").joinpath(DEFAULT_CONFIG).read_bytes()
    else:
        text = read_data(config_path)
    key = config_key(target.model_name)
    target.store().put_bytes(key, text)
    return target.store().uri(key)


def training_service(target: Target, model_code: Path | None = None) -> TrainingService:
    return TrainingService(
        target.store(), target.registry(), code_version=__version__, model_code=model_code
    )


def model_code_folder(config: ModelConfig, config_path: Path | None) -> Path | None:
    """Where this process finds the config's ``[estimator] factory``: its ``code`` folder,
    relative to the config file (None without a factory, or without the file)."""
    if not config.estimator.factory or config_path is None:
        return None
    return (config_path.parent / config.estimator.code).resolve()


def ensure_model(
    target: Target,
    config: ModelConfig,
    data_path: Path | None = None,
    model_code: Path | None = None,
) -> TrainingResult | None:
    """Train and promote v1 when nothing is in production: from ``data_path`` if given, else
    (the shipped house-prices config only) from month 0 of the synthetic market."""
    if target.registry().get_alias(target.model_name, "production") is not None:
        return None
    if data_path is not None:
        data, name = read_data(data_path), data_path.name
    else:
        data = csv_bytes(generate(BOOTSTRAP_ROWS, conditions_for_month(0), seed=BOOTSTRAP_SEED))
        name = "houses-month-00.csv"
    uri = archive_dataset(target.store(), data, name)
    result = training_service(target, model_code).train_and_register(
        config, data, uri, promote=True
    )
    keep_training_data(target, data, name, result.version)
    return result


def read_data(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def model_parameters(config: ModelConfig, parameters: dict[str, str]) -> dict[str, str]:
    """The stack serves the config's model: its ``name`` is the template's ``ModelName``."""
    chosen = parameters.get("ModelName", config.name)
    if chosen != config.name:
        raise ConfigError(
            f"--parameter-overrides ModelName={chosen} but the config's model is {config.name!r}: "
            "drop the override (the config's name sets ModelName) or use a config with that name"
        )
    return parameters | {"ModelName": config.name}


def start_local(
    template: Path,
    *,
    port: int = 3000,
    moto_port: int | None = None,
    config_path: Path | None = None,
    data_path: Path | None = None,
    quiet_functions: bool = False,
    parameters: dict[str, str] | None = None,
    schedule_seconds: float | None = None,
    restore_from: Path | None = None,
    environment: dict[str, str] | None = None,
) -> RunningStack:
    """Start moto, the template's resources and functions, and the HTTP API.

    The model served is the config's (default: the shipped house-prices config), whose
    ``name`` becomes the template's ``ModelName``. With ``data_path`` an empty registry gets
    v1 trained from it; with the shipped config and no data, from the synthetic market; with a
    config of your own and no data, nothing: the API answers 503 until ``mlops train``.
    ``restore_from``: a folder a stopped stack saved its state to (``emulator.state``); a
    restored registry with a production version trains nothing.
    ``quiet_functions`` keeps the handlers' INFO logs and EMF metrics off the terminal;
    ``environment`` adds variables to every function's (``mlops demo``: ``ROLLOUT_ID_SEED``).
    """
    config = load_config(config_path)
    model_code = model_code_folder(config, config_path)
    if model_code is not None and not model_code.is_dir():
        raise ConfigError(
            f"{config_path}: [estimator] code = {config.estimator.code!r}: no folder {model_code}"
        )
    if data_path is not None:
        read_data(data_path)  # fail before anything starts
    overrides = (
        {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
        if quiet_functions
        else {}
    ) | (environment or {})
    stack = LocalStack(
        template,
        moto_port=moto_port,
        parameters=model_parameters(config, LOCAL_PARAMETERS | (parameters or {})),
        env_overrides=overrides,
        schedule_seconds=schedule_seconds,
        model_code=model_code,
    )
    if not quiet_functions:
        stack.log_listeners.append(print_function_log)
    stack.start(restore_from=restore_from)
    try:
        try:  # bind the port before minutes of training, so a taken port fails at once
            api = LocalApi(stack, port)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror} (pass another --port)"
            ) from exc
        target = Target(stack.outputs, "local stack")
        publish_config(target, config_path)
        bootstrap = data_path is not None or config_path is None
        result = ensure_model(target, config, data_path, model_code) if bootstrap else None
        api.start()
        wait_until_healthy(api.url, expect_model=bootstrap)
    except BaseException:
        stack.stop()
        raise
    return RunningStack(stack, api, target, result)


def print_function_log(line: LogLine) -> None:
    """Function output on stderr, one prefix per line, as ``sam local`` shows container logs."""
    prefix = f"{line.function} | "
    sys.stderr.write(prefix + line.message.replace("\n", "\n" + prefix) + "\n")


def wait_until_healthy(url: str, timeout: float = 60.0, *, expect_model: bool = True) -> int:
    """Wait until ``GET /health`` answers: 200, or also 503 when no model is expected yet."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            if exc.code == 503 and not expect_model:
                return 503
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer within {timeout:.0f}s ({last})")
