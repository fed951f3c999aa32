"""Serve the template's HttpApi routes on 127.0.0.1 by calling the real handlers with real
API Gateway HTTP API (payload 2.0) events.

The server is uvicorn (httptools parser) running a small ASGI app of ours in a background thread,
so keep-alive, chunked request bodies, a deep listen backlog and concurrent clients behave like a
real server. What is faithful to API Gateway HTTP API:

- Routing comes from the template only. A method/path it lacks is answered by "API Gateway"
  itself with 404 ``{"message":"Not Found"}`` (JSON) and the Lambda is never invoked; HEAD and
  OPTIONS are ordinary methods (no implicit HEAD-for-GET, no CORS preflight unless declared).
- Request bodies over 10 MiB get 413 ``{"message":"Request Entity Too Large"}``; a declared
  oversize ``Content-Length`` is refused before any of the body is read.
- Events are payload 2.0: header names lowercased and repeated headers joined with commas,
  ``cookie`` headers moved to ``cookies``, repeated query parameters joined with commas,
  ``pathParameters`` from ``{name}``/``{name+}`` segments, and a body that is not UTF-8 text of
  a text content type is base64-encoded with ``isBase64Encoded: true``.
- A handler that raises, or returns something unmappable, is 500
  ``{"message":"Internal Server Error"}``; the traceback goes to stderr.
- Responses follow payload 2.0: a dict with ``statusCode`` maps status, headers,
  ``multiValueHeaders``, ``cookies`` (one ``set-cookie`` each) and a body that may be base64;
  any other value is a 200 JSON body (a bare string is sent as is).

Not emulated: IAM/JWT authorizers, CORS configuration, throttling, the 30 s integration timeout.
A request that uvicorn cannot parse at all (e.g. a non-numeric ``Content-Length``) gets
uvicorn's own plain-text 400.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import uvicorn

from mlops_cli.emulator.template import ACCOUNT, Route

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # HTTP API's own payload limit
TEXT_TYPES = ("application/json", "text/", "application/xml", "+json")
BODY_TIMEOUT_SECONDS = 10.0  # a client that stops sending mid-body must not hold a request
KEEP_ALIVE_SECONDS = 30  # long enough for a client's connection pool to reuse a connection
MAX_CONNECTIONS = 1000
LISTEN_BACKLOG = 2048
INVOKE_WORKERS = 16  # threads running handlers; each function still serialises on its own lock
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0

# Header bytes that would let a handler's header break the response framing.
_UNSAFE_HEADER = re.compile(r"[\x00-\x1f\x7f]")
# The server frames the body itself; a handler's own framing headers would contradict it.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Invocable(Protocol):
    def invoke(self, event: dict[str, Any]) -> Any: ...


class ServedStack(Protocol):
    """What the API needs from a stack: its routes and its functions by logical id."""

    @property
    def routes(self) -> list[Route]: ...

    @property
    def functions(self) -> Mapping[str, Invocable]: ...


class _ClientGoneError(Exception):
    """The client disconnected before sending its whole body."""


class _BodyTooLargeError(Exception):
    """The body grew past API Gateway's limit while it was read (chunked or lying length)."""


def compile_route(route: Route) -> re.Pattern[str]:
    """``/items/{id}`` → a regex with one group per parameter; ``{proxy+}`` matches the rest."""
    pattern = re.sub(r"\\\{[^}/]+\\\+\\\}", "(.+)", re.escape(route.path))
    pattern = re.sub(r"\\\{[^}/]+\\\}", "([^/]+)", pattern)
    return re.compile(f"^{pattern}$")


def path_parameters(route: Route, path: str) -> dict[str, str]:
    """The ``{name}`` / ``{name+}`` values of ``path`` for ``route``, as ``pathParameters``."""
    names = re.findall(r"\{([^}/]+?)\+?\}", route.path)
    match = compile_route(route).match(path)
    if not names or match is None:
        return {}
    return dict(zip(names, match.groups(), strict=True))


def _comma_joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in pairs:
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _text_body(body: bytes, content_type: str) -> str | None:
    """The body as text when API Gateway would pass it as text, else None (base64)."""
    if not any(t in content_type for t in TEXT_TYPES):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:  # never "replace": the handler must see the exact bytes
        return None


def build_event(
    route: Route,
    *,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    host: str,
) -> dict[str, Any]:
    """A payload 2.0 event for ``route``; ``headers`` are already lowercased and joined."""
    url = urlsplit(target)
    now = datetime.now(UTC)
    headers = dict(headers)
    cookie_header = headers.pop("cookie", "")
    cookies = [c.strip() for c in cookie_header.split(";") if c.strip()]
    text = _text_body(body, headers.get("content-type", "").lower()) if body else ""
    route_key = f"{route.method} {route.path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": text is None,
    }
    if cookies:
        event["cookies"] = cookies
    if url.query:
        # API Gateway joins a repeated parameter's values with commas.
        event["queryStringParameters"] = _comma_joined(parse_qsl(url.query, keep_blank_values=True))
    params = path_parameters(route, unquote(url.path))
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = base64.b64encode(body).decode() if text is None else text
    return event


