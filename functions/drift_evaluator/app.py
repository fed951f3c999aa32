"""Drift evaluator: on its schedule (or on demand), is production still fit for the world, and
is the candidate of an active rollout (shadow or canary) fit to replace it?

Compares the window's traffic with the version's baseline (sketches, or raw captures for small
windows), measures live quality from late labels, writes a JSON and an HTML report, publishes
metrics and, on dataset drift or a quality breach outside the cool-down, requests retraining.
Then the active rollout, if any, is judged on live traffic: promoted, rolled back, or left to
bake. A failure raises, so Lambda retries the invocation; the next schedule evaluates again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.aws import client
from mlops.adapters.sketch_store import SketchStore
from mlops.domain.triggers import drift_request
from mlops.observability import logger, metrics, tracer
from mlops.services.drift import drift_service
from mlops.services.labels import label_folder
from mlops.services.rollout import rollout_service
from mlops.settings import drift_settings

settings = drift_settings()
# One sketch store and one label folder for both: the rollout judge reads hours the drift
# evaluation has just rolled up and folded (final hours are then read once a run).
sketches = SketchStore(settings.model_bucket, client("s3"))
labels = label_folder()
service = drift_service(sketches, labels)
rollouts = rollout_service(sketches, labels)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    window_hours, act = drift_request(event, settings.window_hours)
    # Independent: a drift evaluation that fails must not keep a failing canary in front of
    # users, nor the other way round. Either failure still fails the invocation (retried).
    failures: list[Exception] = []
    result: dict[str, Any] = {}
    # One fold, and one read of each labeled and each sketch hour, for both evaluations
    with labels.run(), sketches.run():
        try:
            result = service.evaluate(window_hours, act=act).as_dict()
        except Exception as exc:
            logger.exception("drift evaluation failed")
            failures.append(exc)
        try:
            outcome = rollouts.evaluate(act=act)
            result["rollout"] = outcome.as_dict() if outcome else None
        except Exception as exc:
            logger.exception("rollout evaluation failed")
            failures.append(exc)
    if failures:
        raise failures[0]
    return result
