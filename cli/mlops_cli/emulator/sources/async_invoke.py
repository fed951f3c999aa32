"""Lambda's asynchronous invocation (``InvocationType=Event``): the queue, retries, event age,
reserved concurrency, the dead-letter queue and destinations.

Faithful to AWS: up to MaximumRetryAttempts (0-2, default 2) retries, MaximumEventAgeInSeconds,
then DeadLetterQueue (SQS/SNS, with RequestID, ErrorCode and ErrorMessage attributes) and/or
OnFailure; OnSuccess too. Destinations: SQS, SNS, Lambda (invoked asynchronously, under its own
retries and destinations), EventBridge, in Lambda's invocation-record shape. A function's
ReservedConcurrentExecutions caps how many of its events run at once; the others wait in the
queue (throttled, without spending a retry attempt) until one finishes or their maximum age
passes, and hold up no other function.

Not faithful, by design (local speed, or what the Invoker interface allows):

* retry delays are ``retry_delays`` (1 s then 2 s by default) instead of about 1 and 2 minutes;
  a throttled event is looked at again every ``THROTTLE_RETRY_SECONDS``;
* each attempt of an asynchronous event gets the runtime's request id; the request id returned
  by ``invoke_async`` (the one Lambda would keep across retries) is the one used in dead-letter
  messages and destination records;
* an asynchronous event over 1 MB (Lambda's asynchronous payload limit) is refused with a
  ConfigError instead of Lambda's 413.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConfigError
from mlops_cli.emulator.runtime import Invocation
from mlops_cli.emulator.sources.declarations import as_int, serverless_functions
from mlops_cli.emulator.sources.lambda_service import InvocationResult, Invoker, iso_ms
from mlops_cli.emulator.sources.moto_backend import MotoBackend
from mlops_cli.emulator.sources.timers import Timers
from mlops_cli.emulator.template import ACCOUNT, REGION, Resolver

log = logging.getLogger(__name__)

# Invoke API: "For asynchronous invocations, the maximum payload size is 1 MB."
ASYNC_PAYLOAD_LIMIT: Final = 1024 * 1024
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_EVENT_AGE: Final = 6 * 60 * 60
THROTTLE_RETRY_SECONDS: Final = 0.2


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


def async_configs(template: Mapping[str, Any], resolver: Resolver) -> dict[str, AsyncConfig]:
    """Each function's DeadLetterQueue and EventInvokeConfig (Globals merged in)."""
    stack = str(resolver.ref("AWS::StackName"))
    globals_ = template.get("Globals", {}).get("Function", {})
    configs = {}
    for function, props in serverless_functions(template, resolver):
        merged = {**globals_, **props}
        invoke = resolver.resolve(merged.get("EventInvokeConfig") or {})
        where = f"{function}.EventInvokeConfig"
        retries = as_int(
            invoke.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES),
            f"{where}.MaximumRetryAttempts",
            0,
            2,
        )
        # AWS allows 60 s to 6 h; the lower bound is cfn-lint's to check, and tests use less.
        age = as_int(
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
            else as_int(reserved, f"{function}.ReservedConcurrentExecutions", 0, 1_000_000),
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


# ------------------------------------------------------------------ delivery


@dataclass
class _AsyncEvent:
    request_id: str
    function: str
    event: Any
    enqueued: float
    attempts: int = 0
    last: InvocationResult | None = None


class AsyncInvoker:
    """Runs asynchronous events on ``workers`` threads (``run_worker`` each; ``stop`` ends them)
    under each function's ``configs``; delayed retries and throttled events wait on ``timers``.

    ``function_ids`` maps each function's physical name and logical id to its logical id.
    """

    def __init__(
        self,
        configs: Mapping[str, AsyncConfig],
        resolver: Resolver,
        invoker: Invoker,
        moto: MotoBackend,
        timers: Timers,
        *,
        function_ids: Mapping[str, str],
        retry_delays: tuple[float, float],
        workers: int,
    ) -> None:
        self.configs = configs
        self.resolver = resolver
        self.invoker = invoker
        self.moto = moto
        self.timers = timers
        self.retry_delays = retry_delays
        self.workers = workers
        self._function_ids = function_ids
        self._arn_functions = {
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}": logical
            for physical, logical in function_ids.items()
        }
        self._work: queue.Queue[_AsyncEvent | None] = queue.Queue()
        self._running: dict[str, int] = {}  # asynchronous events in a function, by function
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    def invoke_async(self, function: str, event: Any) -> str:
        """Lambda's ``InvocationType=Event``: queue the event, answer its request id at once."""
        logical = self._function_ids.get(function, function)
        if logical not in self.configs:
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
    def pending(self) -> int:
        """Asynchronous events queued, running or waiting for a retry."""
        with self._in_flight_lock:
            return self._in_flight

    def run_worker(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                self._attempt(job)
            except Exception:
                log.exception("asynchronous invocation %s failed to process", job.request_id)
                self._done()

    def stop(self) -> None:
        """End every worker once it is done with its event."""
        for _ in range(self.workers):
            self._work.put(None)

    def _done(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    def _attempt(self, job: _AsyncEvent) -> None:
        config = self.configs[job.function]
        if time.monotonic() - job.enqueued > config.max_event_age:
            self._failed(job, "EventAgeExceeded")
            return
        if not self._claim(job.function, config.reserved_concurrency):
            # Throttled: back to the queue, not an attempt (Lambda retries throttles for up
            # to the event's maximum age without counting them).
            if self.moto.stopping.is_set():
                log.warning(
                    "async invocation %s of %s dropped: stopping", job.request_id, job.function
                )
                self._done()
                return
            self.timers.call_at(
                time.monotonic() + THROTTLE_RETRY_SECONDS, lambda: self._work.put(job)
            )
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
            if self.moto.stopping.is_set():
                log.warning(
                    "async invocation %s of %s not retried: the local stack is stopping",
                    job.request_id,
                    job.function,
                )
                self._done()
                return
            delay = self.retry_delays[min(job.attempts, len(self.retry_delays)) - 1]
            self.timers.call_at(time.monotonic() + delay, lambda: self._work.put(job))
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
        config = self.configs[job.function]
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
            "timestamp": iso_ms(datetime.now(UTC)),
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
            self.moto.guarded(
                self.moto.events.put_events,
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
                url = self.moto.queue_url_or_create(target.arn)
                if attributes:
                    self.moto.sqs.send_message(
                        QueueUrl=url,
                        MessageBody=body,
                        MessageAttributes=attributes,  # type: ignore[arg-type]
                    )
                else:
                    self.moto.sqs.send_message(QueueUrl=url, MessageBody=body)
            else:
                self.moto.sns.create_topic(Name=target.arn.rsplit(":", 1)[-1])
                self.moto.sns.publish(
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


def _error_message(result: InvocationResult | None) -> str:
    if result is None:
        return ""
    payload = result.payload
    if isinstance(payload, dict) and payload.get("errorMessage"):
        return str(payload["errorMessage"])
    return str(result.error_type or "")
