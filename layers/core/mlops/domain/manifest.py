"""``manifest.json``: what a model version is, how it was made and how to check it.

A version is immutable: ``model.onnx`` + ``manifest.json`` + ``baseline.json``. Serving reads
the manifest to learn the signature and the sha256 the ONNX bytes must have before loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.domain.schema import Signature
from mlops.errors import ModelUnavailableError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """The parts of a manifest the serving path relies on; ``raw`` keeps the whole document."""

    model_name: str
    version: str
    task: str
    target: str
    created_at: str
    signature: Signature
    classes: tuple[str, ...]
    metrics: Mapping[str, float]
    model_sha256: str
    raw: Mapping[str, Any]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        try:
            return cls(
                model_name=str(raw["model_name"]),
                version=str(raw["version"]),
                task=str(raw["task"]),
                target=str(raw["target"]),
                created_at=str(raw["created_at"]),
                signature=Signature.from_dict(raw["signature"]),
                classes=tuple(str(c) for c in raw.get("classes", ())),
                metrics=dict(raw.get("metrics", {})),
                model_sha256=str(raw["artifacts"]["model.onnx"]["sha256"]),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailableError(f"manifest is malformed: missing or bad {exc}") from exc
