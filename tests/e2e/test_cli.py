"""`mlops` through its real entry point: a subprocess, against a deployed stack (moto's
CloudFormation on a local server stands in for AWS) or with bad arguments."""

from __future__ import annotations

import copy
import getpass
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry, VersionRecord
from mlops.domain import capture
from mlops.domain.config import ModelConfig
from mlops.domain.synthetic import conditions_for_month, generate
from mlops.services.model_loading import load_version
from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
from mlops.services.training import TrainingService
from mlops_cli.emulator.stack import free_port
from tests.conftest import AWS_TEST_ENV

pytestmark = pytest.mark.e2e
MLOPS = [sys.executable, "-m", "mlops_cli"]
_stacks = itertools.count(1)
# A stack with the outputs the CLI reads, as `sam deploy` of template.yaml would have.
STACK_TEMPLATE = {
    "Resources": {
        "ArtifactsBucket": {"Type": "AWS::S3::Bucket"},
        "RegistryTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            },
        },
    },
    "Outputs": {
        "ModelName": {"Value": "house-prices"},
        "ArtifactsBucketName": {"Value": {"Ref": "ArtifactsBucket"}},
        "RegistryTableName": {"Value": {"Ref": "RegistryTable"}},
    },
}


@pytest.fixture(scope="module")
def aws_env() -> Iterator[dict[str, str]]:
    """A moto server standing in for AWS; the environment a user's shell would have to reach
    it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_")) and k != "COLUMNS"
    }
    env |= AWS_TEST_ENV | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    yield env
    server.stop()


def client(env: dict[str, str], service: str) -> Any:
    """A boto3 client for the moto server ``env`` points at."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass(frozen=True)
class Stack:
    name: str
    outputs: dict[str, str]
    registry: Registry


