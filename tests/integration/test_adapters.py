"""The S3 model store and the DynamoDB registry against moto: failures become our errors,
writes that must happen once happen once, and nothing is written from a bad version string."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from mlops.adapters import aws
from mlops.adapters.aws import CLIENT_CONFIG
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry, VersionRecord
from mlops.domain.layout import version_prefix
from mlops.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from tests.conftest import BUCKET, REGION, TABLE, moto_resources

# Port 9 (discard) on loopback: nothing listens, so every connection is refused at once.
REFUSING_ENDPOINT = "http://127.0.0.1:9"
ARABIC_INDIC_ONE = "\u0661"  # int() accepts it; a version must not
# "0" sits just below the smallest version, "10000000000" (11 digits) just above the largest.
NON_CANONICAL_VERSIONS = [
    "01",
    " 1",
    "+2",
    ARABIC_INDIC_ONE,
    "abc",
    "../1",
    "1.0",
    "",
    "0",
    "10000000000",
]


_models = itertools.count(1)


@pytest.fixture(scope="module")
def shared_moto() -> Iterator[None]:
    with moto_resources():
        yield


@pytest.fixture
def moto(shared_moto: None) -> None:
    """One moto backend for the whole module: a bucket, a table and fresh clients per test
    cost about a second each. Every test works on its own model name (``model``), so no
    test sees another's objects or items."""


@pytest.fixture
def model(moto: None) -> str:
    return f"model-{next(_models)}"


def record(model: str, version: str, sha: str = "a" * 64) -> VersionRecord:
    return VersionRecord(
        model=model,
        version=version,
        created_at="2025-01-01T00:00:00+00:00",
        manifest_key=version_prefix(model, version) + "manifest.json",
        model_sha256=sha,
        metrics={"rmse": 1.5},
        status="registered",
    )


def keys_under(prefix: str) -> set[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


def registry_items(model: str) -> list[dict[str, Any]]:
    response = aws.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"model#{model}"}},
    )
    return list(response["Items"])


# ------------------------------------------------------------------------------ model store


def test_reading_a_missing_key_is_not_found(store: ModelStore, model: str) -> None:
    key = version_prefix(model, "1") + "model.onnx"
    with pytest.raises(NotFoundError, match=key):
        store.get_bytes(key)


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.get_bytes("models/m/1/model.onnx"),
        lambda s: s.get_json("models/m/1/manifest.json"),
        lambda s: s.put_bytes("models/m/1/model.onnx", b"x"),
        lambda s: s.put_bytes("models/m/1/model.onnx", b"x", immutable=True),
    ],
    ids=["get_bytes", "get_json", "put_bytes", "put_bytes_immutable"],
)
def test_a_missing_bucket_is_a_storage_error_not_a_missing_object(
    moto: None, operation: Callable[[ModelStore], Any]
) -> None:
    # Given a store whose bucket does not exist (S3 answers NoSuchBucket, not NoSuchKey)
    store = ModelStore("no-such-bucket", aws.client("s3"))
    # Then the failure is a storage failure; NotFoundError would mean "that version is absent"
    with pytest.raises(StorageError, match="no-such-bucket") as caught:
        operation(store)
    assert not isinstance(caught.value, NotFoundError | ConflictError)


def test_invalid_json_is_a_storage_error(store: ModelStore, model: str) -> None:
    key = version_prefix(model, "1") + "manifest.json"
    store.put_bytes(key, b'{"model_name": "m",')
    with pytest.raises(StorageError, match="not valid JSON"):
        store.get_json(key)


def test_valid_json_round_trips(store: ModelStore, model: str) -> None:
    key = version_prefix(model, "1") + "manifest.json"
    store.put_bytes(key, json.dumps({"version": "1"}).encode())
    assert store.get_json(key) == {"version": "1"}


def test_an_immutable_write_conflicts_the_second_time_and_keeps_the_first_body(
    store: ModelStore, model: str
) -> None:
    key = version_prefix(model, "1") + "model.onnx"
    store.put_bytes(key, b"first", immutable=True)
    with pytest.raises(ConflictError, match=key):
        store.put_bytes(key, b"second", immutable=True)
    assert store.get_bytes(key) == b"first"


