"""Typed settings per function, read from the environment once.

Resource names come from ``template.yaml`` (or the local stack, which reads the same
template); there are no defaults for them, so a missing variable fails fast with its name.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops.domain.names import PRODUCTION
from mlops.errors import ConfigError

# The template sets POWERTOOLS_METRICS_NAMESPACE for every function; without it Powertools
# raises at the first flush, after the answer is computed. The same name, as a fallback.
DEFAULT_METRICS_NAMESPACE = "ServerlessMLOps"


@dataclass(frozen=True)
class InferenceSettings:
    model_name: str
    model_bucket: str
    registry_table: str
    model_alias: str = PRODUCTION
    alias_refresh_seconds: float = 30.0
    # Longest a request waits for a due alias re-check before serving the loaded model.
    alias_refresh_wait_seconds: float = 0.1
    # Longest a request waits for a model to load when none is loaded yet (then a 503).
    model_load_wait_seconds: float = 5.0
    max_instances: int = 1000
    max_body_bytes: int = 1_048_576
    # Share of /predict requests written as capture log lines (0 to 1).
    capture_sample_rate: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InferenceSettings:
        return cls(
            model_name=_required(env, "MODEL_NAME"),
            model_bucket=_required(env, "MODEL_BUCKET"),
            registry_table=_required(env, "REGISTRY_TABLE"),
            model_alias=env.get("MODEL_ALIAS", "").strip() or cls.model_alias,
            alias_refresh_seconds=_number(env, "ALIAS_REFRESH_SECONDS", cls.alias_refresh_seconds),
            alias_refresh_wait_seconds=_number(
                env, "ALIAS_REFRESH_WAIT_SECONDS", cls.alias_refresh_wait_seconds
            ),
            model_load_wait_seconds=_number(
                env, "MODEL_LOAD_WAIT_SECONDS", cls.model_load_wait_seconds
            ),
            max_instances=_count(env, "MAX_INSTANCES", cls.max_instances),
            max_body_bytes=_count(env, "MAX_BODY_BYTES", cls.max_body_bytes),
            capture_sample_rate=_fraction(env, "CAPTURE_SAMPLE_RATE", cls.capture_sample_rate),
        )


@functools.cache
def inference_settings() -> InferenceSettings:
    return InferenceSettings.from_env(os.environ)


@dataclass(frozen=True)
class RetrainerSettings:
    model_name: str
    model_bucket: str  # artifacts: config/, datasets/, staging/, reports/
    capture_bucket: str
    training_bucket: str
    training_prefix: str
    idempotency_table: str
    # A trigger's idempotency record outlives any redelivery S3 or EventBridge makes.
    idempotency_days: int = 30
    # The folder of the config's [estimator] factory (the ModelCodeLayer), when there is one.
    model_code_dir: Path | None = None
    # SageMaker training jobs ([training] engine): unset role or prefix means no SageMaker.
    training_job_prefix: str = ""
    training_job_role_arn: str = ""
    training_image_uri: str = ""  # empty: AWS's scikit-learn image for the region
    training_instance_type: str = "ml.m5.xlarge"
    training_max_runtime_seconds: int = 7200
    region: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetrainerSettings:
        return cls(
            model_name=_required(env, "MODEL_NAME"),
            model_bucket=_required(env, "MODEL_BUCKET"),
            capture_bucket=_required(env, "CAPTURE_BUCKET"),
            training_bucket=_required(env, "TRAINING_BUCKET"),
            training_prefix=_required(env, "TRAINING_PREFIX"),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            idempotency_days=_count(env, "IDEMPOTENCY_DAYS", cls.idempotency_days),
            model_code_dir=Path(env["MODEL_CODE_DIR"]) if env.get("MODEL_CODE_DIR") else None,
            training_job_prefix=env.get("TRAINING_JOB_PREFIX", "").strip(),
            training_job_role_arn=env.get("TRAINING_JOB_ROLE_ARN", "").strip(),
            training_image_uri=env.get("TRAINING_IMAGE_URI", "").strip(),
            training_instance_type=env.get("TRAINING_INSTANCE_TYPE", "").strip()
            or cls.training_instance_type,
            training_max_runtime_seconds=_count(
                env, "TRAINING_MAX_RUNTIME_SECONDS", cls.training_max_runtime_seconds
            ),
            region=env.get("AWS_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "").strip(),
        )


@functools.cache
def retrainer_settings() -> RetrainerSettings:
    return RetrainerSettings.from_env(os.environ)


@dataclass(frozen=True)
class GateSettings:
    model_name: str
    model_bucket: str
    registry_table: str
    idempotency_table: str
    idempotency_days: int = 30
    # The names of this stack's training jobs start with it (their completion events).
    training_job_prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GateSettings:
        return cls(
            model_name=_required(env, "MODEL_NAME"),
            model_bucket=_required(env, "MODEL_BUCKET"),
            registry_table=_required(env, "REGISTRY_TABLE"),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            idempotency_days=_count(env, "IDEMPOTENCY_DAYS", cls.idempotency_days),
            training_job_prefix=env.get("TRAINING_JOB_PREFIX", "").strip(),
        )


@functools.cache
def gate_settings() -> GateSettings:
    return GateSettings.from_env(os.environ)


@dataclass(frozen=True)
class DriftSettings:
    model_name: str
    model_bucket: str  # models/, config/, sketches/ (+ roll-ups), reports/drift/
    capture_bucket: str  # captures/, feedback/
    registry_table: str
    retrain_bus: str
    window_hours: float = 24.0
    service_name: str = "drift-evaluator"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DriftSettings:
        return cls(
            model_name=_required(env, "MODEL_NAME"),
            model_bucket=_required(env, "MODEL_BUCKET"),
            capture_bucket=_required(env, "CAPTURE_BUCKET"),
            registry_table=_required(env, "REGISTRY_TABLE"),
            retrain_bus=_required(env, "RETRAIN_BUS"),
            window_hours=_number(env, "DRIFT_WINDOW_HOURS", cls.window_hours),
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "").strip() or cls.service_name,
        )


@functools.cache
def drift_settings() -> DriftSettings:
    return DriftSettings.from_env(os.environ)


@dataclass(frozen=True)
class BatchSettings:
    model_name: str
    model_bucket: str  # models/ (and config/)
    capture_bucket: str  # captures/ (source = batch)
    registry_table: str
    batch_prefix: str  # uploads under it (in the training data bucket) start a job
    state_machine_arn: str  # larger files than lambda_max_bytes go to it
    # Files up to this size are scored in the one invocation (BatchLambdaMaxBytes).
    lambda_max_bytes: int = 256 * 1024 * 1024
    chunk_rows: int = 50_000  # rows scored per onnxruntime call (and per part object)
    capture: bool = True  # write batch captures (source = batch) to the capture partitions
    onnx_threads: int = 1  # onnxruntime threads scoring a chunk (see onnx_threads_for)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchSettings:
        return cls(
            model_name=_required(env, "MODEL_NAME"),
            model_bucket=_required(env, "MODEL_BUCKET"),
            capture_bucket=_required(env, "CAPTURE_BUCKET"),
            registry_table=_required(env, "REGISTRY_TABLE"),
            batch_prefix=_required(env, "BATCH_PREFIX"),
            state_machine_arn=_required(env, "STATE_MACHINE_ARN"),
            lambda_max_bytes=_count(env, "LAMBDA_MAX_BYTES", cls.lambda_max_bytes),
            chunk_rows=_count(env, "CHUNK_ROWS", cls.chunk_rows),
            capture=_flag(env, "BATCH_CAPTURE", cls.capture),
            onnx_threads=onnx_threads_for(
                _count(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", LAMBDA_MB_PER_VCPU)
            ),
        )


LAMBDA_MB_PER_VCPU = 1769  # Lambda grants one vCPU of time per 1,769 MB of memory


def onnx_threads_for(memory_mb: int) -> int:
    """onnxruntime threads for a batch function of ``memory_mb``: its whole vCPUs but one,
    which parses the next chunk meanwhile (at least 1; 10,240 MB, 5.8 vCPUs of time, gives 4)."""
    return max(1, memory_mb // LAMBDA_MB_PER_VCPU - 1)


@functools.cache
def batch_settings() -> BatchSettings:
    return BatchSettings.from_env(os.environ)


@functools.cache
def rollout_id_seed() -> str | None:
    """``ROLLOUT_ID_SEED``: when set, rollout ids (which salt the canary's split of requests)
    are derived from it, so a replayed run (``mlops demo --seed``) routes the same requests to
    the candidate. Never set by the template: on AWS each rollout draws a random split."""
    return os.environ.get("ROLLOUT_ID_SEED", "").strip() or None


def metrics_namespace(env: Mapping[str, str] = os.environ) -> str:
    return env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def _float(env: Mapping[str, str], name: str) -> float | None:
    """The variable as a number; None when unset or blank."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from exc


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive finite number; unset or blank means ``default``."""
    value = _float(env, name)
    if value is None:
        return default
    # "nan" compares false with everything and "inf" disables what it bounds: both refused.
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"environment variable {name} must be positive and finite, got {env[name]!r}"
        )
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    """A share from 0 to 1 inclusive; unset or blank means ``default``."""
    value = _float(env, name)
    if value is None:
        return default
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ConfigError(f"environment variable {name} must be from 0 to 1, got {env[name]!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number: "0.5" would truncate to 0 and refuse every request."""
    value = float(_number(env, name, default))
    if not value.is_integer():
        raise ConfigError(f"environment variable {name} must be a whole number, got {env[name]!r}")
    return int(value)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``true``/``false`` (any case); unset or blank means ``default``."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"environment variable {name} must be true or false, got {env[name]!r}")
    return raw == "true"
