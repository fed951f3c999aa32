"""The registry's vocabulary, defined once: version statuses, aliases and rollout modes.

Domain code (serving digests, the verdicts), the registry adapter, the settings and the CLI
all name these; a second spelling of "production" somewhere would be a second truth.
"""

from __future__ import annotations

CANDIDATE = "candidate"
PRODUCTION = "production"  # a status, the alias whose moves keep statuses in step, a variant
ARCHIVED = "archived"
REJECTED = "rejected"
HELD = "held"  # its labels disagree with the world: a shadow until live labels clear it
STATUSES = (CANDIDATE, PRODUCTION, ARCHIVED, REJECTED, HELD)

ROLLOUT_ALIAS = "candidate"
SHADOW = "shadow"
CANARY = "canary"
ROLLOUT_MODES = (SHADOW, CANARY)
