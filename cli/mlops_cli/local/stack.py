"""Start moto on loopback, create the template's resources in it, and load its functions."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
from moto.server import ThreadedMotoServer

from mlops.errors import ConfigError
from mlops_cli.local.template import (
    ACCOUNT,
    REGION,
    Resolver,
    Route,
    function_routes,
    load_template,
    parameter_defaults,
)

STACK = "mlops-local"
Handler = Callable[[dict[str, Any], Any], Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LambdaContext:
    """The parts of Lambda's context object handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class LocalFunction:
    logical_id: str
    physical_name: str
    code_dir: Path
    handler_spec: str
    environment: dict[str, str]
    # One request at a time per function, as one Lambda execution environment does; the
    # handlers (and Powertools' resolvers) keep per-request state on module globals.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _module: ModuleType | None = None

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.lock:
            return self.handler()(event, LambdaContext(self.physical_name))

    def handler(self) -> Handler:
        attr = self.handler_spec.rpartition(".")[2]
        return cast(Handler, getattr(self.module(), attr))

    def module(self) -> ModuleType:
        """The handler's module, imported on first use as a cold Lambda container would."""
        if self._module is None:
            module_name = self.handler_spec.rpartition(".")[0]
            path = self.code_dir / (module_name.replace(".", "/") + ".py")
            spec = importlib.util.spec_from_file_location(f"local_{self.logical_id}", path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"cannot load handler {self.handler_spec} from {path}")
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(self.code_dir))
            spec.loader.exec_module(module)
            self._module = module
        return self._module


class LocalStack:
    """The template's resources in a moto server on 127.0.0.1, and its functions in-process."""

    def __init__(
        self,
        template_path: Path,
        moto_port: int | None = None,
        parameters: dict[str, str] | None = None,
        env_overrides: dict[str, str] | None = None,
    ) -> None:
        self.template_path = template_path.resolve()
        self.template = load_template(self.template_path)
        self.moto_port = moto_port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        params = parameter_defaults(self.template) | (parameters or {})
        self.resolver = Resolver(params, self.template.get("Conditions", {}))
        self.env_overrides = env_overrides or {}
        self.functions: dict[str, LocalFunction] = {}
        self.outputs: dict[str, str] = {}
        self._server: ThreadedMotoServer | None = None

    @property
    def routes(self) -> list[Route]:
        return function_routes(self.template)

    def start(self) -> None:
        # moto's server logs every AWS call through werkzeug; the handlers' logs are what matter.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.moto_port, verbose=False
        )
        self._server.start()
        os.environ.update(local_aws_environment(self.endpoint))
        self._name_resources()
        self._create_resources()
        self._load_functions()
        self.outputs = {
            name: str(self.resolver.resolve(spec["Value"]))
            for name, spec in self.template.get("Outputs", {}).items()
            if "Condition" not in spec or self.resolver.condition(spec["Condition"])
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _resources(self, *types: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (name, spec.get("Properties", {}))
            for name, spec in self.template["Resources"].items()
            if spec.get("Type") in types
            and ("Condition" not in spec or self.resolver.condition(spec["Condition"]))
        ]

    def _name_resources(self) -> None:
        """Physical names and attributes, known before anything is created (as CloudFormation
        would report them), so resources can reference each other in any order."""
        r = self.resolver
        for name, _ in self._resources("AWS::S3::Bucket"):
            bucket = f"{STACK}-{name.lower()}"
            r.refs[name] = bucket
            r.attrs[(name, "Arn")] = f"arn:aws:s3:::{bucket}"
        for name, _ in self._resources("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            r.refs[name] = f"{STACK}-{name}"
            r.attrs[(name, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-{name}"
        for name, _ in self._resources("AWS::SQS::Queue"):
            queue = f"{STACK}-{name}"
            url = f"{self.endpoint}/{ACCOUNT}/{queue}"
            r.refs[name] = url
            r.attrs.update(
                {
                    (name, "Arn"): f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                    (name, "QueueName"): queue,
                    (name, "QueueUrl"): url,
                }
            )
        for name, _ in self._resources("AWS::Serverless::Function"):
            r.refs[name] = f"{STACK}-{name}"
            r.attrs[(name, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-{name}"
        for name, _ in self._resources("AWS::Serverless::LayerVersion"):
            r.refs[name] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1"
        for name, _ in self._resources("AWS::Serverless::HttpApi"):
            r.refs[name] = "local"
        for name, _ in self._resources("AWS::SNS::Topic"):
            r.refs[name] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{name}"

    def _create_resources(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        for name, props in self._resources("AWS::S3::Bucket"):
            bucket = self.resolver.refs[name]
            s3.create_bucket(Bucket=bucket)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(
                    Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
                )
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for name, raw in self._resources("AWS::DynamoDB::Table"):
            props = self.resolver.resolve(raw)
            dynamodb.create_table(
                TableName=self.resolver.refs[name],
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode="PAY_PER_REQUEST",
            )
        sqs = boto3.client("sqs", region_name=REGION)
        queues = self._resources("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy must name an existing queue.
        for name, raw in sorted(queues, key=lambda q: "RedrivePolicy" in q[1]):
            props = self.resolver.resolve(raw)
            attributes = {
                key: (json.dumps(value) if isinstance(value, dict) else str(value))
                for key, value in props.items()
                if key
                in (
                    "VisibilityTimeout",
                    "MessageRetentionPeriod",
                    "RedrivePolicy",
                    "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds",
                )
            }
            sqs.create_queue(
                QueueName=self.resolver.attrs[(name, "QueueName")], Attributes=attributes
            )

    def _load_functions(self) -> None:
        globals_env = (
            self.template.get("Globals", {})
            .get("Function", {})
            .get("Environment", {})
            .get("Variables", {})
        )
        base = self.template_path.parent
        for name, props in self._resources("AWS::Serverless::Function"):
            env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
            environment = {k: str(v) for k, v in self.resolver.resolve(env).items()}
            environment |= self.env_overrides
            self.functions[name] = LocalFunction(
                logical_id=name,
                physical_name=self.resolver.refs[name],
                code_dir=(base / props["CodeUri"]).resolve(),
                handler_spec=props["Handler"],
                environment=environment,
            )
            # Functions share this process, so their variables share os.environ; the template
            # keeps names distinct where values differ (each function's settings read its own).
            os.environ.update(environment)


def local_aws_environment(endpoint: str) -> dict[str, str]:
    """What the handlers and boto3 need to talk to moto instead of AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }
