"""The model registry in DynamoDB: versions, aliases and a version counter per model.

One table, ``pk = model#<name>``; ``sk`` is ``version#<zero-padded>``, ``alias#<name>`` or
``counter``. Aliases move only with a conditional write on the version they are expected to
point at, so two promotions racing cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.versions import parse_version
from mlops.errors import ConflictError, StorageError


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    created_at: str
    manifest_key: str
    model_sha256: str
    metrics: Mapping[str, float]
    status: str


def _pk(model: str) -> dict[str, str]:
    return {"S": f"model#{model}"}


def _version_sk(version: str) -> dict[str, str]:
    return {"S": f"version#{int(parse_version(version)):010d}"}


class Registry:
    def __init__(self, table: str, dynamodb: Any, *, page_size: int | None = None) -> None:
        """``page_size`` caps items per query page (DynamoDB pages at 1 MB by itself)."""
        self.table = table
        self._db = dynamodb
        self._page_size = page_size

    def next_version(self, model: str) -> str:
        """Allocate the next version number atomically (1, 2, 3, ...)."""
        response = self._call(
            "update_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": "counter"}},
            UpdateExpression="ADD next_version :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return str(response["Attributes"]["next_version"]["N"])

    def put_version(self, record: VersionRecord) -> None:
        self._call(
            "put_item",
            TableName=self.table,
            Item={
                "pk": _pk(record.model),
                "sk": _version_sk(record.version),
                "version": {"S": record.version},
                "created_at": {"S": record.created_at},
                "manifest_key": {"S": record.manifest_key},
                "model_sha256": {"S": record.model_sha256},
                "metrics": {"S": json.dumps(dict(record.metrics))},
                "status": {"S": record.status},
            },
            ConditionExpression="attribute_not_exists(sk)",
            conflict=f"version {record.version} of {record.model} is already registered",
        )

    def get_version(self, model: str, version: str) -> VersionRecord | None:
        response = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": _version_sk(version)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _record(model, item) if item else None

    def list_versions(self, model: str) -> list[VersionRecord]:
        items = self._query(model, "version#")
        return [_record(model, item) for item in items]

    def aliases(self, model: str) -> dict[str, str]:
        """Every alias of ``model`` and the version it points at."""
        return {
            item["sk"]["S"].removeprefix("alias#"): item["version"]["S"]
            for item in self._query(model, "alias#")
        }

    def get_alias(self, model: str, alias: str) -> str | None:
        response = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": f"alias#{alias}"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["version"]["S"]) if item else None

    def move_alias(self, model: str, alias: str, version: str, expected: str | None) -> None:
        """Point ``alias`` at ``version`` if it still points at ``expected`` (None: unset)."""
        version = parse_version(version)
        condition = "attribute_not_exists(version)" if expected is None else "version = :expected"
        values: dict[str, Any] = {
            ":version": {"S": version},
            ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
        }
        if expected is not None:
            values[":expected"] = {"S": expected}
        previous = {"S": expected} if expected is not None else {"NULL": True}
        values[":previous"] = previous
        self._call(
            "update_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": f"alias#{alias}"}},
            UpdateExpression=(
                "SET version = :version, updated_at = :now, previous_version = :previous"
            ),
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            conflict=f"alias {alias} of {model} moved since it was read (expected {expected})",
        )

    def _query(self, model: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": _pk(model), ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            kwargs["Limit"] = self._page_size
        while True:
            response = self._call("query", **kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _call(self, operation: str, conflict: str | None = None, **kwargs: Any) -> Any:
        try:
            return getattr(self._db, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if conflict and code == "ConditionalCheckFailedException":
                raise ConflictError(conflict) from exc
            raise StorageError(f"registry {operation} on {self.table} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"registry {operation} on {self.table} failed: {exc}") from exc


def _record(model: str, item: Mapping[str, Any]) -> VersionRecord:
    return VersionRecord(
        model=model,
        version=item["version"]["S"],
        created_at=item["created_at"]["S"],
        manifest_key=item["manifest_key"]["S"],
        model_sha256=item["model_sha256"]["S"],
        metrics=json.loads(item["metrics"]["S"]),
        status=item["status"]["S"],
    )
