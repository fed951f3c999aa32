"""The Lambda service as the event sources see it: the runtime's interface they invoke (the local
runtime's ``LocalRuntime`` and ``Invocation`` fit it) and the millisecond timestamps AWS writes in
the records it delivers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

# ``EventSources.invoke_async``: queue an event for a function, answer its request id.
InvokeAsync = Callable[[str, Any], str]


class InvocationResult(Protocol):
    """What the sources read from an invocation: the runtime's ``Invocation`` fits."""

    @property
    def request_id(self) -> str: ...
    @property
    def payload(self) -> Any: ...
    @property
    def error_type(self) -> str | None: ...


class LogLineLike(Protocol):
    @property
    def function(self) -> str: ...
    @property
    def timestamp_ms(self) -> int: ...
    @property
    def message(self) -> str: ...


class Invoker(Protocol):
    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Blocking and thread-safe; ``function`` is the template's logical id."""
        ...


def iso_ms(moment: datetime) -> str:
    """``2025-03-01T14:02:03.456Z``: an event record's time, in UTC to the millisecond."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
