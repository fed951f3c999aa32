"""Helpers for the local Lambda runtime's tests: fixture handlers, specs and a log sink."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from mlops_cli.emulator.runtime import FunctionSpec, LogLine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runtime"
HANDLERS = FIXTURES / "handlers"
LAYER = FIXTURES / "layer" / "python"


def function_spec(logical_id: str, handler: str, **overrides: Any) -> FunctionSpec:
    """A spec for a handler of tests/fixtures/runtime/handlers/app.py."""
    values: dict[str, Any] = {
        "logical_id": logical_id,
        "physical_name": f"runtime-test-{logical_id}",
        "code_dir": HANDLERS,
        "handler": f"app.{handler}",
        "environment": {},
    }
    return FunctionSpec(**(values | overrides))


@dataclass
class LogSink:
    """Collects the runtime's LogLines (delivered on the runtime's thread)."""

    lines: list[LogLine] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, line: LogLine) -> None:
        with self.lock:
            self.lines.append(line)

    def messages(self, request_id: str) -> list[str]:
        with self.lock:
            return [line.message for line in self.lines if line.request_id == request_id]


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for init to reap it counts)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def processes_of(function_name: str) -> list[psutil.Process]:
    """Our descendants that run (or descend from) the function ``function_name``."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.environ().get("AWS_LAMBDA_FUNCTION_NAME") == function_name:
                found.append(child)
        except psutil.Error:
            continue  # exited meanwhile, or a zombie without an environment
    return found
