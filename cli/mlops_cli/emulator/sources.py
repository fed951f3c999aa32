"""Every non-HTTP event source a SAM template declares, delivered locally the way AWS does.

``event_sources(template, resolver)`` reads each ``AWS::Serverless::Function``'s ``Events``;
``EventSources`` delivers them against the moto endpoint to an ``Invoker`` (the local Lambda
runtime) and implements Lambda's asynchronous invocation (retries, event age, dead-letter
queue, destinations).

Faithful to AWS:

* **SQS** event source mappings: BatchSize, MaximumBatchingWindowInSeconds, FilterCriteria
  (filtered-out messages are deleted, as Lambda does), ReportBatchItemFailures with Lambda's
  rules (an empty or unknown ``itemIdentifier`` fails the whole batch), synchronous invocation,
  delete on success only; failed messages return after the queue's VisibilityTimeout and moto's
  RedrivePolicy moves them to the DLQ after maxReceiveCount (moto applies it on receive).
* **S3** notifications travel through moto's own S3 → SQS notifications (prefix/suffix rules
  applied by moto), the ``s3:TestEvent`` is skipped, and each record is invoked
  asynchronously, as S3 does, in the real record shape (``eventVersion`` 2.1; keys
  form-encoded as S3 sends them: space → ``+``, ``/`` kept).
* **Schedule / ScheduleV2**: rate, cron (minutes, hours, day-of-month, month, day-of-week,
  year; numbers, names, ``*``, ``?``, lists, ranges, steps) and ``at()``; the real scheduled
  event (EventBridge's for Schedule, EventBridge Scheduler's for ScheduleV2, whose ``detail``
  is the string ``"{}"``) or exactly ``Input``; asynchronous invocation.
* **EventBridgeRule / CloudWatchEvent**: the rule is created in moto with an SQS target, so
  moto matches the pattern on ``put_events`` and delivers; Input and InputPath are applied
  here (moto ignores InputPath).
* **SNS**: an internal queue subscribes to the topic (moto applies FilterPolicy); each
  notification is invoked asynchronously as the real ``aws:sns`` record.
* **CloudWatchLogs** subscriptions: every function log line is shipped to moto's CloudWatch
  Logs; lines of the subscribed log group that match FilterPattern (``logfilter``) are batched
  (0.5 s, 1,000 events or 1 MB) into the real ``{"awslogs": {"data": base64(gzip(json))}}``
  payload with 56-digit event ids built like CloudWatch's.
* **Asynchronous invocation**: up to MaximumRetryAttempts (0-2, default 2) retries,
  MaximumEventAgeInSeconds, then DeadLetterQueue (SQS/SNS, with RequestID, ErrorCode and
  ErrorMessage attributes) and/or OnFailure; OnSuccess too. Destinations: SQS, SNS, Lambda
  (invoked asynchronously, under its own retries and destinations), EventBridge, in Lambda's
  invocation-record shape. A function's ReservedConcurrentExecutions caps how many of its
  events run at once; the others wait in the queue (throttled, without spending a retry
  attempt) until one finishes or their maximum age passes, and hold up no other function.

Not faithful, by design (local speed, or what the Invoker interface allows):

* retry delays are ``retry_delays`` (1 s then 2 s by default) instead of about 1 and 2 minutes;
  a throttled event is looked at again every ``THROTTLE_RETRY_SECONDS``;
  ``schedule_seconds`` makes every schedule fire every N seconds;
* one poller per SQS mapping (Lambda scales pollers out to many); ScalingConfig is ignored;
* each attempt of an asynchronous event gets the runtime's request id; the request id returned
  by ``invoke_async`` (the one Lambda would keep across retries) is the one used in
  dead-letter messages and destination records;
* one log stream per function (Lambda has one per execution environment);
* a schedule's RetryPolicy / DeadLetterConfig (about delivery to Lambda, which cannot fail
  locally) and FlexibleTimeWindow are accepted and ignored; InputTransformer, SNS
  SqsSubscription, cron's L, W and #, and the event types other than the above (Kinesis,
  DynamoDB, Api, ...) are refused with a ConfigError naming the function and event;
* a cron schedule in a zone with daylight saving fires at the wall-clock time; in the hour
  that does not exist, Python's zoneinfo decides where it lands;
* an asynchronous event over 1 MB (Lambda's asynchronous payload limit) is refused with a
  ConfigError instead of Lambda's 413.

Where moto 5.2.5 differs from AWS, and what this module does about it:

* S3 → SQS notifications encode "/" in keys as %2F: keys are re-encoded with "/" kept, and
  the fields moto leaves out (userIdentity, requestParameters, responseElements, bucket
  ownerIdentity, object sequencer) are filled in; the object's ``versionId`` (versioned
  buckets), which only moto knows, is added by wrapping moto's event builder
  (``moto_s3_version_ids``: it reaches a moto server running in this process, as the local
  stack's does);
* EventBridge's delivered events lack ``account`` and targets' InputPath is ignored: both
  are handled here;
* ``filter_log_events`` treats a JSON ``filterPattern`` as "match everything" (only plain and
  quoted terms filter); subscriptions use ``logfilter`` instead, and are delivered here
  because moto cannot run a subscription's Lambda.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import heapq
import itertools
import json
import logging
import queue
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol
from urllib.parse import quote_plus, unquote_plus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConfigError
from mlops_cli.emulator.logfilter import FilterPattern
from mlops_cli.emulator.runtime import Invocation, LogLine
from mlops_cli.emulator.template import ACCOUNT, REGION, Resolver

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

__all__ = [
    "AsyncConfig",
    "Cron",
    "Destination",
    "EventBridgeSource",
    "EventSource",
    "EventSources",
    "Invocation",
    "InvocationResult",
    "Invoker",
    "LogLine",
    "LogLineLike",
    "LogsSource",
    "S3Source",
    "ScheduleSource",
    "SnsSource",
    "SqsSource",
    "async_configs",
    "awslogs_payload",
    "batch_failures",
    "event_sources",
    "eventbridge_event",
    "function_log_groups",
    "log_event_id",
    "moto_s3_version_ids",
    "next_fire_time",
    "parse_schedule",
    "s3_record",
    "scheduled_event",
    "sns_event",
    "sqs_record",
]

# Lambda's limits and defaults that shape delivery.
SQS_MAX_PER_RECEIVE: Final = 10
SYNC_PAYLOAD_LIMIT: Final = 6 * 1024 * 1024
# Invoke API: "For asynchronous invocations, the maximum payload size is 1 MB."
ASYNC_PAYLOAD_LIMIT: Final = 1024 * 1024
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_EVENT_AGE: Final = 6 * 60 * 60
LOGS_FLUSH_SECONDS: Final = 0.5
LOGS_FLUSH_EVENTS: Final = 1000
LOGS_FLUSH_BYTES: Final = 1024 * 1024
# PutLogEvents counts 26 bytes per event on top of the message.
LOGS_EVENT_OVERHEAD: Final = 26
SHIP_FLUSH_SECONDS: Final = 0.2
THROTTLE_RETRY_SECONDS: Final = 0.2
POLL_SECONDS: Final = 1
STOP_JOIN_SECONDS: Final = 2.0

# ------------------------------------------------------------------ the runtime's interface


class InvocationResult(Protocol):
    """What this module reads from an invocation: the runtime's ``Invocation`` fits."""

    @property
    def request_id(self) -> str: ...
    @property
    def payload(self) -> Any: ...
    @property
    def error_type(self) -> str | None: ...


