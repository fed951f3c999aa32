"""Serve predictions from the ONNX model behind a registry alias.

``ModelProvider`` keeps the model loaded and re-checks the alias at most every
``refresh_seconds``: a promotion takes effect without a redeploy, and when the registry or S3
fails after a model is loaded, the loaded model keeps serving. In-flight requests hold a
reference to the model they started with, so a swap never fails them.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.adapters.model_store import ModelStore, version_prefix
from mlops.adapters.registry import Registry
from mlops.domain.manifest import Manifest
from mlops.domain.scoring import OnnxModel
from mlops.errors import (
    IntegrityError,
    InvalidInputError,
    MlopsError,
    ModelUnavailableError,
    Problem,
)
from mlops.observability import MetricUnit, logger, metrics

REQUEST_FIELDS = frozenset({"instances", "request_id"})
KNOWN_ALIASES = ("production", "candidate")


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    model: OnnxModel

    @property
    def version(self) -> str:
        return self.manifest.version


class ModelProvider:
    def __init__(
        self,
        model_name: str,
        alias: str,
        *,
        registry: Registry,
        store: ModelStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model_name = model_name
        self.alias = alias
        self._registry = registry
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._loaded: LoadedModel | None = None
        self._aliases: dict[str, str] = {}
        self._next_check = 0.0
        self._lock = threading.Lock()

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def expire(self) -> None:
        """Re-check the alias on the next request (e.g. after a SnapStart restore)."""
        self._next_check = 0.0

    def current(self) -> LoadedModel:
        """The model to serve now; raises ``ModelUnavailableError`` if none can be loaded."""
        if self._clock() >= self._next_check:
            with self._lock:
                if self._clock() >= self._next_check:
                    self._refresh()
        if self._loaded is None:
            raise ModelUnavailableError(f"no {self.alias} model of {self.model_name} is loadable")
        return self._loaded

    def _refresh(self) -> None:
        loaded = self._loaded
        # Until a model loads, retry sooner, so a first registration is picked up quickly.
        self._next_check = self._clock() + min(self._refresh_seconds, 5.0)
        try:
            aliases = self._registry.aliases(self.model_name)
            self._aliases = aliases
            version = aliases.get(self.alias)
            if version is None:
                raise ModelUnavailableError(f"alias {self.alias} of {self.model_name} is not set")
            if loaded is None or loaded.version != version:
                started = time.perf_counter()
                self._loaded = self._load(version)
                logger.info(
                    "model loaded",
                    model_name=self.model_name,
                    model_version=version,
                    previous_version=loaded.version if loaded else None,
                    load_ms=round((time.perf_counter() - started) * 1000, 1),
                )
            self._next_check = self._clock() + self._refresh_seconds
        except MlopsError as exc:
            if loaded is None:
                logger.error("no model loadable", model_name=self.model_name, error=str(exc))
                raise ModelUnavailableError(f"no model loadable: {exc.message}") from exc
            self._next_check = self._clock() + self._refresh_seconds
            logger.warning(
                "refresh failed; keeping the loaded model",
                model_version=loaded.version,
                error=str(exc),
            )
            metrics.add_metric(name="ModelRefreshFailures", unit=MetricUnit.Count, value=1)

    def _load(self, version: str) -> LoadedModel:
        prefix = version_prefix(self.model_name, version)
        manifest = Manifest.from_dict(self._store.get_json(prefix + "manifest.json"))
        model_bytes = self._store.get_bytes(prefix + "model.onnx")
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != manifest.model_sha256:
            raise IntegrityError(
                f"model.onnx of version {version} has sha256 {digest[:12]}…, "
                f"manifest says {manifest.model_sha256[:12]}…; refusing to load it"
            )
        try:
            model = OnnxModel(model_bytes, manifest.signature, manifest.task, manifest.classes)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelUnavailableError(f"version {version} does not load: {exc}") from exc
        return LoadedModel(manifest=manifest, model=model)


class InferenceService:
    def __init__(self, provider: ModelProvider, max_instances: int) -> None:
        self._provider = provider
        self._max_instances = max_instances

    def expire_model(self) -> None:
        """Make the next request re-check which version the alias points at."""
        self._provider.expire()

    def warm(self) -> None:
        """Load the model ahead of the first request (Lambda's init phase has a full CPU)."""
        try:
            self._provider.current()
        except MlopsError as exc:
            logger.warning("model not loaded at start", error=str(exc))

    def predict(self, body: Any) -> dict[str, Any]:
        instances, request_id = _parse_request(body)
        loaded = self._provider.current()
        columns = loaded.manifest.signature.columns(instances, self._max_instances)
        scores = loaded.model.score(columns)
        response: dict[str, Any] = {
            "model_version": loaded.version,
            "predictions": scores.values,
            "prediction_ids": [str(uuid.uuid4()) for _ in scores.values],
        }
        probabilities = scores.probability_dicts()
        if probabilities is not None:
            response["probabilities"] = probabilities
        if request_id is not None:
            response["request_id"] = request_id
        return response

    def describe(self) -> dict[str, Any]:
        loaded = self._provider.current()
        m = loaded.manifest
        aliases: dict[str, str | None] = dict.fromkeys(KNOWN_ALIASES)
        aliases.update(self._provider.aliases)
        return {
            "model_name": m.model_name,
            "model_version": m.version,
            "task": m.task,
            "target": m.target,
            "created_at": m.created_at,
            "signature": m.signature.as_dict(),
            "classes": list(m.classes) or None,
            "metrics": dict(m.metrics),
            "aliases": aliases,
            "lineage": m.raw.get("lineage"),
        }

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model_version": self._provider.current().version}


def _parse_request(body: Any) -> tuple[Any, str | None]:
    if not isinstance(body, Mapping):
        raise InvalidInputError(
            "the body must be a JSON object",
            [Problem("body", 'expected a JSON object like {"instances": [...]}')],
        )
    problems = [Problem(k, "unknown field") for k in sorted(body.keys() - REQUEST_FIELDS)]
    if "instances" not in body:
        problems.append(Problem("instances", "missing required field"))
    request_id = body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 0 < len(request_id) <= 128
    ):
        problems.append(Problem("request_id", "expected a string of 1 to 128 characters"))
    if problems:
        raise InvalidInputError(f"{len(problems)} problem(s) in the request body", problems)
    return body["instances"], request_id
