"""`mlops` through its real entry point: a subprocess, against a deployed stack (moto's
CloudFormation on a local server stands in for AWS) or with bad arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlops.adapters.registry import Registry, VersionRecord
from mlops_cli.local.stack import free_port
from tests.conftest import AWS_TEST_ENV

pytestmark = pytest.mark.e2e
MLOPS = [sys.executable, "-m", "mlops_cli"]
STACK = "prices-prod"
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
    """A moto server with a deployed stack and two registered versions; the environment a
    user's shell would have to reach it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env |= AWS_TEST_ENV | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    kwargs: dict[str, Any] = {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    cloudformation = boto3.client("cloudformation", **kwargs)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(STACK_TEMPLATE))
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    }
    registry = Registry(outputs["RegistryTableName"], boto3.client("dynamodb", **kwargs))
    for version in ("1", "2"):
        assert registry.next_version("house-prices") == version
        registry.put_version(
            VersionRecord("house-prices", version, "now", "k", "0" * 64, {"rmse": 1.0}, "ok")
        )
    registry.move_alias("house-prices", "production", "1", expected=None)
    yield env
    server.stop()


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLOPS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_status_and_promote_against_a_deployed_stack(aws_env: dict[str, str]) -> None:
    # Given production on v1 in the stack named on the command line
    status = mlops(aws_env, "status", "--stack", STACK, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["aliases"] == {"production": "1"}
    # When v2 is promoted, then rolled back
    promoted = mlops(aws_env, "promote", "2", "--stack", STACK)
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip() == "production: v1 -> v2"
    assert json.loads(mlops(aws_env, "status", "--stack", STACK, "--json").stdout)["aliases"] == {
        "production": "2"
    }
    rolled_back = mlops(aws_env, "promote", "1", "--stack", STACK)
    assert rolled_back.stdout.strip() == "production: v2 -> v1"


def test_promoting_an_unregistered_version_is_an_error_line_and_exit_2(
    aws_env: dict[str, str],
) -> None:
    result = mlops(aws_env, "promote", "3", "--stack", STACK)
    assert result.returncode == 2
    assert result.stderr.startswith("error: version 3 of house-prices is not registered")
    assert json.loads(mlops(aws_env, "status", "--stack", STACK, "--json").stdout)["aliases"]


def test_an_unknown_stack_is_an_error_line_and_exit_2(aws_env: dict[str, str]) -> None:
    result = mlops(aws_env, "status", "--stack", "no-such-stack")
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read stack no-such-stack")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("version", ["01", "\u0661", "../1"])
def test_a_non_canonical_version_is_refused_before_anything_is_touched(
    aws_env: dict[str, str], version: str
) -> None:
    result = mlops(aws_env, "promote", version, "--stack", STACK)
    assert result.returncode == 2
    assert "error: argument version: expected a version number like 3" in result.stderr
    assert "Traceback" not in result.stderr