@pytest.fixture
def stack(aws_env: dict[str, str]) -> Stack:
    """A freshly deployed stack (its own registry table) with three versions: v1 in
    production, v2 a candidate trained on month 3, v3 rejected by the gate."""
    name = f"prices-{next(_stacks)}"
    cloudformation = client(aws_env, "cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(STACK_TEMPLATE))
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    registry = Registry(outputs["RegistryTableName"], client(aws_env, "dynamodb"))
    lineage = {
        "trigger": {"kind": "s3_upload", "key": "training-data/month-03.csv"},
        "data": [{"uri": "s3://data/training-data/month-03.csv", "rows": 4000, "role": "new"}],
    }
    registered = {
        "1": ("candidate", (), {}),
        "2": ("candidate", ("rmse 3.1% better than v1",), lineage),
        "3": ("rejected", ("rmse 15.3% worse than champion v1 (41,234); allowed 2%",), lineage),
    }
    s3 = client(aws_env, "s3")
    for version, (status, reasons, data) in registered.items():
        assert registry.next_version("house-prices") == version
        # Artifacts whose sha256 the registry records: promotions check them before moving.
        body = f"model {version}".encode()
        digest = hashlib.sha256(body).hexdigest()
        prefix = f"models/house-prices/{version}/"
        manifest = {"artifacts": {"model.onnx": {"sha256": digest}}}
        for key, content in (("model.onnx", body), ("manifest.json", json.dumps(manifest))):
            s3.put_object(Bucket=outputs["ArtifactsBucketName"], Key=prefix + key, Body=content)
        registry.put_version(
            VersionRecord(
                "house-prices",
                version,
                f"2025-0{version}-01T10:00:00+00:00",
                prefix + "manifest.json",
                digest,
                {"rmse": 41234.5 - int(version) * 1000, "r2": 0.87},
                status,
                reasons,
                data,
            )
        )
    registry.promote("house-prices", "1", expected=None, actor="ci", reason="first model")
    return Stack(name, outputs, registry)


def mlops(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLOPS, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def status_json(env: dict[str, str], stack: Stack) -> dict[str, Any]:
    result = mlops(env, "status", "--stack", stack.name, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_promote_then_rollback_against_a_deployed_stack(
    aws_env: dict[str, str], stack: Stack
) -> None:
    # Given production on v1 in the stack named on the command line
    assert status_json(aws_env, stack)["aliases"] == {"production": "1"}
    # When v2 is promoted, then rolled back, each with a reason
    promoted = mlops(aws_env, "promote", "2", "--reason", "better rmse", "--stack", stack.name)
    assert promoted.returncode == 0, promoted.stderr
    # Then each move names the caller (its ARN, from STS) and the reason
    assert re.fullmatch(
        r'production: v1 -> v2 \(promote by arn:aws:\S+: "better rmse"\)', promoted.stdout.strip()
    ), promoted.stdout
    rolled_back = mlops(aws_env, "rollback", "--reason", "canary regressed", "--stack", stack.name)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert re.fullmatch(
        r'production: v2 -> v1 \(rollback by arn:aws:\S+: "canary regressed"\)',
        rolled_back.stdout.strip(),
    ), rolled_back.stdout
    # And the registry has the statuses and the history of both moves
    status = status_json(aws_env, stack)
    assert status["aliases"] == {"production": "1"}
    versions = {v["version"]: v for v in status["versions"]}
    assert {v: versions[v]["status"] for v in versions} == {
        "1": "production",
        "2": "archived",
        "3": "rejected",
    }
    assert versions["2"]["reasons"] == ["rmse 3.1% better than v1", "rolled back: canary regressed"]
    assert versions["2"]["lineage"]["data"][0]["rows"] == 4000
    assert [(c["kind"], c["from_version"], c["to_version"]) for c in status["history"]] == [
        ("rollback", "2", "1"),
        ("promote", "1", "2"),
        ("promote", None, "1"),
    ]
    assert status["history"][0]["reason"] == "canary regressed"


def test_promote_and_rollback_print_json_with_json(aws_env: dict[str, str], stack: Stack) -> None:
    promoted = mlops(aws_env, "promote", "2", "--stack", stack.name, "--json")
    assert promoted.returncode == 0, promoted.stderr
    change = json.loads(promoted.stdout)
    assert (change["alias"], change["from_version"], change["to_version"]) == (
        "production",
        "1",
        "2",
    )
    assert (change["kind"], change["reason"]) == ("promote", "")
    rolled_back = json.loads(mlops(aws_env, "rollback", "--stack", stack.name, "--json").stdout)
    assert (rolled_back["kind"], rolled_back["to_version"]) == ("rollback", "1")


@pytest.mark.parametrize("columns", [80, 160])
def test_status_prints_versions_and_recent_alias_changes_as_tables(
    aws_env: dict[str, str], stack: Stack, columns: int
) -> None:
    # Given v2 promoted (its lineage names its data and trigger)
    promoted = mlops(aws_env, "promote", "2", "--reason", "better rmse", "--stack", stack.name)
    assert promoted.returncode == 0, promoted.stderr
    # When status prints to a pipe of the given width (no TTY, as in CI)
    result = mlops(aws_env | {"COLUMNS": str(columns)}, "status", "--stack", stack.name)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    # Then it fits the width, with plain text (no colour codes) and nothing cut off
    assert max(len(line) for line in lines) <= columns
    assert "\x1b[" not in out
    assert lines[0] == f"Model house-prices (stack {stack.name})"
    for expected in (
        "version",
        "status",
        "production",
        "archived",
        "rejected",
        "rmse 38,234",
        "4,000 rows",
        "month-03.csv",
        "Recent alias changes",
        "v1 -> v2",
        "better rmse",
        "first model",
    ):
        assert expected in out, expected
    # The version rows come newest first
    assert [line.split()[0] for line in lines if re.match(r" v\d+ ", line)] == ["v3", "v2", "v1"]
    # The wide layout adds creation time, trigger and an aliases column
    wide = ("created (UTC)", "2025-02-01 10:00", "upload", "aliases")
    assert all((text in out) == (columns >= 110) for text in wide), out


def test_status_json_has_versions_lineage_aliases_and_history(
    aws_env: dict[str, str], stack: Stack
) -> None:
    status = status_json(aws_env, stack)
    assert status["model"] == "house-prices"
    assert status["aliases"] == {"production": "1"}
    assert [v["version"] for v in status["versions"]] == ["1", "2", "3"]
    v3 = status["versions"][2]
    assert v3["status"] == "rejected"
    assert v3["reasons"] == ["rmse 15.3% worse than champion v1 (41,234); allowed 2%"]
    assert v3["lineage"]["trigger"]["kind"] == "s3_upload"
    assert status["history"] == [
        {
            "alias": "production",
            "from_version": None,
            "to_version": "1",
            "actor": "ci",
            "reason": "first model",
            "at": status["history"][0]["at"],
            "kind": "promote",
        }
    ]


def test_a_rejected_version_needs_force_and_a_reason(aws_env: dict[str, str], stack: Stack) -> None:
    refused = mlops(aws_env, "promote", "3", "--stack", stack.name)
    assert refused.returncode == 1  # refused, not bad usage
    assert refused.stderr.startswith("error: version 3 of house-prices was rejected (rmse 15.3%")
    no_reason = mlops(aws_env, "promote", "3", "--force", "--stack", stack.name)
    assert no_reason.returncode == 2
    assert no_reason.stderr.startswith("error: --force needs --reason")
    assert status_json(aws_env, stack)["aliases"] == {"production": "1"}
    forced = mlops(
        aws_env, "promote", "3", "--force", "--reason", "v1 misprices lofts", "--stack", stack.name
    )
    assert forced.returncode == 0, forced.stderr
    assert status_json(aws_env, stack)["aliases"] == {"production": "3"}


def test_rollback_with_nothing_to_roll_back_to_is_an_error_line_and_exit_1(
    aws_env: dict[str, str], stack: Stack
) -> None:
    result = mlops(aws_env, "rollback", "--stack", stack.name)
    assert result.returncode == 1  # refused, not bad usage
    assert result.stderr.startswith("error: nothing to roll back to")
    assert "Traceback" not in result.stderr
    assert status_json(aws_env, stack)["aliases"] == {"production": "1"}


def test_on_the_local_stack_the_actor_is_the_login(
    aws_env: dict[str, str], stack: Stack, tmp_path: Path
) -> None:
    # Given a running `mlops local` in this folder (its state file; this process is alive and
    # the moto server listens, as the local stack's would)
    state = tmp_path / ".mlops" / "local.json"
    state.parent.mkdir()
    state.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "endpoint": aws_env["AWS_ENDPOINT_URL"],
                "api_url": "http://127.0.0.1:9",
                "outputs": stack.outputs,
                "parameters": {},
            }
        )
    )
    # When v2 is promoted there, without --stack
    env = aws_env | {"MLOPS_HOME": str(tmp_path / ".mlops")}
    result = mlops(env, "promote", "2", "--reason", "try it", cwd=tmp_path)
    # Then the history names the user, marked local
    assert result.returncode == 0, result.stderr
    who = f"{getpass.getuser()} (local)"
    assert result.stdout.strip() == f'production: v1 -> v2 (promote by {who}: "try it")'
    assert stack.registry.history("house-prices", limit=1)[0].actor == who


