"""Where CLI commands act: a deployed stack (CloudFormation outputs) or the running local stack.

Both expose the same output names (the template's ``Outputs``), so every command works the
same against either.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.errors import ConfigError
from mlops.local.stack import local_aws_environment

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


def write_local_state(endpoint: str, api_url: str, outputs: dict[str, str]) -> Path:
    STATE_FILE.parent.mkdir(exist_ok=True)
    STATE_FILE.write_text(
        json.dumps({"endpoint": endpoint, "api_url": api_url, "outputs": outputs}, indent=2)
    )
    return STATE_FILE


def clear_local_state() -> None:
    STATE_FILE.unlink(missing_ok=True)


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
    state = json.loads(STATE_FILE.read_text())
    os.environ.update(local_aws_environment(state["endpoint"]))
    return Target(state["outputs"], f"local stack at {state['endpoint']}")
