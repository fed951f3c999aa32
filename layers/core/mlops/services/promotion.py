"""Move an alias to a registered version: promotion and rollback.

Its own module, free of the training stack, so `mlops promote` (and a future rollout function)
moves an alias without importing scikit-learn: that import alone took 4 s, and 10 to 17 s on a
loaded laptop, for what is one conditional write.
"""

from __future__ import annotations

from mlops.adapters.registry import Registry
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError

PRODUCTION = "production"


def promote(registry: Registry, model: str, version: str, alias: str = PRODUCTION) -> str | None:
    """Point ``alias`` at an existing ``version``; returns the version it pointed at."""
    version = parse_version(version)
    if registry.get_version(model, version) is None:
        raise ConflictError(f"version {version} of {model} is not registered")
    current = registry.get_alias(model, alias)
    registry.move_alias(model, alias, version, expected=current)
    return current
