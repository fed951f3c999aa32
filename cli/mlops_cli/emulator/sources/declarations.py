"""How an event source is declared in the template: the functions that declare events, the
context each source's parser gets, and the checks every parser shares (integers in a range,
booleans, JSON inputs, event patterns, dates)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from mlops.errors import ConfigError
from mlops_cli.emulator.template import Resolver


def serverless_functions(
    template: Mapping[str, Any], resolver: Resolver
) -> list[tuple[str, dict[str, Any]]]:
    """Each ``AWS::Serverless::Function`` whose Condition holds, with its Properties."""
    out = []
    for name, spec in template.get("Resources", {}).items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        out.append((name, spec.get("Properties", {})))
    return out


class Declaration(NamedTuple):
    """Where an event is declared, for its parser."""

    template: Mapping[str, Any]
    resolver: Resolver
    stack: str
    function: str
    event: str
    where: str


def event_pattern(pattern: str, where: str) -> Any:
    """An EventBridge-style pattern, matched by moto's own matcher (the one put_events uses)."""
    from moto.events.models import EventPattern

    try:
        return EventPattern.load(pattern)
    except Exception as exc:
        raise ConfigError(f"{where}: bad event pattern {pattern}: {exc}") from None


def json_input(value: Any, where: str) -> Any:
    if isinstance(value, dict | list):
        return value
    try:
        return json.loads(str(value))
    except ValueError:
        raise ConfigError(f"{where}: must be valid JSON") from None


def as_int(value: Any, where: str, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an integer") from None
    if not low <= number <= high:
        raise ConfigError(f"{where}: {number} is outside {low}-{high}")
    return number


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def as_date(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an ISO 8601 date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
