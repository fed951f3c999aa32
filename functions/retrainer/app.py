"""Retrainer: an upload under the training prefix, or a retrain request, becomes a staged
challenger (validated, trained, exported) or a rejection report.

Invoked asynchronously (S3 notification, EventBridge rule). Its return value goes to the
candidate gate through the OnSuccess destination. Bad data is an answer, returned and
reported, never retried; a storage failure raises, so Lambda retries, then hands the event to
the failure queue. Each trigger runs at most once (Powertools idempotency on DynamoDB).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.idempotency import idempotency_config, persistence_layer
from mlops.domain.triggers import Trigger, parse_triggers
from mlops.observability import logger, metrics, tracer
from mlops.services.retraining import retrain_service
from mlops.settings import retrainer_settings

settings = retrainer_settings()
service = retrain_service()
idempotency = idempotency_config("idempotency_key", settings.idempotency_days)


@idempotent_function(
    data_keyword_argument="trigger",
    persistence_store=persistence_layer(settings.idempotency_table),
    config=idempotency,
)
def retrain_once(trigger: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in trigger.items() if k != "idempotency_key"}
    return service.retrain(Trigger(**fields)).as_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    results = [retrain_once(trigger=service.resolve(t).as_dict()) for t in parse_triggers(event)]
    return {"model": settings.model_name, "results": results}