def test_promoting_an_unregistered_version_is_an_error_line_and_exit_1(
    aws_env: dict[str, str], stack: Stack
) -> None:
    result = mlops(aws_env, "promote", "9", "--stack", stack.name)
    assert result.returncode == 1  # refused, not bad usage
    assert result.stderr.startswith("error: version 9 of house-prices is not registered")
    assert status_json(aws_env, stack)["aliases"] == {"production": "1"}


def test_an_unknown_stack_is_an_error_line_and_exit_2(aws_env: dict[str, str]) -> None:
    for command in ("status", "rollback"):
        result = mlops(aws_env, command, "--stack", "no-such-stack")
        assert result.returncode == 2
        assert result.stderr.startswith("error: cannot read stack no-such-stack")
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("version", ["01", "\u0661", "../1"])
def test_a_non_canonical_version_is_refused_before_anything_is_touched(
    aws_env: dict[str, str], version: str
) -> None:
    result = mlops(aws_env, "promote", version, "--stack", "no-such-stack")
    assert result.returncode == 2
    assert "error: argument version: expected a version number like 3" in result.stderr
    assert "Traceback" not in result.stderr


# --- rollouts: held and rejected versions, switching (issue 17) -------------------------------

LABELS_DISAGREE = "uploaded labels disagree with the champion on 31% of rows"


def hold(stack: Stack, version: str) -> None:
    stack.registry.set_status("house-prices", version, "held", (LABELS_DISAGREE,))


