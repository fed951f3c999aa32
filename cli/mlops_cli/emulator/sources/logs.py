"""CloudWatch Logs: every function log line shipped to moto, and subscription filters.

Faithful to AWS: each line goes to the function's log group (LoggingConfig.LogGroup, else
/aws/lambda/<name>); lines of a subscribed log group that match FilterPattern (``logfilter``)
are batched (0.5 s, 1,000 events or 1 MB) into the real
``{"awslogs": {"data": base64(gzip(json))}}`` payload with 56-digit event ids built like
CloudWatch's, and invoked asynchronously.

Not faithful: one log stream per function (Lambda has one per execution environment).

Where moto 5.2.5 differs from AWS: ``filter_log_events`` treats a JSON ``filterPattern`` as
"match everything" (only plain and quoted terms filter); subscriptions use ``logfilter``
instead, and are delivered here because moto cannot run a subscription's Lambda.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import logging
import queue
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConfigError
from mlops_cli.emulator.logfilter import FilterPattern
from mlops_cli.emulator.sources.async_invoke import ASYNC_PAYLOAD_LIMIT
from mlops_cli.emulator.sources.declarations import Declaration, serverless_functions
from mlops_cli.emulator.sources.lambda_service import InvokeAsync, LogLineLike
from mlops_cli.emulator.sources.moto_backend import MotoBackend
from mlops_cli.emulator.template import ACCOUNT, Resolver

log = logging.getLogger(__name__)

LOGS_FLUSH_SECONDS: Final = 0.5
LOGS_FLUSH_EVENTS: Final = 1000
LOGS_FLUSH_BYTES: Final = 1024 * 1024
# PutLogEvents counts 26 bytes per event on top of the message.
LOGS_EVENT_OVERHEAD: Final = 26
SHIP_FLUSH_SECONDS: Final = 0.2


@dataclass(frozen=True)
class LogsSource:
    function: str
    event: str
    log_group: str
    filter_pattern: FilterPattern
    filter_name: str
    enabled: bool = True


def parse_logs_event(ctx: Declaration, raw: dict[str, Any]) -> LogsSource:
    template, resolver, stack, function, event, where = ctx
    if "LogGroupName" not in raw:
        raise ConfigError(f"{where}: LogGroupName is required")
    group = _log_group_name(template, resolver, raw["LogGroupName"], stack)
    pattern = resolver.resolve(raw.get("FilterPattern", ""))
    try:
        compiled = FilterPattern.compile(str(pattern))
    except ConfigError as exc:
        raise ConfigError(f"{where}.FilterPattern: {exc}") from None
    return LogsSource(
        function=function,
        event=event,
        log_group=group,
        filter_pattern=compiled,
        filter_name=f"{stack}-{function}{event}",
    )


def function_log_groups(template: Mapping[str, Any], resolver: Resolver) -> dict[str, str]:
    """Each function's log group: LoggingConfig.LogGroup, else /aws/lambda/<physical name>."""
    stack = str(resolver.ref("AWS::StackName"))
    globals_ = template.get("Globals", {}).get("Function", {})
    groups = {}
    for function, props in serverless_functions(template, resolver):
        config = {**globals_, **props}.get("LoggingConfig") or {}
        if "LogGroup" in config:
            groups[function] = _log_group_name(template, resolver, config["LogGroup"], stack)
        else:
            groups[function] = f"/aws/lambda/{resolver.ref(function)}"
    return groups


