"""The local API's ASGI app, driven directly: the cases a socket cannot drive reliably."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from mlops_cli.emulator.api import API_GATEWAY_MAX_BODY, LocalApi, build_event
from mlops_cli.emulator.template import Route

Message = MutableMapping[str, Any]


class RecordingFunction:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.result


class FakeStack:
    def __init__(self, result: Any = None) -> None:
        self.routes = [Route("POST", "/p", "F")]
        self.functions = {"F": RecordingFunction(result)}


def scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/p",
        "raw_path": b"/p",
        "query_string": b"",
        "headers": headers or [],
        "client": ("127.0.0.1", 5000),
    }


def serve(
    api: LocalApi, messages: list[Message], headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[list[Message], int]:
    """Run one request through the app; returns what it sent and how many receives it made."""
    sent: list[Message] = []
    received = 0

    async def receive() -> Message:
        nonlocal received
        received += 1
        return messages[min(received, len(messages)) - 1]

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        asyncio.run(api(scope(headers), receive, send))
    finally:
        api.stop()
    return sent, received


def status_and_json(sent: list[Message]) -> tuple[int, Any]:
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_a_chunked_body_growing_past_10_mib_is_413_and_reading_stops() -> None:
    # Given a client streaming 1 MiB chunks with no end
    stack = FakeStack()
    api = LocalApi(stack, 0)
    endless: list[Message] = [
        {"type": "http.request", "body": b"x" * 1024 * 1024, "more_body": True}
    ]
    sent, received = serve(api, endless)
    # Then the body is refused just past the limit, and the connection will close
    assert status_and_json(sent) == (413, {"message": "Request Entity Too Large"})
    assert (b"connection", b"close") in sent[0]["headers"]
    assert received == API_GATEWAY_MAX_BODY // (1024 * 1024) + 1
    assert stack.functions["F"].events == []


def test_a_client_that_disconnects_mid_body_gets_no_response_and_no_invocation() -> None:
    stack = FakeStack()
    sent, _ = serve(
        LocalApi(stack, 0),
        [
            {"type": "http.request", "body": b"{", "more_body": True},
            {"type": "http.disconnect"},
        ],
    )
    assert sent == []
    assert stack.functions["F"].events == []


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "abc"},
        {"statusCode": 999},
        {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"},
        {"statusCode": 200, "headers": {"x-injected": "a\r\nset-cookie: evil=1"}},
        {"statusCode": 200, "headers": {"x-emoji": "☕"}},
    ],
)
def test_a_result_api_gateway_cannot_map_is_a_json_500(
    result: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sent, _ = serve(LocalApi(FakeStack(result), 0), [{"type": "http.request", "body": b""}])
    assert status_and_json(sent) == (500, {"message": "Internal Server Error"})
    assert "Traceback" in capsys.readouterr().err


def test_a_bare_string_result_is_sent_as_is_with_a_json_content_type() -> None:
    sent, _ = serve(LocalApi(FakeStack("hello"), 0), [{"type": "http.request", "body": b""}])
    assert sent[0]["status"] == 200
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert sent[1]["body"] == b"hello"


def test_a_non_json_bytes_result_is_api_gateways_500() -> None:
    # awslambdaric posts a handler's bytes as application/unknown; API Gateway answers 500
    sent, _ = serve(LocalApi(FakeStack(b"\x00raw"), 0), [{"type": "http.request", "body": b""}])
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"message": "Internal Server Error"}


def test_handler_framing_headers_are_replaced_by_the_real_content_length() -> None:
    result = {"statusCode": 200, "headers": {"Content-Length": "999", "Connection": "close"}}
    sent, _ = serve(LocalApi(FakeStack(result | {"body": "ok"}), 0), [{"type": "http.request"}])
    assert sent[0]["headers"] == [(b"content-length", b"2")]


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain", b"caf\xe9", (True, base64.b64encode(b"caf\xe9").decode())),
        ("application/json", "café".encode(), (False, "café")),
        ("application/vnd.api+json", b"{}", (False, "{}")),
        ("image/png", b"{}", (True, "e30=")),
        ("", b"x", (True, "eA==")),
    ],
)
def test_bodies_are_text_only_when_typed_as_text_and_valid_utf8(
    content_type: str, body: bytes, expected: tuple[bool, str]
) -> None:
    event = build_event(
        Route("POST", "/p", "F"),
        method="POST",
        target="/p",
        headers={"content-type": content_type},
        body=body,
        source_ip="127.0.0.1",
        host="h",
    )
    assert (event["isBase64Encoded"], event["body"]) == expected


def test_an_empty_body_is_absent_and_not_base64() -> None:
    event = build_event(
        Route("GET", "/p", "F"),
        method="GET",
        target="/p",
        headers={},
        body=b"",
        source_ip="127.0.0.1",
        host="h",
    )
    assert "body" not in event
    assert event["isBase64Encoded"] is False
