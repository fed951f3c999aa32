"""Batch scoring's S3 objects: the uploaded file (its metadata, its head, its lines streamed)
and the job's outputs (parts, summaries, batch captures).

The file is never read whole: ``lines`` decodes the object's body a block at a time, so memory
follows the chunk being scored, not the file.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import NotFoundError, StorageError

READ_BLOCK = 1 << 20
_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
# Batch captures are written at every chunk: the fastest gzip level costs a tenth of the
# default's time for a somewhat larger object (Athena reads either).
CAPTURE_GZIP_LEVEL = 1


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    version_id: str | None
    metadata: Mapping[str, str]


class BatchStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def head(self, bucket: str, key: str) -> ObjectInfo:
        try:
            response = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise NotFoundError(f"s3://{bucket}/{key} does not exist") from exc
            raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        version = response.get("VersionId")
        return ObjectInfo(
            size=int(response.get("ContentLength", 0)),
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=None if version in (None, "null") else str(version),
            metadata={str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()},
        )

    def head_bytes(self, bucket: str, key: str, count: int, version_id: str | None) -> bytes:
        """The object's first ``count`` bytes (one ranged GET)."""
        body = self._get(bucket, key, version_id, Range=f"bytes=0-{count - 1}")
        try:
            return bytes(body.read())
        finally:
            body.close()

    def lines(self, bucket: str, key: str, version_id: str | None) -> Iterator[str]:
        """The object's text, line by line (``\\n`` kept, as ``csv`` wants), decoded as strict
        UTF-8 one block at a time (a block is cut after its last ``\\n``: an ASCII byte, never
        inside a character). Where it is not UTF-8, the lines before that point come first,
        then ``UnicodeDecodeError``."""
        body = self._get(bucket, key, version_id)
        pending = b""
        try:
            while True:
                try:
                    block = body.read(READ_BLOCK)
                except (ClientError, BotoCoreError) as exc:
                    raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
                data = pending + block
                cut = len(data) if not block else data.rfind(b"\n") + 1
                pending = data[cut:]
                if cut:
                    try:
                        text = data[:cut].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        good = data[: exc.start].decode("utf-8")
                        yield from _split_lf(good[: good.rfind("\n") + 1])
                        raise
                    yield from _split_lf(text)
                    if not block and not text.endswith("\n"):
                        yield text[text.rfind("\n") + 1 :]
                if not block:
                    return
        finally:
            body.close()

    def put_text(self, bucket: str, key: str, text: str, content_type: str = "text/csv") -> None:
        self._put(bucket, key, text.encode(), content_type)

    def put_json(self, bucket: str, key: str, doc: Mapping[str, Any]) -> None:
        body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        self._put(bucket, key, body, "application/json")

    def put_text_gz(self, bucket: str, key: str, text: str) -> None:
        """JSON Lines text as the gzip object Athena reads."""
        body = gzip.compress(text.encode(), compresslevel=CAPTURE_GZIP_LEVEL, mtime=0)
        self._put(bucket, key, body, "application/gzip")

    def get_json(self, bucket: str, key: str) -> Any:
        body = self._get(bucket, key, None)
        try:
            return json.loads(body.read())
        except ValueError as exc:
            raise StorageError(f"s3://{bucket}/{key} is not JSON: {exc}") from exc
        finally:
            body.close()

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a listing; nothing read)."""
        found: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                found.extend(item["Key"] for item in page.get("Contents", ()))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
        return sorted(found)

    def _get(self, bucket: str, key: str, version_id: str | None, **extra: Any) -> Any:
        args: dict[str, Any] = {"Bucket": bucket, "Key": key, **extra}
        if version_id:
            args["VersionId"] = version_id
        try:
            return self._s3.get_object(**args)["Body"]
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise NotFoundError(f"s3://{bucket}/{key} does not exist") from exc
            raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc

    def _put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write s3://{bucket}/{key}: {exc}") from exc


def _split_lf(text: str) -> list[str]:
    """Lines ending in ``\\n`` only (``splitlines`` would also split at U+2028, a form feed
    and other separators that a CSV cell may hold)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