def _log_group_name(template: Mapping[str, Any], resolver: Resolver, value: Any, stack: str) -> str:
    """A log group's name; a Ref to a log group the stack did not name resolves to the
    resource's LogGroupName, or to ``<stack>-<LogicalId>`` as CloudFormation would generate."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        logical = value["Ref"]
        resource = template.get("Resources", {}).get(logical, {})
        if resource.get("Type") == "AWS::Logs::LogGroup" and logical not in resolver.refs:
            name = resource.get("Properties", {}).get("LogGroupName")
            return str(resolver.resolve(name)) if name else f"{stack}-{logical}"
    return str(resolver.resolve(value))


# ------------------------------------------------------------------ delivery


@dataclass
class _LogBatch:
    group: str
    stream: str
    events: list[tuple[str, int, str]] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0


class LogShipper:
    """Ships every function log line to its log group in moto, and delivers the lines each
    subscription filter matches to its function. ``run`` is the thread; ``stop`` ends it."""

    def __init__(
        self,
        moto: MotoBackend,
        log_groups: Mapping[str, str],
        function_ids: Mapping[str, str],
        subscriptions: list[LogsSource],
        invoke_async: InvokeAsync,
    ) -> None:
        self.moto = moto
        self.log_groups = log_groups
        self.invoke_async = invoke_async
        self._function_ids = function_ids
        self._subscriptions = subscriptions
        self._log_queue: queue.Queue[LogLineLike | None] = queue.Queue()
        self._log_streams: dict[str, str] = {}

    def on_log(self, line: LogLineLike) -> None:
        """Every log line of every function; cheap, callable from any thread."""
        self._log_queue.put(line)

    def stop(self) -> None:
        """End ``run`` once the lines already queued are shipped."""
        self._log_queue.put(None)

    def run(self) -> None:
        shipping: dict[str, _LogBatch] = {}
        subscribed: dict[tuple[int, str], _LogBatch] = {}
        stopping = False
        while not stopping:
            opened = [b.opened + LOGS_FLUSH_SECONDS for b in subscribed.values() if b.events]
            opened += [b.opened + SHIP_FLUSH_SECONDS for b in shipping.values() if b.events]
            timeout = max(0.0, min(opened) - time.monotonic()) if opened else 0.5
            try:
                line = self._log_queue.get(timeout=timeout)
            except queue.Empty:
                line = None
            else:
                if line is None:
                    stopping = True
                else:
                    try:
                        self._route_line(line, shipping, subscribed)
                    except Exception:
                        # One bad line must not end log shipping for every function.
                        log.exception("could not route a log line of %s", line.function)
            now = time.monotonic()
            for batch in shipping.values():
                if batch.events and (stopping or now - batch.opened >= SHIP_FLUSH_SECONDS):
                    self._ship(batch)
            for (index, _), batch in subscribed.items():
                if batch.events and now - batch.opened >= LOGS_FLUSH_SECONDS:
                    self._deliver_logs(self._subscriptions[index], batch)
        undelivered = sum(len(b.events) for b in subscribed.values())
        if undelivered:
            log.warning(
                "%d log events were not delivered to subscriptions before stop", undelivered
            )

    def _route_line(
        self,
        line: LogLineLike,
        shipping: dict[str, _LogBatch],
        subscribed: dict[tuple[int, str], _LogBatch],
    ) -> None:
        function = self._function_ids.get(line.function, line.function)
        group = self.log_groups.get(function, f"/aws/lambda/{line.function}")
        stream = self._stream(function, group)
        event = (log_event_id(line.timestamp_ms), line.timestamp_ms, line.message)
        size = len(line.message.encode()) + LOGS_EVENT_OVERHEAD
        batch = shipping.setdefault(group, _LogBatch(group, stream))
        # PutLogEvents takes at most 10,000 events or 1 MB per call.
        if len(batch.events) >= 10_000 or batch.size + size > LOGS_FLUSH_BYTES:
            self._ship(batch)
        _append(batch, event, size)
        for index, subscription in enumerate(self._subscriptions):
            if subscription.log_group != group or not subscription.filter_pattern.matches(
                line.message
            ):
                continue
            pending = subscribed.setdefault((index, stream), _LogBatch(group, stream))
            if pending.size + size > LOGS_FLUSH_BYTES:
                self._deliver_logs(subscription, pending)
            _append(pending, event, size)
            if len(pending.events) >= LOGS_FLUSH_EVENTS:
                self._deliver_logs(subscription, pending)

    def _stream(self, function: str, group: str) -> str:
        if function not in self._log_streams:
            # Lambda's stream name shape: date/[version]environment-id.
            stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
            self._log_streams[function] = stream
            try:
                self.moto.logs.create_log_group(logGroupName=group)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    log.warning("log group %s: %s", group, exc)
            except BotoCoreError as exc:
                log.warning("log group %s: %s", group, exc)
            self.moto.guarded(
                self.moto.logs.create_log_stream, logGroupName=group, logStreamName=stream
            )
        return self._log_streams[function]

    def _ship(self, batch: _LogBatch) -> None:
        events = sorted(batch.events, key=lambda e: e[1])
        batch.events, batch.size = [], 0
        self.moto.guarded(
            self.moto.logs.put_log_events,
            logGroupName=batch.group,
            logStreamName=batch.stream,
            logEvents=[{"timestamp": ts, "message": msg} for _, ts, msg in events],
        )

    def _deliver_logs(self, subscription: LogsSource, batch: _LogBatch) -> None:
        events, batch.events, batch.size = batch.events, [], 0
        self._deliver_events(subscription, batch.group, batch.stream, events)

    def _deliver_events(
        self, subscription: LogsSource, group: str, stream: str, events: list[tuple[str, int, str]]
    ) -> None:
        payload = awslogs_payload(group, stream, subscription.filter_name, events)
        # Incompressible lines can make 1 MB of events a payload over the asynchronous
        # limit once base64-encoded: send such a batch in halves.
        if len(events) > 1 and len(json.dumps(payload)) > ASYNC_PAYLOAD_LIMIT:
            half = len(events) // 2
            self._deliver_events(subscription, group, stream, events[:half])
            self._deliver_events(subscription, group, stream, events[half:])
            return
        try:
            self.invoke_async(subscription.function, payload)
        except ConfigError as exc:
            log.error("subscription %s: %s", subscription.filter_name, exc)


def _append(batch: _LogBatch, event: tuple[str, int, str], size: int) -> None:
    if not batch.events:
        batch.opened = time.monotonic()
    batch.events.append(event)
    batch.size += size


# ------------------------------------------------------------------ the event

_log_sequence = itertools.count()


def log_event_id(timestamp_ms: int) -> str:
    """A CloudWatch Logs event id: 56 decimal digits, ``timestamp << 144 | random << 16 | seq``.

    Ids sort by time and are unique per event; consumers use them as idempotency keys.
    """
    value = (timestamp_ms << 144) | (secrets.randbits(128) << 16) | (next(_log_sequence) & 0xFFFF)
    return str(value).zfill(56)


def awslogs_payload(
    log_group: str,
    log_stream: str,
    filter_name: str,
    events: Iterable[tuple[str, int, str]],
    owner: str = ACCOUNT,
) -> dict[str, Any]:
    """The event a subscription filter delivers: ``events`` are (id, timestamp_ms, message)."""
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [filter_name],
        "logEvents": [{"id": i, "timestamp": ts, "message": msg} for i, ts, msg in events],
    }
    raw = json.dumps(data, separators=(",", ":")).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(raw)).decode()}}