def test_a_mutable_write_replaces_the_body(store: ModelStore, model: str) -> None:
    key = f"models/{model}/baseline.json"
    store.put_bytes(key, b"first")
    store.put_bytes(key, b"second")
    assert store.get_bytes(key) == b"second"


def test_put_version_writes_every_file_under_the_version_prefix(
    store: ModelStore, model: str
) -> None:
    files = {"manifest.json": b"{}", "model.onnx": b"onnx", "baseline.json": b"{}"}
    prefix = store.put_version(model, "1", files)
    assert prefix == f"models/{model}/1/"
    assert keys_under(prefix) == {prefix + name for name in files}
    assert store.get_bytes(prefix + "model.onnx") == b"onnx"


@pytest.mark.parametrize("existing", ["model.onnx", "baseline.json"])
def test_put_version_writes_the_manifest_last(store: ModelStore, model: str, existing: str) -> None:
    # Given a version where one artifact is already present (an earlier, interrupted write)
    prefix = version_prefix(model, "1")
    store.put_bytes(prefix + existing, b"earlier")
    # When the version is written with the manifest first in the mapping
    files = {"manifest.json": b"{}", "model.onnx": b"onnx", "baseline.json": b"{}"}
    with pytest.raises(ConflictError, match=existing):
        store.put_version(model, "1", files)
    # Then the conflicting write stopped it before the manifest, so the version stays
    # incomplete (no manifest, nothing loads it) and the earlier object is untouched
    assert prefix + "manifest.json" not in keys_under(prefix)
    assert store.get_bytes(prefix + existing) == b"earlier"


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.get_bytes("models/m/1/model.onnx"),
        lambda s: s.put_bytes("models/m/1/model.onnx", b"x", immutable=True),
    ],
    ids=["get", "put"],
)
def test_an_unreachable_s3_is_a_storage_error_promptly(
    monkeypatch: pytest.MonkeyPatch, operation: Callable[[ModelStore], Any]
) -> None:
    # A real connection attempt, refused: botocore raises EndpointConnectionError (a
    # BotoCoreError, not a ClientError). moto passes non-AWS endpoints through untouched.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    store = ModelStore(BUCKET, _refusing_client("s3"))
    started = time.perf_counter()
    with pytest.raises(StorageError, match="Could not connect"):
        operation(store)
    # Two refused attempts and one short backoff: well inside the function timeout
    assert time.perf_counter() - started < 3.0


# -------------------------------------------------------------------------------- registry


def test_version_numbers_are_allocated_one_two_three_per_model(
    registry: Registry, model: str
) -> None:
    assert [registry.next_version(model) for _ in range(3)] == ["1", "2", "3"]
    assert registry.next_version(model + "-other") == "1"


def test_registering_a_version_twice_conflicts_and_keeps_the_first(
    registry: Registry, model: str
) -> None:
    registry.put_version(record(model, "1", sha="a" * 64))
    with pytest.raises(ConflictError, match=f"version 1 of {model}"):
        registry.put_version(record(model, "1", sha="b" * 64))
    stored = registry.get_version(model, "1")
    assert stored is not None
    assert stored.model_sha256 == "a" * 64


def test_an_unregistered_version_and_an_unset_alias_read_as_none(
    registry: Registry, model: str
) -> None:
    assert registry.get_version(model, "1") is None
    assert registry.get_alias(model, "production") is None


def test_the_first_promotion_sets_the_alias(registry: Registry, model: str) -> None:
    registry.move_alias(model, "production", "1", expected=None)
    assert registry.get_alias(model, "production") == "1"


def test_a_second_first_promotion_conflicts_and_leaves_the_alias(
    registry: Registry, model: str
) -> None:
    # Given two trainers that both read "no production alias" and race to promote
    registry.move_alias(model, "production", "1", expected=None)
    # When the slower one writes
    with pytest.raises(ConflictError, match="alias production"):
        registry.move_alias(model, "production", "2", expected=None)
    # Then the first promotion stands
    assert registry.get_alias(model, "production") == "1"


def test_a_stale_expected_version_conflicts_and_leaves_the_alias(
    registry: Registry, model: str
) -> None:
    registry.move_alias(model, "production", "1", expected=None)
    registry.move_alias(model, "production", "2", expected="1")
    with pytest.raises(ConflictError, match="expected 1"):
        registry.move_alias(model, "production", "3", expected="1")
    assert registry.get_alias(model, "production") == "2"