class LogLineLike(Protocol):
    @property
    def function(self) -> str: ...
    @property
    def timestamp_ms(self) -> int: ...
    @property
    def message(self) -> str: ...


class Invoker(Protocol):
    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Blocking and thread-safe; ``function`` is the template's logical id."""
        ...


# ------------------------------------------------------------------ parsed sources


@dataclass(frozen=True)
class SqsSource:
    function: str
    event: str
    queue_arn: str
    batch_size: int = 10
    window_seconds: float = 0.0
    report_batch_item_failures: bool = False
    filters: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class S3Source:
    function: str
    event: str
    bucket: str
    events: tuple[str, ...]
    key_rules: tuple[tuple[str, str], ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleSource:
    function: str
    event: str
    kind: str  # "Schedule" (an EventBridge rule) or "ScheduleV2" (EventBridge Scheduler)
    expression: str
    resource_arn: str
    input: Any = None
    has_input: bool = False
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    enabled: bool = True


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


@dataclass(frozen=True)
class LogsSource:
    function: str
    event: str
    log_group: str
    filter_pattern: FilterPattern
    filter_name: str
    enabled: bool = True


@dataclass(frozen=True)
class SnsSource:
    function: str
    event: str
    topic_arn: str
    filter_policy: dict[str, Any] | None = None
    filter_policy_scope: str = "MessageAttributes"
    enabled: bool = True


EventSource = SqsSource | S3Source | ScheduleSource | EventBridgeSource | LogsSource | SnsSource


@dataclass(frozen=True)
class Destination:
    """Where a failed or finished asynchronous event goes: SQS, SNS, Lambda or EventBridge."""

    kind: str
    arn: str


@dataclass(frozen=True)
class AsyncConfig:
    max_retries: int = DEFAULT_MAX_RETRIES
    max_event_age: float = DEFAULT_MAX_EVENT_AGE
    dead_letter: Destination | None = None
    on_success: Destination | None = None
    on_failure: Destination | None = None
    # ReservedConcurrentExecutions: most events of the function running at once.
    reserved_concurrency: int | None = None


# Properties SAM accepts per event type. Listed so a typo fails loudly, as ``sam validate``
# would; the ones that change behaviour and are not emulated are refused separately.
_PROPERTIES: Final[dict[str, frozenset[str]]] = {
    kind: frozenset(names.split())
    for kind, names in {
        "SQS": "Queue BatchSize Enabled FilterCriteria FunctionResponseTypes KmsKeyArn "
        "MaximumBatchingWindowInSeconds MetricsConfig ScalingConfig",
        "S3": "Bucket Events Filter",
        "Schedule": "Schedule Input Enabled State Name Description DeadLetterConfig RetryPolicy",
        "ScheduleV2": "ScheduleExpression ScheduleExpressionTimezone Input State Name "
        "Description DeadLetterConfig RetryPolicy StartDate EndDate FlexibleTimeWindow "
        "GroupName KmsKeyArn OmitName PermissionsBoundary RoleArn",
        "EventBridgeRule": "Pattern EventBusName Input InputPath InputTransformer Target "
        "DeadLetterConfig RetryPolicy RuleName State",
        "CloudWatchLogs": "LogGroupName FilterPattern",
        "SNS": "Topic FilterPolicy FilterPolicyScope Region SqsSubscription RedrivePolicy",
    }.items()
}
_PROPERTIES["CloudWatchEvent"] = _PROPERTIES["EventBridgeRule"]
# Served by the local HTTP API, not here.
_SERVED_ELSEWHERE: Final = frozenset({"HttpApi"})


def _functions(template: Mapping[str, Any], resolver: Resolver) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, spec in template.get("Resources", {}).items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        out.append((name, spec.get("Properties", {})))
    return out


class _Event(NamedTuple):
    """Where an event is declared, for its parser."""

    template: Mapping[str, Any]
    resolver: Resolver
    stack: str
    function: str
    event: str
    where: str


def event_sources(template: Mapping[str, Any], resolver: Resolver) -> list[EventSource]:
    """Every supported event of every function, resolved against local physical names."""
    stack = str(resolver.ref("AWS::StackName"))
    sources: list[EventSource] = []
    for function, props in _functions(template, resolver):
        for event, spec in (props.get("Events") or {}).items():
            kind = spec.get("Type")
            if kind in _SERVED_ELSEWHERE:
                continue
            where = f"{function}.Events.{event}"
            if kind not in _PROPERTIES:
                raise ConfigError(
                    f"{where}: event type {kind!r} is not supported by the local stack "
                    f"(supported: HttpApi, {', '.join(sorted(_PROPERTIES))})"
                )
            raw = spec.get("Properties") or {}
            unknown = sorted(set(raw) - _PROPERTIES[kind])
            if unknown:
                raise ConfigError(f"{where}: unknown {kind} properties {unknown}")
            context = _Event(template, resolver, stack, function, event, where)
            sources.append(_PARSERS[kind](context, raw))
    return sources


def _parse_sqs(ctx: _Event, raw: dict[str, Any]) -> SqsSource:
    _template, resolver, _stack, function, event, where = ctx
    props = resolver.resolve(raw)
    queue_arn = props.get("Queue")
    if not isinstance(queue_arn, str) or not queue_arn.startswith("arn:aws:sqs:"):
        raise ConfigError(f"{where}: Queue must be a queue ARN (!GetAtt Queue.Arn)")
    batch = _int(props.get("BatchSize", 10), f"{where}.BatchSize", 1, 10_000)
    window = _int(
        props.get("MaximumBatchingWindowInSeconds", 0),
        f"{where}.MaximumBatchingWindowInSeconds",
        0,
        300,
    )
    if batch > SQS_MAX_PER_RECEIVE and window == 0:
        # Lambda's own rule: over 10 messages needs a batching window.
        raise ConfigError(f"{where}: BatchSize over 10 needs MaximumBatchingWindowInSeconds >= 1")
    response_types = props.get("FunctionResponseTypes") or []
    if any(t != "ReportBatchItemFailures" for t in response_types):
        raise ConfigError(f"{where}: FunctionResponseTypes can only be ReportBatchItemFailures")
    filters = []
    for item in (props.get("FilterCriteria") or {}).get("Filters", []):
        pattern = item.get("Pattern")
        pattern = json.dumps(pattern) if isinstance(pattern, dict) else pattern
        if not isinstance(pattern, str):
            raise ConfigError(f"{where}: FilterCriteria.Filters[].Pattern must be JSON")
        _event_pattern(pattern, where)
        filters.append(pattern)
    return SqsSource(
        function=function,
        event=event,
        queue_arn=queue_arn,
        batch_size=batch,
        window_seconds=float(window),
        report_batch_item_failures="ReportBatchItemFailures" in response_types,
        filters=tuple(filters),
        enabled=_truthy(props.get("Enabled", True)),
    )


def _parse_s3(ctx: _Event, raw: dict[str, Any]) -> S3Source:
    template, resolver, _stack, function, event, where = ctx
    bucket_ref = raw.get("Bucket")
    logical = bucket_ref.get("Ref") if isinstance(bucket_ref, dict) else None
    resources = template.get("Resources", {})
    if logical is None or resources.get(logical, {}).get("Type") != "AWS::S3::Bucket":
        # SAM's own rule: the bucket must be declared in the same template.
        raise ConfigError(f"{where}: Bucket must be !Ref to an AWS::S3::Bucket in this template")
    props = resolver.resolve({k: v for k, v in raw.items() if k != "Bucket"})
    events = props.get("Events")
    events = [events] if isinstance(events, str) else events
    if not events or not all(isinstance(e, str) and e.startswith("s3:") for e in events):
        raise ConfigError(f"{where}: Events must be S3 event names like s3:ObjectCreated:*")
    rules = []
    for rule in (props.get("Filter") or {}).get("S3Key", {}).get("Rules", []):
        name = str(rule.get("Name", "")).lower()
        if name not in ("prefix", "suffix"):
            raise ConfigError(f"{where}: Filter.S3Key.Rules[].Name must be prefix or suffix")
        rules.append((name, str(rule.get("Value", ""))))
    return S3Source(
        function=function,
        event=event,
        bucket=str(resolver.ref(logical)),
        events=tuple(events),
        key_rules=tuple(rules),
    )


def _parse_schedule(ctx: _Event, raw: dict[str, Any]) -> ScheduleSource:
    _template, resolver, stack, function, event, where = ctx
    props = resolver.resolve(raw)
    kind = "Schedule" if "Schedule" in raw else "ScheduleV2"
    expression = props.get("Schedule" if kind == "Schedule" else "ScheduleExpression")
    if not isinstance(expression, str):
        field_name = "Schedule" if kind == "Schedule" else "ScheduleExpression"
        raise ConfigError(f"{where}: {field_name} is required")
    timezone = str(props.get("ScheduleExpressionTimezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown ScheduleExpressionTimezone {timezone!r}") from None
    parse_schedule(expression, where)  # fail at load time, not at the first tick
    name = str(props.get("Name") or f"{stack}-{function}{event}")
    if kind == "Schedule":
        arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
    else:
        group = str(props.get("GroupName") or "default")
        arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"
    enabled = _truthy(props.get("Enabled", True)) and str(
        props.get("State", "ENABLED")
    ).upper().startswith("ENABLED")
    has_input = "Input" in props
    return ScheduleSource(
        function=function,
        event=event,
        kind=kind,
        expression=expression,
        resource_arn=arn,
        input=_json_input(props["Input"], f"{where}.Input") if has_input else None,
        has_input=has_input,
        timezone=timezone,
        start=_date(props.get("StartDate"), f"{where}.StartDate"),
        end=_date(props.get("EndDate"), f"{where}.EndDate"),
        enabled=enabled,
    )


def _parse_eventbridge(ctx: _Event, raw: dict[str, Any]) -> EventBridgeSource:
    _template, resolver, stack, function, event, where = ctx
    if "InputTransformer" in raw:
        raise ConfigError(f"{where}: InputTransformer is not supported by the local stack")
    props = resolver.resolve(raw)
    pattern = props.get("Pattern")
    if not isinstance(pattern, dict) or not pattern:
        raise ConfigError(f"{where}: Pattern must be a non-empty event pattern")
    _event_pattern(json.dumps(pattern), where)
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
        input=_json_input(props["Input"], f"{where}.Input") if has_input else None,
        has_input=has_input,
        input_path=None if input_path is None else str(input_path),
        enabled=str(props.get("State", "ENABLED")).upper().startswith("ENABLED"),
    )


def _parse_logs(ctx: _Event, raw: dict[str, Any]) -> LogsSource:
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


def _parse_sns(ctx: _Event, raw: dict[str, Any]) -> SnsSource:
    _template, resolver, _stack, function, event, where = ctx
    props = resolver.resolve(raw)
    if _truthy(props.get("SqsSubscription", False)):
        raise ConfigError(f"{where}: SqsSubscription is not supported by the local stack")
    topic = props.get("Topic")
    if not isinstance(topic, str) or not topic.startswith("arn:aws:sns:"):
        raise ConfigError(f"{where}: Topic must be a topic ARN (!Ref Topic)")
    policy = props.get("FilterPolicy")
    if policy is not None and not isinstance(policy, dict):
        raise ConfigError(f"{where}: FilterPolicy must be a mapping")
    scope = str(props.get("FilterPolicyScope") or "MessageAttributes")
    if scope not in ("MessageAttributes", "MessageBody"):
        raise ConfigError(f"{where}: FilterPolicyScope must be MessageAttributes or MessageBody")
    return SnsSource(function, event, topic, policy, scope)


_PARSERS: Final[dict[str, Callable[[_Event, dict[str, Any]], EventSource]]] = {
    "SQS": _parse_sqs,
    "S3": _parse_s3,
    "Schedule": _parse_schedule,
    "ScheduleV2": _parse_schedule,
    "EventBridgeRule": _parse_eventbridge,
    "CloudWatchEvent": _parse_eventbridge,
    "CloudWatchLogs": _parse_logs,
    "SNS": _parse_sns,
}


def async_configs(template: Mapping[str, Any], resolver: Resolver) -> dict[str, AsyncConfig]:
    """Each function's DeadLetterQueue and EventInvokeConfig (Globals merged in)."""
    stack = str(resolver.ref("AWS::StackName"))
    globals_ = template.get("Globals", {}).get("Function", {})
    configs = {}
    for function, props in _functions(template, resolver):
        merged = {**globals_, **props}
        invoke = resolver.resolve(merged.get("EventInvokeConfig") or {})
        where = f"{function}.EventInvokeConfig"
        retries = _int(
            invoke.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES),
            f"{where}.MaximumRetryAttempts",
            0,
            2,
        )
        # AWS allows 60 s to 6 h; the lower bound is cfn-lint's to check, and tests use less.
        age = _int(
            invoke.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE),
            f"{where}.MaximumEventAgeInSeconds",
            1,
            DEFAULT_MAX_EVENT_AGE,
        )
        destinations = invoke.get("DestinationConfig") or {}
        dlq = resolver.resolve(merged.get("DeadLetterQueue") or {})
        dead_letter = None
        if dlq:
            if dlq.get("Type") not in ("SQS", "SNS") or not isinstance(dlq.get("TargetArn"), str):
                raise ConfigError(f"{function}.DeadLetterQueue: needs Type SQS|SNS and TargetArn")
            dead_letter = Destination(dlq["Type"], dlq["TargetArn"])
        reserved = resolver.resolve(merged.get("ReservedConcurrentExecutions"))
        configs[function] = AsyncConfig(
            max_retries=retries,
            max_event_age=float(age),
            dead_letter=dead_letter,
            on_success=_destination(destinations.get("OnSuccess"), stack, function, "OnSuccess"),
            on_failure=_destination(destinations.get("OnFailure"), stack, function, "OnFailure"),
            reserved_concurrency=None
            if reserved is None
            else _int(reserved, f"{function}.ReservedConcurrentExecutions", 0, 1_000_000),
        )
    return configs


