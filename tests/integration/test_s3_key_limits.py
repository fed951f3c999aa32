"""S3 refuses a key over 1,024 bytes of UTF-8; moto 5.2.5 stores it. The retrainer keeps its
keys within the limit whatever the upload's name, and our moto (the local stack's server, and
the tests' in-process one) refuses what AWS refuses."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops.domain.keys import MAX_KEY_BYTES
from mlops_cli.emulator.s3_limits import MotoServer
from mlops_cli.emulator.stack import free_port
from tests.conftest import moto_resources
from tests.integration.retrain_pipeline import MODEL, PREFIX, Pipeline, decision, month, only

LONG_NAME = "ventes-" + "é" * 492 + "-2026.csv"  # 1,000 bytes: the upload's key, 1,014, is fine
BAD = b"sqft,price\n1,2\n"

# ------------------------------------------------------------------- the retrainer's keys


@pytest.mark.parametrize("name", ["houses.csv", LONG_NAME], ids=["short", "1000-byte"])
def test_a_long_upload_name_trains_and_reports_like_a_short_one(
    pipeline: Pipeline, name: str
) -> None:
    # Given S3's key limit (the pipeline's moto refuses longer keys, as AWS does)
    assert len((PREFIX + name).encode()) <= MAX_KEY_BYTES
    # When data under that name is uploaded
    response, judged = pipeline.run(name, month(0))
    # Then it is staged and promoted, as any good upload is
    assert only(response)["status"] == "staged"
    assert (decision(judged)["status"], decision(judged)["version"]) == ("production", "1")
    # And the archived data and its report are under keys S3 accepts
    written = pipeline.keys("datasets/") + pipeline.keys("reports/retrain/")
    assert len(written) == 3  # the dataset, its data report, the gate's decision
    assert max(len(key.encode()) for key in written) <= MAX_KEY_BYTES
    # And the lineage still names the upload in full
    manifest = pipeline.store.get_json(f"models/{MODEL}/1/manifest.json")
    data = manifest["lineage"]["data"][0]
    assert data["uri"].endswith(PREFIX + name)
    assert pipeline.report(data["report_uri"])["object"]["uri"] == data["uri"]


@pytest.mark.parametrize("name", ["bad.csv", LONG_NAME], ids=["short", "1000-byte"])
def test_bad_data_with_a_long_name_is_a_rejection_report_not_a_crash(
    pipeline: Pipeline, name: str
) -> None:
    outcome = only(pipeline.retrain(pipeline.upload(name, BAD)))

    assert outcome["status"] == "rejected"
    report_key = outcome["report_uri"].partition("/reports/")[2]
    assert len(f"reports/{report_key}".encode()) <= MAX_KEY_BYTES
    assert pipeline.report(outcome["report_uri"])["object"]["uri"].endswith(name)


# ----------------------------------------------------------------- moto refuses like AWS

Write = Callable[[Any, str], Any]
WRITES: dict[str, Write] = {
    "PutObject": lambda s3, key: s3.put_object(Bucket="keys", Key=key, Body=b"x" * 70_000),
    "CopyObject": lambda s3, key: s3.copy_object(
        Bucket="keys", Key=key, CopySource={"Bucket": "keys", "Key": "source"}
    ),
    "CreateMultipartUpload": lambda s3, key: s3.create_multipart_upload(Bucket="keys", Key=key),
}
AT_LIMIT = "k" * (MAX_KEY_BYTES - 2) + "é"  # 1,024 bytes, 1,023 characters
OVER = ["k" * (MAX_KEY_BYTES + 1), "é" * (MAX_KEY_BYTES // 2) + "k", "dir/" + "€" * 341]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """The local stack's moto server (``s3_limits.MotoServer``), in this process: its URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = MotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def server_s3(moto_server: str) -> Iterator[Any]:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="keys")
    s3.put_object(Bucket="keys", Key="source", Body=b"x")
    yield s3
    # moto's backends are process-wide (the in-process mock's too): leave them empty.
    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=5).close()


@pytest.fixture
def mock_s3(s3_key_limit: None) -> Iterator[Any]:
    """The tests' in-process moto with the ``s3_key_limit`` fixture."""
    with moto_resources():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="keys")
        s3.put_object(Bucket="keys", Key="source", Body=b"x")
        yield s3


@pytest.fixture(params=["local stack server", "in-process mock"])
def s3(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("server_s3" if request.param.startswith("local") else "mock_s3")


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("key", OVER, ids=["ascii", "two-byte", "three-byte"])
def test_a_key_over_1024_bytes_is_refused_as_aws_refuses_it(s3: Any, write: str, key: str) -> None:
    with pytest.raises(ClientError) as caught:
        WRITES[write](s3, key)

    error = caught.value.response
    assert error["Error"]["Code"] == "KeyTooLongError"
    assert error["Error"]["Message"] == "Your key is too long"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert key not in {o["Key"] for o in s3.list_objects_v2(Bucket="keys").get("Contents", [])}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_key_of_exactly_1024_bytes_is_accepted(s3: Any, write: str) -> None:
    WRITES[write](s3, AT_LIMIT)


def test_the_server_keeps_serving_after_a_refused_upload(server_s3: Any) -> None:
    with pytest.raises(ClientError):
        server_s3.put_object(Bucket="keys", Key="k" * 1025, Body=b"x" * 3_000_000)

    server_s3.put_object(Bucket="keys", Key="after", Body=b"ok")
    assert server_s3.get_object(Bucket="keys", Key="after")["Body"].read() == b"ok"
