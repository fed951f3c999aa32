"""Move an alias to a registered version: promotion and rollback, each one registry transaction
that also records who moved it and why.

Its own module, free of the training stack, so `mlops promote` (and a future rollout function)
moves an alias without importing scikit-learn: that import alone took 4 s, and 10 to 17 s on a
loaded laptop, for what is one conditional write.
"""

from __future__ import annotations

from mlops.adapters.registry import PRODUCTION, REJECTED, AliasChange, Registry
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError, InvalidInputError, Problem


def promote(
    registry: Registry,
    model: str,
    version: str,
    alias: str = PRODUCTION,
    *,
    actor: str,
    reason: str,
    force: bool = False,
) -> AliasChange:
    """Point ``alias`` at registered ``version``, from whatever it points at now.

    A version the gate rejected is refused unless ``force``, and forcing needs a reason (it
    is kept in the alias history). Raises ``ConflictError`` when the version is not
    registered, was rejected, or the alias moved while this ran.
    """
    version = parse_version(version)
    if force and not reason.strip():
        raise InvalidInputError(
            "a forced promotion needs a reason",
            [Problem("reason", "say why a rejected version should serve anyway")],
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
    current = registry.get_alias(model, alias)
    return registry.promote(
        model, version, expected=current, actor=actor, reason=reason, alias=alias, force=force
    )


def rollback(
    registry: Registry, model: str, *, actor: str, reason: str, alias: str = PRODUCTION
) -> AliasChange:
    """Move ``alias`` back to the version it pointed at before its current one was promoted
    (repeated rollbacks walk further back; rejected versions are never a target)."""
    return registry.rollback(model, actor=actor, reason=reason, alias=alias)
