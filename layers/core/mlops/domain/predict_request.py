"""The body of a prediction request: its fields checked before any model sees it (the
instances themselves are checked by the served model's signature)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.domain.schema import valid_unicode
from mlops.errors import InvalidInputError, Problem

REQUEST_FIELDS = frozenset({"instances", "request_id"})
MAX_REQUEST_ID = 128


def parse_request(body: Any) -> tuple[Any, str | None]:
    """The instances and the optional ``request_id``, or every problem with the body at once."""
    if not isinstance(body, Mapping):
        raise InvalidInputError(
            "the body must be a JSON object",
            [Problem("body", 'expected a JSON object like {"instances": [...]}')],
        )
    problems = [Problem(k, "unknown field") for k in sorted(body.keys() - REQUEST_FIELDS)]
    if "instances" not in body:
        problems.append(Problem("instances", "missing required field"))
    request_id = body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str)
        or not 0 < len(request_id) <= MAX_REQUEST_ID
        or not valid_unicode(request_id)
    ):
        problems.append(
            Problem("request_id", f"expected a string of 1 to {MAX_REQUEST_ID} Unicode characters")
        )
    if problems:
        raise InvalidInputError(f"{len(problems)} problem(s) in the request body", problems)
    return body["instances"], request_id
