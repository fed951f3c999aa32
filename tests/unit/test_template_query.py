"""The template's Athena side of `mlops query`: an enforced workgroup with a bytes-scanned
cutoff, a private results bucket that forgets, and a least-privilege policy for queriers."""

from __future__ import annotations

import re
from typing import Any

from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
WORKGROUP = RESOURCES["QueryWorkGroup"]["Properties"]
RESULTS = RESOURCES["QueryResultsBucket"]["Properties"]
POLICY = RESOURCES["QueryAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]


def test_the_workgroup_enforces_its_result_location_encryption_and_scan_cutoff() -> None:
    config = WORKGROUP["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "QueryBytesScannedCutoff"}
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    result = config["ResultConfiguration"]
    assert result["OutputLocation"] == {"Fn::Sub": "s3://${QueryResultsBucket}/results/"}
    assert result["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
    parameter = TEMPLATE["Parameters"]["QueryBytesScannedCutoff"]
    assert parameter["Default"] == 10 * 1024**3
    assert parameter["MinValue"] == 10_000_000  # Athena refuses a smaller cutoff


def test_results_are_private_encrypted_tls_only_and_expire_in_a_week() -> None:
    assert all(RESULTS["PublicAccessBlockConfiguration"].values())
    rule = RESULTS["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (expiry,) = RESULTS["LifecycleConfiguration"]["Rules"]
    assert (expiry["Status"], expiry["ExpirationInDays"], "Prefix" in expiry) == (
        "Enabled",
        7,
        False,
    )
    (deny,) = RESOURCES["QueryResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_query_policy_grants_only_what_a_query_needs() -> None:
    actions = {
        a for s in POLICY for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "cloudformation:DescribeStacks",
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        "athena:GetWorkGroup",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetPartition",
        "glue:GetPartitions",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:GetBucketLocation",
        "s3:ListBucketMultipartUploads",
    }
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in POLICY)
    reads = next(s for s in POLICY if s["Sid"] == "ReadCapturesAndFeedback")
    assert reads["Resource"] == [
        {"Fn::Sub": "${ArtifactsBucket.Arn}/captures/*"},
        {"Fn::Sub": "${ArtifactsBucket.Arn}/feedback/*"},
    ]
    # Athena reads the tables' bucket with the caller's rights: it locates it too, and that
    # request carries no s3:prefix, so it cannot sit under the listing's condition.
    locate = [s for s in POLICY if "s3:GetBucketLocation" in s["Action"]]
    located = [s["Resource"] for s in locate if "Condition" not in s]
    assert {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]} in located
    listing = next(s for s in POLICY if s["Sid"] == "ListCapturesAndFeedback")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["captures/*", "feedback/*"]}}


def test_the_outputs_name_what_mlops_query_needs() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["QueryWorkGroupName"]["Value"] == {"Ref": "QueryWorkGroup"}
    assert outputs["CaptureDatabaseName"]["Value"] == {"Ref": "CaptureDatabase"}
    assert outputs["QueryAccessPolicyArn"]["Value"] == {"Ref": "QueryAccessPolicy"}


def test_every_call_mlops_query_stack_makes_is_allowed_by_the_policy() -> None:
    # The calls, read from the code that makes them: the stack's outputs, then Athena's.
    cli = ROOT / "cli" / "mlops_cli"
    athena = (cli / "query" / "athena.py").read_text()
    target = (cli / "emulator" / "target.py").read_text()
    calls = {
        "athena:" + pascal(op)
        for op in re.findall(r'_call\(\s*"(\w+)"', athena)
        + re.findall(r"self\._athena\.(\w+)\(", athena)
    } | {
        "cloudformation:" + pascal(op)
        for op in re.findall(r'client\("cloudformation"\)\.(\w+)\(', target)
    }
    assert {"athena:StartQueryExecution", "cloudformation:DescribeStacks"} <= calls
    allowed = {
        a for s in POLICY for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert calls <= allowed, calls - allowed
    stack = next(s for s in POLICY if "cloudformation:DescribeStacks" in s["Action"])
    assert stack["Resource"] == {"Ref": "AWS::StackId"}  # this stack only


def pascal(snake: str) -> str:
    return "".join(part.title() for part in snake.split("_"))
