"""``mlops rollout``: the running rollout and its latest verdict (``mlops drift`` judges now)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_cli.commands.stack_options import add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rollout",
        help="the running shadow or canary and its latest verdict (`mlops drift` judges it now)",
    )
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 whether or not a rollout runs: "none" is an answer, not a failure."""
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    registry = target.registry()
    rollout = registry.get_rollout(target.model_name)
    last_move = next(iter(registry.history(target.model_name, limit=1)), None)
    if args.json:
        print(
            json.dumps(
                {
                    "model": target.model_name,
                    "rollout": rollout.as_dict() if rollout else None,
                    "last_move": last_move.as_dict() if last_move else None,
                },
                default=str,
            )
        )
        return 0
    if rollout is None:
        print(f"{target.model_name}: no rollout running")
        if last_move is not None:
            print(
                f"Last move: {last_move.alias} v{last_move.from_version} -> "
                f"v{last_move.to_version} ({last_move.kind} by {last_move.actor}, "
                f"{last_move.at}: {last_move.reason})"
            )
        return 0
    print(
        f"{target.model_name}: {rollout.describe}, since {rollout.started_at} "
        f"(by {rollout.actor}: {rollout.reason})"
    )
    for step in rollout.steps:
        print(
            f"Stepped {step.get('from_percent'):g} % -> {step.get('to_percent'):g} % at "
            f"{step.get('at')} ({step.get('actor')})"
        )
    check = rollout.last_check
    ramp = check.get("ramp") if check else None
    if ramp:
        where = f"step {ramp['step']} of {ramp['of']}" if ramp.get("step") else "off the steps"
        following = ramp.get("next_percent")
        print(
            f"Ramp {' -> '.join(f'{p:g} %' for p in ramp['steps'])}: {where} at "
            f"{ramp['percent']:g} %; "
            + (
                f"next {following:g} % when shown not worse"
                if following
                else "last step: a pass promotes"
            )
        )
    if not check:
        print("No verdict yet: `mlops drift` judges it now, the evaluator's schedule hourly")
        return 0
    print(f"Latest verdict ({check.get('at')}): {check.get('decision')}")
    sequential = check.get("sequential") or {}
    if sequential.get("z") is not None and sequential.get("boundary") is not None:
        print(
            f"Live quality, sequential test: z = {sequential['z']:+.2f} against the boundary "
            f"±{sequential['boundary']:.2f} (always valid at {sequential['confidence']:.0%}): "
            f"{str(sequential.get('verdict')).replace('_', ' ')}"
        )
    for reason in check.get("reasons") or []:
        print(f"  - {reason}")
    if check.get("report"):
        print(f"Verdict: {check['report']}")
    return 0
