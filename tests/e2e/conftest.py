"""Helpers for the e2e tests: the `mlops` command as a user runs it, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

MLOPS = [sys.executable, "-m", "mlops_cli"]


def user_env(cwd: Path) -> dict[str, str]:
    """A user's shell: none of the test process's AWS or Powertools settings, and the record of
    the running stack in the test's own folder (``MLOPS_HOME``), so stacks of tests running
    side by side never see each other."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    return env | {"MLOPS_HOME": str(cwd / ".mlops")}


def mlops(
    cwd: Path,
    *args: str,
    stdin: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``env``: variables over the user's shell (``user_env``)."""
    return subprocess.run(
        [*MLOPS, *args],
        cwd=cwd,
        env=user_env(cwd) | (env or {}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Running:
    process: subprocess.Popen[str]
    url: str
    lines: list[str]
    cwd: Path


def start_local(cwd: Path, *args: str, template: bool = True) -> Running:
    """`mlops local` on a port of the system's choosing (``--port 0``: a port picked here could
    be taken by another test's stack before this one binds it), once it prints `Listening on`
    (fails if it exits first). ``template=False``: no ``--template``, the stack finds its own."""
    given = ["--template", str(ROOT / "template.yaml")] if template else []
    process = subprocess.Popen(
        [*MLOPS, "local", "--port", "0", *given, *args],
        cwd=cwd,
        env=user_env(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Listening on "):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    while not ready.wait(0.5):
        if process.poll() is not None:
            pytest.fail("mlops local exited:\n" + "\n".join(lines[-40:]))
    url = next(line for line in lines if line.startswith("Listening on "))
    return Running(process, url.removeprefix("Listening on ").strip(), lines, cwd)