def _destination(spec: Any, stack: str, function: str, which: str) -> Destination | None:
    if not spec:
        return None
    where = f"{function}.EventInvokeConfig.DestinationConfig.{which}"
    kind = spec.get("Type")
    arn = spec.get("Destination")
    if kind not in ("SQS", "SNS", "Lambda", "EventBridge"):
        raise ConfigError(
            f"{where}: Type {kind!r} is not supported (SQS, SNS, Lambda, EventBridge)"
        )
    if arn is None and kind in ("SQS", "SNS"):
        # SAM creates the queue or topic when Destination is left out; so do we.
        name = f"{stack}-{function}EventInvokeConfig{which}{'Queue' if kind == 'SQS' else 'Topic'}"
        service = "sqs" if kind == "SQS" else "sns"
        arn = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise ConfigError(f"{where}: Destination must be an ARN")
    return Destination(kind, arn)


def function_log_groups(template: Mapping[str, Any], resolver: Resolver) -> dict[str, str]:
    """Each function's log group: LoggingConfig.LogGroup, else /aws/lambda/<physical name>."""
    stack = str(resolver.ref("AWS::StackName"))
    globals_ = template.get("Globals", {}).get("Function", {})
    groups = {}
    for function, props in _functions(template, resolver):
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


# ------------------------------------------------------------------ schedules


