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

# One record per user, not per folder: every command finds the running stack from anywhere.
# ``MLOPS_HOME`` moves it (tests give each stack its own).
HOME_VARIABLE = "MLOPS_HOME"


def mlops_home() -> Path:
    return Path(os.environ.get(HOME_VARIABLE) or Path.home() / ".mlops")


def state_file() -> Path:
    """Where the running ``mlops local`` says where it is and what it serves."""
    return mlops_home() / "local.json"


def find_template(given: Path | None) -> Path:
    """``given``; else ``template.yaml`` here or in a parent folder (inside a project); else
    the template of the project this CLI was installed from (``pip install -e``)."""
    if given is not None:
        return given
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "template.yaml").is_file():
            return folder / "template.yaml"
    installed = Path(__file__).resolve().parents[3] / "template.yaml"
    if installed.is_file():
        return installed
    raise ConfigError(
        f"no template.yaml in {here} or its parents, nor next to this CLI: pass --template PATH"
    )


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


def claim_local_state() -> None:
    """Refuse to start a second stack over a running one's record (the first would lose it)."""
    try:
        running = running_local_stack()
    except ConfigError:  # stale: removed
        return
    if running is not None:
        raise ConfigError(
            f"a local stack already runs (process {running['pid']}, {running['api_url']}): "
            f"stop it first, or give this one its own {HOME_VARIABLE} folder"
        )


def write_local_state(
    endpoint: str,
    api_url: str,
    outputs: dict[str, str],
    parameters: dict[str, str],
    *,
    template: Path,
    config: Path | None,
    state_dir: Path | None,
) -> Path:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "pid": os.getpid(),
        "endpoint": endpoint,
        "api_url": api_url,
        "outputs": outputs,
        "parameters": parameters,
        "template": str(template.resolve()),
        "config": str(config.resolve()) if config else None,
        "state_dir": str(state_dir.resolve()) if state_dir else None,
        "started_in": str(Path.cwd()),
    }
    path.write_text(json.dumps(state, indent=2))
    return path


def clear_local_state() -> None:
    state_file().unlink(missing_ok=True)


def running_local_stack() -> dict[str, Any] | None:
    """The running ``mlops local``'s record (endpoint, template, config...), or None."""
    if not state_file().exists():
        return None
    resolve_target(None)  # raises, and removes the file, if it is stale
    return dict(json.loads(state_file().read_text()))


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
    path = state_file()
    if not path.exists():
        raise ConfigError(
            "no target: start the local stack with `mlops local` "
            "or pass --stack NAME for a deployed stack"
        )
    try:
        state = json.loads(path.read_text())
        pid, endpoint = int(state["pid"]), str(state["endpoint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}): restart `mlops local`") from exc
    if not _alive(pid) or not _listening(endpoint):
        # A stack killed without its Ctrl-C cleanup leaves the file behind.
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"the local stack is not running (stale {path} from process {pid}, removed): "
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
