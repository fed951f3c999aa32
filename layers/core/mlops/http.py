"""HTTP glue for API Gateway handlers: JSON body parsing and the one error → status mapping."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from mlops.errors import (
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
    except binascii.Error as exc:
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
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            "the body is not valid JSON", [Problem("body", f"malformed JSON: {exc}")]
        ) from exc


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the body exceeds {max_bytes} bytes", [Problem("body", f"at most {max_bytes} bytes")]
    )
