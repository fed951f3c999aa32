"""The local stack's S3 refuses the keys AWS refuses: over 1,024 bytes of UTF-8.

moto 5.2.5 stores any key, so code that builds a key from a user's file name would pass every
local run and fail on AWS alone. ``MotoServer`` is moto's threaded server with a WSGI
middleware around its S3 app only: PutObject, CopyObject (its destination) and
CreateMultipartUpload of a longer key answer HTTP 400 ``KeyTooLongError`` as S3 does. Other
services never pass through it, and an S3 request pays one comparison unless it writes a key.

``refuse_long_keys`` is the same rule for the in-process ``mock_aws`` of the tests, as a patch
of moto's S3 backend (the test fixture ``s3_key_limit`` applies it for one test).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_input_stream

from mlops.domain.keys import MAX_KEY_BYTES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CODE = "KeyTooLongError"
MESSAGE = "Your key is too long"


class KeyTooLongError(S3ClientError):
    code = CODE

    def __init__(self) -> None:
        super().__init__(CODE, MESSAGE)


class KeyLengthLimit:
    """WSGI middleware for moto's S3 app: a write of a key over ``MAX_KEY_BYTES`` is refused."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        # PUT on a key: PutObject, CopyObject; POST ?uploads: CreateMultipartUpload.
        if method == "PUT" or (method == "POST" and "uploads" in _query_names(environ)):
            size = len(_key(environ))
            if size > MAX_KEY_BYTES:
                _drain(environ)  # the client is still sending the body; read it, then answer
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{CODE}</Code><Message>{MESSAGE}</Message>"
                    f"<Size>{size}</Size><MaxSizeAllowed>{MAX_KEY_BYTES}</MaxSizeAllowed>"
                    f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
                ).encode()
                start_response(
                    "400 Bad Request",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [body]
        return self.app(environ, start_response)


class MotoServer(ThreadedMotoServer):
    """moto's threaded server, its S3 app behind ``KeyLengthLimit``."""

    def _server_entry(self) -> None:
        # ThreadedMotoServer._server_entry (moto 5.2.5) with our app factory.
        app = DomainDispatcherApplication(_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextlib.contextmanager
def refuse_long_keys() -> Iterator[None]:
    """For the duration, the in-process moto refuses what ``KeyLengthLimit`` refuses."""
    put, copy, create = (
        S3Backend.put_object,
        S3Backend.copy_object,
        S3Backend.create_multipart_upload,
    )

    def put_object(self: S3Backend, bucket_name: str, key_name: str, *a: Any, **k: Any) -> Any:
        _check(key_name)
        return put(self, bucket_name, key_name, *a, **k)

    def copy_object(
        self: S3Backend, src_key: Any, dest_bucket_name: str, dest_key_name: str, *a: Any, **k: Any
    ) -> Any:
        _check(dest_key_name)
        return copy(self, src_key, dest_bucket_name, dest_key_name, *a, **k)

    def create_multipart_upload(
        self: S3Backend, bucket_name: str, key_name: str, *a: Any, **k: Any
    ) -> Any:
        _check(key_name)
        return create(self, bucket_name, key_name, *a, **k)

    S3Backend.put_object = put_object  # type: ignore[method-assign]
    S3Backend.copy_object = copy_object  # type: ignore[method-assign]
    S3Backend.create_multipart_upload = create_multipart_upload  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Backend.put_object = put  # type: ignore[method-assign]
        S3Backend.copy_object = copy  # type: ignore[method-assign]
        S3Backend.create_multipart_upload = create  # type: ignore[method-assign]


def _backend_app(service: Any) -> Any:
    app = create_backend_app(service)
    if service == "s3":
        app.wsgi_app = KeyLengthLimit(app.wsgi_app)  # type: ignore[method-assign]  # Flask's way
    return app


def _key(environ: WSGIEnvironment) -> bytes:
    """The object key's UTF-8 bytes: WSGI hands the decoded path as latin-1 text (PEP 3333)."""
    path = str(environ.get("PATH_INFO", "")).encode("latin-1")[1:]
    if S3Response.subdomain_based_buckets(Request(environ)):  # bucket.host/key
        return path
    return path.partition(b"/")[2]  # host/bucket/key, what the stack's 127.0.0.1 endpoint gets


def _query_names(environ: WSGIEnvironment) -> set[str]:
    query = str(environ.get("QUERY_STRING", ""))
    return {part.partition("=")[0] for part in query.split("&")} if query else set()


def _drain(environ: WSGIEnvironment) -> None:
    stream = get_input_stream(environ)  # bounded by Content-Length, or to the last chunk
    while stream.read(1 << 16):
        pass


def _check(key: str) -> None:
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError
