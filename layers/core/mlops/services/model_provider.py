"""Keeping the model behind a registry alias loaded, and re-checking the alias.

``ModelProvider`` keeps the model loaded and re-checks the alias at most every
``refresh_seconds``: a promotion takes effect without a redeploy, and when the registry or S3
fails after a model is loaded, the loaded model keeps serving. In-flight requests hold a
reference to the model they started with, so a swap never fails them. With the production
alias it also loads the active rollout's candidate (``services.variant_routing`` routes to it).

Re-checks run on a background thread. With a model loaded, the request that triggers one
waits at most ``refresh_wait_seconds`` (default 0.1 s) and the others not at all: a hung
registry or S3 delays no request by more than that bound. With none loaded (a cold start),
requests wait at most ``load_wait_seconds`` (default 5 s) for the load, then get a 503 while
it goes on. The thread only does I/O; its outcome is applied (state, logs, metrics) on a
request thread, because Powertools' logger and metrics are not safe to mutate from a second
thread while a request flushes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import PRODUCTION, Registry, Rollout
from mlops.domain.versions import parse_version
from mlops.errors import InvalidInputError, MlopsError, ModelUnavailableError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.model_loading import LoadedModel, load_version
from mlops.services.variant_routing import LiveRollout

# Until a model loads, re-check sooner, so a first registration is picked up quickly.
RETRY_WHILE_UNLOADED_SECONDS = 5.0


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
            metrics.add_metric(name=Metric.SERVED_VERSION_MISMATCH, unit=MetricUnit.Count, value=1)
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
        metrics.add_metric(name=Metric.MODEL_REFRESH_FAILURES, unit=MetricUnit.Count, value=1)

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
            elif previous.rollout.percent != rollout.percent:  # a ramp's step: same id, sticky
                logger.info(
                    "rollout share changed",
                    candidate_version=rollout.version,
                    from_percent=previous.rollout.percent,
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
        metrics.add_metric(name=Metric.CANDIDATE_LOAD_FAILURES, unit=MetricUnit.Count, value=1)

    def _load(self, version: str) -> LoadedModel:
        return load_version(self._store, self._registry, self.model_name, version)
