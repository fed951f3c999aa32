"""Runs a compiled state machine (``definition.Machine``) the way Step Functions does.

JSONPath processing order per state, as AWS documents it: ``InputPath`` → ``Parameters`` (or
a Map's ``ItemSelector`` per item) → the work → ``ResultSelector`` → ``ResultPath`` →
``OutputPath``. Errors: ``Retry`` (the first retrier whose ``ErrorEquals`` matches applies,
``IntervalSeconds * BackoffRate^n``, capped by ``MaxDelaySeconds``, optional full jitter), then
``Catch`` (the error object ``{"Error", "Cause"}`` placed by the catcher's ``ResultPath`` on the
state's raw input). ``States.ALL`` matches every error but ``States.Runtime`` and
``States.DataLimitExceeded``, as on AWS; ``States.TaskFailed`` every error but ``States.Timeout``.

Lambda tasks go through an ``Invoker`` (the local runtime), as every other event source does;
waits and retry delays go through a ``Clock`` (tests inject one that never sleeps).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, Protocol

from mlops_cli.emulator.sources.lambda_service import Invoker
from mlops_cli.emulator.states.choice import timestamp
from mlops_cli.emulator.states.definition import LAMBDA_INVOKE, STATES_ALL, Machine, State
from mlops_cli.emulator.states.intrinsics import IntrinsicFailureError
from mlops_cli.emulator.states.paths import Path, PathError, place, read

# Errors no States.ALL retrier or catcher handles (AWS: "terminal").
TERMINAL_ERRORS: Final = frozenset({"States.Runtime", "States.DataLimitExceeded"})
# The payload quota of a state's input, output and a task's result (256 KiB).
MAX_PAYLOAD_BYTES: Final = 262_144
# Inline Map iterations at once when MaxConcurrency is 0 (AWS: unbounded; here, threads).
INLINE_WORKERS: Final = 16


class StatesError(Exception):
    """A failure inside an execution: its Step Functions error name and cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class Clock(Protocol):
    def now(self) -> datetime: ...
    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class MapRunner(Protocol):
    """Runs a DISTRIBUTED Map state (``map_run.DistributedMap``)."""

    def run(
        self, interpreter: Interpreter, state: State, data: Any, execution: Execution
    ) -> Any: ...


@dataclass
class Execution:
    """What the context object (``$$``) says about one execution."""

    arn: str
    name: str
    machine_arn: str
    machine_name: str
    input: Any
    start: datetime
    role_arn: str = ""
    deadline: datetime | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # ``input`` as JSON when it arrived as JSON (a Map child's batch): a Task whose payload is
    # the input itself sends these bytes instead of encoding the object again.
    input_json: str | None = None

    def context(
        self, state: str, entered: datetime, retries: int = 0, item: tuple[int, Any] | None = None
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "Execution": {
                "Id": self.arn,
                "Input": self.input,
                "Name": self.name,
                "RoleArn": self.role_arn,
                "StartTime": _iso(self.start),
                "RedriveCount": 0,
            },
            "State": {"EnteredTime": _iso(entered), "Name": state, "RetryCount": retries},
            "StateMachine": {"Id": self.machine_arn, "Name": self.machine_name},
            "Task": {},
        }
        if item is not None:
            ctx["Map"] = {"Item": {"Index": item[0], "Value": item[1]}}
        return ctx


FunctionResolver = Callable[[str], str | None]  # FunctionName or ARN -> the template's logical id


def matches(errors: tuple[str, ...], error: str) -> bool:
    if error in errors:
        return True
    if error in TERMINAL_ERRORS:
        return False
    if STATES_ALL in errors:
        return True
    return "States.TaskFailed" in errors and error != "States.Timeout"