# Spelled out: calendar.month_abbr follows the locale, EventBridge does not.
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Cron:
    """An EventBridge cron expression: minutes hours day-of-month month day-of-week year.

    ``days_of_month`` or ``days_of_week`` is None for the field written ``?``. Days of week
    count from 1 = Sunday to 7 = Saturday, as EventBridge does.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None
    years: frozenset[int]

    @classmethod
    def parse(cls, text: str, where: str = "cron") -> Cron:
        fields = text.split()
        if len(fields) != 6:
            raise ConfigError(f"{where}: cron needs 6 fields (min hour dom month dow year): {text}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ConfigError(f"{where}: exactly one of day-of-month and day-of-week must be ?")
        return cls(
            minutes=_cron_field(minute, 0, 59, {}, where),
            hours=_cron_field(hour, 0, 23, {}, where),
            days_of_month=None if dom == "?" else _cron_field(dom, 1, 31, {}, where),
            months=_cron_field(month, 1, 12, _MONTHS, where),
            days_of_week=None if dow == "?" else _cron_field(dow, 1, 7, _DAYS, where),
            years=_cron_field(year, 1970, 2199, {}, where),
        )

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing time strictly after ``after`` (naive: wall-clock time in the
        schedule's zone), or None when the years run out."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        last_year = max(self.years)
        while day.year <= last_year:
            if day.year not in self.years:
                day = day.replace(year=day.year + 1, month=1, day=1)
                continue
            if day.month not in self.months:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if self._day_matches(day.day, day.isoweekday() % 7 + 1):
                earliest = (start.hour, start.minute) if day == start.date() else (0, 0)
                for hour in sorted(h for h in self.hours if h >= earliest[0]):
                    low = earliest[1] if hour == earliest[0] else 0
                    minutes = [m for m in sorted(self.minutes) if m >= low]
                    if minutes:
                        return datetime(day.year, day.month, day.day, hour, minutes[0])
            day += timedelta(days=1)
        return None

    def _day_matches(self, day_of_month: int, day_of_week: int) -> bool:
        if self.days_of_month is not None:
            return day_of_month in self.days_of_month
        return self.days_of_week is not None and day_of_week in self.days_of_week


def _cron_field(
    text: str, low: int, high: int, names: Mapping[str, int], where: str
) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{where}: cron {text!r}: bad step {step_text!r}")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = (
                _cron_value(first_text, names, where),
                _cron_value(last_text, names, where),
            )
        else:
            first = _cron_value(base, names, where)
            # "5/15" runs from 5 to the end of the range.
            last = high if step_text else first
        if first > last:
            raise ConfigError(f"{where}: cron {text!r}: the range {base} runs backwards")
        if not low <= first <= last <= high:
            raise ConfigError(f"{where}: cron {text!r}: {base} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _cron_value(text: str, names: Mapping[str, int], where: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if re.search(r"[LW#]", upper):
        raise ConfigError(f"{where}: cron {text!r}: L, W and # are not supported locally")
    if not text.isdigit():
        raise ConfigError(f"{where}: cron value {text!r} is not a number")
    return int(text)


@dataclass(frozen=True)
class _Rate:
    seconds: float


@dataclass(frozen=True)
class _At:
    when: datetime  # naive, in the schedule's zone


def parse_schedule(expression: str, where: str = "schedule") -> Cron | _Rate | _At:
    """``rate(5 minutes)``, ``cron(0 3 * * ? *)`` or ``at(2030-01-01T00:00:00)``."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        # EventBridge's rule: 1 takes the singular unit, more the plural.
        if value == 0 or (value == 1) != (not unit.endswith("s")):
            raise ConfigError(f"{where}: {text}: use rate(1 minute) or rate(N minutes), N > 1")
        return _Rate(float(value * _UNIT_SECONDS[unit.rstrip("s")]))
    if text.startswith("cron(") and text.endswith(")"):
        return Cron.parse(text[5:-1], where)
    at = _AT.fullmatch(text)
    if at:
        return _At(datetime.fromisoformat(at.group(1)))
    raise ConfigError(f"{where}: {expression!r} is not rate(...), cron(...) or at(...)")


# ------------------------------------------------------------------ CloudWatch Logs payloads

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


# ------------------------------------------------------------------ delivery


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)


@dataclass
class _AsyncEvent:
    request_id: str
    function: str
    event: Any
    enqueued: float
    attempts: int = 0
    last: InvocationResult | None = None


@dataclass
class _LogBatch:
    group: str
    stream: str
    events: list[tuple[str, int, str]] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0


