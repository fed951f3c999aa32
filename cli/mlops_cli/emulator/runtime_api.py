"""The Lambda Runtime API that the runtime interface client of each local execution environment
talks to (``/2018-06-01/runtime/...``), served by uvicorn on the local runtime's event loop.

Each environment gets its own endpoint (``127.0.0.1:<port>``, its AWS_LAMBDA_RUNTIME_API), as each
Lambda sandbox has its own. One endpoint per environment rather than one shared server with a
path prefix per environment: awslambdaric posts ``init/error`` through ``http.client``, which
rejects an address with a path, so an init error would be lost with a prefix.

Everything here runs on the runtime's event loop thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import uvicorn

# Invocation payload quota, synchronous: 6 MB. This is the limit the Runtime API applies to a
# response; the Invoke API refuses requests over 6,291,456 bytes.
MAX_RESPONSE_BYTES = 6_291_556
# The RIC keeps its connection while the handler runs: keep it for Lambda's longest timeout.
KEEP_ALIVE_SECONDS = 900

_API = "/2018-06-01/runtime"
_NEXT = f"{_API}/invocation/next"
_INIT_ERROR = f"{_API}/init/error"
_INVOCATION_POST = re.compile(rf"^{_API}/invocation/([^/]+)/(response|error)$")
_ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Outcome(NamedTuple):
    """How an invocation ended, before the runtime turns it into an Invocation."""

    payload: Any
    error_type: str | None = None
    fatal: bool = False  # the environment cannot be reused
    status: str | None = None  # REPORT's "Status:" for platform failures ("timeout", "error")


@dataclass(eq=False)
class Request:
    """One invocation on its way through an environment."""

    request_id: str
    body: bytes
    outcome: asyncio.Future[Outcome]
    handed: asyncio.Future[None]  # resolved when GET /next hands the event over
    assigned_at: float
    handed_at: float = 0.0
    settled_at: float = 0.0

    def settle(self, outcome: Outcome) -> None:
        """The first outcome wins (a response racing a timeout, a kill racing a response)."""
        if not self.outcome.done():
            self.settled_at = asyncio.get_running_loop().time()
            self.outcome.set_result(outcome)


@dataclass(eq=False)
class Endpoint:
    """What the Runtime API knows of one execution environment."""

    function_arn: str
    timeout: float
    # Called when the runtime takes an event (START of the invoke phase).
    on_handover: Callable[[Request], None]
    inbox: asyncio.Queue[Request | None] = field(default_factory=asyncio.Queue)
    request: Request | None = None  # the latest request assigned to the environment
    first_next_at: float | None = None  # the end of its Init phase


class RuntimeApi:
    """The ASGI app behind every environment's endpoint; the listening port tells which
    environment is calling."""

    def __init__(self) -> None:
        self._endpoints: dict[int, Endpoint] = {}
        self._config = uvicorn.Config(
            self,
            interface="asgi3",
            http="httptools",
            ws="none",
            lifespan="off",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=1,  # the environment's process is gone by then
            access_log=False,
            log_level="warning",
            log_config=None,  # leave the process's logging alone
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )

    def open(self, endpoint: Endpoint) -> tuple[int, uvicorn.Server, asyncio.Task[None]]:
        """Serve ``endpoint`` on a fresh loopback port; returns the port, its server and the
        task serving it (``server.should_exit = True`` ends it)."""
        # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (see emulator/api.py).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = int(sock.getsockname()[1])
        server = uvicorn.Server(self._config)
        self._endpoints[port] = endpoint
        serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        serving.add_done_callback(lambda _: sock.close())  # in case it never got to serve
        return port, server, serving

    def close(self, port: int) -> None:
        """Forget the endpoint on ``port``; a pending ``next`` ends."""
        endpoint = self._endpoints.pop(port, None)
        if endpoint is not None:
            endpoint.inbox.put_nowait(None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        endpoint = self._endpoints.get(scope["server"][1])
        method, path = scope["method"], scope["path"]
        if endpoint is None:
            await _respond(send, 410, _error("EnvironmentGone", "this environment was discarded"))
        elif method == "GET" and path == _NEXT:
            await self._next(endpoint, send)
        elif method == "POST" and path == _INIT_ERROR:
            body = await _read_body(receive)
            if endpoint.request is not None:
                error_type, error = _error_object(body, _header(scope, _ERROR_TYPE_HEADER))
                endpoint.request.settle(Outcome(error, error_type, fatal=True, status="error"))
            await _respond(send, 202, {"status": "OK"})
        elif method == "POST" and (match := _INVOCATION_POST.match(path)):
            body = await _read_body(receive)
            await self._result(endpoint, scope, send, request_id=match[1], kind=match[2], body=body)
        else:
            await _respond(send, 404, _error("NotFound", f"{method} {path}"))

    async def _next(self, endpoint: Endpoint, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if endpoint.first_next_at is None:
            # "The Init phase ends when the runtime and all extensions signal that they are
            # ready by sending a Next API request."
            endpoint.first_next_at = loop.time()
        request = await endpoint.inbox.get()  # the long poll
        if request is None:
            await _respond(send, 410, _error("EnvironmentGone", "this environment was discarded"))
            return
        request.handed_at = loop.time()
        endpoint.on_handover(request)
        request.handed.set_result(None)
        trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
        trace += f"Parent={secrets.token_hex(8)};Sampled=0"
        deadline_ms = int((time.time() + endpoint.timeout) * 1000)
        headers = [
            ("lambda-runtime-aws-request-id", request.request_id),
            ("lambda-runtime-deadline-ms", str(deadline_ms)),
            ("lambda-runtime-invoked-function-arn", endpoint.function_arn),
            ("lambda-runtime-trace-id", trace),
        ]
        await _respond(send, 200, request.body, headers)

    async def _result(
        self,
        endpoint: Endpoint,
        scope: Scope,
        send: Send,
        *,
        request_id: str,
        kind: str,
        body: bytes,
    ) -> None:
        """``POST invocation/{id}/response`` or ``.../error``."""
        request = endpoint.request
        if request is None or request.request_id != request_id or not request.handed.done():
            await _respond(send, 400, _error("InvalidRequestID", "Invalid request ID"))
            return
        if kind == "error":
            error_type, error = _error_object(body, _header(scope, _ERROR_TYPE_HEADER))
            request.settle(Outcome(error, error_type))
        elif len(body) > MAX_RESPONSE_BYTES:
            # Still a 202: a 413 makes the RIC exit, and Lambda keeps the environment.
            message = "Response payload size exceeded maximum allowed payload size "
            message += f"({MAX_RESPONSE_BYTES} bytes)."
            error = _error("Function.ResponseSizeTooLarge", message)
            request.settle(Outcome(error, "Function.ResponseSizeTooLarge"))
        else:
            content_type = _header(scope, "content-type") or "application/json"
            request.settle(Outcome(_payload(body, content_type)))
        await _respond(send, 202, {"status": "OK"})


def _error(error_type: str, message: str) -> dict[str, str]:
    return {"errorType": error_type, "errorMessage": message}


def _payload(body: bytes, content_type: str) -> Any:
    """The handler's result: JSON, or the bytes a handler returned as bytes."""
    if content_type.startswith("application/json"):
        try:
            return json.loads(body)
        except ValueError:
            pass
    return body


def _error_object(body: bytes, header: str | None) -> tuple[str, Any]:
    """The error object a runtime posted, and its type (from the body, else the header)."""
    try:
        error = json.loads(body)
    except ValueError:
        error = {"errorMessage": body.decode("utf-8", "replace")}
    error_type = error.get("errorType") if isinstance(error, dict) else None
    return str(error_type or header or "Runtime.Unknown"), error


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope["headers"]:
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return bytes(body)


async def _respond(
    send: Send, status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers or []]
    # Always a content type: without one on /next the RIC's C extension crashes.
    pairs += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": data})
