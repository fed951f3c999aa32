"""Move an alias to a registered version: promotion and rollback, each one registry transaction
that also records who moved it and why.

Its own module, free of the training stack, so `mlops promote` (and a future rollout function)
moves an alias without importing scikit-learn: that import alone took 4 s, and 10 to 17 s on a
loaded laptop, for what is one conditional write.
"""

from __future__ import annotations

import hashlib

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import HELD, PRODUCTION, REJECTED, AliasChange, Registry
from mlops.domain.layout import version_prefix
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError, IntegrityError, InvalidInputError, Problem


def promote(
    registry: Registry,
    model: str,
    version: str,
    alias: str = PRODUCTION,
    *,
    actor: str,
    reason: str,
    force: bool = False,
    store: ModelStore | None = None,
) -> AliasChange:
    """Point ``alias`` at registered ``version``, from whatever it points at now.

    With ``store`` the version's ``model.onnx`` and manifest are checked against the
    registry's sha256 first: an alias never moves to a version the inference function would
    refuse to load.

    A version the gate rejected or held is refused unless ``force``, and forcing needs a
    reason (it is kept in the alias history): a held one may run only as a shadow, which the
    evaluator promotes once live labels clear it. While a rollout is in progress, promoting
    its candidate ends it early; promoting another version is refused. Raises
    ``ConflictError`` when the version is not registered, was rejected or held, or the alias
    moved while this ran.
    """
    version = parse_version(version)
    if force and not reason.strip():
        raise InvalidInputError(
            "a forced promotion needs a reason",
            [Problem("reason", "say why a rejected or held version should serve anyway")],
        )
    record = registry.get_version(model, version)
    if record is None:
        raise ConflictError(f"version {version} of {model} is not registered")
    if record.status == REJECTED and not force:
        why = f" ({'; '.join(record.reasons)})" if record.reasons else ""
        raise ConflictError(
            f"version {version} of {model} was rejected{why}: promote it with force "
            "(`mlops promote --force --reason ...`) if it must serve anyway"
        )
    if record.status == HELD and not force:
        why = f" ({'; '.join(record.reasons)})" if record.reasons else ""
        raise ConflictError(
            f"version {version} of {model} is held{why}: it may run only as a shadow until "
            f"live labels clear it (`mlops promote {version} --rollout shadow`); promote it "
            "with force (`mlops promote --force --reason ...`) if it must serve anyway"
        )
    if store is not None:
        verify_artifacts(store, registry, model, version)
    rollout = registry.get_rollout(model) if alias == PRODUCTION else None
    if rollout is not None:
        if rollout.version != version:
            raise ConflictError(
                f"a rollout ({rollout.describe}) is in progress: end it first "
                "(`mlops rollback`), or promote its candidate"
            )
        # Promoting the candidate by hand ends its rollout early, in the same transaction.
        change = registry.finish_rollout(
            rollout, promote=True, actor=actor, reason=reason or "promoted by hand", force=force
        )
        assert change is not None
        return change
    current = registry.get_alias(model, alias)
    return registry.promote(
        model, version, expected=current, actor=actor, reason=reason, alias=alias, force=force
    )


def rollback(
    registry: Registry,
    model: str,
    *,
    actor: str,
    reason: str,
    alias: str = PRODUCTION,
    store: ModelStore | None = None,
) -> AliasChange:
    """Move ``alias`` back to the version it pointed at before its current one was promoted
    (repeated rollbacks walk further back; rejected versions are never a target). With
    ``store`` a target whose artifacts no longer match the registry is refused."""

    def check(target: str) -> None:
        if store is not None:
            verify_artifacts(store, registry, model, target)

    return registry.rollback(model, actor=actor, reason=reason, alias=alias, check=check)


def verify_artifacts(store: ModelStore, registry: Registry, model: str, version: str) -> None:
    """``model.onnx`` and the manifest of ``version`` are the ones registered (sha256), or
    ``IntegrityError``: the same trust anchor the inference function loads by."""
    record = registry.get_version(model, version)
    if record is None:
        raise ConflictError(f"version {version} of {model} is not registered")
    prefix = version_prefix(model, version)
    digest = hashlib.sha256(store.get_bytes(prefix + "model.onnx")).hexdigest()
    manifest = store.get_json(prefix + "manifest.json")
    try:
        listed = manifest["artifacts"]["model.onnx"]["sha256"]
    except (KeyError, TypeError):
        listed = None
    if digest != record.model_sha256 or listed != record.model_sha256:
        raise IntegrityError(
            f"v{version} of {model} cannot be served: its model.onnx or manifest no longer "
            f"matches the sha256 registered for it ({record.model_sha256[:12]}…); the alias "
            "was not moved"
        )
