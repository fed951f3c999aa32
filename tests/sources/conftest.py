"""A moto server on 127.0.0.1, the fixture template's resources in it, and a fake invoker."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlops_cli.emulator.runtime import Invocation
from mlops_cli.emulator.sources.event_sources import EventSources
from mlops_cli.emulator.stack import free_port
from mlops_cli.emulator.template import ACCOUNT, REGION, Resolver, load_template

TEMPLATE = Path(__file__).with_name("template.yaml")
STACK = "mlops-local"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass
class Aws:
    """Clients on the moto endpoint, with explicit dummy credentials."""

    endpoint: str
    sqs: Any
    s3: Any
    events: Any
    logs: Any
    sns: Any

    def queue_url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=f"{STACK}-{name}")["QueueUrl"])

    def receive_all(self, name: str, wait: int = 1) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url(name),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        return list(response.get("Messages", []))


@pytest.fixture
def aws(moto_endpoint: str) -> Aws:
    """Clients on a moto emptied for this test."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=5).close()
    options = {
        "endpoint_url": moto_endpoint,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return Aws(
        moto_endpoint,
        *(boto3.client(s, **options) for s in ("sqs", "s3", "events", "logs", "sns")),  # type: ignore[call-overload]
    )


def stack_template(*functions: str) -> dict[str, Any]:
    """The fixture template with only the named functions (and every other resource)."""
    template = copy.deepcopy(load_template(TEMPLATE))
    template["Resources"] = {
        name: spec
        for name, spec in template["Resources"].items()
        if spec["Type"] != "AWS::Serverless::Function" or name in functions
    }
    return template


def local_resolver(template: dict[str, Any], endpoint: str) -> Resolver:
    """Physical names as the local stack gives them (cli/mlops_cli/emulator/stack.py)."""
    resolver = Resolver({}, {})
    for name, spec in template["Resources"].items():
        kind = spec["Type"]
        if kind == "AWS::S3::Bucket":
            resolver.refs[name] = f"{STACK}-{name.lower()}"
        elif kind == "AWS::SQS::Queue":
            queue = f"{STACK}-{name}"
            resolver.refs[name] = f"{endpoint}/{ACCOUNT}/{queue}"
            resolver.attrs[(name, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"
        elif kind == "AWS::SNS::Topic":
            resolver.refs[name] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{name}"
        elif kind == "AWS::Serverless::Function":
            resolver.refs[name] = f"{STACK}-{name}"
            resolver.attrs[(name, "Arn")] = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-{name}"
            )
    return resolver


def create_resources(template: dict[str, Any], resolver: Resolver, aws: Aws) -> None:
    resources = template["Resources"]
    for name, spec in resources.items():
        if spec["Type"] == "AWS::S3::Bucket":
            aws.s3.create_bucket(Bucket=resolver.refs[name])
    queues = [(n, s) for n, s in resources.items() if s["Type"] == "AWS::SQS::Queue"]
    # Dead-letter queues first: a redrive policy names an existing queue.
    for name, spec in sorted(queues, key=lambda q: "RedrivePolicy" in q[1].get("Properties", {})):
        props = resolver.resolve(spec.get("Properties", {}))
        attributes = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in props.items()}
        aws.sqs.create_queue(QueueName=f"{STACK}-{name}", Attributes=attributes)


Script = Callable[[str, Any, int], Invocation]


def succeed(payload: Any = None) -> Invocation:
    return Invocation(str(uuid.uuid4()), payload, None, 1.0, None)


def fail(message: str = "boom", error_type: str = "ValueError") -> Invocation:
    payload = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
    return Invocation(str(uuid.uuid4()), payload, error_type, 1.0, None)


@dataclass
class FakeInvoker:
    """Records every invocation; ``script(function, event, call_number)`` answers it."""

    script: Script = field(default=lambda function, event, n: succeed())
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def invoke(self, function: str, event: Any) -> Invocation:
        with self._changed:
            self.calls.append((function, event))
            number = len([c for c in self.calls if c[0] == function])
            self._changed.notify_all()
        return self.script(function, event, number)

    def events_for(self, function: str) -> list[Any]:
        with self._changed:
            return [event for name, event in self.calls if name == function]

    def wait_for(self, function: str, count: int, timeout: float = 5.0) -> list[Any]:
        """The first ``count`` events of ``function``; fails the test if they never come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len([c for c in self.calls if c[0] == function]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = len([c for c in self.calls if c[0] == function])
                    pytest.fail(f"{function}: expected {count} invocations, got {got}")
                self._changed.wait(remaining)
            return [event for name, event in self.calls if name == function]


@dataclass
class Running:
    sources: EventSources
    invoker: FakeInvoker
    resolver: Resolver


@pytest.fixture
def start_sources(aws: Aws) -> Iterator[Callable[..., Running]]:
    """``start_sources("JobsFunction", script=..., **EventSources options)``: running sources
    for those functions of the fixture template, stopped after the test."""
    started: list[EventSources] = []

    def start(
        *functions: str,
        script: Script | None = None,
        template: dict[str, Any] | None = None,
        **options: Any,
    ) -> Running:
        tpl = template or stack_template(*functions)
        resolver = local_resolver(tpl, aws.endpoint)
        create_resources(tpl, resolver, aws)
        invoker = FakeInvoker(script) if script else FakeInvoker()
        options.setdefault("retry_delays", (0.05, 0.1))
        sources = EventSources(tpl, resolver, invoker, aws.endpoint, **options)
        sources.start()
        started.append(sources)
        return Running(sources, invoker, resolver)

    yield start
    for sources in started:
        sources.stop()
