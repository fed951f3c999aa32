"""Lambda execution-environment lifecycle hooks.

With SnapStart, an environment is restored from a snapshot taken when the version was
published, possibly days earlier. Anything cached at init that can go stale (the model behind
an alias) must be re-checked on restore. ``snapshot_restore_py`` exists only in Lambda's
Python runtimes (3.12+); elsewhere registering is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable


def after_snapstart_restore(hook: Callable[[], None]) -> bool:
    """Run ``hook`` after every SnapStart restore; returns whether it was registered."""
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return False
    register_after_restore(hook)
    return True