class EventSources:
    """Runs the template's event sources against moto and delivers them to ``invoker``.

    Build it after the stack created its resources (the resolver must know physical names),
    then ``start()``; feed every function log line to ``on_log``; ``stop()`` at the end.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        resolver: Resolver,
        invoker: Invoker,
        endpoint_url: str,
        *,
        log_groups: Mapping[str, str] | None = None,
        schedule_seconds: float | None = None,
        retry_delays: tuple[float, float] = (1.0, 2.0),
        async_workers: int = 8,
    ) -> None:
        self.resolver = resolver
        self.invoker = invoker
        self.endpoint_url = endpoint_url
        self.schedule_seconds = schedule_seconds
        self.retry_delays = retry_delays
        self.stack = str(resolver.ref("AWS::StackName"))
        self.sources = event_sources(template, resolver)
        self.async_config = async_configs(template, resolver)
        self.log_groups = {**function_log_groups(template, resolver), **(log_groups or {})}
        # LogLine.function may carry the logical id or the physical name: accept both.
        self._function_ids = {str(resolver.ref(f)): f for f in self.async_config}
        self._function_ids.update({f: f for f in self.async_config})
        self._arn_functions = {
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}": logical
            for physical, logical in self._function_ids.items()
        }
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._timers: list[_Timer] = []
        self._timer_seq = itertools.count()
        self._timer_cv = threading.Condition()
        self._work: queue.Queue[_AsyncEvent | None] = queue.Queue()
        self._async_workers = async_workers
        self._running: dict[str, int] = {}  # asynchronous events in a function, by function
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._log_queue: queue.Queue[LogLineLike | None] = queue.Queue()
        self._log_streams: dict[str, str] = {}
        self._subscriptions = [s for s in self.sources if isinstance(s, LogsSource) and s.enabled]
        self._queue_urls: dict[str, str] = {}
        self._subscription_arns: dict[str, str] = {}
        self._started = False
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=15)
        credentials = {
            "region_name": REGION,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_session_token": "testing",
            "config": config,
        }
        self.sqs: SQSClient = boto3.client("sqs", **credentials)  # type: ignore[call-overload]
        self.s3: S3Client = boto3.client("s3", **credentials)  # type: ignore[call-overload]
        # No stubs are installed for these three services: typed as Any.
        self.events: Any = boto3.client("events", **credentials)  # type: ignore[call-overload]
        self.logs: Any = boto3.client("logs", **credentials)  # type: ignore[call-overload]
        self.sns: Any = boto3.client("sns", **credentials)  # type: ignore[call-overload]

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        moto_s3_version_ids()
        self._thread("timers", self._run_timers)
        for index in range(self._async_workers):
            self._thread(f"async-{index}", self._run_async_worker)
        self._thread("logs", self._run_logs)
        s3_configs: dict[str, list[dict[str, Any]]] = {}
        for source in self.sources:
            if not source.enabled:
                continue
            name = f"{source.function}.{source.event}"
            if isinstance(source, SqsSource):
                self._thread(name, partial(self._run_sqs, source))
            elif isinstance(source, S3Source):
                queue_url, config = self._s3_queue(source)
                s3_configs.setdefault(source.bucket, []).append(config)
                self._thread(name, partial(self._run_s3, source, queue_url))
            elif isinstance(source, ScheduleSource):
                self._arm_schedule(source, datetime.now(UTC), time.monotonic())
            elif isinstance(source, EventBridgeSource):
                queue_url = self._eventbridge_queue(source)
                self._thread(name, partial(self._run_eventbridge, source, queue_url))
            elif isinstance(source, SnsSource):
                queue_url = self._sns_queue(source)
                self._thread(name, partial(self._run_sns, source, queue_url))
        # One call per bucket: the configuration replaces the bucket's whole set.
        for bucket, configs in s3_configs.items():
            self.s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={"QueueConfigurations": configs},  # type: ignore[typeddict-item]
            )

    def stop(self) -> None:
        """Stop every thread; returns within about 2 s (an invocation in flight is not
        interrupted: its thread is a daemon and is left to finish)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._timer_cv:
            self._timer_cv.notify_all()
        for _ in range(self._async_workers):
            self._work.put(None)
        self._log_queue.put(None)
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.pending_async:
            log.warning("%d asynchronous events were not delivered before stop", self.pending_async)

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"sources:{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _queue(self, name: str) -> tuple[str, str]:
        """An internal queue of ours (created if missing): its URL and ARN."""
        # Queue names allow 80 characters of [A-Za-z0-9_-].
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]
        url = self.sqs.create_queue(QueueName=safe)["QueueUrl"]
        return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{safe}"

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            name = arn.rsplit(":", 1)[-1]
            self._queue_urls[arn] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._queue_urls[arn]

    # ---------------------------------------------------------------- SQS

    def _run_sqs(self, source: SqsSource) -> None:
        try:
            queue_url = self._queue_url(source.queue_arn)
        except (ClientError, BotoCoreError) as exc:
            log.error("%s.%s: queue %s: %s", source.function, source.event, source.queue_arn, exc)
            return
        filters = [_event_pattern(p, source.event) for p in source.filters]
        while not self._stopping.is_set():
            messages = self._guarded(self._gather, source=source, queue_url=queue_url) or []
            if not messages or self._stopping.is_set():
                continue  # left undeleted, they return after the visibility timeout
            records = [sqs_record(m, source.queue_arn) for m in messages]
            if filters:
                kept = [r for r in records if any(f.matches_event(_filterable(r)) for f in filters)]
                kept_ids = {r["messageId"] for r in kept}
                dropped = [r for r in records if r["messageId"] not in kept_ids]
                # Lambda deletes the messages no filter matches.
                self._delete(queue_url, dropped)
                records = kept
            if not records:
                continue
            try:
                result: InvocationResult | None = self.invoker.invoke(
                    source.function, {"Records": records}
                )
            except Exception:
                log.exception("%s.%s: invoke failed", source.function, source.event)
                result = None
            failed = batch_failures(records, result, source.report_batch_item_failures)
            if failed:
                log.warning(
                    "%s.%s: %d of %d messages failed; they return after the visibility timeout",
                    source.function,
                    source.event,
                    len(failed),
                    len(records),
                )
            self._delete(queue_url, [r for r in records if r["messageId"] not in failed])

    def _gather(self, source: SqsSource, queue_url: str) -> list[MessageTypeDef]:
        """Receive until the batch is full, the batching window passes, or the payload would
        pass Lambda's 6 MB synchronous limit. The window opens with the first message."""
        # By message id: a message whose visibility timeout is shorter than the window comes
        # back while the batch is gathered; it is kept once, with its newest receipt handle.
        batch: dict[str, MessageTypeDef] = {}
        size = 0
        deadline = float("inf")
        while len(batch) < source.batch_size and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = POLL_SECONDS if remaining >= POLL_SECONDS else 0
            received = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(SQS_MAX_PER_RECEIVE, source.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.update((m["MessageId"], m) for m in received)
            size += sum(len(m.get("Body", "")) + 1024 for m in received)
            if batch and deadline == float("inf"):
                if source.window_seconds <= 0:
                    break
                deadline = time.monotonic() + source.window_seconds
            if size >= SYNC_PAYLOAD_LIMIT - 256 * 1024:
                break
            if not received and wait == 0:
                time.sleep(min(0.05, max(0.0, remaining)))
        return list(batch.values())

    def _delete(self, queue_url: str, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), SQS_MAX_PER_RECEIVE):
            chunk = records[start : start + SQS_MAX_PER_RECEIVE]
            entries = [
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
            ]
            response = self._guarded(
                self.sqs.delete_message_batch, QueueUrl=queue_url, Entries=entries
            )
            for failure in (response or {}).get("Failed", []):
                log.warning("could not delete a message from %s: %s", queue_url, failure)

    def _guarded(self, call: Callable[..., Any], /, **kwargs: Any) -> Any:
        """An AWS call from a background thread: errors are logged, never fatal (None is
        returned). While stopping, moto may already be gone: stay quiet then."""
        try:
            return call(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if not self._stopping.is_set():
                log.warning("local event sources: %s", exc)
                self._stopping.wait(0.5)
            return None

    # ---------------------------------------------------------------- S3 / EventBridge / SNS

    def _s3_queue(self, source: S3Source) -> tuple[str, dict[str, Any]]:
        url, arn = self._queue(f"{self.stack}-s3-{source.function}-{source.event}")
        config: dict[str, Any] = {
            "Id": f"{source.function}{source.event}",
            "QueueArn": arn,
            "Events": list(source.events),
        }
        if source.key_rules:
            rules = [{"Name": name, "Value": value} for name, value in source.key_rules]
            config["Filter"] = {"Key": {"FilterRules": rules}}
        return url, config

    def _run_s3(self, source: S3Source, queue_url: str) -> None:
        def deliver(body: Any) -> None:
            if not isinstance(body, dict) or body.get("Event") == "s3:TestEvent":
                return  # S3 sends a test event when the configuration is set
            for record in body.get("Records", []):
                self.invoke_async(source.function, {"Records": [s3_record(record)]})

        self._drain(queue_url, deliver)

    def _eventbridge_queue(self, source: EventBridgeSource) -> str:
        url, arn = self._queue(f"{self.stack}-eb-{source.function}-{source.event}")
        if source.bus != "default":
            try:
                self.events.create_event_bus(Name=source.bus)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
        self.events.put_rule(
            Name=source.rule_name,
            EventBusName=source.bus,
            EventPattern=json.dumps(source.pattern),
            State="ENABLED",
        )
        self.events.put_targets(
            Rule=source.rule_name, EventBusName=source.bus, Targets=[{"Id": "local", "Arn": arn}]
        )
        return url

    def _run_eventbridge(self, source: EventBridgeSource, queue_url: str) -> None:
        def deliver(body: Any) -> None:
            event = eventbridge_event(body)
            if source.has_input:
                payload = source.input
            elif source.input_path is not None:
                payload = _json_path(source.input_path, source.event).lookup(event)
            else:
                payload = event
            self.invoke_async(source.function, payload)

        self._drain(queue_url, deliver)

    def _sns_queue(self, source: SnsSource) -> str:
        url, arn = self._queue(f"{self.stack}-sns-{source.function}-{source.event}")
        # create_topic is idempotent: the stack may not create topics itself.
        self.sns.create_topic(Name=source.topic_arn.rsplit(":", 1)[-1])
        attributes = {}
        if source.filter_policy is not None:
            attributes["FilterPolicy"] = json.dumps(source.filter_policy)
            attributes["FilterPolicyScope"] = source.filter_policy_scope
        subscription = self.sns.subscribe(
            TopicArn=source.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
        )
        self._subscription_arns[url] = subscription["SubscriptionArn"]
        return url

    def _run_sns(self, source: SnsSource, queue_url: str) -> None:
        subscription_arn = self._subscription_arns[queue_url]

        def deliver(body: Any) -> None:
            if isinstance(body, dict) and body.get("Type") == "Notification":
                self.invoke_async(source.function, sns_event(body, subscription_arn))

        self._drain(queue_url, deliver)

    def _drain(self, queue_url: str, deliver: Callable[[Any], None]) -> None:
        """Poll an internal queue; each message is handed to ``deliver`` then deleted (once
        queued for asynchronous invocation, the event is Lambda's, as on AWS)."""
        while not self._stopping.is_set():
            response = self._guarded(
                self.sqs.receive_message,
                QueueUrl=queue_url,
                MaxNumberOfMessages=SQS_MAX_PER_RECEIVE,
                WaitTimeSeconds=POLL_SECONDS,
            )
            messages = response.get("Messages", []) if response else []
            for message in messages:
                body = message.get("Body", "")
                try:
                    deliver(json.loads(body))
                except ValueError:
                    log.warning("skipping a message that is not JSON on %s", queue_url)
                except Exception:
                    # e.g. an event over the asynchronous payload limit: say which, go on.
                    log.exception("could not deliver %s from %s", body[:1024], queue_url)
                self._guarded(
                    self.sqs.delete_message,
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                )

    # ---------------------------------------------------------------- schedules

    def _arm_schedule(self, source: ScheduleSource, now: datetime, now_mono: float) -> None:
        """Fire at the next time, then re-arm from that time, so firings do not drift."""
        if self.schedule_seconds is not None:
            fire_at = now + timedelta(seconds=self.schedule_seconds)
        else:
            fire_at_or_none = next_fire_time(source, now)
            if fire_at_or_none is None:
                return
            fire_at = fire_at_or_none
        due = now_mono + (fire_at - now).total_seconds()

        def fire() -> None:
            late = time.monotonic() - due
            if late < 1.0:
                self._arm_schedule(source, fire_at, due)
            else:
                # Far behind (a suspended laptop): EventBridge does not catch up missed
                # firings, so count the next one from now.
                self._arm_schedule(source, datetime.now(UTC), time.monotonic())
            try:
                self.invoke_async(source.function, scheduled_event(source, fire_at))
            except ConfigError as exc:
                log.error("%s.%s: %s", source.function, source.event, exc)

        self._call_at(due, fire)

    def fire_schedule(self, function: str, event: str | None = None) -> str:
        """Fire ``function``'s schedule now, with the event the schedule itself delivers (as
        "Run now" does in the console); its regular firings are unchanged. ``event`` picks the
        template event when the function has several schedules. Returns the request id."""
        logical = self._function_ids.get(function, function)
        schedules = [
            s
            for s in self.sources
            if isinstance(s, ScheduleSource)
            and s.function == logical
            and (event is None or s.event == event)
        ]
        if not schedules:
            raise ConfigError(f"fire_schedule: {function} has no schedule {event or ''}".strip())
        return self.invoke_async(logical, scheduled_event(schedules[0], datetime.now(UTC)))

    def _call_at(self, due: float, action: Callable[[], None]) -> None:
        with self._timer_cv:
            heapq.heappush(self._timers, _Timer(due, next(self._timer_seq), action))
            self._timer_cv.notify()

    def _run_timers(self) -> None:
        while True:
            with self._timer_cv:
                while not self._stopping.is_set():
                    wait = self._timers[0].due - time.monotonic() if self._timers else None
                    if wait is not None and wait <= 0:
                        break
                    self._timer_cv.wait(wait)
                if self._stopping.is_set():
                    return
                timer = heapq.heappop(self._timers)
            try:
                timer.action()
            except Exception:
                log.exception("local event sources: a timer failed")

    # ---------------------------------------------------------------- asynchronous invocation

    def invoke_async(self, function: str, event: Any) -> str:
        """Lambda's ``InvocationType=Event``: queue the event, answer its request id at once."""
        logical = self._function_ids.get(function, function)
        if logical not in self.async_config:
            raise ConfigError(f"invoke_async: no function {function!r} in the template")
        size = len(json.dumps(event).encode())
        if size > ASYNC_PAYLOAD_LIMIT:
            raise ConfigError(
                f"invoke_async {logical}: payload of {size} bytes is over Lambda's "
                f"{ASYNC_PAYLOAD_LIMIT}-byte asynchronous limit"
            )
        job = _AsyncEvent(str(uuid.uuid4()), logical, event, time.monotonic())
        with self._in_flight_lock:
            self._in_flight += 1
        self._work.put(job)
        return job.request_id

    @property
    def pending_async(self) -> int:
        """Asynchronous events queued, running or waiting for a retry."""
        with self._in_flight_lock:
            return self._in_flight

    def _run_async_worker(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                self._attempt(job)
            except Exception:
                log.exception("asynchronous invocation %s failed to process", job.request_id)
                self._done()

    def _done(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    def _attempt(self, job: _AsyncEvent) -> None:
        config = self.async_config[job.function]
        if time.monotonic() - job.enqueued > config.max_event_age:
            self._failed(job, "EventAgeExceeded")
            return
        if not self._claim(job.function, config.reserved_concurrency):
            # Throttled: back to the queue, not an attempt (Lambda retries throttles for up
            # to the event's maximum age without counting them).
            if self._stopping.is_set():
                log.warning(
                    "async invocation %s of %s dropped: stopping", job.request_id, job.function
                )
                self._done()
                return
            self._call_at(time.monotonic() + THROTTLE_RETRY_SECONDS, lambda: self._work.put(job))
            return
        job.attempts += 1
        try:
            job.last = self.invoker.invoke(job.function, job.event)
        except Exception as exc:
            log.exception("asynchronous invocation %s: invoke raised", job.request_id)
            job.last = Invocation(
                job.request_id,
                {"errorType": type(exc).__name__, "errorMessage": str(exc)},
                "ServiceException",
                0.0,
                None,
            )
        finally:
            self._release(job.function)
        if job.last.error_type is None:
            if config.on_success is not None:
                self._send_record(job, config.on_success, "Success")
            self._done()
            return
        if job.attempts <= config.max_retries:
            if self._stopping.is_set():
                log.warning(
                    "async invocation %s of %s not retried: the local stack is stopping",
                    job.request_id,
                    job.function,
                )
                self._done()
                return
            delay = self.retry_delays[min(job.attempts, len(self.retry_delays)) - 1]
            self._call_at(time.monotonic() + delay, lambda: self._work.put(job))
            return
        self._failed(job, "RetriesExhausted")

    def _claim(self, function: str, limit: int | None) -> bool:
        """A slot for one more running event of ``function``, unless it is at ``limit``."""
        with self._in_flight_lock:
            running = self._running.get(function, 0)
            if limit is not None and running >= limit:
                return False
            self._running[function] = running + 1
            return True

    def _release(self, function: str) -> None:
        with self._in_flight_lock:
            self._running[function] -= 1

    def _failed(self, job: _AsyncEvent, condition: str) -> None:
        config = self.async_config[job.function]
        if config.dead_letter is None and config.on_failure is None:
            log.error(
                "async invocation failed after %d attempts (%s): function %s request %s: %s",
                job.attempts,
                condition,
                job.function,
                job.request_id,
                _error_message(job.last),
            )
        if config.dead_letter is not None:
            self._dead_letter(job, config.dead_letter, condition)
        if config.on_failure is not None:
            self._send_record(job, config.on_failure, condition)
        self._done()

    def _dead_letter(self, job: _AsyncEvent, target: Destination, condition: str) -> None:
        message = (_error_message(job.last) or condition)[:1024]
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": job.request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": message},
        }
        self._send(target, json.dumps(job.event), attributes, job)

    def _send_record(self, job: _AsyncEvent, target: Destination, condition: str) -> None:
        physical = self.resolver.ref(job.function)
        function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}:$LATEST"
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": _iso_ms(datetime.now(UTC)),
            "requestContext": {
                "requestId": job.request_id,
                "functionArn": function_arn,
                "condition": condition,
                "approximateInvokeCount": job.attempts,
            },
            "requestPayload": job.event,
        }
        if job.last is not None:
            response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
            if job.last.error_type is not None:
                response["functionError"] = "Unhandled"
            record["responseContext"] = response
            record["responsePayload"] = job.last.payload
        if target.kind == "EventBridge":
            outcome = "Success" if condition == "Success" else "Failure"
            self._guarded(
                self.events.put_events,
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {outcome}",
                        "Detail": json.dumps(record),
                        "Resources": [function_arn.rsplit(":", 1)[0]],
                        "EventBusName": target.arn,
                    }
                ],
            )
        elif target.kind == "Lambda":
            other = self._arn_functions.get(target.arn.removesuffix(":$LATEST"))
            if other is None:
                log.error("destination %s is not a function of the template", target.arn)
            else:
                self.invoke_async(other, record)
        else:
            self._send(target, json.dumps(record), None, job)

    def _send(
        self,
        target: Destination,
        body: str,
        attributes: dict[str, dict[str, str]] | None,
        job: _AsyncEvent,
    ) -> None:
        try:
            if target.kind == "SQS":
                url = self._queue_url_or_create(target.arn)
                if attributes:
                    self.sqs.send_message(
                        QueueUrl=url,
                        MessageBody=body,
                        MessageAttributes=attributes,  # type: ignore[arg-type]
                    )
                else:
                    self.sqs.send_message(QueueUrl=url, MessageBody=body)
            else:
                self.sns.create_topic(Name=target.arn.rsplit(":", 1)[-1])
                self.sns.publish(
                    TopicArn=target.arn,
                    Message=body,
                    **({"MessageAttributes": attributes} if attributes else {}),
                )
        except (ClientError, BotoCoreError) as exc:
            log.error(
                "async invocation %s of %s: could not send to %s: %s; event: %s",
                job.request_id,
                job.function,
                target.arn,
                exc,
                json.dumps(job.event)[:1024],
            )

    def _queue_url_or_create(self, arn: str) -> str:
        try:
            return self._queue_url(arn)
        except ClientError:
            # A SAM-created destination queue (Destination left out): create it.
            return self._queue(arn.rsplit(":", 1)[-1])[0]

    # ---------------------------------------------------------------- logs

    def on_log(self, line: LogLineLike) -> None:
        """Every log line of every function; cheap, callable from any thread."""
        self._log_queue.put(line)

    def _run_logs(self) -> None:
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
                self.logs.create_log_group(logGroupName=group)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    log.warning("log group %s: %s", group, exc)
            except BotoCoreError as exc:
                log.warning("log group %s: %s", group, exc)
            self._guarded(self.logs.create_log_stream, logGroupName=group, logStreamName=stream)
        return self._log_streams[function]

    def _ship(self, batch: _LogBatch) -> None:
        events = sorted(batch.events, key=lambda e: e[1])
        batch.events, batch.size = [], 0
        self._guarded(
            self.logs.put_log_events,
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


# ------------------------------------------------------------------ event shapes

# The attributes Lambda copies from SQS into each record.
_SQS_RECORD_ATTRIBUTES: Final = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def sqs_record(message: MessageTypeDef | Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda's SQS event record."""
    attributes = message.get("Attributes", {})
    body = message.get("Body", "")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {k: attributes[k] for k in _SQS_RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: _sqs_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record |= {"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION}
    return record


def _sqs_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [
        base64.b64encode(v).decode() for v in value.get("BinaryListValues", [])
    ]
    out["dataType"] = value.get("DataType", "String")
    return out


def batch_failures(
    records: list[dict[str, Any]], result: InvocationResult | None, report_failures: bool
) -> set[str]:
    """The message ids Lambda keeps on the queue after a batch, by its documented rules."""
    everything = {r["messageId"] for r in records}
    if result is None or result.error_type is not None:
        return everything
    if not report_failures:
        return set()
    response = result.payload
    if response is None:
        return set()
    if not isinstance(response, dict):
        return everything  # not an EventResponse: Lambda fails the batch
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return everything
    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        # An empty, missing or unknown identifier fails the whole batch.
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


def _filterable(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as Lambda's filters see it: a JSON body is matched as JSON."""
    out = dict(record)
    try:
        body = json.loads(record["body"])
    except ValueError:
        return out
    if isinstance(body, dict):
        out["body"] = body
    return out


def moto_s3_version_ids() -> None:
    """Make moto's S3 notifications carry the object's ``versionId`` in a versioned bucket,
    as S3's do (moto 5.2.5 leaves it out). Idempotent; affects moto servers in this process."""
    from moto.s3 import notifications

    build = notifications._get_s3_event
    if getattr(build, "adds_version_id", False):
        return

    def with_version_id(
        event_name: str, bucket: Any, key: Any, notification_id: str
    ) -> dict[str, list[dict[str, Any]]]:
        event = build(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if version and version != "null":  # moto's "null": an unversioned bucket
            for record in event.get("Records", []):
                obj = record["s3"]["object"]
                # S3's field order: key, size, eTag, versionId, sequencer.
                record["s3"]["object"] = {
                    **{k: v for k, v in obj.items() if k != "sequencer"},
                    "versionId": version,
                    **({"sequencer": obj["sequencer"]} if "sequencer" in obj else {}),
                }
        return event

    with_version_id.adds_version_id = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version_id


def s3_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """moto's S3 notification record in the real shape, with the fields moto leaves out."""
    s3 = record.get("s3", {})
    bucket = s3.get("bucket", {})
    obj = dict(s3.get("object", {}))
    # moto encodes "/" too; S3 form-encodes the key but keeps "/" (space → "+").
    obj["key"] = quote_plus(unquote_plus(obj.get("key", "")), safe="/")
    obj.setdefault("sequencer", f"{time.time_ns():018X}")
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": record.get("awsRegion", REGION),
        "eventTime": record.get("eventTime") or _iso_ms(datetime.now(UTC)),
        "eventName": record.get("eventName", ""),
        "userIdentity": record.get("userIdentity") or {"principalId": f"AWS:{ACCOUNT}"},
        "requestParameters": record.get("requestParameters") or {"sourceIPAddress": "127.0.0.1"},
        "responseElements": record.get("responseElements")
        or {
            "x-amz-request-id": secrets.token_hex(8).upper(),
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": s3.get("configurationId", ""),
            "bucket": {
                "name": bucket.get("name", ""),
                "ownerIdentity": bucket.get("ownerIdentity") or {"principalId": ACCOUNT},
                "arn": bucket.get("arn", f"arn:aws:s3:::{bucket.get('name', '')}"),
            },
            "object": obj,
        },
    }


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


def sns_event(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """An SNS notification (as SNS writes it to SQS) as Lambda's ``aws:sns`` event."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId"),
                    "TopicArn": envelope.get("TopicArn"),
                    "Subject": envelope.get("Subject"),
                    "Message": envelope.get("Message"),
                    "Timestamp": envelope.get("Timestamp"),
                    "SignatureVersion": envelope.get("SignatureVersion"),
                    "Signature": envelope.get("Signature"),
                    "SigningCertUrl": envelope.get("SigningCertURL"),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL"),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }


def scheduled_event(source: ScheduleSource, fire_at: datetime) -> Any:
    """What a schedule delivers: exactly Input when set, else the service's own event."""
    if source.has_input:
        return source.input
    v2 = source.kind == "ScheduleV2"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if v2 else "aws.events",
        "account": ACCOUNT,
        "time": fire_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [source.resource_arn],
        # EventBridge Scheduler's default payload carries the detail as the string "{}".
        "detail": "{}" if v2 else {},
    }


def next_fire_time(source: ScheduleSource, after: datetime) -> datetime | None:
    """The schedule's next firing time (aware, UTC) strictly after ``after`` (aware)."""
    schedule = parse_schedule(source.expression)
    zone = ZoneInfo(source.timezone)
    if source.start is not None and after < source.start:
        after = source.start - timedelta(microseconds=1)
    if isinstance(schedule, _Rate):
        # A rate counts from when the schedule was created: here, from ``after``.
        fire_at: datetime | None = after + timedelta(seconds=schedule.seconds)
    elif isinstance(schedule, _At):
        at = schedule.when.replace(tzinfo=zone).astimezone(UTC)
        fire_at = at if at > after else None
    else:
        local = schedule.next_after(after.astimezone(zone).replace(tzinfo=None))
        fire_at = None if local is None else local.replace(tzinfo=zone).astimezone(UTC)
    if fire_at is not None and source.end is not None and fire_at > source.end:
        return None
    return fire_at


# ------------------------------------------------------------------ small helpers


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


def _event_pattern(pattern: str, where: str) -> Any:
    """An EventBridge-style pattern, matched by moto's own matcher (the one put_events uses)."""
    from moto.events.models import EventPattern

    try:
        return EventPattern.load(pattern)
    except Exception as exc:
        raise ConfigError(f"{where}: bad event pattern {pattern}: {exc}") from None


def _json_input(value: Any, where: str) -> Any:
    if isinstance(value, dict | list):
        return value
    try:
        return json.loads(str(value))
    except ValueError:
        raise ConfigError(f"{where}: must be valid JSON") from None


def _int(value: Any, where: str, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an integer") from None
    if not low <= number <= high:
        raise ConfigError(f"{where}: {number} is outside {low}-{high}")
    return number


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _date(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an ISO 8601 date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_ms(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _error_message(result: InvocationResult | None) -> str:
    if result is None:
        return ""
    payload = result.payload
    if isinstance(payload, dict) and payload.get("errorMessage"):
        return str(payload["errorMessage"])
    return str(result.error_type or "")
