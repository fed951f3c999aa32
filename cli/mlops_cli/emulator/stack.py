"""Start moto on loopback, create the template's resources in it, and load its functions."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from mlops.adapters import aws
from mlops.errors import MlopsError
from mlops_cli.emulator import state
from mlops_cli.emulator.runtime import FunctionSpec, Invocation, LocalRuntime, LogLine
from mlops_cli.emulator.s3_limits import MotoServer
from mlops_cli.emulator.sagemaker.watcher import TrainingJobWatcher
from mlops_cli.emulator.sources.event_sources import EventSources
from mlops_cli.emulator.states.service import (
    STATE_MACHINE,
    StateMachines,
    function_resolver,
    load_state_machines,
    name_state_machines,
)
from mlops_cli.emulator.template import (
    ACCOUNT,
    REGION,
    STACK_NAME,
    Resolver,
    Route,
    function_routes,
    load_template,
    parameter_defaults,
)

STACK = STACK_NAME
# Lambda's default is the account's concurrency (1,000); two laptop cores run far fewer.
DEFAULT_MAX_ENVIRONMENTS = 4
# The variable that points a function at the model code layer (template.yaml, RetrainerFunction).
MODEL_CODE_DIR = "MODEL_CODE_DIR"


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


class FunctionError(MlopsError):
    """A function's invocation ended in an error (its error object is in ``invocation``)."""

    code = "function_error"

    def __init__(self, invocation: Invocation) -> None:
        payload = invocation.payload if isinstance(invocation.payload, dict) else {}
        super().__init__(f"{invocation.error_type}: {payload.get('errorMessage', '')}"[:500])
        self.invocation = invocation


@dataclass
class LocalFunction:
    """A function of the template, run by the local runtime in its own environments."""

    spec: FunctionSpec
    runtime: LocalRuntime

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    def invoke(self, event: Any) -> Any:
        """The handler's result, as Lambda's synchronous Invoke returns it."""
        invocation = self.runtime.invoke(self.spec.logical_id, event)
        if not invocation.ok:
            raise FunctionError(invocation)
        return invocation.payload


