"""`mlops invoke`: `sam local invoke` without Docker — the template's function in its own
execution environment, on any event in events/."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_cli.emulator.stack import LocalStack
from tests.conftest import EVENTS, ROOT
from tests.e2e.conftest import mlops

pytestmark = pytest.mark.e2e
HTTP_EVENTS = sorted(p.name for p in EVENTS.glob("http_*.json"))
OTHER_EVENTS = sorted(p.name for p in EVENTS.glob("*.json") if not p.name.startswith("http_"))


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A fresh local stack (moto + the template's resources + the runtime), no model yet."""
    local = LocalStack(ROOT / "template.yaml")
    local.start()
    yield local
    local.stop()


@pytest.mark.parametrize("name", HTTP_EVENTS)
def test_every_http_event_gets_an_http_answer_from_the_inference_function(
    stack: LocalStack, name: str
) -> None:
    assert stack.runtime is not None
    invocation = stack.runtime.invoke("InferenceFunction", json.loads((EVENTS / name).read_text()))
    assert invocation.ok, invocation.payload
    # No model is registered in this fresh stack: the routes answer 503, as documented
    assert invocation.payload["statusCode"] == 503
    assert json.loads(invocation.payload["body"])["error"]["code"] == "model_unavailable"


@pytest.mark.parametrize("name", OTHER_EVENTS)
def test_every_other_event_is_a_clear_invalid_event_answer(stack: LocalStack, name: str) -> None:
    assert stack.runtime is not None
    invocation = stack.runtime.invoke("InferenceFunction", json.loads((EVENTS / name).read_text()))
    assert invocation.ok, invocation.payload
    assert invocation.payload["statusCode"] == 400
    assert json.loads(invocation.payload["body"])["error"]["code"] == "invalid_event"


def test_the_cli_invokes_a_function_from_a_file_and_from_stdin(tmp_path: Path) -> None:
    template = str(ROOT / "template.yaml")
    from_file = mlops(
        tmp_path,
        "invoke",
        "InferenceFunction",
        "--event",
        str(EVENTS / "http_health.json"),
        "--template",
        template,
    )
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["statusCode"] == 503
    # The function's logs, Lambda's START/REPORT lines included, go to stderr
    assert "InferenceFunction | START RequestId: " in from_file.stderr
    assert "Init Duration: " in from_file.stderr
    from_stdin = mlops(
        tmp_path,
        "invoke",
        "InferenceFunction",
        "--event",
        "-",
        "--template",
        template,
        stdin=(EVENTS / "http_model.json").read_text(),
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout)["statusCode"] == 503


def test_an_unknown_function_or_a_bad_event_file_is_an_error_line(tmp_path: Path) -> None:
    template = str(ROOT / "template.yaml")
    unknown = mlops(
        tmp_path,
        "invoke",
        "NoSuchFunction",
        "--event",
        str(EVENTS / "http_health.json"),
        "--template",
        template,
    )
    assert unknown.returncode == 2
    assert "has no function 'NoSuchFunction'; it has InferenceFunction" in unknown.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = mlops(
        tmp_path, "invoke", "InferenceFunction", "--event", "bad.json", "--template", template
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: bad.json is not JSON")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    latin1 = mlops(
        tmp_path, "invoke", "InferenceFunction", "--event", "latin1.json", "--template", template
    )
    assert latin1.returncode == 2
    assert latin1.stderr.startswith("error: latin1.json is not UTF-8 text")


def test_a_stale_state_file_does_not_stop_invoke_from_running_on_a_fresh_stack(
    tmp_path: Path,
) -> None:
    (tmp_path / ".mlops").mkdir()
    (tmp_path / ".mlops" / "local.json").write_text(
        json.dumps({"pid": 2**22 + 7, "endpoint": "http://127.0.0.1:9", "outputs": {}})
    )
    result = mlops(
        tmp_path,
        "invoke",
        "InferenceFunction",
        "--event",
        str(EVENTS / "http_health.json"),
        "--template",
        str(ROOT / "template.yaml"),
    )
    assert result.returncode == 0, result.stderr
    assert "note: the local stack is not running" in result.stderr
    assert json.loads(result.stdout)["statusCode"] == 503


def test_mlops_local_on_a_port_in_use_fails_at_once_with_an_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = mlops(
            tmp_path, "local", "--port", str(port), "--template", str(ROOT / "template.yaml")
        )
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Trained" not in result.stdout  # refused before any training
