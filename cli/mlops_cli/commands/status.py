"""``mlops status``: the registry's versions, aliases, rollout and recent alias moves."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mlops_cli.commands.stack_options import add_stack_options
from mlops_cli.registry_view import print_status


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status", help="versions (status, metrics, data, reasons), aliases and recent moves"
    )
    p.add_argument(
        "--versions", type=int, default=20, metavar="N", help="newest N versions (default 20)"
    )
    p.add_argument(
        "--history",
        type=int,
        default=None,
        metavar="N",
        help="latest N alias moves (default 10; with --json, all)",
    )
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_cli import retrain
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    registry = target.registry()
    model = target.model_name
    versions = registry.list_versions(model)
    aliases, rollout = registry.serving(model)
    default_limit = sys.maxsize if args.json else 10  # --json: the whole history
    limit = default_limit if args.history is None else max(args.history, 0)
    history = registry.history(model, limit=limit)
    retrains = retrain.recent(target, limit=5)
    if args.json:
        print(
            json.dumps(
                {
                    "model": model,
                    "target": target.description,
                    "aliases": aliases,
                    "rollout": rollout.as_dict() if rollout else None,
                    "versions": [v.as_dict() for v in versions],
                    "history": [change.as_dict() for change in history],
                    "retrains": [
                        {
                            "at": doc.get("at"),
                            "trigger": retrain.trigger_of(doc),
                            "outcome": retrain.outcome(doc),
                            "summary": retrain.describe(doc),
                        }
                        for doc in retrains
                    ],
                },
                default=str,
            )
        )
        return 0
    print_status(
        model,
        target.description,
        versions,
        aliases=aliases,
        history=history,
        limit=args.versions,
        rollout=rollout,
    )
    if retrains:
        print("Latest retrains (oldest first):")
        for doc in retrains:
            print(f"  {retrain.trigger_of(doc)}\n    -> {retrain.describe(doc)}")
    return 0
