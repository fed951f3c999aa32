"""Inference function: POST /predict, POST /feedback, GET /model, GET /health behind an
HTTP API. Predictions and labels are also written as capture log lines (see services)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.bootstrap import inference_service
from mlops.errors import MlopsError, NotFoundError, Problem
from mlops.http import (
    as_result,
    check_http_event,
    describe_event,
    error_body,
    error_response,
    json_response,
    read_json_body,
    status_for,
)
from mlops.lifecycle import after_snapstart_restore
from mlops.observability import MetricUnit, logger, metrics, tracer
from mlops.settings import inference_settings

app = APIGatewayHttpResolver()
service = inference_service()
service.warm()
after_snapstart_restore(service.expire_model)  # a restored snapshot may hold an old version


@app.post("/predict")
def predict() -> Response[str]:
    started = time.perf_counter()
    body = read_json_body(app.current_event, inference_settings().max_body_bytes)
    gateway_request_id = app.current_event.raw_event["requestContext"].get("requestId")
    result = service.predict(body, gateway_request_id=gateway_request_id)
    metrics.add_metric(
        name="PredictLatency",
        unit=MetricUnit.Milliseconds,
        value=(time.perf_counter() - started) * 1000,
    )
    metrics.add_metric(
        name="PredictedRows", unit=MetricUnit.Count, value=len(result["predictions"])
    )
    return json_response(200, result)


@app.post("/feedback")
def feedback() -> Response[str]:
    body = read_json_body(app.current_event, inference_settings().max_body_bytes)
    result = service.feedback(body)
    metrics.add_metric(name="FeedbackLabels", unit=MetricUnit.Count, value=result["accepted"])
    return json_response(202, result)


@app.get("/model")
def describe_model() -> Response[str]:
    return json_response(200, service.describe())


@app.get("/health")
def health() -> Response[str]:
    try:
        return json_response(200, service.health())
    except MlopsError as exc:
        return json_response(status_for(exc), {"status": "unavailable"} | error_body(exc))


@app.not_found
def not_found(_: Exception) -> Response[str]:
    route = f"{app.current_event.request_context.http.method} {app.current_event.path}"
    return error_response(NotFoundError(f"no route {route}", [Problem("path", "unknown route")]))


@app.exception_handler(MlopsError)
def handle_error(exc: MlopsError) -> Response[str]:
    status = status_for(exc)
    log = logger.warning if status < 500 else logger.error
    log("request failed", status=status, code=exc.code, error=str(exc))
    # Dimensions are cleared at every flush; an error request publishes only this metric.
    metrics.add_dimension(name="code", value=exc.code)
    metrics.add_metric(name="RequestErrors", unit=MetricUnit.Count, value=1)
    return error_response(exc)


@app.exception_handler(Exception)
def handle_unexpected(exc: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return handle_error(MlopsError(f"unexpected {type(exc).__name__}"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    # Whatever arrives (a misrouted S3 event, a hand-made test event), the answer is our JSON
    # error and a log line saying what came, never an exception escaping to the runtime.
    problem = check_http_event(event)
    if problem is not None:
        logger.warning("unrecognised event", event=describe_event(event))
        return as_result(handle_error(problem))
    try:
        return app.resolve(event, context)
    except Exception as exc:  # the resolver's own failures, outside any route
        logger.exception("resolver failed", event=describe_event(event))
        return as_result(handle_unexpected(exc))