def test_the_current_expected_version_moves_the_alias(registry: Registry, model: str) -> None:
    registry.move_alias(model, "production", "1", expected=None)
    registry.move_alias(model, "production", "2", expected="1")
    assert registry.get_alias(model, "production") == "2"


def test_listings_follow_every_page(registry: Registry, model: str) -> None:
    # Given 5 versions (registered out of order) and 3 aliases, read 2 items per page
    for version in ["3", "1", "5", "2", "4"]:
        registry.put_version(record(model, version))
    for alias, version in {"production": "4", "candidate": "5", "shadow": "3"}.items():
        registry.move_alias(model, alias, version, expected=None)
    paged = Registry(TABLE, aws.client("dynamodb"), page_size=2)
    # (Limit=2 does stop a query after 2 items with a LastEvaluatedKey: one query without
    # the pagination loop would return 2 versions and 2 aliases, and this test would fail.)
    first_page = aws.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": f"model#{model}"}, ":prefix": {"S": "version#"}},
        Limit=2,
    )
    assert len(first_page["Items"]) == 2
    assert "LastEvaluatedKey" in first_page
    # Then every version comes back, in version order, and every alias
    assert [r.version for r in paged.list_versions(model)] == ["1", "2", "3", "4", "5"]
    assert paged.aliases(model) == {"production": "4", "candidate": "5", "shadow": "3"}


def test_versions_list_in_numeric_not_string_order(registry: Registry, model: str) -> None:
    for version in ["10", "9", "100", "2"]:
        registry.put_version(record(model, version))
    assert [r.version for r in registry.list_versions(model)] == ["2", "9", "10", "100"]


@pytest.mark.parametrize(
    "operation",
    [
        lambda r: r.next_version("m"),
        lambda r: r.put_version(record("m", "1")),
        lambda r: r.get_version("m", "1"),
        lambda r: r.list_versions("m"),
        lambda r: r.aliases("m"),
        lambda r: r.get_alias("m", "production"),
        lambda r: r.move_alias("m", "production", "1", expected=None),
    ],
    ids=["next_version", "put_version", "get_version", "list", "aliases", "get_alias", "move"],
)
def test_a_missing_table_is_a_storage_error(
    moto: None, operation: Callable[[Registry], Any]
) -> None:
    registry = Registry("no-such-table", aws.client("dynamodb"))
    with pytest.raises(StorageError, match="no-such-table"):
        operation(registry)


def test_an_unreachable_dynamodb_is_a_storage_error_promptly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    registry = Registry(TABLE, _refusing_client("dynamodb"))
    started = time.perf_counter()
    with pytest.raises(StorageError, match="Could not connect"):
        registry.aliases("m")
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize("version", NON_CANONICAL_VERSIONS)
def test_an_alias_never_moves_to_a_non_canonical_version(
    registry: Registry, model: str, version: str
) -> None:
    with pytest.raises(InvalidInputError):
        registry.move_alias(model, "production", version, expected=None)
    assert registry_items(model) == []


@pytest.mark.parametrize("version", NON_CANONICAL_VERSIONS)
def test_a_non_canonical_version_is_never_registered(
    registry: Registry, model: str, version: str
) -> None:
    with pytest.raises(InvalidInputError):
        registry.put_version(record(model, version))
    assert registry_items(model) == []


@pytest.mark.parametrize("version", ["1", "9999999999"])
def test_the_smallest_and_largest_versions_register_and_read_back(
    registry: Registry, model: str, version: str
) -> None:
    registry.put_version(record(model, version))
    registry.move_alias(model, "production", version, expected=None)
    stored = registry.get_version(model, version)
    assert stored is not None
    assert stored.version == version
    assert registry.aliases(model) == {"production": version}


@pytest.mark.parametrize("version", ["01", "1.0", ARABIC_INDIC_ONE])
def test_reading_a_non_canonical_version_is_invalid_input(
    registry: Registry, model: str, version: str
) -> None:
    # Given version 1 registered: "01" must not read it back as if it were "1"
    registry.put_version(record(model, "1"))
    with pytest.raises(InvalidInputError):
        registry.get_version(model, version)


def _refusing_client(service: str) -> Any:
    """A client with the project's timeouts and retries, pointed at a port nobody serves."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=REFUSING_ENDPOINT,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CLIENT_CONFIG,
    )
