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
    labels: tuple[str | int, ...]  # classes as trained: integers stay integers
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
                labels=tuple(_label(c) for c in raw.get("classes") or ()),
                metrics=dict(raw.get("metrics", {})),
                model_sha256=str(raw["artifacts"]["model.onnx"]["sha256"]),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailableError(f"manifest is malformed: missing or bad {exc}") from exc


def typed_labels(classes: tuple[str, ...]) -> list[str | int]:
    """Class labels as the data meant them: CSV cells are text, but a target of canonical
    integers ("0", "1", "-2") is integer-labelled and is served and accepted as integers."""
    if classes and all(c.lstrip("-").isascii() and c == str(_int(c)) for c in classes):
        return [int(c) for c in classes]
    return list(classes)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _label(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"class label {value!r}")
    return value
