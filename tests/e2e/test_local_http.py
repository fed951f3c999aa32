"""The local HTTP API over real sockets, against a fake stack: a real server, shaped like API
Gateway HTTP API (payload 2.0), without moto or a trained model."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.emulator.api import API_GATEWAY_MAX_BODY, LocalApi
from mlops_cli.emulator.template import Route

BODY_TIMEOUT = 0.5
NOT_FOUND = {"message": "Not Found"}


@dataclass
class FakeFunction:
    """A handler stand-in that records the events it receives."""

    respond: Callable[[dict[str, Any]], Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.respond(event)


@dataclass
class FakeStack:
    routes: list[Route]
    functions: dict[str, FakeFunction]


def echo(event: dict[str, Any]) -> Any:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"path": event["rawPath"]}),
    }


def boom(event: dict[str, Any]) -> Any:
    raise RuntimeError("handler exploded")


SHAPED_BYTES = b"\x89PNG\r\n\x1a\n\x00\xff"


def shaped(event: dict[str, Any]) -> Any:
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "image/png", "X-One": 1},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
        "isBase64Encoded": True,
        "body": base64.b64encode(SHAPED_BYTES).decode(),
    }


@dataclass
class Harness:
    api: LocalApi
    functions: dict[str, FakeFunction]
    slow_release: threading.Event

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.functions[name].events

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=10)

    def raw(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.api.port), timeout=5)


@pytest.fixture(scope="module")
def served() -> Iterator[Harness]:
    """One server for the module (stopping one takes ~0.2 s); ``harness`` resets it per test."""
    release = threading.Event()

    def slow(event: dict[str, Any]) -> Any:
        release.wait(5)
        return {"statusCode": 200, "body": "slow"}

    functions = {
        "Echo": FakeFunction(echo),
        "Health": FakeFunction(lambda event: {"status": "ok"}),
        "Boom": FakeFunction(boom),
        "Shaped": FakeFunction(shaped),
        "Slow": FakeFunction(slow),
    }
    routes = [
        Route("POST", "/echo", "Echo"),
        Route("GET", "/items/{id}", "Echo"),
        Route("ANY", "/files/{proxy+}", "Echo"),
        Route("GET", "/health", "Health"),
        Route("POST", "/boom", "Boom"),
        Route("GET", "/shaped", "Shaped"),
        Route("GET", "/slow", "Slow"),
    ]
    api = LocalApi(FakeStack(routes, functions), 0, body_timeout=BODY_TIMEOUT)
    api.start()
    yield Harness(api, functions, release)
    release.set()
    api.stop()


@pytest.fixture
def harness(served: Harness) -> Iterator[Harness]:
    for function in served.functions.values():
        function.events.clear()
    served.slow_release.clear()
    yield served
    served.slow_release.set()  # never leave a handler thread blocked


def call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response, response.read()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a content-length, read from a raw socket."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {buffer!r}")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(status_line.split()[1]), headers, rest[:length]


def test_port_zero_binds_a_free_port_and_reports_it(harness: Harness) -> None:
    assert harness.api.port > 0
    assert harness.api.url == f"http://127.0.0.1:{harness.api.port}"


def test_keep_alive_requests_reuse_one_connection_without_stalls(harness: Harness) -> None:
    # Given one keep-alive connection
    conn = harness.connect()
    call(conn, "GET", "/health")
    first_socket = conn.sock
    # When 200 requests go over it one after the other
    round_trips = []
    for _ in range(200):
        started = time.perf_counter()
        status, _, body = call(conn, "GET", "/health")
        round_trips.append(time.perf_counter() - started)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
    # Then the connection was never reopened and no request waited on Nagle/delayed ACK (~40 ms)
    assert conn.sock is first_socket
    assert statistics.median(round_trips) < 0.005
    conn.close()


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped on a full listen backlog (``TcpExt:
    ListenOverflows``, this network namespace), or None where it cannot be read."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            found = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(found["ListenOverflows"]) if "ListenOverflows" in found else None
    return None


def test_sixteen_concurrent_clients_all_succeed_without_stalls(harness: Harness) -> None:
    # Given 16 clients that each open a new connection per request, all at once
    overflows = listen_overflows()
    start = threading.Barrier(16)
    results: list[tuple[int, bytes]] = []
    slowest: list[float] = []
    errors: list[BaseException] = []

    def client(number: int) -> None:
        try:
            start.wait()
            for i in range(10):
                conn = harness.connect()
                started = time.perf_counter()
                status, _, body = call(conn, "GET", f"/items/{number}-{i}")
                slowest.append(time.perf_counter() - started)
                results.append((status, body))
                conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then every request succeeded and none stalled on a full listen backlog: the kernel
    # dropped no connection for it (a dropped SYN is retried after 1 s, then 3 s: a stall a
    # wall-clock bound cannot tell from a loaded machine's slow answer)
    assert errors == []
    assert len(results) == 160
    assert {status for status, _ in results} == {200}
    assert {json.loads(body)["path"] for _, body in results} == {
        f"/items/{n}-{i}" for n in range(16) for i in range(10)
    }
    if overflows is not None:
        assert listen_overflows() == overflows
    assert max(slowest) < 5  # and none hung


def test_a_blocked_handler_does_not_block_other_requests(harness: Harness) -> None:
    # Given a handler that is still running
    slow_conn = harness.connect()
    slow_conn.request("GET", "/slow")
    deadline = time.monotonic() + 5
    while not harness.events("Slow") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert harness.events("Slow")
    # When another client calls meanwhile, then it is answered at once
    status, _, _ = call(harness.connect(), "GET", "/health")
    assert status == 200
    harness.slow_release.set()
    assert slow_conn.getresponse().read() == b"slow"


def test_a_chunked_request_body_reaches_the_handler_intact(harness: Harness) -> None:
    # Given a JSON body of ~200 KiB sent with Transfer-Encoding: chunked
    payload = json.dumps({"rows": ["é" * 1000] * 100}).encode()
    chunks = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    conn = harness.connect()
    conn.request(
        "POST",
        "/echo",
        body=iter(chunks),
        headers={"content-type": "application/json", "transfer-encoding": "chunked"},
        encode_chunked=True,
    )
    # Then the handler gets all of it as text
    assert conn.getresponse().status == 200
    (event,) = harness.events("Echo")
    assert event["isBase64Encoded"] is False
    assert event["body"].encode() == payload


def test_a_body_shorter_than_its_content_length_is_answered_within_the_timeout(
    harness: Harness,
) -> None:
    # Given a client that promises 100 bytes and sends 10
    sock = harness.raw()
    sock.sendall(
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 100\r\n\r\n0123456789"
    )
    started = time.monotonic()
    # Then it gets a JSON 400 once the body timeout passes, and the connection is closed
    status, headers, body = read_response(sock)
    assert time.monotonic() - started < BODY_TIMEOUT + 2
    assert (status, headers["content-type"]) == (400, "application/json")
    assert json.loads(body) == {"message": "Bad Request"}
    assert sock.recv(1) == b""
    assert harness.events("Echo") == []
    sock.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/health"),
        ("DELETE", "/echo"),
        ("GET", "/items/1/extra"),
        ("GET", "/%68ealth"),  # matched as sent, as the function routes on rawPath
    ],
)
def test_a_route_the_template_lacks_is_api_gateways_json_404(
    harness: Harness, method: str, path: str
) -> None:
    status, response, body = call(harness.connect(), method, path, b"{}")
    assert status == 404
    assert response.getheader("content-type") == "application/json"
    assert json.loads(body) == NOT_FOUND
    assert all(not f.events for f in harness.functions.values())


def test_options_on_an_undeclared_route_is_a_json_404(harness: Harness) -> None:
    status, response, body = call(harness.connect(), "OPTIONS", "/health")
    assert (status, response.getheader("content-type")) == (404, "application/json")
    assert json.loads(body) == NOT_FOUND


def test_head_on_an_undeclared_route_is_a_404_without_a_body(harness: Harness) -> None:
    # Given one connection, a HEAD then a GET: the HEAD must not leave body bytes behind
    conn = harness.connect()
    status, response, body = call(conn, "HEAD", "/health")
    assert (status, response.getheader("content-type"), body) == (404, "application/json", b"")
    assert response.getheader("content-length") == str(len(b'{"message":"Not Found"}'))
    assert harness.events("Health") == []
    status, _, body = call(conn, "GET", "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_head_on_an_any_route_reaches_the_handler_and_returns_no_body(harness: Harness) -> None:
    status, _, body = call(harness.connect(), "HEAD", "/files/a/b.txt")
    assert (status, body) == (200, b"")
    assert harness.events("Echo")[0]["requestContext"]["http"]["method"] == "HEAD"


def test_a_content_length_over_10_mib_is_413_before_any_body_is_sent(harness: Harness) -> None:
    sock = harness.raw()
    sock.sendall(
        f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {API_GATEWAY_MAX_BODY + 1}\r\n\r\n".encode()
    )
    status, headers, body = read_response(sock)
    assert (status, headers["content-type"]) == (413, "application/json")
    assert json.loads(body) == {"message": "Request Entity Too Large"}
    assert harness.events("Echo") == []
    sock.close()


def test_a_body_of_exactly_10_mib_is_accepted(harness: Harness) -> None:
    payload = b"x" * API_GATEWAY_MAX_BODY
    status, _, _ = call(
        harness.connect(), "POST", "/echo", payload, {"content-type": "application/octet-stream"}
    )
    assert status == 200
    assert base64.b64decode(harness.events("Echo")[0]["body"]) == payload


def test_an_invalid_utf8_json_body_reaches_the_handler_as_exact_base64_bytes(
    harness: Harness,
) -> None:
    raw = b'{"name": "caf\xe9 \xff"}'
    call(harness.connect(), "POST", "/echo", raw, {"content-type": "application/json"})
    (event,) = harness.events("Echo")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_a_utf8_json_body_reaches_the_handler_as_plain_text(harness: Harness) -> None:
    text = '{"name": "café ☕"}'
    call(
        harness.connect(),
        "POST",
        "/echo",
        text.encode(),
        {"content-type": "application/json; charset=utf-8"},
    )
    (event,) = harness.events("Echo")
    assert (event["isBase64Encoded"], event["body"]) == (False, text)


def test_a_raising_handler_is_a_json_500_and_the_server_keeps_serving(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = harness.connect()
    status, response, body = call(conn, "POST", "/boom", b"{}")
    assert (status, response.getheader("content-type")) == (500, "application/json")
    assert json.loads(body) == {"message": "Internal Server Error"}
    assert "RuntimeError: handler exploded" in capsys.readouterr().err
    status, _, body = call(conn, "GET", "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_query_strings_headers_and_cookies_are_shaped_like_api_gateway(harness: Harness) -> None:
    # Given repeated query parameters, a repeated header and two cookie headers
    conn = harness.connect()
    conn.putrequest("GET", "/items/42?a=1&a=2&empty=&q=x%20y")
    conn.putheader("X-Tag", "one")
    conn.putheader("X-Tag", "two")
    conn.putheader("Cookie", "a=1; b=2")
    conn.putheader("Cookie", "c=3")
    conn.endheaders()
    assert conn.getresponse().status == 200
    # Then the event joins them as API Gateway does
    (event,) = harness.events("Echo")
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "a=1&a=2&empty=&q=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "empty": "", "q": "x y"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["headers"]["x-tag"] == "one,two"
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert "body" not in event


def test_a_greedy_path_parameter_takes_the_rest_of_the_path(harness: Harness) -> None:
    call(harness.connect(), "PUT", "/files/a/b/c.txt", b"x", {"content-type": "text/plain"})
    (event,) = harness.events("Echo")
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert (event["body"], event["isBase64Encoded"]) == ("x", False)


def test_the_handlers_status_headers_cookies_and_base64_body_are_mapped_back(
    harness: Harness,
) -> None:
    status, response, body = call(harness.connect(), "GET", "/shaped")
    assert status == 201
    assert response.getheader("content-type") == "image/png"
    assert response.getheader("x-one") == "1"
    assert response.getheader("x-multi") == "a,b"
    assert response.headers.get_all("set-cookie") == [
        "session=abc; Path=/; HttpOnly",
        "theme=dark",
    ]
    assert response.getheader("content-length") == str(len(SHAPED_BYTES))
    assert body == SHAPED_BYTES


def test_a_bare_return_value_is_a_200_json_body(harness: Harness) -> None:
    status, response, body = call(harness.connect(), "GET", "/health")
    assert (status, response.getheader("content-type")) == (200, "application/json")
    assert json.loads(body) == {"status": "ok"}


def test_stop_closes_the_port() -> None:
    api = LocalApi(FakeStack([], {}), 0)
    api.start()
    socket.create_connection(("127.0.0.1", api.port), timeout=2).close()
    api.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", api.port), timeout=2)
