"""EventBridge: put an event on the stack's bus (the drift evaluator's retrain request)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import StorageError


class EventBus:
    def __init__(self, name: str, events: Any) -> None:
        self.name = name
        self._events = events

    def put(self, entry: Mapping[str, Any]) -> str:
        """Put one ``PutEvents`` entry; returns its event id. A refused entry is an error,
        not a silent drop (PutEvents answers 200 with ``FailedEntryCount``)."""
        try:
            response = self._events.put_events(Entries=[dict(entry) | {"EventBusName": self.name}])
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot put an event on {self.name}: {exc}") from exc
        result = (response.get("Entries") or [{}])[0]
        if response.get("FailedEntryCount") or "EventId" not in result:
            raise StorageError(
                f"{self.name} refused the event: {result.get('ErrorCode')} "
                f"{result.get('ErrorMessage')}"
            )
        return str(result["EventId"])