class _Response:
    """A response ready for the wire: status, header pairs (without framing ones) and body."""

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        close: bool = False,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close

    @classmethod
    def gateway(cls, status: int, message: str, *, close: bool = False) -> _Response:
        """An answer from "API Gateway" itself rather than from the integration."""
        body = json.dumps({"message": message}, separators=(",", ":")).encode()
        return cls(status, [("content-type", "application/json")], body, close=close)

    @classmethod
    def from_result(cls, result: Any) -> _Response:
        """Map a handler's return value as API Gateway does for payload 2.0.

        Raises ``ValueError`` (bad status, base64 or header) or ``TypeError`` when the result
        cannot be mapped, which API Gateway answers with 500.
        """
        if isinstance(result, bytes):
            # A non-JSON response from the function: API Gateway answers 500.
            raise TypeError("the function's response is not JSON")
        if not isinstance(result, dict) or "statusCode" not in result:
            # A bare value is the body of a 200 JSON response; a string is sent as is.
            text = result if isinstance(result, str) else json.dumps(result)
            return cls(200, [("content-type", "application/json")], text.encode())
        status = int(result["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(f"statusCode {status} is not an HTTP status")
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw, validate=True)
        else:
            body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
        merged = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            merged[str(key).lower()] = ",".join(str(v) for v in values)
        pairs = [(k, v) for k, v in merged.items() if k not in _FRAMING_HEADERS]
        pairs += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
        for key, value in pairs:
            if not key or _UNSAFE_HEADER.search(key) or _UNSAFE_HEADER.search(value):
                raise ValueError(f"header {key!r} has control characters")
            (key + value).encode("latin-1")  # UnicodeEncodeError: not sendable as HTTP/1.1
        return cls(status, pairs, body)


class LocalApi:
    """The template's HttpApi on ``127.0.0.1:port`` (0 picks a free port; see ``.port``)."""

    def __init__(
        self,
        stack: ServedStack,
        port: int,
        *,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.stack = stack
        self.routes = [(compile_route(r), r) for r in stack.routes]
        self.body_timeout = body_timeout
        # Bound here, not in the server thread, so a taken port fails in the caller and
        # port 0 resolves to the real port before start().
        # proto must say IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only
        # then, and without it keep-alive requests stall ~40 ms on Nagle + delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(("127.0.0.1", port))
            self._socket.listen(LISTEN_BACKLOG)
        except OSError:
            self._socket.close()
            raise
        self.port = int(self._socket.getsockname()[1])
        self._server = uvicorn.Server(
            uvicorn.Config(
                self,
                interface="asgi3",
                http="httptools",
                ws="none",
                lifespan="off",
                loop="asyncio",
                backlog=LISTEN_BACKLOG,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                # One file-descriptor budget is shared with moto, the Runtime API and the
                # workers: past this many connections new ones get a 503, not an fd exhaustion.
                limit_concurrency=MAX_CONNECTIONS,
                timeout_graceful_shutdown=int(STOP_TIMEOUT_SECONDS),
                access_log=False,
                log_level="warning",
                log_config=None,  # leave the process's logging (the handlers') alone
                proxy_headers=False,  # sourceIp is the TCP peer, never X-Forwarded-For
                server_header=False,
            )
        )
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(INVOKE_WORKERS, thread_name_prefix="local-api-invoke")
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="local-api",
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local API did not start on {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS + 1)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._socket.close()

    def match(self, method: str, path: str) -> Route | None:
        for pattern, route in self.routes:
            if route.method in (method, "ANY") and pattern.match(path):
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point: one HTTP request in, one response out."""
        if scope["type"] != "http":  # lifespan is off and websockets are disabled
            return
        try:
            response = await self._handle(scope, receive)
        except _ClientGoneError:
            return
        await self._send(send, response)

    async def _handle(self, scope: Scope, receive: Receive) -> _Response:
        method: str = scope["method"]
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        declared = next((v for k, v in pairs if k == "content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > API_GATEWAY_MAX_BODY:
            # Answered before reading; uvicorn discards the body as it arrives.
            return _Response.gateway(413, "Request Entity Too Large")
        # Routes match the path as sent (percent-encoding kept), which is the rawPath the
        # function routes on: /%68ealth is not /health here, nor in the function.
        raw_path: bytes | None = scope.get("raw_path")
        route = self.match(method, raw_path.decode("latin-1") if raw_path else scope["path"])
        if route is None:
            return _Response.gateway(404, "Not Found")
        try:
            body = await self._read_body(receive)
        except TimeoutError:
            # The framing is lost (the client promised more than it sent): close after this.
            return _Response.gateway(400, "Bad Request", close=True)
        except _BodyTooLargeError:
            return _Response.gateway(413, "Request Entity Too Large", close=True)
        cookies = [v for k, v in pairs if k == "cookie"]
        headers = _comma_joined((k, v) for k, v in pairs if k != "cookie")
        if cookies:  # RFC 6265 joins cookie headers with "; ", not ","
            headers["cookie"] = "; ".join(cookies)
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        client = scope.get("client")
        event = build_event(
            route,
            method=method,
            target=target,
            headers=headers,
            body=body,
            source_ip=client[0] if client else "127.0.0.1",
            host=headers.get("host", "127.0.0.1"),
        )
        try:
            return _Response.from_result(await self._invoke(route.function, event))
        except Exception:  # a failed integration is a 500 from API Gateway, never a hang
            print(f"local API: {route.method} {route.path} failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return _Response.gateway(500, "Internal Server Error")

    async def _read_body(self, receive: Receive) -> bytes:
        body = bytearray()
        async with asyncio.timeout(self.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGoneError
                body += message.get("body", b"")
                if len(body) > API_GATEWAY_MAX_BODY:
                    raise _BodyTooLargeError
                if not message.get("more_body", False):
                    return bytes(body)

    async def _invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Run one handler off the event loop; the single place invocation happens."""
        function = self.stack.functions[function_name]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function.invoke, event)

    async def _send(self, send: Send, response: _Response) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        headers.append((b"content-length", str(len(response.body)).encode()))
        if response.close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        # uvicorn drops the body of a HEAD response and keeps its content-length.
        await send({"type": "http.response.body", "body": response.body})
