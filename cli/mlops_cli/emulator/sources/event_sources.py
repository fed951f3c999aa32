"""Every non-HTTP event source a SAM template declares, delivered locally the way AWS does.

``event_sources(template, resolver)`` reads each ``AWS::Serverless::Function``'s ``Events``
(each type's parser lives in its own module: ``sqs``, ``s3``, ``schedule``, ``rules``, ``sns``,
``logs``); ``EventSources`` runs them against the moto endpoint, delivers them to an ``Invoker``
(the local Lambda runtime) and owns the asynchronous invoker (``async_invoke``) they feed.

Event types other than those (Kinesis, DynamoDB, Api, ...) are refused with a ConfigError
naming the function and event; HttpApi is served by the local HTTP API (``emulator.api``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.async_invoke import AsyncInvoker, async_configs
from mlops_cli.emulator.sources.declarations import Declaration, serverless_functions
from mlops_cli.emulator.sources.lambda_service import Invoker, LogLineLike
from mlops_cli.emulator.sources.logs import (
    LogShipper,
    LogsSource,
    function_log_groups,
    parse_logs_event,
)
from mlops_cli.emulator.sources.moto_backend import MotoBackend
from mlops_cli.emulator.sources.rules import (
    EventBridgeSource,
    match_delivery,
    parse_rule_event,
    rule_queue,
)
from mlops_cli.emulator.sources.s3 import (
    S3Source,
    moto_s3_one_event_per_upload,
    moto_s3_version_ids,
    notification_queue,
    parse_s3_event,
    set_notifications,
)
from mlops_cli.emulator.sources.s3 import notification_delivery as s3_delivery
from mlops_cli.emulator.sources.schedule import (
    Scheduler,
    ScheduleSource,
    parse_schedule_event,
    scheduled_event,
)
from mlops_cli.emulator.sources.sns import SnsSource, parse_sns_event, subscription_queue
from mlops_cli.emulator.sources.sns import notification_delivery as sns_delivery
from mlops_cli.emulator.sources.sqs import SqsSource, parse_sqs_event, poll_queue
from mlops_cli.emulator.sources.timers import Timers
from mlops_cli.emulator.template import Resolver

log = logging.getLogger(__name__)

STOP_JOIN_SECONDS: Final = 2.0

EventSource = SqsSource | S3Source | ScheduleSource | EventBridgeSource | LogsSource | SnsSource

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

_PARSERS: Final[dict[str, Callable[[Declaration, dict[str, Any]], EventSource]]] = {
    "SQS": parse_sqs_event,
    "S3": parse_s3_event,
    "Schedule": parse_schedule_event,
    "ScheduleV2": parse_schedule_event,
    "EventBridgeRule": parse_rule_event,
    "CloudWatchEvent": parse_rule_event,
    "CloudWatchLogs": parse_logs_event,
    "SNS": parse_sns_event,
}


def event_sources(template: Mapping[str, Any], resolver: Resolver) -> list[EventSource]:
    """Every supported event of every function, resolved against local physical names."""
    stack = str(resolver.ref("AWS::StackName"))
    sources: list[EventSource] = []
    for function, props in serverless_functions(template, resolver):
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
            context = Declaration(template, resolver, stack, function, event, where)
            sources.append(_PARSERS[kind](context, raw))
    return sources


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
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self.moto = MotoBackend(endpoint_url, self._stopping)
        self._timers = Timers(self._stopping)
        self._async = AsyncInvoker(
            self.async_config,
            resolver,
            invoker,
            self.moto,
            self._timers,
            function_ids=self._function_ids,
            retry_delays=retry_delays,
            workers=async_workers,
        )
        self._schedules = Scheduler(self._timers, self._async.invoke_async, schedule_seconds)
        self._logs = LogShipper(
            self.moto,
            self.log_groups,
            self._function_ids,
            [s for s in self.sources if isinstance(s, LogsSource) and s.enabled],
            self._async.invoke_async,
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        moto_s3_version_ids()
        moto_s3_one_event_per_upload()
        self._thread("timers", self._timers.run)
        for index in range(self._async.workers):
            self._thread(f"async-{index}", self._async.run_worker)
        self._thread("logs", self._logs.run)
        invoke_async = self._async.invoke_async
        s3_configs: dict[str, list[dict[str, Any]]] = {}
        for source in self.sources:
            if not source.enabled:
                continue
            name = f"{source.function}.{source.event}"
            if isinstance(source, SqsSource):
                self._thread(name, partial(poll_queue, source, self.moto, self.invoker))
            elif isinstance(source, S3Source):
                queue_url, config = notification_queue(source, self.moto, self.stack)
                s3_configs.setdefault(source.bucket, []).append(config)
                self._drain(name, queue_url, s3_delivery(source, invoke_async))
            elif isinstance(source, ScheduleSource):
                self._schedules.arm(source, datetime.now(UTC), time.monotonic())
            elif isinstance(source, EventBridgeSource):
                queue_url = rule_queue(source, self.moto, self.stack)
                self._drain(name, queue_url, match_delivery(source, invoke_async))
            elif isinstance(source, SnsSource):
                queue_url, subscription = subscription_queue(source, self.moto, self.stack)
                self._drain(name, queue_url, sns_delivery(source, subscription, invoke_async))
        set_notifications(self.moto, s3_configs)

    def stop(self) -> None:
        """Stop every thread; returns within about 2 s (an invocation in flight is not
        interrupted: its thread is a daemon and is left to finish)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._timers.wake()
        self._async.stop()
        self._logs.stop()
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.pending_async:
            log.warning("%d asynchronous events were not delivered before stop", self.pending_async)

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"sources:{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _drain(self, name: str, queue_url: str, deliver: Callable[[Any], None]) -> None:
        """A thread polling an internal queue moto delivers to; ``deliver`` gets each message."""
        self._thread(name, partial(self.moto.drain, queue_url, deliver))

    # ---------------------------------------------------------------- what the stack calls

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

    def invoke_async(self, function: str, event: Any) -> str:
        """Lambda's ``InvocationType=Event``: queue the event, answer its request id at once."""
        return self._async.invoke_async(function, event)

    @property
    def pending_async(self) -> int:
        """Asynchronous events queued, running or waiting for a retry."""
        return self._async.pending

    def on_log(self, line: LogLineLike) -> None:
        """Every log line of every function; cheap, callable from any thread."""
        self._logs.on_log(line)
