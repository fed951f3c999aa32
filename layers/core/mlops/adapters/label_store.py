"""The labeled documents (``domain.labels``) and the folder's state, in the artifacts bucket.

``labels/model=<m>/<dt=…/hour=…>/labeled.json.gz``: one per capture hour, the joined rows.
``labels/model=<m>/state.json``: which feedback objects were folded, and labels still waiting
for their capture. Both are rewritten with a condition on the ETag that was read (S3
``IfMatch``, or ``IfNoneMatch`` for a new object): two evaluations folding at once cannot lose
each other's rows; the loser gets ``ConflictError`` and folds again (folding is idempotent).
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConflictError, StorageError

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # decompressed; a larger one is refused, not read


class LabelStore:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def hour_key(self, model: str, hour: str) -> str:
        return f"labels/model={model}/{hour}/labeled.json.gz"

    def state_key(self, model: str) -> str:
        return f"labels/model={model}/state.json"

    def hour(self, model: str, hour: str) -> tuple[list[dict[str, Any]], str | None]:
        """An hour's labeled rows and the ETag to write them back with (None: no document)."""
        doc, etag = self._get(self.hour_key(model, hour), compressed=True)
        rows = doc.get("rows") if isinstance(doc, dict) else None
        return ([r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []), etag

    def put_hour(self, model: str, hour: str, rows: list[dict[str, Any]], etag: str | None) -> None:
        body = gzip.compress(
            json.dumps(
                {"schema": 1, "rows": rows}, separators=(",", ":"), allow_nan=False
            ).encode(),
            mtime=0,
        )
        self._put(self.hour_key(model, hour), body, etag, "application/gzip")

    def state(self, model: str) -> tuple[dict[str, Any], str | None]:
        doc, etag = self._get(self.state_key(model), compressed=False)
        return (doc if isinstance(doc, dict) else {}), etag

    def put_state(self, model: str, doc: dict[str, Any], etag: str | None) -> None:
        body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        self._put(self.state_key(model), body, etag, "application/json")

    def _get(self, key: str, *, compressed: bool) -> tuple[Any, str | None]:
        """The document and its ETag; ``({}, None)`` when absent. A document that cannot be
        read is treated as absent but keeps its ETag, so it is replaced, not fatal."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return {}, None
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        etag = str(response["ETag"])
        try:
            data = response["Body"].read(MAX_DOCUMENT_BYTES + 1)
            if compressed:
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                    data = unzipped.read(MAX_DOCUMENT_BYTES + 1)
            if len(data) > MAX_DOCUMENT_BYTES:
                return {}, etag
            return json.loads(data), etag
        except (OSError, EOFError, ValueError, RecursionError):
            return {}, etag

    def _put(self, key: str, body: bytes, etag: str | None, content_type: str) -> None:
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise ConflictError(
                    f"s3://{self.bucket}/{key} changed while it was folded"
                ) from exc
            raise StorageError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc
