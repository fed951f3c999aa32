"""Serve predictions from the model the provider holds (``services.model_provider``), route
them across production and a rollout's candidate (``services.variant_routing``), capture
every answered request as one log line, take late labels, and describe what is served.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from mlops.adapters.registry import PRODUCTION, ROLLOUT_ALIAS
from mlops.domain import capture
from mlops.domain.ids import uuid7s
from mlops.domain.predict_request import parse_request
from mlops.errors import MlopsError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.model_loading import LoadedModel
from mlops.services.model_provider import ModelProvider
from mlops.services.variant_routing import LiveRollout, score_candidate, shared_columns

KNOWN_ALIASES = (PRODUCTION, ROLLOUT_ALIAS)


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
        instances, request_id, evaluation = parse_request(body)
        loaded = self._provider.current()
        live = self._provider.live_rollout()
        # Production's signature is the API's contract: a request it accepts is never refused.
        columns = loaded.manifest.signature.columns(instances, self._max_instances)
        # One clock read: the ids carry the capture's ts, so a label names its capture's hour.
        now_ms = self._clock_ms()
        prediction_ids = uuid7s(now_ms, len(instances))
        serving, variant, candidate_error = loaded, PRODUCTION, None
        scores = None
        if evaluation:
            # Evaluation traffic checks what is served: production answers it, and no
            # candidate (canary or shadow) sees it, so it is neither split nor in a verdict.
            live = None
        if live is not None and live.routes_to_candidate(
            request_id or gateway_request_id or prediction_ids[0]
        ):
            scores, candidate_error = score_candidate(
                live, instances, self._max_instances, shared_columns(loaded, live, columns)
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
        # Evaluation traffic is always captured: it is excluded from every verdict, so its
        # capture is the only record that it was sent, and what makes it auditable.
        if self._sample_rate >= 1.0 or evaluation or random.random() < self._sample_rate:
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
                    shared_columns(loaded, live, columns),
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
                evaluation=evaluation,
            )
            try:
                for line in shadow:
                    self._emit(line)
            except Exception as exc:  # capture must never fail a prediction
                _capture_failed("shadow capture failed", exc)
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
        scores, error = score_candidate(live, instances, self._max_instances, columns)
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
            _capture_failed("shadow capture failed", exc)
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
        evaluation: bool = False,
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
                evaluation=evaluation,
            ):
                self._emit(line)
        except Exception as exc:  # capture must never fail a prediction
            _capture_failed("capture failed", exc)

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


def _capture_failed(message: str, exc: Exception) -> None:
    """A capture that cannot be written is logged and counted; the answer goes out regardless."""
    logger.error(message, error=f"{type(exc).__name__}: {exc}")
    metrics.add_metric(name=Metric.CAPTURE_FAILURES, unit=MetricUnit.Count, value=1)
