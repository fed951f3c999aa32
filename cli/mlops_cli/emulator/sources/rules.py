"""EventBridge rules (``EventBridgeRule`` / ``CloudWatchEvent`` events), matched by moto.

Faithful to AWS: the rule is created in moto with an SQS target, so moto matches the pattern on
``put_events`` and delivers; each match is invoked asynchronously, with Input or InputPath
applied here.

Not faithful: InputTransformer is refused with a ConfigError naming the function and event.

Where moto 5.2.5 differs from AWS: its delivered events lack ``account``, and a target's
InputPath is ignored; both are handled here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.declarations import Declaration, event_pattern, json_input
from mlops_cli.emulator.sources.lambda_service import InvokeAsync
from mlops_cli.emulator.sources.moto_backend import MotoBackend
from mlops_cli.emulator.template import ACCOUNT, REGION


@dataclass(frozen=True)
class EventBridgeSource:
    function: str
    event: str
    pattern: dict[str, Any]
    bus: str = "default"
    rule_name: str = ""
    input: Any = None
    has_input: bool = False
    input_path: str | None = None
    enabled: bool = True


def parse_rule_event(ctx: Declaration, raw: dict[str, Any]) -> EventBridgeSource:
    _template, resolver, stack, function, event, where = ctx
    if "InputTransformer" in raw:
        raise ConfigError(f"{where}: InputTransformer is not supported by the local stack")
    props = resolver.resolve(raw)
    pattern = props.get("Pattern")
    if not isinstance(pattern, dict) or not pattern:
        raise ConfigError(f"{where}: Pattern must be a non-empty event pattern")
    event_pattern(json.dumps(pattern), where)
    if "Input" in props and "InputPath" in props:
        raise ConfigError(f"{where}: Input and InputPath are mutually exclusive")
    input_path = props.get("InputPath")
    if input_path is not None:
        _json_path(str(input_path), where)
    has_input = "Input" in props
    return EventBridgeSource(
        function=function,
        event=event,
        pattern=pattern,
        bus=str(props.get("EventBusName") or "default"),
        # Rule names are at most 64 characters.
        rule_name=str(props.get("RuleName") or f"{stack}-{function}{event}")[:64],
        input=json_input(props["Input"], f"{where}.Input") if has_input else None,
        has_input=has_input,
        input_path=None if input_path is None else str(input_path),
        enabled=str(props.get("State", "ENABLED")).upper().startswith("ENABLED"),
    )


# ------------------------------------------------------------------ delivery


def rule_queue(source: EventBridgeSource, moto: MotoBackend, stack: str) -> str:
    """The rule, created in moto with an internal queue as its target: the queue's URL."""
    url, arn = moto.queue(f"{stack}-eb-{source.function}-{source.event}")
    if source.bus != "default":
        try:
            moto.events.create_event_bus(Name=source.bus)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
    moto.events.put_rule(
        Name=source.rule_name,
        EventBusName=source.bus,
        EventPattern=json.dumps(source.pattern),
        State="ENABLED",
    )
    moto.events.put_targets(
        Rule=source.rule_name, EventBusName=source.bus, Targets=[{"Id": "local", "Arn": arn}]
    )
    return url


def match_delivery(source: EventBridgeSource, invoke_async: InvokeAsync) -> Callable[[Any], None]:
    """What becomes of each event the rule matched: invoked asynchronously, with the source's
    Input or InputPath applied."""

    def deliver(body: Any) -> None:
        event = eventbridge_event(body)
        if source.has_input:
            payload = source.input
        elif source.input_path is not None:
            payload = _json_path(source.input_path, source.event).lookup(event)
        else:
            payload = event
        invoke_async(source.function, payload)

    return deliver


# ------------------------------------------------------------------ the event


def eventbridge_event(body: Mapping[str, Any]) -> dict[str, Any]:
    """moto's delivered event in EventBridge's field order, with ``account`` (moto omits it)."""
    event = {
        "version": body.get("version", "0"),
        "id": body.get("id", str(uuid.uuid4())),
        "detail-type": body.get("detail-type"),
        "source": body.get("source"),
        "account": body.get("account", ACCOUNT),
        "time": body.get("time"),
        "region": body.get("region", REGION),
        "resources": body.get("resources", []),
        "detail": body.get("detail", {}),
    }
    return event | {k: v for k, v in body.items() if k not in event}


@dataclass(frozen=True)
class _JsonPath:
    parts: tuple[str | int, ...]

    def lookup(self, doc: Any) -> Any:
        for part in self.parts:
            if isinstance(part, int):
                if not isinstance(doc, list) or part >= len(doc):
                    return None
            elif not isinstance(doc, dict) or part not in doc:
                return None
            doc = doc[part]
        return doc


def _json_path(path: str, where: str) -> _JsonPath:
    """The JSONPath subset InputPath uses: ``$``, ``$.a.b``, ``$.a[0]``."""
    if not path.startswith("$"):
        raise ConfigError(f"{where}: InputPath {path!r} must start with $")
    parts: list[str | int] = []
    position = 1
    for match in re.finditer(r"\.([^.\[\]]+)|\[(\d+)\]", path):
        if match.start() != position:
            break
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if position != len(path):
        raise ConfigError(f"{where}: InputPath {path!r} is not a simple JSONPath")
    return _JsonPath(tuple(parts))