def test_a_held_version_may_only_shadow_unless_forced_with_a_reason(
    aws_env: dict[str, str], stack: Stack
) -> None:
    # Given v2 held by the gate
    hold(stack, "2")
    # Then a canary and a direct promotion are refused, saying why, and change nothing
    canary = mlops(aws_env, "promote", "2", "--rollout", "canary:30", "--stack", stack.name)
    assert canary.returncode == 1  # refused, not bad usage
    assert canary.stderr.startswith(
        f"error: v2 of house-prices cannot be rolled out: it is held ({LABELS_DISAGREE})"
    ), canary.stderr
    direct = mlops(aws_env, "promote", "2", "--stack", stack.name)
    assert direct.returncode == 1  # refused, not bad usage
    assert direct.stderr.startswith(f"error: version 2 of house-prices is held ({LABELS_DISAGREE})")
    assert status_json(aws_env, stack)["rollout"] is None
    # A shadow is allowed
    shadow = mlops(aws_env, "promote", "2", "--rollout", "shadow", "--stack", stack.name)
    assert shadow.returncode == 0, shadow.stderr
    assert shadow.stdout.startswith("rollout started: shadow of v2 against v1")
    # Force without a reason is bad usage
    no_reason = mlops(
        aws_env, "promote", "2", "--rollout", "canary:30", "--force", "--stack", stack.name
    )
    assert no_reason.returncode == 2
    assert no_reason.stderr.startswith("error: --force needs --reason")
    assert status_json(aws_env, stack)["rollout"]["mode"] == "shadow"
    # With force and a reason the shadow becomes a canary; the reason and the actor are kept
    forced = mlops(
        aws_env, "promote", "2", "--rollout", "canary:30", "--force",
        "--reason", "labels checked by hand", "--stack", stack.name,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("rollout switched: shadow → canary 30 %"), forced.stdout
    status = status_json(aws_env, stack)
    rollout = status["rollout"]
    assert (rollout["mode"], rollout["percent"], rollout["forced"]) == ("canary", 30.0, True)
    assert rollout["reason"] == "labels checked by hand"
    assert rollout["actor"].startswith("arn:aws:")
    assert rollout["switches"][0]["reason"] == "labels checked by hand"
    assert {v["version"]: v["status"] for v in status["versions"]}["2"] == "held"


def test_a_held_version_is_promoted_directly_with_force_and_a_reason(
    aws_env: dict[str, str], stack: Stack
) -> None:
    hold(stack, "2")
    forced = mlops(
        aws_env, "promote", "2", "--force", "--reason", "labels fixed upstream",
        "--stack", stack.name,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert status_json(aws_env, stack)["aliases"] == {"production": "2"}
    assert status_json(aws_env, stack)["history"][0]["reason"] == "labels fixed upstream"


@pytest.mark.parametrize("rollout", ["shadow", "canary:20"])
def test_a_rejected_version_rolls_out_only_with_force_and_a_reason(
    aws_env: dict[str, str], stack: Stack, rollout: str
) -> None:
    refused = mlops(aws_env, "promote", "3", "--rollout", rollout, "--stack", stack.name)
    assert refused.returncode == 1  # refused, not bad usage
    assert refused.stderr.startswith(
        "error: v3 of house-prices cannot be rolled out: it was rejected (rmse 15.3% worse"
    ), refused.stderr
    assert status_json(aws_env, stack)["rollout"] is None
    forced = mlops(
        aws_env, "promote", "3", "--rollout", rollout, "--force",
        "--reason", "v1 misprices lofts", "--stack", stack.name,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"rollout started: {rollout.partition(':')[0]}")
    started = status_json(aws_env, stack)["rollout"]
    assert (started["version"], started["forced"]) == ("3", True)
    assert started["reason"] == "v1 misprices lofts"


def test_a_rollout_command_switches_the_running_rollout_and_says_so(
    aws_env: dict[str, str], stack: Stack
) -> None:
    # Given a shadow of v2
    started = mlops(aws_env, "promote", "2", "--rollout", "shadow", "--stack", stack.name)
    assert started.returncode == 0, started.stderr
    shadow = status_json(aws_env, stack)["rollout"]
    # When it is started again as it runs, nothing changes (a retry is harmless)
    again = mlops(aws_env, "promote", "2", "--rollout", "shadow", "--stack", stack.name)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("rollout already running, unchanged: shadow of v2")
    assert status_json(aws_env, stack)["rollout"] == shadow
    # When a 30 % canary of it is asked for, the shadow becomes that canary, and says so
    switched = mlops(
        aws_env, "promote", "2", "--rollout", "canary:30", "--reason", "shadow looks fine",
        "--stack", stack.name, "--json",
    )  # fmt: skip
    assert switched.returncode == 0, switched.stderr
    assert json.loads(switched.stdout)["action"] == "switched"
    canary = status_json(aws_env, stack)["rollout"]
    assert (canary["mode"], canary["percent"]) == ("canary", 30.0)
    assert canary["started_at"] > shadow["started_at"]
    assert canary["rollout_id"] != shadow["rollout_id"]
    [switch] = canary["switches"]
    assert (switch["from_mode"], switch["to_mode"], switch["reason"]) == (
        "shadow",
        "canary",
        "shadow looks fine",
    )
    text = mlops(aws_env | {"COLUMNS": "200"}, "status", "--stack", stack.name)
    assert "Rollout: canary 30% of v2 against v1" in text.stdout
    assert "switched from shadow by" in text.stdout


def test_status_shows_a_held_version(aws_env: dict[str, str], stack: Stack) -> None:
    hold(stack, "2")
    result = mlops(aws_env | {"COLUMNS": "160"}, "status", "--stack", stack.name)
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith(" v2 ")]
    assert row.split()[1] == "held"
    assert "uploaded labels disagree" in row


# --- mlops drift: the verdict as it is, and --json as one object -----------------------------


@pytest.fixture
def shifted_stack(aws_env: dict[str, str], config: ModelConfig, month0_csv: bytes) -> Stack:
    """A stack whose production v1 (trained by the real pipeline) served 2,000 predictions of
    its own market in the last hours, every one labeled twice its price: a concept shift."""
    name = f"shifted-{next(_stacks)}"
    template = copy.deepcopy(STACK_TEMPLATE)
    # moto's CloudFormation gives an EventBus's !Ref as an object's repr: name the bus here
    bus = client(aws_env, "events").create_event_bus(Name=f"{name}-retrain")["EventBusArn"]
    template["Outputs"]["RetrainBusName"] = {"Value": bus.rsplit("/", 1)[-1]}
    cloudformation = client(aws_env, "cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    s3, bucket = client(aws_env, "s3"), outputs["ArtifactsBucketName"]
    registry = Registry(outputs["RegistryTableName"], client(aws_env, "dynamodb"))
    store = ModelStore(bucket, s3)
    TrainingService(store, registry, "test").train_and_register(config, month0_csv, "s3://d/m0")
    loaded = load_version(store, registry, "house-prices", "1")
    rows = 2000
    columns = generate(rows, conditions_for_month(0), seed=121)
    features = [f.name for f in config.features]
    predictions = loaded.model.score({n: np.asarray(columns[n]) for n in features}).values
    ts = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    lines = []
    for start in range(0, rows, 200):
        stop = start + 200
        instances = [
            {n: (v.item() if isinstance(v := columns[n][i], np.generic) else v) for n in features}
            for i in range(start, stop)
        ]
        lines += capture.capture_lines(
            model="house-prices", version="1", alias="production", variant=None,
            request_id=f"r{start}", timestamp_ms=ts + start, latency_ms=0.3,
            instances=instances, prediction_ids=ids[start:stop],
            predictions=list(predictions[start:stop]), probabilities=None,
        )  # fmt: skip
    labels = [{"prediction_id": ids[i], "actual": 2.0 * columns["price"][i]} for i in range(rows)]
    lines += capture.feedback_line(model="house-prices", timestamp_ms=ts + rows, items=labels)
    logger = PredictionLoggerService(CaptureStore(bucket, s3), store, model_name="house-prices")
    logger.store_batch([LogEvent(f"{i:056d}", ts, line) for i, line in enumerate(lines)])
    return Stack(name, outputs, registry)


def test_drift_json_is_one_object_on_stdout_headlined_as_a_quality_loss(
    aws_env: dict[str, str], shifted_stack: Stack
) -> None:
    # When `mlops drift --json` evaluates the concept shift
    result = mlops(aws_env, "drift", "--stack", shifted_stack.name, "--json")
    # Then stdout is exactly one JSON object (the service's metric lines are not on it)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1, result.stdout[:2000]
    verdict = json.loads(result.stdout)
    # And its verdict is the quality loss, with the retrain it requested
    assert verdict["status"] == "quality_loss"
    assert re.fullmatch(r"Quality loss: live RMSE \+[\d,]+ %", verdict["headline"])
    assert not verdict["dataset_drift"]
    assert verdict["quality_breach"]
    assert verdict["retrain_requested"]


def test_drift_prints_the_headline_not_ok(aws_env: dict[str, str], shifted_stack: Stack) -> None:
    result = mlops(aws_env, "drift", "--stack", shifted_stack.name, "--no-act")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(
        r"house-prices v1: Quality loss: live RMSE \+[\d,]+ % \(2,000 rows, 24 h\)", first
    ), first
    assert not any(line.startswith("{") for line in rest)
    assert any(line.startswith("Report: s3://") for line in rest)


def test_predict_refuses_to_write_over_its_own_input(tmp_path: Path) -> None:
    data = tmp_path / "holdout.csv"
    data.write_text("sqft,location\n1000,riverside\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    result = mlops(env, "predict", "--data", str(data), "--out", str(data), cwd=tmp_path)
    assert result.returncode == 2
    assert "is the --data file" in result.stderr
    assert data.read_text() == "sqft,location\n1000,riverside\n"  # untouched
