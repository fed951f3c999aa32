"""S3 objects as the Distributed Map reads (``ItemReader``) and writes (``ResultWriter``) them,
in chunks, so neither a 10 GB input nor a large result file is ever held in memory.

``MotoObjects`` reaches the store of the moto server running in this process: moto's GetObject
copies the whole object into memory twice per request (even for a Range), and a multipart
upload's completion joins every part in memory, so reads go straight to the stored object's
buffer and writes stream into a new object's buffer (with the ObjectCreated notification moto
would send). ``Boto3Objects`` does the same through the S3 API for any other endpoint.
"""

from __future__ import annotations

import io
import shutil
from typing import IO, Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.emulator.states.interpreter import StatesError

CHUNK_BYTES: Final = 1 << 20
READER_FAILED: Final = "States.ItemReaderFailed"


class ObjectSource(Protocol):
    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        """A binary stream of the object; StatesError(States.ItemReaderFailed) if missing."""
        ...

    def write(self, bucket: str, key: str, body: IO[bytes]) -> int:
        """Store ``body`` (read from its start) as the object; its size. Raises for an
        unknown bucket (the caller names the failure)."""
        ...


class _ChunkedRaw(io.RawIOBase):
    """A raw stream over ``read_at(position, size) -> bytes``."""

    def __init__(self, read_at: Any) -> None:
        self._read_at = read_at
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read_at(self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


class MotoObjects:
    """Objects of the moto server running in this process, read straight from moto's store."""

    def __init__(self, account: str) -> None:
        self.account = account

    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        from moto.s3.models import s3_backends

        try:
            fake = s3_backends[self.account]["aws"].get_object(bucket, key, version_id=version_id)
        except Exception as exc:  # moto's MissingBucket / MissingKey
            raise StatesError(READER_FAILED, f"s3://{bucket}/{key}: {exc}") from None
        if fake is None:
            raise StatesError(
                READER_FAILED, f"s3://{bucket}/{key}: The specified key does not exist."
            )

        def read_at(position: int, size: int) -> bytes:
            with fake.lock:
                fake._value_buffer.seek(position)
                return bytes(fake._value_buffer.read(size))

        return io.BufferedReader(_ChunkedRaw(read_at), CHUNK_BYTES)

    def write(self, bucket: str, key: str, body: IO[bytes]) -> int:
        from moto.s3 import notifications
        from moto.s3.models import s3_backends

        backend = s3_backends[self.account]["aws"]
        # An empty object with every piece of moto's bookkeeping (versions, ACL), no event yet.
        fake = backend.put_object(bucket, key, b"", disable_notification=True)
        with fake.lock:
            buffer = fake._value_buffer
            buffer.seek(0)
            buffer.truncate()
            shutil.copyfileobj(body, buffer, CHUNK_BYTES)
            fake.contentsize = buffer.tell()
            fake._etag = None  # computed from the buffer when first asked
        notifications.send_event(
            self.account,
            notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT,
            backend.get_bucket(bucket),
            fake,
        )
        return int(fake.contentsize)


class Boto3Objects:
    """Objects through the S3 API (a streamed GetObject body)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        extra = {"VersionId": version_id} if version_id else {}
        try:
            body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise StatesError(READER_FAILED, f"s3://{bucket}/{key}: {exc}") from None
        return io.BufferedReader(_ChunkedRaw(lambda _position, size: body.read(size)), CHUNK_BYTES)

    def write(self, bucket: str, key: str, body: IO[bytes]) -> int:
        start = body.tell()
        self.client.upload_fileobj(body, bucket, key)
        return body.tell() - start
