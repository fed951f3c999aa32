"""Serve predictions from the ONNX model behind a registry alias.

``ModelProvider`` keeps the model loaded and re-checks the alias at most every
``refresh_seconds``: a promotion takes effect without a redeploy, and when the registry or S3
fails after a model is loaded, the loaded model keeps serving. In-flight requests hold a
reference to the model they started with, so a swap never fails them.

The registry, not the artifacts bucket, is the trust anchor: a version is loaded only if its
``model.onnx`` has the sha256 recorded in the registry (and the manifest agrees), so write
access to the bucket alone cannot change what is served.

Re-checks run on a background thread. With a model loaded, the request that triggers one
waits at most ``refresh_wait_seconds`` (default 0.1 s) and the others not at all: a hung
registry or S3 delays no request by more than that bound. With none loaded (a cold start),
requests wait at most ``load_wait_seconds`` (default 5 s) for the load, then get a 503 while
it goes on. The thread only does I/O; its outcome is applied (state, logs, metrics) on a
request thread, because Powertools' logger and metrics are not safe to mutate from a second
thread while a request flushes them.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.adapters.model_store import ModelStore, version_prefix
from mlops.adapters.registry import PRODUCTION, ROLLOUT_ALIAS, Registry, Rollout
from mlops.domain import capture
from mlops.domain.ids import uuid7s
from mlops.domain.manifest import Manifest
from mlops.domain.schema import valid_unicode
from mlops.domain.scoring import OnnxModel
from mlops.domain.versions import parse_version
from mlops.errors import (
    IntegrityError,
    InvalidInputError,
    MlopsError,
    ModelUnavailableError,
    Problem,
)
from mlops.observability import MetricUnit, logger, metrics

REQUEST_FIELDS = frozenset({"instances", "request_id"})
MAX_REQUEST_ID = 128
KNOWN_ALIASES = (PRODUCTION, ROLLOUT_ALIAS)
# Until a model loads, re-check sooner, so a first registration is picked up quickly.
RETRY_WHILE_UNLOADED_SECONDS = 5.0


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    model: OnnxModel

    @property
    def version(self) -> str:
        return self.manifest.version

    @functools.cached_property
    def input_contract(self) -> tuple[tuple[Any, ...], ...]:
        """What request validation checks (names, types, order, bounds): two models with the
        same contract build the same columns from a request, so one set serves both."""
        return tuple((f.name, f.type, f.min, f.max) for f in self.manifest.signature.features)


@dataclass(frozen=True)
class ServingState:
    """What an operator needs to see: the version served and the one the alias names."""

    served_version: str | None
    alias_version: str | None
    reason: str | None  # why they differ; None when they agree

    @property
    def consistent(self) -> bool:
        return self.alias_version is None or self.served_version == self.alias_version


@dataclass(frozen=True)
class LiveRollout:
    """A rollout whose candidate is loaded: what a request may be routed to."""

    rollout: Rollout
    candidate: LoadedModel

    def routes_to_candidate(self, key: str) -> bool:
        """Whether a canary answers the request keyed ``key``: a stable hash of the rollout
        and the key, so one ``request_id`` always meets the same variant in a rollout."""
        if self.rollout.mode != "canary":
            return False
        digest = hashlib.blake2b(
            f"{self.rollout.rollout_id}:{key}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest) * 100.0 < self.rollout.percent * 2**64


@dataclass(frozen=True)
class _Outcome:
    """The result of one alias re-check, produced off the request thread."""

    aliases: dict[str, str] | None
    alias_version: str | None
    loaded: LoadedModel | None = None
    error: MlopsError | None = None
    seconds: float = 0.0
    rollout: Rollout | None = None
    candidate: LoadedModel | None = None
    candidate_error: MlopsError | None = None


class ModelProvider:
    def __init__(
        self,
        model_name: str,
        alias: str,
        *,
        registry: Registry,
        store: ModelStore,
        refresh_seconds: float,
        refresh_wait_seconds: float = 0.1,
        load_wait_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model_name = model_name
        self.alias = alias
        self._registry = registry
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._refresh_wait = refresh_wait_seconds
        self._load_wait = load_wait_seconds
        self._clock = clock
        self._loaded: LoadedModel | None = None
        self._aliases: dict[str, str] = {}
        self._alias_version: str | None = None
        self._reason: str | None = None
        self._next_check = 0.0
        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._outcome: _Outcome | None = None
        self._rollout: Rollout | None = None
        self._live: LiveRollout | None = None  # one attribute: read atomically by requests
        self._candidate_reason: str | None = None

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def expire(self) -> None:
        """Re-check the alias on the next request (e.g. after a SnapStart restore)."""
        self._next_check = 0.0

    def live_rollout(self) -> LiveRollout | None:
        """The active rollout, when its candidate is loaded (call after ``current``)."""
        return self._live

    def rollout_state(self) -> dict[str, Any] | None:
        """The active rollout as /health and /model show it: whether its candidate serves."""
        rollout = self._rollout
        if rollout is None:
            return None
        live = self._live
        state: dict[str, Any] = {
            "version": rollout.version,
            "mode": rollout.mode,
            "percent": rollout.percent,
            "started_at": rollout.started_at,
            "loaded": live is not None and live.rollout.rollout_id == rollout.rollout_id,
        }
        if not state["loaded"]:
            state["reason"] = self._candidate_reason or (
                "loading the candidate" if self._refreshing() else "not loaded yet"
            )
        return state

    def state(self) -> ServingState:
        served = self._loaded.version if self._loaded else None
        state = ServingState(served, self._alias_version, None)
        if state.consistent:
            return state
        reason = self._reason or (
            "loading the new version" if self._refreshing() else "not loaded yet"
        )
        return ServingState(served, self._alias_version, reason)

    def current(self) -> LoadedModel:
        """The model to serve now; raises ``ModelUnavailableError`` if none can be loaded."""
        if self._outcome is not None:
            self._apply()
        started = self._clock() >= self._next_check and self._start_check()
        worker = self._worker
        if worker is not None and worker.is_alive():
            if self._loaded is None:  # nothing to serve: every request waits for the load
                worker.join(self._load_wait)
            elif started:  # a model to serve: only the request that asked waits, briefly
                worker.join(self._refresh_wait)
        if self._outcome is not None:  # the re-check may also have finished before the join
            self._apply()
        loaded = self._loaded
        if loaded is None:
            why = "still loading" if self._refreshing() else self._reason
            raise ModelUnavailableError(
                f"no {self.alias} model of {self.model_name} is loadable"
                + (f": {why}" if why else "")
            )
        if self._alias_version is not None and loaded.version != self._alias_version:
            metrics.add_metric(name="ServedVersionMismatch", unit=MetricUnit.Count, value=1)
        return loaded

    def _refreshing(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _start_check(self) -> bool:
        """Start a re-check on a background thread unless one is running or not yet due."""
        with self._lock:
            if self._clock() < self._next_check or self._refreshing():
                return False
            # Claim this check, so concurrent requests neither repeat nor wait for it twice.
            self._next_check = self._clock() + self._refresh_seconds
            live = self._live
            self._worker = threading.Thread(
                target=self._fetch_in_background,
                args=(self._loaded, live.candidate if live else None),
                daemon=True,
            )
            self._worker.start()
            return True

    def _fetch_in_background(
        self, loaded: LoadedModel | None, candidate: LoadedModel | None = None
    ) -> None:
        self._outcome = self._fetch(loaded, candidate)

    def _fetch(self, loaded: LoadedModel | None, candidate: LoadedModel | None = None) -> _Outcome:
        """Read the aliases and load the version the alias names if it is not ``loaded``.
        I/O only: no logging, no metrics, no shared state but the returned outcome."""
        started = time.perf_counter()
        aliases: dict[str, str] | None = None
        version: str | None = None
        try:
            aliases, rollout = self._registry.serving(self.model_name)
            if self.alias != PRODUCTION:
                rollout = None  # a rollout is proven against production only
            raw = aliases.get(self.alias)
            if raw is None:
                raise ModelUnavailableError(f"alias {self.alias} of {self.model_name} is not set")
            try:
                version = parse_version(raw, field=f"alias {self.alias}")
            except InvalidInputError as exc:
                version = raw
                raise ModelUnavailableError(
                    f"alias {self.alias} names {raw!r}, which is not a version number"
                ) from exc
            new = None if loaded is not None and loaded.version == version else self._load(version)
            challenger, challenger_error = None, None
            if rollout is not None:
                if candidate is not None and candidate.version == rollout.version:
                    challenger = candidate
                else:
                    # A candidate that cannot be loaded (a sha256 mismatch, a broken file) is
                    # never served: production answers every request, and the error is shown.
                    try:
                        challenger = self._load(rollout.version)
                    except MlopsError as exc:
                        challenger_error = exc
            return _Outcome(
                aliases,
                version,
                new,
                seconds=time.perf_counter() - started,
                rollout=rollout,
                candidate=challenger,
                candidate_error=challenger_error,
            )
        except MlopsError as exc:
            return _Outcome(aliases, version, error=exc, seconds=time.perf_counter() - started)
        except Exception as exc:  # a bug must not kill the refresh silently
            error = MlopsError(f"unexpected {type(exc).__name__} during refresh: {exc}")
            return _Outcome(aliases, version, error=error)

    def _apply(self) -> None:
        """Apply a finished re-check on the request thread: state, logs and metrics."""
        with self._lock:
            outcome, self._outcome = self._outcome, None
        if outcome is None:
            return
        previous = self._loaded
        if outcome.aliases is not None:
            self._aliases = outcome.aliases
            self._apply_rollout(outcome)
        if outcome.alias_version is not None or outcome.aliases is not None:
            self._alias_version = outcome.alias_version
        if outcome.loaded is not None:
            self._loaded = outcome.loaded
            self._reason = None
            logger.info(
                "model loaded",
                model_name=self.model_name,
                model_version=outcome.loaded.version,
                previous_version=previous.version if previous else None,
                load_ms=round(outcome.seconds * 1000, 1),
            )
        elif outcome.error is None:
            self._reason = None
        if outcome.error is None:
            return
        self._reason = outcome.error.message
        if previous is None:
            self._next_check = self._clock() + min(
                self._refresh_seconds, RETRY_WHILE_UNLOADED_SECONDS
            )
            logger.error("no model loadable", model_name=self.model_name, error=str(outcome.error))
            return
        logger.warning(
            "refresh failed; keeping the loaded model",
            model_version=previous.version,
            alias_version=self._alias_version,
            error=str(outcome.error),
            refresh_ms=round(outcome.seconds * 1000, 1),
        )
        metrics.add_metric(name="ModelRefreshFailures", unit=MetricUnit.Count, value=1)

    def _apply_rollout(self, outcome: _Outcome) -> None:
        rollout = outcome.rollout
        if rollout is None or outcome.error is not None:
            if self._rollout is not None and outcome.error is None:
                logger.info("rollout ended", candidate_version=self._rollout.version)
            # A production version that cannot be loaded ends the candidate's traffic too: a
            # rollout is proven against the production it names. (An unreachable registry
            # gives no outcome with aliases: both keep serving what they loaded.)
            self._rollout = rollout if outcome.error is None else None
            self._live = None
            return
        previous = self._live
        self._rollout = rollout
        if outcome.candidate is not None:
            self._live = LiveRollout(rollout, outcome.candidate)
            self._candidate_reason = None
            if previous is None or previous.rollout.rollout_id != rollout.rollout_id:
                logger.info(
                    "rollout serving",
                    candidate_version=rollout.version,
                    mode=rollout.mode,
                    percent=rollout.percent,
                )
            return
        self._live = None
        error = outcome.candidate_error
        self._candidate_reason = error.message if error else None
        logger.error(
            "candidate not loaded; production answers every request",
            candidate_version=rollout.version,
            error=str(error),
        )
        metrics.add_metric(name="CandidateLoadFailures", unit=MetricUnit.Count, value=1)

    def _load(self, version: str) -> LoadedModel:
        return load_version(self._store, self._registry, self.model_name, version)


def load_version(store: ModelStore, registry: Registry, model: str, version: str) -> LoadedModel:
    """A registered version, loaded only if its bytes are the ones the registry recorded.

    The registry's sha256 is the trust anchor: a replaced ``model.onnx`` (with or without an
    edited manifest), or a manifest copied from another version, is refused."""
    record = registry.get_version(model, version)
    if record is None:
        raise ModelUnavailableError(f"version {version} of {model} is not registered")
    prefix = version_prefix(model, version)
    manifest = Manifest.from_dict(store.get_json(prefix + "manifest.json"))
    if (manifest.model_name, manifest.version) != (model, version):
        raise IntegrityError(
            f"the manifest under {prefix} describes {manifest.model_name} "
            f"v{manifest.version}; refusing to load it"
        )
    model_bytes = store.get_bytes(prefix + "model.onnx")
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != record.model_sha256:
        raise IntegrityError(
            f"model.onnx of version {version} has sha256 {digest[:12]}…, "
            f"the registry says {record.model_sha256[:12]}…; refusing to load it"
        )
    if manifest.model_sha256 != record.model_sha256:
        raise IntegrityError(
            f"the manifest of version {version} says sha256 {manifest.model_sha256[:12]}…, "
            f"the registry says {record.model_sha256[:12]}…; refusing to load it"
        )
    try:
        onnx_model = OnnxModel(model_bytes, manifest.signature, manifest.task, manifest.labels)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelUnavailableError(f"version {version} does not load: {exc}") from exc
    return LoadedModel(manifest=manifest, model=onnx_model)


def write_stdout(line: str) -> None:
    """One log event per line: Lambda ships stdout to CloudWatch Logs after the response."""
    sys.stdout.write(line + "\n")


class InferenceService:
    def __init__(
        self,
        provider: ModelProvider,
        max_instances: int,
        *,
        capture_sample_rate: float = 1.0,
        emit: Callable[[str], None] = write_stdout,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        """``emit`` writes one capture/feedback log line (a subscription ships them to the
        prediction logger); ``capture_sample_rate`` is the share of requests captured."""
        self._provider = provider
        self._max_instances = max_instances
        self._sample_rate = capture_sample_rate
        self._emit = emit
        self._clock_ms = clock_ms

    def expire_model(self) -> None:
        """Make the next request re-check which version the alias points at."""
        self._provider.expire()

    def warm(self) -> None:
        """Load the model ahead of the first request (Lambda's init phase has a full CPU)."""
        try:
            self._provider.current()
        except MlopsError as exc:
            logger.warning("model not loaded at start", error=str(exc))

    def predict(self, body: Any, *, gateway_request_id: str | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        instances, request_id = _parse_request(body)
        loaded = self._provider.current()
        live = self._provider.live_rollout()
        # Production's signature is the API's contract: a request it accepts is never refused.
        columns = loaded.manifest.signature.columns(instances, self._max_instances)
        # One clock read: the ids carry the capture's ts, so a label names its capture's hour.
        now_ms = self._clock_ms()
        prediction_ids = uuid7s(now_ms, len(instances))
        serving, variant, candidate_error = loaded, PRODUCTION, None
        scores = None
        if live is not None and live.routes_to_candidate(
            request_id or gateway_request_id or prediction_ids[0]
        ):
            scores, candidate_error = _score_candidate(
                live, instances, self._max_instances, _shared(loaded, live, columns)
            )
            if scores is not None:
                serving, variant = live.candidate, "canary"
        if scores is None:
            scores = loaded.model.score(columns)
        response: dict[str, Any] = {
            "model_version": serving.version,
            "predictions": scores.values,
            "prediction_ids": prediction_ids,
        }
        probabilities = scores.probability_dicts()
        if probabilities is not None:
            response["probabilities"] = probabilities
        if request_id is not None:
            response["request_id"] = request_id
        if self._sample_rate >= 1.0 or random.random() < self._sample_rate:
            latency_ms = (time.perf_counter() - started) * 1000
            key = request_id or gateway_request_id or str(uuid.uuid4())
            shadow: list[str] = []
            if live is not None and live.rollout.mode == "shadow":
                # After the answer is final, and only for captured requests: what the shadow
                # says is worth nothing unless it is captured. One ONNX run, never returned.
                shadow, candidate_error = self._shadow(
                    live,
                    instances,
                    response,
                    key,
                    _shared(loaded, live, columns),
                    timestamp_ms=now_ms,
                )
            self._capture(
                serving,
                variant,
                timestamp_ms=now_ms,
                instances=instances,
                response=response,
                request_id=key,
                latency_ms=latency_ms,
                candidate_error=candidate_error,
                candidate_version=live.candidate.version if live is not None else None,
            )
            try:
                for line in shadow:
                    self._emit(line)
            except Exception as exc:  # capture must never fail a prediction
                logger.error("shadow capture failed", error=f"{type(exc).__name__}: {exc}")
                metrics.add_metric(name="CaptureFailures", unit=MetricUnit.Count, value=1)
        return response

    def _shadow(
        self,
        live: LiveRollout,
        instances: list[dict[str, Any]],
        response: dict[str, Any],
        request_id: str,
        columns: dict[str, Any] | None,
        *,
        timestamp_ms: int,
    ) -> tuple[list[str], str | None]:
        """The shadow's capture lines for this request (sharing its prediction ids, so labels
        join both variants), or why the candidate failed."""
        started = time.perf_counter()
        scores, error = _score_candidate(live, instances, self._max_instances, columns)
        if scores is None:
            return [], error
        try:
            lines = capture.capture_lines(
                model=self._provider.model_name,
                version=live.candidate.version,
                alias=self._provider.alias,
                variant="shadow",
                request_id=request_id,
                timestamp_ms=timestamp_ms,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                instances=instances,
                prediction_ids=response["prediction_ids"],
                predictions=scores.values,
                probabilities=scores.probability_dicts(),
            )
        except Exception as exc:  # capture must never fail a prediction
            logger.error("shadow capture failed", error=f"{type(exc).__name__}: {exc}")
            metrics.add_metric(name="CaptureFailures", unit=MetricUnit.Count, value=1)
            return [], None
        return lines, None

    def _capture(
        self,
        loaded: LoadedModel,
        variant: str,
        *,
        timestamp_ms: int,
        instances: list[dict[str, Any]],
        response: dict[str, Any],
        request_id: str,
        latency_ms: float,
        candidate_error: str | None = None,
        candidate_version: str | None = None,
    ) -> None:
        """Never fails or slows a prediction beyond encoding one line: a capture that cannot
        be written is counted and logged, and the answer goes out regardless."""
        try:
            for line in capture.capture_lines(
                model=self._provider.model_name,
                version=loaded.version,
                alias=self._provider.alias,
                variant=variant,
                request_id=request_id,
                timestamp_ms=timestamp_ms,
                latency_ms=round(latency_ms, 3),
                instances=instances,
                prediction_ids=response["prediction_ids"],
                predictions=response["predictions"],
                probabilities=response.get("probabilities"),
                candidate_error=candidate_error,
                # Which candidate failed: a superseded one may still answer in a container
                # that has not re-read the registry, and its errors are not its successor's.
                candidate_version=candidate_version if candidate_error else None,
            ):
                self._emit(line)
        except Exception as exc:  # capture must never fail a prediction
            logger.error("capture failed", error=f"{type(exc).__name__}: {exc}")
            metrics.add_metric(name="CaptureFailures", unit=MetricUnit.Count, value=1)

    def feedback(self, body: Any) -> dict[str, Any]:
        """Validate late ground-truth labels against the served task and log them; unknown
        prediction ids are accepted (a label may arrive before its capture is stored)."""
        manifest = self._provider.current().manifest
        items = capture.parse_feedback(
            body, task=manifest.task, labels=manifest.labels, max_items=self._max_instances
        )
        for line in capture.feedback_line(
            model=self._provider.model_name, timestamp_ms=self._clock_ms(), items=items
        ):
            self._emit(line)
        return {"accepted": len(items)}

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
            "classes": list(m.labels) or None,
            "metrics": dict(m.metrics),
            "aliases": aliases,
            "lineage": m.raw.get("lineage"),
        } | self._serving_state()

    def health(self) -> dict[str, Any]:
        version = self._provider.current().version
        state = self._serving_state()
        return {
            "status": "ok" if "reason" not in state else "degraded",
            "model_version": version,
        } | state

    def _serving_state(self) -> dict[str, Any]:
        """The alias next to the version served and, when they differ, why (still serving)."""
        state = self._provider.state()
        out: dict[str, Any] = {"alias": self._provider.alias, "alias_version": state.alias_version}
        if not state.consistent:
            out["reason"] = state.reason
        rollout = self._provider.rollout_state()
        if rollout is not None:
            out["rollout"] = rollout
        return out


def _shared(
    loaded: LoadedModel, live: LiveRollout, columns: dict[str, Any]
) -> dict[str, Any] | None:
    """Production's validated columns when the candidate would build the same ones."""
    return columns if live.candidate.input_contract == loaded.input_contract else None


def _score_candidate(
    live: LiveRollout,
    instances: list[dict[str, Any]],
    max_instances: int,
    columns: dict[str, Any] | None = None,
) -> tuple[Any, str | None]:
    """The candidate's scores, or None and why it failed: a failing candidate is counted and
    logged, and production answers (the rollout's evaluator sees the error rate). ``columns``:
    production's, when the candidate's input contract is the same (validated once)."""
    candidate = live.candidate
    try:
        if columns is None:
            columns = candidate.manifest.signature.columns(instances, max_instances)
        scores = candidate.model.score(columns)
        if any(isinstance(v, float) and not math.isfinite(v) for v in scores.values):
            # An answer no client can use (and the capture would store as null): a failure.
            raise ValueError("the candidate predicted a non-finite value")
        return scores, None
    except Exception as exc:  # onnxruntime raises its own types; any failure is the candidate's
        error = f"{type(exc).__name__}: {exc}"[:500]
        logger.warning(
            "candidate failed; production answered",
            candidate_version=candidate.version,
            mode=live.rollout.mode,
            error=error,
        )
        metrics.add_metric(name="CandidateErrors", unit=MetricUnit.Count, value=1)
        return None, error


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
        not isinstance(request_id, str)
        or not 0 < len(request_id) <= MAX_REQUEST_ID
        or not valid_unicode(request_id)
    ):
        problems.append(
            Problem("request_id", f"expected a string of 1 to {MAX_REQUEST_ID} Unicode characters")
        )
    if problems:
        raise InvalidInputError(f"{len(problems)} problem(s) in the request body", problems)
    return body["instances"], request_id