class LocalStack:
    """The template's resources in a moto server on 127.0.0.1, and its functions in their own
    execution environments (``runtime.LocalRuntime``)."""

    def __init__(
        self,
        template_path: Path,
        moto_port: int | None = None,
        parameters: dict[str, str] | None = None,
        env_overrides: dict[str, str] | None = None,
        schedule_seconds: float | None = None,
        *,
        model_code: Path | None = None,
    ) -> None:
        """``schedule_seconds``: fire every schedule of the template this often instead.
        ``model_code``: the folder of the config's ``[estimator] factory``, where a function
        the template gives ``MODEL_CODE_DIR`` (the ``ModelCodeLayer``'s path on AWS) finds it."""
        self.template_path = template_path.resolve()
        self.template = load_template(self.template_path)
        self.moto_port = moto_port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        params = parameter_defaults(self.template) | (parameters or {})
        self.resolver = Resolver(params, self.template.get("Conditions", {}))
        self.env_overrides = env_overrides or {}
        self.functions: dict[str, LocalFunction] = {}
        self.outputs: dict[str, str] = {}
        self.runtime: LocalRuntime | None = None
        self.sources: EventSources | None = None
        self.state_machines: StateMachines | None = None
        self.training_jobs: TrainingJobWatcher | None = None
        self.schedule_seconds = schedule_seconds
        self.model_code = model_code
        # Called with every line every function writes (on the runtime's thread: keep quick).
        self.log_listeners: list[Callable[[LogLine], None]] = []
        self._server: MotoServer | None = None
        self.restored: state.Counts | None = None

    @property
    def function_names(self) -> list[str]:
        return [name for name, _ in self._resources("AWS::Serverless::Function")]

    @property
    def routes(self) -> list[Route]:
        return function_routes(self.template)

    def start(self, *, restore_from: Path | None = None) -> None:
        """``restore_from``: a state folder a previous stack saved (``state.save``)."""
        # moto's server logs every AWS call through werkzeug; the handlers' logs are what matter.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # moto's server, refusing the S3 keys AWS refuses (see s3_limits).
        self._server = MotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._server.start()
        os.environ.update(local_aws_environment(self.endpoint))
        # Clients are cached per process: one made for an earlier stack (another endpoint)
        # must not be handed to this one.
        aws.client.cache_clear()
        aws.session.cache_clear()
        self._name_resources()
        try:
            # Refused here, before anything runs: a definition the interpreter cannot run.
            machines = load_state_machines(
                self._resources(STATE_MACHINE),
                self.resolver,
                self.template_path.parent,
                self.function_names,
            )
        except BaseException:
            self.stop()
            raise
        self._create_resources()
        if restore_from is not None:  # before any event source is wired: triggers nothing
            try:
                self.restored = state.restore(restore_from, self.stateful_resources())
            except BaseException:
                self.stop()
                raise
        self._load_functions()
        self._start_sources()
        self._start_state_machines(machines)
        self.outputs = {
            name: str(self.resolver.resolve(spec["Value"]))
            for name, spec in self.template.get("Outputs", {}).items()
            if "Condition" not in spec or self.resolver.condition(spec["Condition"])
        }

    def attach(self, endpoint: str) -> None:
        """Run the template's functions against an already running stack's moto server (its
        resources exist): what ``mlops invoke`` does while ``mlops local`` runs."""
        self.endpoint = endpoint
        self._name_resources()
        self._load_functions()

    def _start_sources(self) -> None:
        """Every non-HTTP event source of the template, delivered to the functions' runtime."""
        assert self.runtime is not None
        self.sources = EventSources(
            self.template,
            self.resolver,
            self.runtime,
            self.endpoint,
            log_groups={name: spec.log_group for name, spec in self.runtime.functions.items()},
            schedule_seconds=self.schedule_seconds,
        )
        self.log_listeners.append(self.sources.on_log)
        self.sources.start()
        # SageMaker training jobs the functions start (emulator.sagemaker).
        self._jobs_dir = tempfile.TemporaryDirectory(prefix="mlops-sagemaker-")
        self.training_jobs = TrainingJobWatcher(self.endpoint, Path(self._jobs_dir.name))
        self.training_jobs.start()

    def _start_state_machines(self, machines: list[Any]) -> None:
        """The template's state machines in moto, their executions run locally (``states``)."""
        assert self.runtime is not None
        self.state_machines = StateMachines(
            machines,
            self.runtime,
            function_resolver(self.resolver, self.function_names),
            self.endpoint,
        )
        self.state_machines.create()
        self.state_machines.start()

    def stateful_resources(self) -> state.Resources:
        refs = self.resolver.refs
        return state.Resources(
            model=str(self.resolver.parameters.get("ModelName", "")),
            buckets={name: refs[name] for name, _ in self._resources("AWS::S3::Bucket")},
            tables={name: refs[name] for name, _ in self._resources("AWS::DynamoDB::Table")},
            queues={name: refs[name] for name, _ in self._resources("AWS::SQS::Queue")},
        )

    def stop(self, *, save_to: Path | None = None) -> state.Counts | None:
        """Stop everything; with ``save_to``, keep the state there first (functions and event
        sources stopped, so nothing changes while it is read). Returns what was saved."""
        if self.state_machines is not None:
            self.state_machines.stop()
            self.state_machines = None
        if self.training_jobs is not None:
            self.training_jobs.stop()
            self.training_jobs = None
            self._jobs_dir.cleanup()
        if self.sources is not None:
            self.sources.stop()
            self.sources = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        saved = None
        try:
            if self._server is not None and save_to is not None:
                saved = state.save(save_to, self.stateful_resources())
        finally:
            if self._server is not None:
                # moto's backends are process-wide: without a reset, the next stack started
                # in this process (tests, the demo) would find this one's tables and buckets.
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(
                        urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"),
                        timeout=5,
                    ).close()
                self._server.stop()
                self._server = None
        return saved

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
        for name, props in self._resources("AWS::S3::Bucket"):
            # A BucketName the template sets (which others may spell out instead of !Ref),
            # else a name of our own, as CloudFormation would generate one.
            bucket = str(r.resolve(props.get("BucketName") or f"{STACK}-{name.lower()}"))
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
        for name, _ in self._resources("AWS::IAM::Role"):  # passed to SageMaker, not enforced
            r.refs[name] = f"{STACK}-{name}"
            r.attrs[(name, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{name}"
        for name, _ in self._resources("AWS::Serverless::LayerVersion"):
            r.refs[name] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1"
        for name, _ in self._resources("AWS::Serverless::HttpApi"):
            r.refs[name] = "local"
        for name, props in self._resources("AWS::Logs::LogGroup"):
            r.refs[name] = str(props.get("LogGroupName") or f"/aws/{STACK}/{name}")
            r.attrs[(name, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{r.refs[name]}"
        for name, raw in self._resources("AWS::Glue::Database"):
            r.refs[name] = str(r.resolve(raw["DatabaseInput"]["Name"])).lower()
        for name, props in self._resources("AWS::Athena::WorkGroup"):
            r.refs[name] = str(r.resolve(props["Name"]))
        for name, _ in self._resources("AWS::IAM::ManagedPolicy"):
            # Named only (IAM is not enforced locally): the output a user attaches on AWS.
            r.refs[name] = f"arn:aws:iam::{ACCOUNT}:policy/{STACK}-{name}"
        for name, _ in self._resources("AWS::SNS::Topic"):
            r.refs[name] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{name}"
        name_state_machines(self._resources(STATE_MACHINE), r, STACK)
        for name, props in self._resources("AWS::Events::EventBus"):
            # Name is required; !Ref and !GetAtt .Name both give it.
            bus = str(r.resolve(props["Name"]))
            r.refs[name] = bus
            r.attrs[(name, "Name")] = bus
            r.attrs[(name, "Arn")] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"

    def _create_resources(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        for name, props in self._resources("AWS::S3::Bucket"):
            bucket = self.resolver.refs[name]
            s3.create_bucket(Bucket=bucket)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(
                    Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
                )
            rules = (self.resolver.resolve(props.get("LifecycleConfiguration")) or {}).get("Rules")
            if rules:
                # Stored, so the local stack answers GetBucketLifecycleConfiguration as AWS
                # would; moto never expires anything, so nothing is ever deleted locally.
                s3.put_bucket_lifecycle_configuration(
                    Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules(rules)}
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
            ttl = props.get("TimeToLiveSpecification") or {}
            if str(ttl.get("Enabled", "")).lower() == "true":
                dynamodb.update_time_to_live(
                    TableName=self.resolver.refs[name],
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": True,
                    },
                )
        events = boto3.client("events", region_name=REGION)
        for name, _ in self._resources("AWS::Events::EventBus"):
            events.create_event_bus(Name=self.resolver.refs[name])
        glue = boto3.client("glue", region_name=REGION)
        for _, raw in self._resources("AWS::Glue::Database"):
            glue.create_database(DatabaseInput=self.resolver.resolve(raw["DatabaseInput"]))
        for _, raw in self._resources("AWS::Glue::Table"):
            props = self.resolver.resolve(raw)
            glue.create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])
        # Created so the local stack answers GetWorkGroup as AWS would; `mlops query` runs
        # locally through DuckDB (mlops_cli.query), since moto's Athena runs no SQL.
        athena = boto3.client("athena", region_name=REGION)
        for _, raw in self._resources("AWS::Athena::WorkGroup"):
            props = self.resolver.resolve(raw)
            config = dict(props.get("WorkGroupConfiguration", {}))
            if "BytesScannedCutoffPerQuery" in config:  # a parameter: a string until here
                config["BytesScannedCutoffPerQuery"] = int(config["BytesScannedCutoffPerQuery"])
            athena.create_work_group(
                Name=props["Name"], Description=props.get("Description", ""), Configuration=config
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
        """One FunctionSpec per function: exactly the variables the template gives it (Globals
        + its own, parameters resolved) plus the local endpoint and dummy credentials."""
        defaults = self.template.get("Globals", {}).get("Function", {})
        base = self.template_path.parent
        specs: dict[str, FunctionSpec] = {}
        for name, raw in self._resources("AWS::Serverless::Function"):
            props = {**defaults, **raw}
            variables = {
                **defaults.get("Environment", {}).get("Variables", {}),
                **raw.get("Environment", {}).get("Variables", {}),
            }
            environment = {k: str(v) for k, v in self.resolver.resolve(variables).items()}
            environment |= local_aws_environment(self.endpoint) | self.env_overrides
            if MODEL_CODE_DIR in environment:  # /opt/model_code on AWS: the layer's folder
                environment[MODEL_CODE_DIR] = str(self.model_code or "")
            logging_config = self.resolver.resolve(props.get("LoggingConfig", {}))
            reserved = self.resolver.resolve(props.get("ReservedConcurrentExecutions"))
            specs[name] = FunctionSpec(
                logical_id=name,
                physical_name=self.resolver.refs[name],
                code_dir=(base / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                environment=environment,
                python_paths=tuple(self._layer_dirs(props.get("Layers", []))),
                timeout=float(self.resolver.resolve(props.get("Timeout", 3))),
                memory_mb=int(self.resolver.resolve(props.get("MemorySize", 128))),
                max_environments=int(reserved) if reserved else DEFAULT_MAX_ENVIRONMENTS,
                log_group=logging_config.get("LogGroup")
                or f"/aws/lambda/{self.resolver.refs[name]}",
            )
        self.runtime = LocalRuntime(specs, on_log=self._on_log)
        self.runtime.start()
        self.functions = {name: LocalFunction(spec, self.runtime) for name, spec in specs.items()}

    def _layer_dirs(self, layers: list[Any]) -> list[Path]:
        """A layer of this template is its ContentUri, as /opt/python would hold it; its pip
        dependencies come from this environment's site-packages (see the README)."""
        dirs = []
        for layer in layers:
            if isinstance(layer, dict) and "Ref" in layer:
                spec = self.template["Resources"].get(layer["Ref"], {})
                content = spec.get("Properties", {}).get("ContentUri")
                if content and (self.template_path.parent / content).is_dir():
                    dirs.append((self.template_path.parent / content).resolve())
        return dirs

    def _on_log(self, line: LogLine) -> None:
        for listener in self.log_listeners:
            listener(line)


def lifecycle_rules(rules: list[dict[str, Any]]) -> list[Any]:
    """CloudFormation's ``LifecycleConfiguration.Rules`` (resolved) in the S3 API's shape: the
    expirations, prefixes and multipart clean-up the template uses; transitions and tag
    filters, meaningless without storage classes, are left out."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        api: dict[str, Any] = {
            "ID": str(rule.get("Id") or f"rule-{len(out)}"),
            "Status": str(rule.get("Status", "Enabled")),
            "Filter": {"Prefix": str(rule.get("Prefix") or "")},
        }
        expiration: dict[str, Any] = {}
        if "ExpirationInDays" in rule:
            expiration["Days"] = int(rule["ExpirationInDays"])
        if str(rule.get("ExpiredObjectDeleteMarker", "")).lower() == "true":
            expiration["ExpiredObjectDeleteMarker"] = True
        if expiration:
            api["Expiration"] = expiration
        noncurrent = rule.get("NoncurrentVersionExpiration") or {}
        if "NoncurrentDays" in noncurrent:
            days = int(noncurrent["NoncurrentDays"])
            api["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
        multipart = rule.get("AbortIncompleteMultipartUpload") or {}
        if "DaysAfterInitiation" in multipart:
            days = int(multipart["DaysAfterInitiation"])
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        out.append(api)
    return out


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
