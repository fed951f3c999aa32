"""Batch scoring: three events, one service (``mlops.services.batch_scoring``).

- an S3 notification (an upload under the batch prefix): start the job, scoring the file here
  when it is small enough, else starting the Distributed Map state machine;
- a Distributed Map batch ``{"Items": [...], "BatchInput": {"job": ...}}``: score these rows;
- ``{"summarize": {"job": ..., "map": ..., "error": ...}}``: the state machine's last step.

A file that cannot be scored is answered with a rejected summary, not an error; a storage
failure raises, so Lambda (or the state machine's Retry) tries again, overwriting.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.errors import InvalidEventError
from mlops.observability import logger, metrics, tracer
from mlops.services.batch_scoring import batch_service

service = batch_service()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if not isinstance(event, dict):
        raise InvalidEventError("expected an S3 notification, a Map batch or a summarize request")
    if "Records" in event:
        return {"jobs": service.start(event)}
    if "Items" in event:
        return service.score_batch(event)
    if "summarize" in event:
        return service.summarize(event["summarize"])
    raise InvalidEventError("expected an S3 notification, a Map batch or a summarize request")
