"""Where CLI commands act: a deployed stack (CloudFormation outputs) or the running local stack.

Both expose the same output names (the template's ``Outputs``), so every command works the
same against either.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.errors import ConfigError
from mlops_cli.emulator.stack import local_aws_environment

STATE_FILE = Path(".mlops") / "local.json"


@dataclass(frozen=True)
class Target:
    outputs: dict[str, str]
    description: str

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise ConfigError(f"{self.description} has no output {name}") from None

    @property
    def model_name(self) -> str:
        return self.output("ModelName")

    def store(self) -> ModelStore:
        return ModelStore(self.output("ArtifactsBucketName"), client("s3"))

    def registry(self) -> Registry:
        return Registry(self.output("RegistryTableName"), client("dynamodb"))


def write_local_state(
    endpoint: str, api_url: str, outputs: dict[str, str], parameters: dict[str, str]
) -> Path:
    STATE_FILE.parent.mkdir(exist_ok=True)
    state = {
        "pid": os.getpid(),
        "endpoint": endpoint,
        "api_url": api_url,
        "outputs": outputs,
        "parameters": parameters,
    }
    STATE_FILE.write_text(json.dumps(state, indent=2))
    return STATE_FILE


def clear_local_state() -> None:
    STATE_FILE.unlink(missing_ok=True)


def running_local_stack() -> dict[str, Any] | None:
    """The running ``mlops local``'s state (endpoint, parameters...), or None if none runs."""
    if not STATE_FILE.exists():
        return None
    resolve_target(None)  # raises, and removes the file, if it is stale
    return dict(json.loads(STATE_FILE.read_text()))


def resolve_target(stack: str | None) -> Target:
    """``--stack NAME`` → that CloudFormation stack; otherwise the running ``mlops local``."""
    if stack:
        try:
            response = boto3.client("cloudformation").describe_stacks(StackName=stack)
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"cannot read stack {stack}: {exc}") from exc
        outputs = {
            o["OutputKey"]: o["OutputValue"] for o in response["Stacks"][0].get("Outputs", [])
        }
        return Target(outputs, f"stack {stack}")
    if not STATE_FILE.exists():
        raise ConfigError(
            "no target: start the local stack with `mlops local` (in this folder) "
            "or pass --stack NAME for a deployed stack"
        )
    try:
        state = json.loads(STATE_FILE.read_text())
        pid, endpoint = int(state["pid"]), str(state["endpoint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{STATE_FILE} is unreadable ({exc}): restart `mlops local`") from exc
    if not _alive(pid) or not _listening(endpoint):
        # A stack killed without its Ctrl-C cleanup leaves the file behind.
        STATE_FILE.unlink(missing_ok=True)
        raise ConfigError(
            f"the local stack is not running (stale {STATE_FILE} from process {pid}, removed): "
            "start it with `mlops local`, or pass --stack NAME for a deployed stack"
        )
    os.environ.update(local_aws_environment(endpoint))
    return Target(state["outputs"], f"local stack at {state['endpoint']}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _listening(endpoint: str) -> bool:
    url = urlsplit(endpoint)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1):
            return True
    except OSError:
        return False
