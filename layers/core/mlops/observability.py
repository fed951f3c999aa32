"""The one place Powertools' logger, tracer and metrics are created.

Configured by the standard ``POWERTOOLS_*`` environment variables set in ``template.yaml``
(service name, metrics namespace, log level; tracing is disabled off Lambda). The namespace
falls back to ``ServerlessMLOps``, so a function deployed without it still publishes.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from mlops.settings import metrics_namespace

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=metrics_namespace())

# GET /model and /health publish no metrics by design; an empty flush is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def metrics_enabled() -> bool:
    """False where metrics are switched off (the CLI without --verbose): ``single_metric``
    flushes whatever the switch says, so code that uses it asks first."""
    return not is_metrics_disabled()


__all__ = ["MetricUnit", "logger", "metrics", "metrics_enabled", "tracer"]
