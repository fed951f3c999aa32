"""The body of a prediction request: its fields checked before any model sees it (the
instances themselves are checked by the served model's signature).

``"evaluation": true`` marks evaluation traffic (a holdout sent through the API to check the
served model): production answers it, and it is captured as such and kept out of drift,
live quality and rollout verdicts. A body field, not a header: it travels with the rows it
describes (a replayed or logged body keeps it), and there is one place to validate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.domain.schema import show_value, valid_unicode
from mlops.errors import InvalidInputError, Problem

REQUEST_FIELDS = frozenset({"instances", "request_id", "evaluation"})
MAX_REQUEST_ID = 128


def parse_request(body: Any) -> tuple[Any, str | None, bool]:
    """The instances, the optional ``request_id`` and whether the request is evaluation
    traffic (``"evaluation"``, a JSON boolean, false when absent), or every problem with the
    body at once."""
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
    evaluation = body.get("evaluation", False)
    if not isinstance(evaluation, bool):
        problems.append(
            Problem("evaluation", f"expected true or false, got {show_value(evaluation)}")
        )
    if problems:
        raise InvalidInputError(f"{len(problems)} problem(s) in the request body", problems)
    return body["instances"], request_id, evaluation
