"""The drift evaluator's use case: has the world moved away from the served model?

For the production version, over a window: merge the hour roll-ups of the logger's sketches
(cost O(hours), not O(traffic)), or read the raw captures when the window is small (exact
mode, judged on the same bins); compare with the version's
``baseline.json``; join late labels for live quality; write a JSON and an HTML report to
``reports/drift/``; publish metrics; and on dataset drift or a quality breach, outside the
cool-down, put a ``RetrainRequested`` event on the retrain bus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from aws_lambda_powertools.metrics import single_metric

from mlops.adapters.aws import client
from mlops.adapters.events import EventBus
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import PRODUCTION, Registry
from mlops.adapters.sketch_store import SketchStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.domain import drift as statistics
from mlops.domain import quality, strict_json
from mlops.domain.config import DriftConfig, ModelConfig
from mlops.domain.drift_report import headline
from mlops.domain.drift_report_html import render_html
from mlops.domain.estimate_report import estimate_section
from mlops.domain.input_names import metric_dimension
from mlops.domain.labels import as_join_inputs
from mlops.domain.layout import DRIFT_REPORTS, version_prefix
from mlops.domain.serving import is_number
from mlops.domain.sketch import SketchPlan
from mlops.domain.triggers import retrain_request
from mlops.errors import NotFoundError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics, metrics_enabled
from mlops.services.labels import LabelFolder, label_folder
from mlops.services.stack_config import stack_config
from mlops.settings import drift_settings


@dataclass(frozen=True)
class DriftOutcome:
    report: dict[str, Any]
    json_uri: str
    html_uri: str

    def as_dict(self) -> dict[str, Any]:
        verdict = self.report["verdict"]
        return {
            "model": self.report["model"],
            "version": self.report["version"],
            "headline": self.report["headline"],
            "rows": self.report["rows"],
            "status": verdict["status"],
            "dataset_drift": verdict["dataset_drift"],
            "drift_share": verdict["drift_share"],
            "quality_breach": verdict["quality_breach"],
            "estimate_breach": verdict.get("estimate_breach", False),
            "retrain_requested": verdict["retrain_requested"],
            "report": self.json_uri,
            "html": self.html_uri,
        }


class DriftService:
    def __init__(
        self,
        *,
        model: str,
        store: ModelStore,
        registry: Registry,
        sketches: SketchStore,
        traffic: TrainingDataStore,
        labels: LabelFolder,
        bus: EventBus | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        service: str = "drift-evaluator",
    ) -> None:
        self._service = service  # the metrics' service dimension, as Powertools sets it
        self._model = model
        self._store = store
        self._registry = registry
        self._sketches = sketches
        self._traffic = traffic
        self._labels = labels
        self._bus = bus
        self._clock = clock

    def evaluate(self, window_hours: float = 24.0, *, act: bool = True) -> DriftOutcome:
        """Evaluate production over the last ``window_hours`` (whole hours, ending at the
        current hour); with ``act``, request retraining when the verdict calls for it."""
        now = self._clock()
        until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        since = until - timedelta(hours=max(1, round(window_hours)))
        config = stack_config(self._store, self._model)
        version = self._registry.get_alias(self._model, PRODUCTION)
        report = self._skeleton(config, version, since, until, now)
        if version is None:
            return self._finish(report, ["no production version to evaluate"], config, act)
        prefix = version_prefix(self._model, version)
        try:
            baseline = self._store.get_json(prefix + "baseline.json")
        except NotFoundError:
            return self._finish(report, [f"v{version} has no baseline.json"], config, act)
        manifest = self._store.get_json(prefix + "manifest.json")
        plan = SketchPlan.from_baseline(baseline)
        window = self._sketches.window(
            self._model,
            version,
            since,
            until,
            plan,
            max_unseen=config.drift.max_unseen_categories,
            now=now,
        )
        report["sources"] = window.as_dict()
        rows = window.sketch.rows if window.sketch else 0
        joined = self._labeled(config, version, since, until, report)
        if window.sketch is None:
            result = None
        elif rows <= config.drift.small_sample_rows:
            # A small window (the sketch says how small) is read whole, for the exact tests.
            window_rows, _, _ = self._traffic.traffic(self._model, since, until, version=version)
            in_window = [
                r
                for r in window_rows
                if since.timestamp() * 1000 <= int(r.get("ts", 0)) < until.timestamp() * 1000
            ]
            report["mode"] = "exact"
            result = statistics.evaluate_rows(baseline, in_window, config.features, config.drift)
        else:
            result = statistics.evaluate_sketch(
                baseline, window.sketch, config.drift, config.features
            )
        if result is not None:
            report |= result.as_dict()
        report["rows"] = rows
        report["quality"] = self._quality(config, manifest, joined).as_dict()
        report["estimate"] = estimate_section(
            task=config.task,
            plan=plan,
            window=window.sketch,
            hourly=window.hourly,
            realized_hours=report["quality"]["over_time"],
            holdout_metrics=manifest.get("metrics") or {},
            gate_metric=config.promotion.metric_for(config.task),
            tolerance=config.drift.quality_tolerance,
            min_rows=config.drift.min_rows,
        )
        reasons: list[str] = []
        return self._finish(report, reasons, config, act)

    def _labeled(
        self,
        config: ModelConfig,
        version: str,
        since: datetime,
        until: datetime,
        report: dict[str, Any],
    ) -> quality.Joined:
        """Labeled predictions of ``version`` made in the window or the label delay before it:
        labels that arrived since the last run are folded first (``services.labels``), then
        one labeled document per hour is read. O(new labels + hours), not O(predictions)."""
        delay = timedelta(hours=config.drift.label_delay_hours)
        delay_ms = int(config.drift.label_delay_hours * 3_600_000)
        span = (until - since + delay).total_seconds() / 3600
        folded = self._labels.fold(first_hours=span)
        joined, documents = self._labels.joined(
            since - delay, until, version=version, label_delay_ms=delay_ms
        )
        sources: dict[str, Any] = {"folded": folded.as_dict(), "labeled_documents": documents}
        if folded.legacy:
            # Labels for ids from before time-ordered ids: found the old way, by reading the
            # window's captures (labeled ones kept), until they age out of the window.
            captures, feedback, read = self._traffic.traffic(
                self._model, since - delay, until, version=version, labeled_only=True
            )
            new_captures, new_feedback = as_join_inputs(
                r for r in self._labels.rows(since - delay, until)[0]
                if str(r.get("version")) == version
            )  # fmt: skip
            joined = quality.join(
                [*new_captures, *captures], [*new_feedback, *feedback], label_delay_ms=delay_ms
            )
            sources["legacy_traffic"] = read
        report["sources"]["labels"] = sources
        return joined

    def _quality(
        self, config: ModelConfig, manifest: dict[str, Any], joined: quality.Joined
    ) -> quality.QualityResult:
        metric = config.promotion.metric_for(config.task)
        return quality.measure(
            joined,
            task=config.task,
            classes=tuple(manifest.get("classes") or ()),
            metric=metric,
            greater_is_better=config.promotion.greater_is_better(config.task),
            holdout=(manifest.get("metrics") or {}).get(metric),
            tolerance=config.drift.quality_tolerance,
            min_labels=config.drift.min_labels,
        )

    def _skeleton(
        self,
        config: ModelConfig,
        version: str | None,
        since: datetime,
        until: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "kind": "drift_report",
            "schema_version": 1,
            "model": self._model,
            "version": version,
            "alias": PRODUCTION,
            "window": {
                "start": since.isoformat(timespec="seconds"),
                "end": until.isoformat(timespec="seconds"),
                "hours": round((until - since).total_seconds() / 3600),
            },
            "generated_at": now.isoformat(timespec="seconds"),
            "mode": "sketch",
            "rows": 0,
            "reference_rows": 0,
            "features": [],
            "prediction": None,
            "drift_share": 0.0,
            "dataset_drift": False,
            "enough_data": False,
            "quality": None,
            "thresholds": {
                "drift_share": config.drift.drift_share,
                "min_rows": config.drift.min_rows,
            },
        }

    def _finish(
        self, report: dict[str, Any], reasons: list[str], config: ModelConfig, act: bool
    ) -> DriftOutcome:
        drift = config.drift
        enough = bool(report.get("enough_data"))
        drifted = [f["name"] for f in report["features"] if f.get("drifted")]
        total = len(report["features"])
        share = float(report.get("drift_share") or 0.0)
        dataset_drift = bool(report.get("dataset_drift")) and enough
        quality_doc = report.get("quality") or {}
        breach = bool(quality_doc.get("breach"))
        if not enough and not reasons:
            reasons.append(
                f"not enough traffic: {report['rows']:,} rows in the window, "
                f"{drift.min_rows:,} needed"
            )
        if dataset_drift:
            reasons.append(
                f"dataset drift: {len(drifted)} of {total} features drifted "
                f"({share:.0%} >= {drift.drift_share:.0%}): {', '.join(drifted)}"
            )
        elif enough:
            reasons.append(f"no dataset drift: {len(drifted)} of {total} features drifted")
        if quality_doc.get("reason"):
            reasons.append(str(quality_doc["reason"]))
        estimate_breach, acts_on_estimate = _estimate_verdict(report, drift, reasons)
        # A quality breach is a verdict of its own: inputs can stay put while the world's
        # answer to them moves (concept drift), and "ok" would hide the retrain it requests.
        if dataset_drift:
            status = "drift"
        elif breach:
            status = "quality_loss"
        else:
            status = "ok" if enough else "insufficient_data"
        now = self._clock()
        cooldown = self._cooldown(now, drift.cooldown_hours)
        requested = False
        wanted = dataset_drift or breach or acts_on_estimate
        if wanted and act and self._bus is not None and report["version"]:
            rollout = self._registry.get_rollout(self._model)
            if cooldown["active"]:
                reasons.append(
                    f"retraining not requested: cool-down until {cooldown['until']} "
                    f"(last request {cooldown['last_request_at']})"
                )
            elif rollout is not None:
                # A candidate is already being proven on this traffic: a new one trained on
                # the same data would supersede it and start the proof over.
                reasons.append(
                    f"retraining not requested: a rollout is in progress ({rollout.describe})"
                )
            else:
                requested = True
        report["verdict"] = {
            "status": status,
            "dataset_drift": dataset_drift,
            "drift_share": share,
            "drift_share_threshold": drift.drift_share,
            "min_rows": drift.min_rows,
            "drifted": drifted,
            "quality_breach": breach,
            "estimate_breach": estimate_breach,
            "retrain_requested": requested,
            "reasons": reasons,
        }
        report["cooldown"] = cooldown
        report["headline"] = headline(report)[0]
        stamp = f"{now:%Y%m%dT%H%M%SZ}-v{report['version'] or 'none'}"
        json_key, html_key = f"{DRIFT_REPORTS}{stamp}.json", f"{DRIFT_REPORTS}{stamp}.html"
        if requested:
            self._request(report, now, self._store.uri(json_key))
        self._store.put_bytes(json_key, strict_json.dumps(report).encode())
        self._store.put_bytes(html_key, render_html(report).encode())
        self._publish(report)
        logger.info(
            "drift evaluated",
            version=report["version"],
            status=status,
            drift_share=share,
            quality_breach=breach,
            retrain_requested=requested,
            report=self._store.uri(json_key),
        )
        return DriftOutcome(report, self._store.uri(json_key), self._store.uri(html_key))

    def _cooldown(self, now: datetime, hours: float) -> dict[str, Any]:
        try:
            state = self._store.get_json(f"{DRIFT_REPORTS}state/{self._model}.json")
            last = datetime.fromisoformat(str(state["last_request_at"]))
        except (NotFoundError, KeyError, TypeError, ValueError):
            return {"active": False, "last_request_at": None, "until": None, "hours": hours}
        until = last + timedelta(hours=hours)
        return {
            "active": now < until,
            "last_request_at": last.isoformat(timespec="seconds"),
            "until": until.isoformat(timespec="seconds"),
            "hours": hours,
        }

    def _request(self, report: dict[str, Any], now: datetime, report_uri: str) -> None:
        assert self._bus is not None
        # One request per version and hour: two evaluations of the same hour (the schedule and
        # `mlops drift`) put the same request id, which the retrainer trains once.
        request_id = f"drift-{self._model}-v{report['version']}-{now:%Y%m%dT%H}"
        reasons = [r for r in report["verdict"]["reasons"] if not r.startswith("no ")]
        self._bus.put(
            retrain_request(
                self._model,
                request_id,
                "; ".join(reasons)[:1000] or "drift",
                source="mlops.drift",
                report_uri=report_uri,
                requested_by="drift evaluator",
            )
        )
        state = {"last_request_at": now.isoformat(timespec="seconds"), "request_id": request_id}
        state_doc = strict_json.dumps(state, indent=None).encode()
        self._store.put_bytes(f"{DRIFT_REPORTS}state/{self._model}.json", state_doc)
        metrics.add_metric(name=Metric.RETRAIN_REQUESTED, unit=MetricUnit.Count, value=1)

    def _publish(self, report: dict[str, Any]) -> None:
        """The run's metrics. ``DriftEvaluations`` on every completed run, whatever the data
        (the dead man's switch alarms on its absence); a non-finite value is never published:
        it would make the whole EMF line invalid JSON, and CloudWatch would drop every metric
        on it (the alarmed ones too)."""
        verdict = report["verdict"]
        self._metric(name=Metric.DRIFT_EVALUATIONS, value=1)
        self._metric(name=Metric.DRIFT_SHARE, value=verdict["drift_share"])
        self._metric(name=Metric.DATASET_DRIFT, value=int(verdict["dataset_drift"]))
        self._metric(name=Metric.QUALITY_BREACH, value=int(verdict["quality_breach"]))
        value = (report.get("quality") or {}).get("value")
        if isinstance(value, int | float):
            self._metric(name=Metric.LIVE_QUALITY, value=value)
        self._metric(name=Metric.EVALUATED_ROWS, value=report["rows"])
        estimate = report.get("estimate") or {}
        if estimate.get("available"):
            self._metric(name=Metric.ESTIMATED_QUALITY_BREACH, value=int(bool(estimate["breach"])))
            found = (estimate.get("window") or {}).get(estimate.get("metric")) or {}
            if _finite(found.get("value")):
                self._metric(name=Metric.ESTIMATED_QUALITY, value=found["value"])
        # One score per feature, with the feature as a dimension (its own EMF document: the
        # batch above shares one dimension set). PSI for numeric, Jensen-Shannon otherwise.
        for feature in report["features"] if metrics_enabled() else ():
            stats = feature.get("statistics") or {}
            score = stats.get("psi", stats.get("js_distance"))
            if not _finite(score):
                continue
            with single_metric(
                name=Metric.FEATURE_DRIFT_SCORE,
                unit=MetricUnit.Count,
                value=float(score),
                namespace=metrics.namespace,
                default_dimensions={"service": self._service, "model": self._model},
            ) as metric:
                metric.add_dimension(name="feature", value=metric_dimension(str(feature["name"])))

    @staticmethod
    def _metric(*, name: str, value: Any) -> None:
        if not _finite(value):
            logger.warning(
                "metric not published: not a finite number", metric=name, value=str(value)
            )
            return
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=float(value))


def _estimate_verdict(
    report: dict[str, Any], drift: DriftConfig, reasons: list[str]
) -> tuple[bool, bool]:
    """(the estimate breached, a retrain is wanted for it); its reason joins ``reasons``.
    An estimate forecasts what labels will say: it acts only with ``estimate_retrain``."""
    estimate = report.get("estimate") or {}
    breach = bool(estimate.get("breach"))
    if estimate.get("reason"):
        reasons.append(str(estimate["reason"]))
    if breach and not drift.estimate_retrain:
        reasons.append("ESTIMATE breach not acted on: [drift] estimate_retrain is off")
    return breach, breach and drift.estimate_retrain


def _finite(value: Any) -> TypeGuard[int | float]:
    return is_number(value)


def drift_service(
    sketches: SketchStore | None = None, labels: LabelFolder | None = None
) -> DriftService:
    """Composition root of the drift evaluator, built once per container (``sketches`` and
    ``labels`` shared with the rollout judge, which reads the same hours)."""
    settings = drift_settings()
    s3 = client("s3")
    return DriftService(
        model=settings.model_name,
        store=ModelStore(settings.model_bucket, s3),
        registry=Registry(settings.registry_table, client("dynamodb")),
        sketches=sketches or SketchStore(settings.model_bucket, s3),
        traffic=TrainingDataStore(settings.capture_bucket, s3),
        labels=labels or label_folder(),
        bus=EventBus(settings.retrain_bus, client("events")),
        service=settings.service_name,
    )
