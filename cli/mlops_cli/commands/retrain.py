"""``mlops retrain``: retrain through the stack's own pipeline and follow it to its decision."""

from __future__ import annotations

import argparse
from typing import Any

from mlops_cli.commands.stack_options import actor, add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "retrain",
        help="retrain through the deployed pipeline (upload or retrain request) and follow it",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="FILE|s3://...",
        help="a CSV to upload under the training prefix, or an object already there "
        "(default: the newest upload)",
    )
    p.add_argument("--reason", default="requested from the command line")
    p.add_argument(
        "--wait",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how long to follow the pipeline for its decision (0: do not wait; default 900)",
    )
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a version was promoted or registered as a candidate, 1 when rejected."""
    from mlops_cli import retrain
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    started = retrain.start(target, args.data, args.reason, actor(args.stack))
    if not args.json:
        print(f"Retraining {target.model_name}: {started.description}", flush=True)
    if args.wait <= 0:
        return 0
    docs = []
    for doc in retrain.follow(target, started, args.wait):
        docs.append(doc)
        if not args.json:
            print("  " + retrain.describe(doc), flush=True)
    if args.json:
        print(retrain.as_json(docs))
    return 1 if retrain.outcome(docs[-1]) == "rejected" else 0
