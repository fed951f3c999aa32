"""Each retraining function runs with only what its layers ship.

The retrainer's layers (CoreLayer + TrainingLayer) hold no onnxruntime, and the gate's
(CoreLayer + OnnxRuntimeLayer) no scikit-learn: each function runs here in a fresh interpreter
where the other stack cannot be imported, end to end against a moto server, so a lazy import
hidden in a code path (not only at module level) fails the test as it would fail on Lambda.
"""

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

from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from tests.conftest import ROOT, load_event

BUCKET, TRAINING, REGISTRY, IDEMPOTENCY = "artifacts", "training", "registry", "idempotency"
RUN = """
import json, sys
for name in json.loads(sys.argv[2]):
    sys.modules[name] = None  # "import name" now raises ImportError, as on Lambda
import importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from mlops_cli.emulator.stack import LambdaContext
result = module.lambda_handler(json.loads(sys.stdin.read()), LambdaContext("f"))
loaded = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None})
print(json.dumps({"result": result, "modules": loaded}))
"""
TRAINING_STACK = ["sklearn", "scipy", "skl2onnx", "onnx", "joblib", "pandas"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    kwargs: dict[str, Any] = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3 = boto3.client("s3", **kwargs)
    for bucket in (BUCKET, TRAINING):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=TRAINING, VersioningConfiguration={"Status": "Enabled"})
    config = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    s3.put_object(
        Bucket=BUCKET,
        Key="config/house-prices.toml",
        Body=config.replace("max_iter = 200", "max_iter = 40").encode(),
    )
    db = boto3.client("dynamodb", **kwargs)
    db.create_table(
        TableName=REGISTRY,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    db.create_table(
        TableName=IDEMPOTENCY,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield url
    server.stop()


def run(function: str, event: Any, blocked: list[str], endpoint: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))} | {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "test",
        "MODEL_NAME": "house-prices",
        "MODEL_BUCKET": BUCKET,
        "CAPTURE_BUCKET": BUCKET,
        "REGISTRY_TABLE": REGISTRY,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY,
        "TRAINING_BUCKET": TRAINING,
        "TRAINING_PREFIX": "training-data/",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            str(ROOT / "functions" / function / "app.py"),
            json.dumps(blocked),
        ],
        input=json.dumps(event),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_retrainer_never_needs_onnxruntime_and_the_gate_never_needs_scikit_learn(
    endpoint: str,
) -> None:
    # Given month 0 uploaded under the training prefix, and the S3 notification for it
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    put = s3.put_object(
        Bucket=TRAINING,
        Key="training-data/m0.csv",
        Body=csv_bytes(generate(800, conditions_for_month(0), seed=0)),
    )
    event = load_event("s3_put.json")
    event["Records"][0]["s3"]["bucket"]["name"] = TRAINING
    event["Records"][0]["s3"]["object"] |= {
        "key": "training-data/m0.csv",
        "versionId": put["VersionId"],
    }
    # When the retrainer runs where onnxruntime cannot be imported
    retrained = run("retrainer", event, ["onnxruntime"], endpoint)
    # Then it staged a candidate (trained, exported, stored scikit-learn's outputs)
    assert retrained["result"]["results"][0]["status"] == "staged", retrained
    assert "sklearn" in retrained["modules"]
    assert "skl2onnx" in retrained["modules"]
    # When the gate runs on its destination record where no training library can be imported
    record = {
        "version": "1.0",
        "timestamp": "2026-11-29T01:00:00.000Z",
        "requestContext": {
            "requestId": "r",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:retrainer:$LATEST",
            "condition": "Success",
            "approximateInvokeCount": 1,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "responsePayload": retrained["result"],
    }
    judged = run("candidate_gate", record, TRAINING_STACK, endpoint)
    # Then it checked parity with onnxruntime and promoted v1
    decision = judged["result"]["decisions"][0]
    assert (decision["status"], decision["version"]) == ("production", "1"), decision
    assert decision["parity_passed"] is True
    assert "onnxruntime" in judged["modules"]
