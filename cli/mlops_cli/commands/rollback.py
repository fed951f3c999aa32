"""``mlops rollback``: end the active rollout, else move production back."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_cli.commands.stack_options import actor, add_stack_options
from mlops_cli.registry_view import print_change


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rollback",
        help="end the active shadow/canary (candidate off traffic), else move production "
        "back to the version it served before its last promotion",
    )
    p.add_argument("--reason", default="", help="why (kept in the alias history)")
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops.services.promotion import rollback
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    registry = target.registry()
    if registry.get_rollout(target.model_name) is not None:
        from mlops.services.rollout import RolloutService

        ended = RolloutService(
            model=target.model_name,
            store=target.store(),
            registry=registry,
            actor=actor(args.stack),
        ).abort(reason=args.reason or "rolled back by hand")
        if args.json:
            print(json.dumps({"rolled_back": ended.as_dict()}))
        else:
            print(
                f"rollout ended: v{ended.version} ({ended.mode}) is off traffic and rejected; "
                f"production stays v{ended.production_version}"
            )
        return 0
    change = rollback(
        registry,
        target.model_name,
        actor=actor(args.stack),
        reason=args.reason,
        store=target.store(),
    )
    print_change(change, args.json)
    return 0
