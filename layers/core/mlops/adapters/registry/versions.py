"""The registry's version items: numbers allocated once, versions registered once (with the
staged candidate they came from), read back, listed, and their status set."""

from __future__ import annotations

from typing import Any

from mlops.adapters.registry.items import (
    _WRITABLE_STATUSES,
    _now,
    _pk,
    _record,
    _status_problem,
    _strings,
    _version_item,
    _version_key,
)
from mlops.adapters.registry.records import VersionRecord
from mlops.adapters.registry.table import RegistryTable
from mlops.domain.names import PRODUCTION
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError


class VersionItems(RegistryTable):
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

    def put_version(self, record: VersionRecord, *, candidate_id: str | None = None) -> None:
        """Register a version once; a second registration of it is a ``ConflictError``.

        With ``candidate_id`` the version and a ``candidate#<id>`` item naming it are written in
        one transaction, so a staged candidate is registered at most once: a retried gate finds
        its version (``version_for_candidate``) instead of registering another."""
        item = _version_item(record)
        if candidate_id is None:
            self._call(
                "put_item",
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                conflict=f"version {record.version} of {record.model} is already registered",
            )
            return
        self._transact(
            [
                (
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    f"version {record.version} of {record.model} is already registered",
                ),
                (
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                "pk": _pk(record.model),
                                "sk": {"S": f"candidate#{candidate_id}"},
                                "version": {"S": record.version},
                            },
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    f"candidate {candidate_id} of {record.model} is already registered",
                ),
            ]
        )

    def version_for_candidate(self, model: str, candidate_id: str) -> str | None:
        """The version a staged candidate was registered as, if it was."""
        item = self._get_item({"pk": _pk(model), "sk": {"S": f"candidate#{candidate_id}"}})
        return str(item["version"]["S"]) if item else None

    def get_version(self, model: str, version: str) -> VersionRecord | None:
        item = self._get_item(_version_key(model, version))
        return _record(model, item) if item else None

    def list_versions(self, model: str) -> list[VersionRecord]:
        return [_record(model, item) for item in self._query(model, "version#")]

    def set_status(
        self, model: str, version: str, status: str, reasons: tuple[str, ...] = ()
    ) -> None:
        """Set a registered version's status; ``reasons``, when given, replace its reasons
        (pass them all: the gate's and the new one).

        ``production`` is refused (only a promotion, which moves the alias in the same
        transaction, sets it), and so is changing the version production points at: move
        production off it first (promote another version, or roll back).
        """
        version = parse_version(version)
        if status not in _WRITABLE_STATUSES:
            raise _status_problem(status)
        record = self.get_version(model, version)
        if record is None:
            raise ConflictError(f"version {version} of {model} is not registered")
        if record.status == PRODUCTION:
            raise ConflictError(
                f"version {version} of {model} is in production: promote another version "
                "or roll back before changing its status"
            )
        expression = "SET #status = :status, updated_at = :now"
        values: dict[str, Any] = {
            ":status": {"S": status},
            ":now": {"S": _now()},
            ":production": {"S": PRODUCTION},
        }
        if reasons:
            expression += ", reasons = :reasons"
            values[":reasons"] = _strings(tuple(reasons))
        self._call(
            "update_item",
            TableName=self.table,
            Key=_version_key(model, version),
            UpdateExpression=expression,
            # Guards the read above: the version was promoted in between.
            ConditionExpression="attribute_exists(sk) AND #status <> :production",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            conflict=f"version {version} of {model} was promoted while its status was being set",
        )
