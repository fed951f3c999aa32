"""The template's ``AWS::Serverless::StateMachine`` resources on the local stack.

``StateMachines`` names them (``!Ref`` is the ARN, ``!GetAtt .Arn`` / ``.Name``), loads their
definitions (``Definition`` or ``DefinitionUri``, ``DefinitionSubstitutions`` resolved) and
compiles them when the stack starts: a definition the interpreter does not run is refused there,
naming the state machine, the state and the field. It creates them in moto, so functions call
``StartExecution``/``DescribeExecution`` through ``AWS_ENDPOINT_URL`` as they would on AWS.

moto 5.2.5 records an execution and leaves it RUNNING forever (its optional "parser" backend runs
Lambda tasks through moto's Docker-based Lambda and reads a Map's whole object into memory). So
this module wraps moto's ``StateMachine.start_execution`` (the moto server runs in this process):
each new execution of a template state machine runs on a bounded pool with the ``Interpreter``,
its Lambda tasks go to the local runtime, and its end is written back into moto's record
(``status``, ``stopDate``, ``output`` or ``error``/``cause``), so ``DescribeExecution`` answers
as AWS would. ``StopExecution`` cancels the run before its next state; ``DescribeMapRun`` and
``ListMapRuns`` answer from the local Map Runs (item and child counts, status, dates).
Differences: no execution history (``GetExecutionHistory`` answers moto's canned events);
Express machines are recorded like Standard ones (DescribeExecution answers for them, where AWS
answers only for Standard); executions beyond ``max_executions`` wait for a slot; a running
task is never interrupted.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import boto3
import yaml

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.lambda_service import Invoker
from mlops_cli.emulator.states.definition import Machine, compile_machine
from mlops_cli.emulator.states.interpreter import (
    Clock,
    Execution,
    Interpreter,
    RealClock,
    StatesError,
)
from mlops_cli.emulator.states.map_run import DistributedMap
from mlops_cli.emulator.states.objects import MotoObjects
from mlops_cli.emulator.template import ACCOUNT, REGION, Resolver

log = logging.getLogger(__name__)

STATE_MACHINE: Final = "AWS::Serverless::StateMachine"
DEFAULT_EXECUTIONS: Final = 4
# SAM properties that change nothing locally (permissions, logging, tracing, tags).
_INERT: Final = frozenset(
    {"Role", "RolePath", "Policies", "PermissionsBoundary", "Logging", "Tracing", "Tags", "Name"}
)
_RUN: Final = frozenset({"Definition", "DefinitionUri", "DefinitionSubstitutions", "Type"})

# moto's StateMachine.start_execution / stop_execution, wrapped once per process; each stack
# registers its machines' ARNs here.
_STARTED: dict[str, Callable[[Any], None]] = {}
_MAP_RUNS: list[DistributedMap] = []  # DescribeMapRun looks in each running stack's
_STOPPED: dict[str, threading.Event] = {}
_HOOK_LOCK = threading.Lock()


@dataclass(frozen=True)
class LocalStateMachine:
    logical_id: str
    name: str
    arn: str
    type: str
    definition: dict[str, Any]
    machine: Machine


def name_state_machines(
    resources: list[tuple[str, dict[str, Any]]], resolver: Resolver, stack: str
) -> None:
    """Physical names and attributes, as CloudFormation reports them."""
    for logical, props in resources:
        name = str(resolver.resolve(props.get("Name") or f"{stack}-{logical}"))
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        resolver.refs[logical] = arn
        resolver.attrs[(logical, "Arn")] = arn
        resolver.attrs[(logical, "Name")] = name


def function_resolver(resolver: Resolver, functions: list[str]) -> Callable[[str], str | None]:
    """FunctionName (name, ARN or partial ARN, ``$LATEST`` qualifier) → the logical id."""
    by_name = {str(resolver.refs[f]): f for f in functions if f in resolver.refs}
    by_name.update({f: f for f in functions})

    def resolve(function: str) -> str | None:
        parts = function.split(":")
        if function.startswith("arn:"):
            if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
                return None
            parts = parts[6:]
        elif len(parts) >= 3 and parts[1] == "function":
            parts = parts[2:]
        if len(parts) > 1 and parts[1] != "$LATEST":
            return None
        return by_name.get(parts[0])

    return resolve


def load_state_machines(
    resources: list[tuple[str, dict[str, Any]]],
    resolver: Resolver,
    base: Path,
    functions: list[str],
) -> list[LocalStateMachine]:
    """Every state machine, compiled; ConfigError naming what the local stack does not run."""
    resolve_function = function_resolver(resolver, functions)
    machines = []
    for logical, raw in resources:
        where = f"{logical} ({STATE_MACHINE})"
        unknown = sorted(set(raw) - _INERT - _RUN)
        if unknown:
            raise ConfigError(f"{where}: properties {unknown} are not supported locally")
        props = resolver.resolve({k: v for k, v in raw.items() if k in _RUN})
        definition = _definition(props, base, where)
        kind = str(props.get("Type", "STANDARD")).upper()
        if kind not in ("STANDARD", "EXPRESS"):
            raise ConfigError(f"{where}: Type {kind!r}")
        try:
            machine = compile_machine(definition, lambda f: resolve_function(f) is not None)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        machines.append(
            LocalStateMachine(
                logical_id=logical,
                name=resolver.attrs[(logical, "Name")],
                arn=resolver.refs[logical],
                type=kind,
                definition=definition,
                machine=machine,
            )
        )
    return machines


def _definition(props: Mapping[str, Any], base: Path, where: str) -> dict[str, Any]:
    """The definition as Step Functions receives it: ``DefinitionSubstitutions`` replace
    ``${Name}`` in its text before it is parsed (so ``"MaxConcurrency": ${Limit}`` is a
    number), as CloudFormation does."""
    if ("Definition" in props) == ("DefinitionUri" in props):
        raise ConfigError(f"{where}: exactly one of Definition and DefinitionUri")
    if "Definition" in props:
        text = json.dumps(props["Definition"])
    else:
        uri = props["DefinitionUri"]
        if not isinstance(uri, str):
            raise ConfigError(f"{where}: DefinitionUri must be a local file path")
        try:
            text = (base / uri).read_text()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read DefinitionUri {uri}: {exc}") from None
    for key, value in (props.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + str(key) + "}", str(value))
    try:
        definition = yaml.safe_load(text)  # JSON is YAML; SAM accepts YAML definitions too
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: the definition is not JSON or YAML: {exc}") from None
    if not isinstance(definition, dict):
        raise ConfigError(f"{where}: the definition must be a JSON object")
    return definition


class StateMachines:
    """Creates the template's state machines in moto and runs their executions."""

    def __init__(
        self,
        machines: list[LocalStateMachine],
        invoker: Invoker,
        resolve_function: Callable[[str], str | None],
        endpoint_url: str,
        *,
        clock: Clock | None = None,
        max_executions: int = DEFAULT_EXECUTIONS,
        map_workers: int = 16,
    ) -> None:
        self.machines = {m.arn: m for m in machines}
        credentials = {
            "region_name": REGION,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.sfn: Any = boto3.client("stepfunctions", **credentials)  # type: ignore[call-overload]
        self.clock = clock or RealClock()
        self.map_runs = DistributedMap(MotoObjects(ACCOUNT), max_workers=map_workers)
        self.interpreter = Interpreter(
            invoker, resolve_function, clock=self.clock, map_runner=self.map_runs
        )
        self._pool = ThreadPoolExecutor(max_workers=max_executions, thread_name_prefix="states")
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def create(self) -> None:
        """The state machines in moto (before any function can start an execution)."""
        for machine in self.machines.values():
            self.sfn.create_state_machine(
                name=machine.name,
                definition=json.dumps(machine.definition),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{machine.name}-role",
                type=machine.type,
            )

    def start(self) -> None:
        install_hooks()
        with _HOOK_LOCK:
            for arn in self.machines:
                _STARTED[arn] = self._on_started
            _MAP_RUNS.append(self.map_runs)

    def stop(self) -> None:
        with _HOOK_LOCK:
            for arn in self.machines:
                _STARTED.pop(arn, None)
            if self.map_runs in _MAP_RUNS:
                _MAP_RUNS.remove(self.map_runs)
        with self._lock:
            self._stopped = True
            for cancelled in self._running.values():
                cancelled.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def running(self) -> set[str]:
        """ARNs of the executions being run now."""
        with self._lock:
            return set(self._running)

    def _on_started(self, record: Any) -> None:
        """moto's new execution record (on the thread of the StartExecution request)."""
        cancelled = threading.Event()
        with self._lock:
            if self._stopped:
                return
            self._running[record.execution_arn] = cancelled
        with _HOOK_LOCK:
            _STOPPED[record.execution_arn] = cancelled
        self._pool.submit(self._run, record, cancelled)

    def _run(self, record: Any, cancelled: threading.Event) -> None:
        machine = self.machines[record.state_machine_arn]
        try:
            data = json.loads(record.execution_input or "{}")
            start = record.start_date
            execution = Execution(
                arn=record.execution_arn,
                name=record.name,
                machine_arn=machine.arn,
                machine_name=machine.name,
                input=data,
                start=start if start.tzinfo else start.replace(tzinfo=UTC),
                role_arn=f"arn:aws:iam::{ACCOUNT}:role/{machine.name}-role",
                cancelled=cancelled,
            )
            output = self.interpreter.execute(machine.machine, execution)
        except StatesError as err:
            if cancelled.is_set():  # StopExecution, or the stack stopping
                self._finish(record, "ABORTED", error=err.error, cause=err.cause)
                return
            self._finish(record, "FAILED", error=err.error, cause=err.cause)
            log.warning(
                "state machine %s: execution %s FAILED: %s: %s",
                machine.logical_id,
                record.name,
                err.error,
                err.cause[:2000],
            )
        except Exception as exc:  # a bug of ours, or the runtime gone: never left RUNNING
            if cancelled.is_set():
                self._finish(record, "ABORTED", error="States.Cancelled", cause=str(exc))
                return
            log.exception("state machine %s: execution %s crashed", machine.logical_id, record.name)
            self._finish(
                record, "FAILED", error="States.Runtime", cause=f"local interpreter: {exc}"
            )
        else:
            self._finish(record, "SUCCEEDED", output=json.dumps(output))
            log.info("state machine %s: execution %s SUCCEEDED", machine.logical_id, record.name)
        finally:
            with self._lock:
                self._running.pop(record.execution_arn, None)
            with _HOOK_LOCK:
                _STOPPED.pop(record.execution_arn, None)

    @staticmethod
    def _finish(record: Any, status: str, **fields: str) -> None:
        if record.status == "ABORTED":  # StopExecution came first: moto already ended it
            return
        for key, value in fields.items():
            setattr(record, key, value)
        record.stop_date = datetime.now(UTC)
        record.status = status


def install_hooks() -> None:
    """Wrap moto's StateMachine.start_execution / stop_execution and answer DescribeMapRun /
    ListMapRuns from the local Map Runs (idempotent)."""
    from moto.stepfunctions.exceptions import ResourceNotFound
    from moto.stepfunctions.models import StateMachine, StepFunctionBackend

    start = StateMachine.start_execution
    if getattr(start, "local_stack_hook", False):
        return
    stop = StateMachine.stop_execution

    def start_execution(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = len(self.executions)
        record = start(self, *args, **kwargs)
        if len(self.executions) > before:  # not an idempotent repeat of a running one
            with _HOOK_LOCK:
                listener = _STARTED.get(self.arn)
            if listener is not None:
                listener(record)
        return record

    def stop_execution(self: Any, execution_arn: str) -> Any:
        record = stop(self, execution_arn)
        with _HOOK_LOCK:
            cancelled = _STOPPED.get(execution_arn)
        if cancelled is not None:
            cancelled.set()
        return record

    def describe_map_run(self: Any, map_run_arn: str) -> dict[str, Any]:
        with _HOOK_LOCK:
            runners = list(_MAP_RUNS)
        for runner in runners:
            if map_run_arn in runner.runs:
                return runner.runs[map_run_arn].describe()
        raise ResourceNotFound(map_run_arn)

    def list_map_runs(self: Any, execution_arn: str) -> dict[str, Any]:
        with _HOOK_LOCK:
            runners = list(_MAP_RUNS)
        runs = [
            {
                "executionArn": run.execution_arn,
                "mapRunArn": run.arn,
                "stateMachineArn": run.arn.replace(":mapRun:", ":stateMachine:").rsplit(":", 1)[0],
                "startDate": run.start,
                **({"stopDate": run.stop} if run.stop else {}),
            }
            for runner in runners
            for run in list(runner.runs.values())
            if run.execution_arn == execution_arn
        ]
        return {"mapRuns": runs}

    start_execution.local_stack_hook = True  # type: ignore[attr-defined]
    StepFunctionBackend.describe_map_run = describe_map_run  # type: ignore[method-assign]
    StepFunctionBackend.list_map_runs = list_map_runs  # type: ignore[method-assign]
    StateMachine.start_execution = start_execution  # type: ignore[method-assign]
    StateMachine.stop_execution = stop_execution  # type: ignore[method-assign]
