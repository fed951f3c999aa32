"""Prediction logger: capture and feedback lines from a CloudWatch Logs subscription to S3.

Invoked asynchronously: an exception (an S3 failure, an undecodable event) makes Lambda
retry the same event, then hand it to the on-failure destination. Retrying is safe because
every object the service writes is named and filled by its batch alone.
"""

from __future__ import annotations

import zlib
from typing import Any

from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.errors import InvalidEventError
from mlops.observability import logger, metrics, tracer
from mlops.services.prediction_logger import LogEvent, logger_service

service = logger_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=CloudWatchLogsEvent)
def lambda_handler(event: CloudWatchLogsEvent, context: LambdaContext) -> dict[str, Any]:
    try:
        data = event.parse_logs_data()
        kind = data.message_type
        lines = [LogEvent(e.get_id, int(e.timestamp), e.message) for e in data.log_events]
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise InvalidEventError(f"not a CloudWatch Logs subscription event: {exc!r}") from exc
    if kind != "DATA_MESSAGE":  # CONTROL_MESSAGE: CloudWatch checking that we are reachable
        logger.info("control message acknowledged", message_type=kind, events=len(lines))
        return {"message_type": kind, "stored": False}
    summary = service.store_batch(lines)
    return {"message_type": kind, "stored": True, **summary.as_dict()}
