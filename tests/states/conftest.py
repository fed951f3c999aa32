"""The Step Functions interpreter's test kit: a fake Lambda runtime, a clock that never sleeps,
moto S3 in-process, and the fixture definitions of tests/fixtures/states/."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_cli.emulator.runtime import Invocation
from mlops_cli.emulator.states.definition import Machine, compile_machine
from mlops_cli.emulator.states.interpreter import Interpreter, new_execution
from mlops_cli.emulator.states.map_run import DistributedMap
from mlops_cli.emulator.states.objects import MotoObjects
from mlops_cli.emulator.template import ACCOUNT, REGION

FIXTURES = Path(__file__).parents[1] / "fixtures" / "states"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:local-test"
FUNCTIONS = ("Scorer", "Flaky")


def definition(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class HandlerError(Exception):
    """What a fake handler raises: its Lambda ``errorType`` is ``error_type``."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class FakeRuntime:
    """The local runtime's ``invoke``: each function a Python callable; records every call
    and the most invocations in flight at once."""

    handlers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function: str, event: Any) -> Invocation:
        # What crosses the Invoke API is JSON (bytes are sent as they are, as Invoke's Payload).
        event = json.loads(event if isinstance(event, bytes) else json.dumps(event))
        with self.lock:
            self.calls.append((function, event))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            result = self.handlers[function](event)
        except HandlerError as exc:
            error = {"errorType": exc.error_type, "errorMessage": str(exc), "stackTrace": []}
            return Invocation(str(uuid.uuid4()), error, exc.error_type, 1.0, None)
        finally:
            with self.lock:
                self.in_flight -= 1
        return Invocation(str(uuid.uuid4()), result, None, 1.0, None)


class FakeClock:
    """Time that moves only when the interpreter sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.moment += timedelta(seconds=seconds)


def resolve_function(name: str) -> str | None:
    short = name.rsplit(":", 1)[-1] if name.startswith("arn:") else name
    return short if short in FUNCTIONS else None


@dataclass
class Kit:
    runtime: FakeRuntime
    clock: FakeClock
    interpreter: Interpreter
    s3: Any

    def compile(self, raw: dict[str, Any]) -> Machine:
        return compile_machine(raw, lambda name: resolve_function(name) is not None)

    def run(self, raw: dict[str, Any] | Machine, data: Any) -> Any:
        machine = raw if isinstance(raw, Machine) else self.compile(raw)
        execution = new_execution(MACHINE_ARN, data, clock=self.clock)
        return self.interpreter.execute(machine, execution)


def _kit(s3: Any) -> Kit:
    runtime = FakeRuntime()
    clock = FakeClock()
    interpreter = Interpreter(
        runtime,
        resolve_function,
        clock=clock,
        map_runner=DistributedMap(MotoObjects(ACCOUNT), max_workers=4),
    )
    return Kit(runtime, clock, interpreter, s3)


@pytest.fixture
def kit() -> Kit:
    """No AWS at all (distributed Maps need ``s3_kit``)."""
    return _kit(None)


@pytest.fixture
def s3_kit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    """moto S3 in this process, with a bucket ``data``."""
    # A local stack started earlier in this process leaves its endpoint in the environment.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data")
        yield _kit(s3)
