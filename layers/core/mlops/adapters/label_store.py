"""The labeled documents (``domain.labels``) and the folder's state, in the artifacts bucket.

``labels/model=<m>/<dt=…/hour=…>/labeled.json.gz``: one per capture hour, the joined rows as
columns (what live quality reads each run: no inputs, a few numbers a row);
``…/inputs.json.gz`` beside it: the rows' inputs by prediction id (what training reads).
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

from mlops.domain.layout import label_prefix
from mlops.errors import ConflictError, StorageError

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # decompressed; a larger one is refused, not read


class LabelStore:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def hour_key(self, model: str, hour: str) -> str:
        return f"{label_prefix(model)}{hour}/labeled.json.gz"

    def inputs_key(self, model: str, hour: str) -> str:
        return f"{label_prefix(model)}{hour}/inputs.json.gz"

    def state_key(self, model: str) -> str:
        return f"{label_prefix(model)}state.json"

    def columns(self, model: str, hour: str) -> tuple[dict[str, list[Any]], str | None]:
        """An hour's labeled rows as columns (equal lengths, else none) and the ETag to write
        them back with (None: no document)."""
        doc, etag = self._get(self.hour_key(model, hour), compressed=True)
        columns = doc.get("columns") if isinstance(doc, dict) else None
        if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
            return {}, etag
        if len({len(v) for v in columns.values()}) > 1:
            return {}, etag
        return columns, etag

    def hour(self, model: str, hour: str) -> tuple[list[dict[str, Any]], str | None]:
        """An hour's labeled rows (without inputs) and the ETag to write them back with."""
        columns, etag = self.columns(model, hour)
        return columns_as_rows(columns), etag

    def inputs(self, model: str, hour: str) -> dict[str, Any]:
        doc, _ = self._get(self.inputs_key(model, hour), compressed=True)
        found = doc.get("inputs") if isinstance(doc, dict) else None
        return found if isinstance(found, dict) else {}

    def put_hour(self, model: str, hour: str, rows: list[dict[str, Any]], etag: str | None) -> None:
        """Write an hour's rows: their inputs (of rows that carry them) merged into the inputs
        document first, then the labeled columns, which say the rows are there."""
        new_inputs = {r["prediction_id"]: r["inputs"] for r in rows if "inputs" in r}
        if new_inputs:
            doc, inputs_etag = self._get(self.inputs_key(model, hour), compressed=True)
            known = doc.get("inputs") if isinstance(doc, dict) else None
            merged = (known if isinstance(known, dict) else {}) | new_inputs
            self._put(
                self.inputs_key(model, hour),
                _gzip_json({"schema": 1, "inputs": merged}),
                inputs_etag,
                "application/gzip",
            )
        names = sorted({k for r in rows for k in r} - {"inputs"})
        columns = {n: [r.get(n) for r in rows] for n in names}
        self._put(
            self.hour_key(model, hour),
            _gzip_json({"schema": 2, "columns": columns}),
            etag,
            "application/gzip",
        )

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


def _gzip_json(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode(), mtime=0)


def columns_as_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Labeled columns (``LabelStore.columns``) as rows: absent values left out."""
    names = list(columns)
    size = len(columns[names[0]]) if names else 0
    return [
        {n: columns[n][i] for n in names if columns[n][i] is not None or n == "variant"}
        for i in range(size)
    ]
