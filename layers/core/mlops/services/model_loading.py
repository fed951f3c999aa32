"""Loading a registered model version, trusting the registry over the artifacts bucket.

The registry, not the artifacts bucket, is the trust anchor: a version is loaded only if its
``model.onnx`` has the sha256 recorded in the registry (and the manifest agrees), so write
access to the bucket alone cannot change what is served.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.layout import version_prefix
from mlops.domain.manifest import Manifest
from mlops.domain.scoring import OnnxModel
from mlops.errors import IntegrityError, ModelUnavailableError


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    model: OnnxModel

    @property
    def version(self) -> str:
        return self.manifest.version

    @functools.cached_property
    def input_contract(self) -> tuple[tuple[Any, ...], ...]:
        """What request validation checks (names, types, order, bounds): two models with the
        same contract build the same columns from a request, so one set serves both."""
        return tuple((f.name, f.type, f.min, f.max) for f in self.manifest.signature.features)


def load_version(
    store: ModelStore, registry: Registry, model: str, version: str, *, threads: int = 1
) -> LoadedModel:
    """A registered version, loaded only if its bytes are the ones the registry recorded.

    The registry's sha256 is the trust anchor: a replaced ``model.onnx`` (with or without an
    edited manifest), or a manifest copied from another version, is refused."""
    record = registry.get_version(model, version)
    if record is None:
        raise ModelUnavailableError(f"version {version} of {model} is not registered")
    prefix = version_prefix(model, version)
    manifest = Manifest.from_dict(store.get_json(prefix + "manifest.json"))
    if (manifest.model_name, manifest.version) != (model, version):
        raise IntegrityError(
            f"the manifest under {prefix} describes {manifest.model_name} "
            f"v{manifest.version}; refusing to load it"
        )
    model_bytes = store.get_bytes(prefix + "model.onnx")
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != record.model_sha256:
        raise IntegrityError(
            f"model.onnx of version {version} has sha256 {digest[:12]}…, "
            f"the registry says {record.model_sha256[:12]}…; refusing to load it"
        )
    if manifest.model_sha256 != record.model_sha256:
        raise IntegrityError(
            f"the manifest of version {version} says sha256 {manifest.model_sha256[:12]}…, "
            f"the registry says {record.model_sha256[:12]}…; refusing to load it"
        )
    try:
        onnx_model = OnnxModel(
            model_bytes, manifest.signature, manifest.task, manifest.labels, threads=threads
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelUnavailableError(f"version {version} does not load: {exc}") from exc
    return LoadedModel(manifest=manifest, model=onnx_model)
