"""The registry table's calls: each DynamoDB error becomes ours (a failed condition a
``ConflictError`` saying what it meant), queries read every page, transactions name the
condition that failed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.adapters.registry.items import _pk
from mlops.errors import ConflictError, StorageError


class RegistryTable:
    def __init__(self, table: str, dynamodb: Any, *, page_size: int | None = None) -> None:
        """``page_size`` caps items per query page (DynamoDB pages at 1 MB by itself)."""
        self.table = table
        self._db = dynamodb
        self._page_size = page_size

    def _get_item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The item at ``key``, read consistently; None if there is none."""
        response = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _query(
        self, model: str, prefix: str, *, newest_first: bool = False, page: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The items of ``model`` whose sort key starts with ``prefix``, one query page at a
        time (``page`` items a page unless the table's ``page_size`` says otherwise)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": _pk(model), ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        if newest_first:
            kwargs["ScanIndexForward"] = False
        limit = self._page_size or page
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _transact(self, operations: list[tuple[dict[str, Any], str]]) -> None:
        """Write ``operations`` (each with what its condition failing means) atomically.

        botocore gives the call a ClientRequestToken and reuses it on retry, so a retry after
        a lost response is not mistaken for a conflict.
        """
        try:
            self._db.transact_write_items(TransactItems=[op for op, _ in operations])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "TransactionCanceledException":
                raise StorageError(f"registry transaction on {self.table} failed: {exc}") from exc
            codes = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            failed = [
                meaning
                for (_, meaning), reason in zip(operations, codes, strict=False)
                if reason == "ConditionalCheckFailed"
            ]
            if failed:
                raise ConflictError("; ".join(failed)) from exc
            if "TransactionConflict" in codes:
                raise ConflictError(
                    "another write to the same registry items was in progress: read the "
                    "registry again and retry"
                ) from exc
            raise StorageError(
                f"registry transaction on {self.table} was cancelled ({', '.join(codes)})"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"registry transaction on {self.table} failed: {exc}") from exc

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
