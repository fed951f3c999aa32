"""Powertools idempotency on the stack's DynamoDB table: one trigger, one run.

A trigger's result is stored when its run returns; a redelivered trigger gets that result back
without running again. A run that raises leaves no record, so Lambda's retry runs it again; a
duplicate arriving while the first still runs raises ``IdempotencyAlreadyInProgressError``,
and Lambda retries that delivery later, when the stored result answers it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from mlops.adapters.aws import client
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics


def persistence_layer(table: str) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))


def idempotency_config(key: str, days: int) -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=key,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=days * 86400,
        response_hook=_replayed,
    )


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Called when a stored result answers a duplicate: say so, once, for operators."""
    logger.info(
        "duplicate trigger: returning the first run's result",
        idempotency_key=idempotent_data.idempotency_key,
    )
    metrics.add_metric(name=Metric.DUPLICATE_TRIGGERS, unit=MetricUnit.Count, value=1)
    return response
