"""Captured predictions, feedback, sketches and quarantined lines in S3.

Objects are written whole with a plain ``PutObject`` (no ``IfNoneMatch``): the prediction
logger derives every key and every byte from its batch, so writing an object again (a retried
or redelivered batch) replaces it with the same content instead of adding records. gzip is
written with ``mtime=0`` and no file name, so equal rows give equal bytes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import StorageError

# The object is a gzip file (as Athena reads it), not JSON served with a gzip encoding.
JSONL_GZ = {"ContentType": "application/gzip"}
JSON = {"ContentType": "application/json"}


def jsonl_gz(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows as gzip JSON Lines, byte-for-byte the same for the same rows."""
    text = "".join(json.dumps(row, separators=(",", ":"), allow_nan=False) + "\n" for row in rows)
    return gzip.compress(text.encode(), mtime=0)


class CaptureStore:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_jsonl_gz(self, key: str, rows: Iterable[Mapping[str, Any]]) -> None:
        self._put(key, jsonl_gz(rows), JSONL_GZ)

    def put_json(self, key: str, doc: Mapping[str, Any]) -> None:
        body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        self._put(key, body, JSON)

    def _put(self, key: str, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, **headers)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write {self.uri(key)}: {exc}") from exc
