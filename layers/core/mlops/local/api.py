"""Serve the template's HttpApi routes on 127.0.0.1 by calling the real handlers with real
API Gateway HTTP API (payload v2.0) events, the way API Gateway does."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mlops.local.stack import LocalStack
from mlops.local.template import ACCOUNT, Route

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # HTTP API's own payload limit
TEXT_TYPES = ("application/json", "text/", "application/xml", "+json")


def compile_route(route: Route) -> re.Pattern[str]:
    """``/items/{id}`` → a regex; ``{proxy+}`` matches the rest of the path."""
    pattern = re.sub(r"\\\{[^}/]+\\\+\\\}", ".+", re.escape(route.path))
    pattern = re.sub(r"\\\{[^}/]+\\\}", "[^/]+", pattern)
    return re.compile(f"^{pattern}$")


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
    url = urlsplit(target)
    now = datetime.now(UTC)
    content_type = headers.get("content-type", "")
    is_text = not body or any(t in content_type for t in TEXT_TYPES)
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
        "isBase64Encoded": not is_text,
    }
    if url.query:
        event["queryStringParameters"] = dict(parse_qsl(url.query, keep_blank_values=True))
    if body:
        event["body"] = (
            body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode()
        )
    return event


class LocalApi:
    def __init__(self, stack: LocalStack, port: int) -> None:
        self.stack = stack
        self.routes = [(compile_route(r), r) for r in stack.routes]
        handler = type("Handler", (_RequestHandler,), {"api": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="local-api"
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def match(self, method: str, path: str) -> Route | None:
        for pattern, route in self.routes:
            if route.method in (method, "ANY") and pattern.match(path):
                return route
        return None


class _RequestHandler(BaseHTTPRequestHandler):
    api: LocalApi
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs are the handlers' structured logs; keep the terminal readable."""

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            self._send(
                413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
            )
            return
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        route = self.api.match(self.command, path)
        if route is None:  # what API Gateway answers for a route the template lacks
            self._send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        headers: dict[str, str] = {}
        for raw_key, value in self.headers.items():
            key = raw_key.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = build_event(
            route,
            method=self.command,
            target=self.path,
            headers=headers,
            body=body,
            source_ip=self.client_address[0],
            host=self.headers.get("host", "127.0.0.1"),
        )
        try:
            result = self.api.stack.functions[route.function].invoke(event)
        except Exception:  # a crashed handler is a 500 from API Gateway, never a hang
            self._send(
                500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
            )
            raise
        self._send_result(result)

    def _send_result(self, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # HTTP API payload v2: a bare value is returned as a 200 JSON body
            self._send(200, {"content-type": "application/json"}, json.dumps(result).encode())
            return
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key.lower()] = ",".join(str(v) for v in values)
        self._send(int(result["statusCode"]), headers, body, result.get("cookies") or [])

    def _send(
        self, status: int, headers: dict[str, str], body: bytes, cookies: list[str] | None = None
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key not in ("content-length", "connection"):
                self.send_header(key, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
