"""HTTP glue for API Gateway handlers: JSON body parsing and the one error → status mapping."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from mlops.errors import (
    InvalidEventError,
    InvalidInputError,
    MlopsError,
    ModelUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    Problem,
    UnsupportedMediaTypeError,
)

STATUS: dict[type[MlopsError], int] = {
    InvalidInputError: 400,
    NotFoundError: 404,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    ModelUnavailableError: 503,
}


def status_for(exc: MlopsError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def json_response(status: int, body: Any) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
    )


def as_result(response: Response[str]) -> dict[str, Any]:
    """A response as the HTTP API payload 2.0 result, for answers given outside the resolver."""
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": response.body,
        "isBase64Encoded": False,
    }


def error_body(exc: MlopsError) -> dict[str, Any]:
    # A 500 never leaks internals: the message of an unexpected error stays in the logs.
    status = status_for(exc)
    error: dict[str, Any] = {
        "code": exc.code if status != 500 else "internal_error",
        "message": exc.message if status != 500 else "internal error",
    }
    if exc.details and status != 500:
        error["details"] = [p.as_dict() for p in exc.details]
    return {"error": error}


def error_response(exc: MlopsError) -> Response[str]:
    return json_response(status_for(exc), error_body(exc))


def read_json_body(event: APIGatewayProxyEventV2, max_bytes: int) -> Any:
    """The request body as JSON, or a 4xx error naming what is wrong with it."""
    # Powertools v3 headers are case-insensitive.
    media = event.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"content-type {media} is not supported",
            [Problem("headers.content-type", f"expected application/json, got {media}")],
        )
    raw = event.body or ""
    # Checked on the encoded form first (base64 is 4/3 of the bytes) so a huge body costs
    # nothing to refuse, then on the bytes themselves.
    if len(raw) > max_bytes * (4 / 3 if event.is_base64_encoded else 1) + 4:
        raise _too_large(max_bytes)
    try:
        data = base64.b64decode(raw, validate=True) if event.is_base64_encoded else raw.encode()
    except UnicodeEncodeError as exc:  # a plain body holding a lone surrogate
        raise InvalidInputError(
            "the body is not valid Unicode", [Problem("body", "a lone surrogate in the text")]
        ) from exc
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text flagged base64
        raise InvalidInputError(
            "the body is not valid base64", [Problem("body", str(exc))]
        ) from exc
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data.strip():
        raise InvalidInputError(
            "the body is empty",
            [Problem("body", 'expected a JSON object like {"instances": [...]}')],
        )
    try:
        # The int hook costs a Python call per integer (a third of parsing 100 rows); only a
        # body with a run of 21+ digits can hold a literal it changes.
        if _LONG_RUN not in data.translate(_DIGITS_AS_ZERO):
            return json.loads(data)
        return json.loads(data, parse_int=_parse_int)
    except RecursionError as exc:
        raise InvalidInputError(
            "the body is not valid JSON",
            [Problem("body", "JSON nested too deeply (a request is at most 3 levels deep)")],
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            "the body is not valid JSON",
            [Problem("body", f"not valid UTF-8 at byte {exc.start}")],
        ) from exc
    except ValueError as exc:  # JSONDecodeError
        raise InvalidInputError(
            "the body is not valid JSON", [Problem("body", f"malformed JSON: {exc}")]
        ) from exc


# Every digit as "0", everything else as " ": a run of 21 digits is then a plain substring,
# found in 13 µs on a 100-row body (a regex took 170 µs, more than parsing it).
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_RUN = b"0" * 21


def _parse_int(literal: str) -> int | float:
    # Python refuses int() of more than 4,300 digits (ValueError), and an int beyond float64
    # overflows later. No valid feature needs 20 digits: longer literals become floats (inf
    # past 1e308), which validation then reports against the field that holds them.
    return int(literal) if len(literal) <= 20 else float(literal)


def check_http_event(event: Any) -> InvalidEventError | None:
    """None for an API Gateway HTTP API (payload 2.0) event the resolver can route; otherwise
    an error saying what arrived. Only the fields the resolver and we read are checked, with
    isinstance alone, so a real request pays about a microsecond."""
    if not isinstance(event, dict):
        return _bad_event(event, "event", f"expected an object, got {_json_kind(event)}")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if (
        not isinstance(context, dict)
        or not isinstance(http, dict)
        or not isinstance(http.get("method"), str)
    ):
        return _bad_event(event, "requestContext.http.method", "missing: not an HTTP API event")
    if not isinstance(context.get("stage"), str):  # the resolver builds the path from it
        return _bad_event(event, "requestContext.stage", "expected a string")
    if not isinstance(event.get("rawPath"), str):
        return _bad_event(event, "rawPath", "expected a string")
    for name in ("headers", "queryStringParameters", "pathParameters"):
        value = event.get(name)
        if value is not None and not (
            isinstance(value, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            return _bad_event(event, name, "expected an object of strings")
    cookies = event.get("cookies")
    if cookies is not None and not (
        isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)
    ):
        return _bad_event(event, "cookies", "expected a list of strings")
    if not isinstance(event.get("body"), str | None):
        return _bad_event(event, "body", "expected a string")
    if not isinstance(event.get("isBase64Encoded", False), bool):
        return _bad_event(event, "isBase64Encoded", "expected true or false")
    return None


def describe_event(event: Any, limit: int = 1024) -> str:
    """The start of an event, for a log line: at most ``limit`` characters, never raising."""
    try:
        text = json.dumps(event, default=repr)
    except (RecursionError, ValueError, TypeError):
        text = f"<{type(event).__name__} that is not JSON-serialisable>"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _bad_event(event: Any, field: str, problem: str) -> InvalidEventError:
    source = _event_source(event)
    return InvalidEventError(
        f"the function handles API Gateway HTTP API (payload 2.0) events, not {source}",
        [Problem(field, problem)],
    )


def _event_source(event: Any) -> str:
    """Name the kind of event that arrived, for the common mistakes."""
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            source = records[0].get("eventSource") or records[0].get("EventSource")
            return f"an {source} event" if isinstance(source, str) else "a Records event"
        if "awslogs" in event:
            return "a CloudWatch Logs subscription event"
        if "detail-type" in event:
            return f"an EventBridge event ({str(event['detail-type'])[:60]})"
        if event.get("version") == "1.0" or "httpMethod" in event:
            return "an API Gateway REST (payload 1.0) event"
    return "this event"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the body exceeds {max_bytes} bytes", [Problem("body", f"at most {max_bytes} bytes")]
    )