class Interpreter:
    """Executes machines; thread-safe (one object serves every execution of a stack)."""

    def __init__(
        self,
        invoker: Invoker,
        resolve_function: FunctionResolver,
        *,
        clock: Clock | None = None,
        map_runner: MapRunner | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.invoker = invoker
        self.resolve_function = resolve_function
        self.clock: Clock = clock or RealClock()
        self.map_runner = map_runner
        self.rng = rng or random.Random()

    def execute(self, machine: Machine, execution: Execution) -> Any:
        """The execution's output; StatesError for a failed execution."""
        if machine.timeout_seconds is not None and execution.deadline is None:
            execution.deadline = execution.start + timedelta(seconds=machine.timeout_seconds)
        return self.run_states(machine, execution.input, execution)

    def run_states(self, machine: Machine, data: Any, execution: Execution) -> Any:
        name = machine.start_at
        while True:
            if execution.cancelled.is_set():
                raise StatesError("States.Cancelled", "the execution was stopped")
            if execution.deadline is not None and self.clock.now() >= execution.deadline:
                raise StatesError("States.Timeout", "the execution ran past its TimeoutSeconds")
            state = machine.states[name]
            try:
                output, following = self.step(state, data, execution)
            except StatesError as err:
                catcher = next((c for c in state.catch if matches(c.errors, err.error)), None)
                if catcher is None:
                    raise
                data = self._place(
                    catcher.result_path, data, {"Error": err.error, "Cause": err.cause}
                )
                name = catcher.next
                continue
            if following is None:
                return output
            data, name = output, following

    # ------------------------------------------------------------------ one state

    def step(self, state: State, data: Any, execution: Execution) -> tuple[Any, str | None]:
        """The state's output and the next state's name (None: the machine ends)."""
        entered = self.clock.now()
        if state.type == "Fail":
            raise StatesError(*self._fail(state, data, execution, entered))
        effective = self._input(state, data)
        if state.type == "Choice":
            ctx = execution.context(state.name, entered)
            for predicate, target in state.choices:
                if self._guard(partial(predicate, effective, ctx)):
                    return self._output(state, effective), target
            if state.default is None:
                raise StatesError(
                    "States.NoChoiceMatched", f"no choice rule of {state.name!r} matched"
                )
            return self._output(state, effective), state.default
        if state.type == "Succeed":
            return self._output(state, effective), None
        if state.type == "Wait":
            self.clock.sleep(self._wait_seconds(state, effective))
            return self._output(state, effective), self._next(state)
        if state.type == "Pass":
            ctx = execution.context(state.name, entered)
            result = effective
            if state.parameters is not None:
                result = self._guard(lambda: state.parameters(effective, ctx))  # type: ignore[misc]
            if state.has_result:
                result = state.result
            return self._finish(state, data, result), self._next(state)
        result = self._with_retry(state, effective, execution, entered)
        return self._finish(state, data, result), self._next(state)

    def _with_retry(
        self, state: State, effective: Any, execution: Execution, entered: datetime
    ) -> Any:
        attempts = [0] * len(state.retry)
        retries = 0
        while True:
            try:
                ctx = execution.context(state.name, entered, retries)
                if state.type == "Task":
                    result = self._task(state, effective, ctx, execution)
                else:
                    result = self._map(state, effective, execution, ctx)
                if state.result_selector is not None:
                    result = self._select(state, result, ctx)
                return result
            except StatesError as err:
                index = next(
                    (i for i, r in enumerate(state.retry) if matches(r.errors, err.error)), None
                )
                if index is None or attempts[index] >= state.retry[index].max_attempts:
                    raise
                retrier = state.retry[index]
                delay = retrier.interval * retrier.backoff ** attempts[index]
                if retrier.max_delay is not None:
                    delay = min(delay, retrier.max_delay)
                if retrier.jitter:
                    delay = self.rng.uniform(0, delay)
                attempts[index] += 1
                retries += 1
                self.clock.sleep(delay)

    def _task(self, state: State, effective: Any, ctx: dict[str, Any], execution: Execution) -> Any:
        args = effective
        if state.parameters is not None:
            parameters = state.parameters
            args = self._guard(lambda: parameters(effective, ctx))
        if state.resource == LAMBDA_INVOKE:
            function = args.get("FunctionName")
            qualifier = args.get("Qualifier")
            payload = args.get("Payload")
        else:
            function, qualifier, payload = state.resource, None, args
        if execution.input_json is not None and payload is execution.input:
            payload = execution.input_json.encode()
        started = time.monotonic()
        request_id, result = self.invoke(str(function), payload, qualifier)
        elapsed = time.monotonic() - started
        if state.timeout_seconds is not None and elapsed > state.timeout_seconds:
            raise StatesError(
                "States.Timeout", f"the task ran {elapsed:.1f} s, over its TimeoutSeconds"
            )
        if state.resource != LAMBDA_INVOKE:
            return result
        return {
            "ExecutedVersion": "$LATEST",
            "Payload": result,
            "SdkHttpMetadata": {
                "HttpHeaders": {
                    "X-Amz-Executed-Version": "$LATEST",
                    "x-amzn-RequestId": request_id,
                },
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
            "StatusCode": 200,
        }

    def invoke(self, function: str, payload: Any, qualifier: str | None = None) -> tuple[str, Any]:
        """Invoke a function of the template; its (request id, result), or StatesError with
        the function's ``errorType`` as error name and its error object as cause."""
        logical = self.resolve_function(function)
        if logical is None or (qualifier not in (None, "$LATEST")):
            raise StatesError(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {function}{':' + qualifier if qualifier else ''}",
            )
        invocation = self.invoker.invoke(logical, payload)
        if invocation.error_type is not None:
            error = invocation.payload if isinstance(invocation.payload, dict) else {}
            name = str(error.get("errorType") or invocation.error_type or "Lambda.Unknown")
            raise StatesError(name, json.dumps(invocation.payload))
        size = len(json.dumps(invocation.payload))
        if size > MAX_PAYLOAD_BYTES:
            raise StatesError(
                "States.DataLimitExceeded",
                f"the function returned {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte quota",
            )
        return invocation.request_id, invocation.payload

    # ------------------------------------------------------------------ Map

    def _map(self, state: State, effective: Any, execution: Execution, ctx: dict[str, Any]) -> Any:
        if state.distributed:
            if self.map_runner is None:
                raise StatesError("States.Runtime", "no runner for distributed Map states")
            return self.map_runner.run(self, state, effective, execution)
        assert state.items_path is not None
        assert state.processor is not None
        items_path = state.items_path
        items = self._guard(lambda: read(items_path, effective, ctx))
        if not isinstance(items, list):
            raise StatesError(
                "States.Runtime",
                f"ItemsPath {items_path.text} of {state.name!r} is not an array",
            )
        inputs = [
            self.item_input(state, effective, ctx, index, item) for index, item in enumerate(items)
        ]
        if not inputs:
            return []
        processor = state.processor
        limit = self.max_concurrency(state, effective) or INLINE_WORKERS
        with ThreadPoolExecutor(max_workers=min(limit, len(inputs))) as pool:
            futures = [pool.submit(self.run_states, processor, item, execution) for item in inputs]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()
                raise failed.exception()  # type: ignore[misc]
            return [future.result() for future in futures]

    def item_input(
        self, state: State, effective: Any, ctx: dict[str, Any], index: int, item: Any
    ) -> Any:
        """An item as its iteration receives it: ``ItemSelector`` applied, with
        ``$$.Map.Item.Index`` and ``$$.Map.Item.Value`` in the context object."""
        if state.item_selector is None:
            return item
        selector = state.item_selector
        item_ctx = {**ctx, "Map": {"Item": {"Index": index, "Value": item}}}
        return self._guard(lambda: selector(effective, item_ctx))

    def max_concurrency(self, state: State, effective: Any) -> int:
        if state.max_concurrency_path is not None:
            return self.path_int(state.max_concurrency_path, effective, "MaxConcurrencyPath")
        return state.max_concurrency

    def path_int(self, path: Path, effective: Any, field_name: str) -> int:
        value = self._guard(lambda: read(path, effective))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise StatesError(
                "States.Runtime", f"{field_name} {path.text}: {value!r} is not a count"
            )
        return int(value)

    # ------------------------------------------------------------------ data flow

    def _input(self, state: State, data: Any) -> Any:
        if state.input_path is None:
            return {}
        path = state.input_path
        return self._guard(lambda: read(path, data))

    def _finish(self, state: State, data: Any, result: Any) -> Any:
        return self._output(state, self._place(state.result_path, data, result))

    def _output(self, state: State, value: Any) -> Any:
        if state.output_path is None:
            return {}
        path = state.output_path
        return self._guard(lambda: read(path, value))

    def _place(self, path: Path | None, data: Any, result: Any) -> Any:
        try:
            return place(path, data, result)
        except PathError as exc:
            raise StatesError("States.ResultPathMatchFailure", str(exc)) from None

    def _select(self, state: State, result: Any, ctx: dict[str, Any]) -> Any:
        selector = state.result_selector
        assert selector is not None
        return self._guard(lambda: selector(result, ctx))

    @staticmethod
    def _guard(compute: Callable[[], Any]) -> Any:
        """Path and intrinsic failures as Step Functions names them."""
        try:
            return compute()
        except IntrinsicFailureError as exc:
            raise StatesError("States.IntrinsicFailure", str(exc)) from None
        except PathError as exc:
            raise StatesError("States.Runtime", str(exc)) from None

    @staticmethod
    def _next(state: State) -> str | None:
        return None if state.end else state.next

    def _wait_seconds(self, state: State, effective: Any) -> float:
        if state.seconds is not None:
            return state.seconds
        if state.seconds_path is not None:
            return float(self.path_int(state.seconds_path, effective, "SecondsPath"))
        text = state.timestamp
        if state.timestamp_path is not None:
            path = state.timestamp_path
            text = self._guard(lambda: read(path, effective))
        moment = timestamp(text)
        if moment is None:
            raise StatesError("States.Runtime", f"Wait {state.name!r}: {text!r} is not a timestamp")
        return max(0.0, (moment - self.clock.now()).total_seconds())

    def _fail(
        self, state: State, data: Any, execution: Execution, entered: datetime
    ) -> tuple[str, str]:
        error, cause = state.error or "", state.cause or ""
        if state.error_path is not None:
            path = state.error_path
            error = str(
                self._guard(lambda: read(path, data, execution.context(state.name, entered)))
            )
        if state.cause_path is not None:
            path = state.cause_path
            cause = str(
                self._guard(lambda: read(path, data, execution.context(state.name, entered)))
            )
        return error, cause


def new_execution(
    machine_arn: str,
    data: Any,
    *,
    name: str | None = None,
    clock: Clock | None = None,
    express: bool = False,
) -> Execution:
    """An Execution of ``machine_arn`` (its ARN derived as AWS derives it)."""
    machine_name = machine_arn.rsplit(":", 1)[-1]
    name = name or str(uuid.uuid4())
    kind = "express" if express else "execution"
    prefix = machine_arn.rsplit(":stateMachine:", 1)[0]
    return Execution(
        arn=f"{prefix}:{kind}:{machine_name}:{name}",
        name=name,
        machine_arn=machine_arn,
        machine_name=machine_name,
        input=data,
        start=(clock or RealClock()).now(),
    )


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
