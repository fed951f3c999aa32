"""Model artifacts in S3: ``models/<model>/<version>/{model.onnx,manifest.json,baseline.json}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.layout import version_prefix
from mlops.errors import ConflictError, IntegrityError, NotFoundError, StorageError

CONTENT_TYPES = {".json": "application/json", ".onnx": "application/octet-stream"}


class ModelStore:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, ``IntegrityError`` (nothing read) when it
        is larger."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            if max_bytes is not None and int(response.get("ContentLength", 0)) > max_bytes:
                response["Body"].close()
                raise IntegrityError(
                    f"{self.uri(key)} is {response['ContentLength']} bytes, over {max_bytes}"
                )
            return bytes(response["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFoundError(f"{self.uri(key)} does not exist") from exc
            raise StorageError(f"cannot read {self.uri(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self.uri(key)}: {exc}") from exc

    def get_json(self, key: str) -> Any:
        try:
            return json.loads(self.get_bytes(key))
        except json.JSONDecodeError as exc:
            raise StorageError(f"{self.uri(key)} is not valid JSON: {exc}") from exc

    def put_bytes(self, key: str, body: bytes, *, immutable: bool = False) -> None:
        """Write ``body``; with ``immutable`` the write fails if the key already exists."""
        suffix = key[key.rfind(".") :]
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if immutable else {}
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                **extra,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ConflictError(f"{self.uri(key)} already exists") from exc
            raise StorageError(f"cannot write {self.uri(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot write {self.uri(key)}: {exc}") from exc

    def put_version(self, model: str, version: str, files: Mapping[str, bytes]) -> str:
        """Write a version's artifacts once; the manifest goes last so its presence means the
        version is complete. Returns the version's prefix."""
        prefix = version_prefix(model, version)
        ordered = sorted(files, key=lambda name: name == "manifest.json")
        for name in ordered:
            self.put_bytes(prefix + name, files[name], immutable=True)
        return prefix
