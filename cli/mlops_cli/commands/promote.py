"""``mlops promote``: point an alias at a version, or start its shadow or canary rollout."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from mlops.domain.names import PRODUCTION
from mlops.errors import MlopsError
from mlops_cli.commands.stack_options import actor, add_stack_options
from mlops_cli.registry_view import print_change


def register(sub: Any) -> None:
    p = sub.add_parser(
        "promote", help="point an alias at a registered version, or start its shadow/canary"
    )
    p.add_argument("version", type=_version_arg, help="a registered version number, e.g. 3")
    p.add_argument("--alias", default=PRODUCTION)
    p.add_argument("--reason", default="", help="why (kept in the alias history)")
    p.add_argument(
        "--rollout",
        type=rollout_arg,
        default=None,
        metavar="MODE",
        help="direct, shadow or canary[:PCT] (e.g. canary:20): prove the version on live "
        "traffic first; the drift evaluator's schedule promotes or rolls it back (the version "
        "already rolling out: switches it to this mode and share, its verdict starts again)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="promote, or roll out, a version the gate rejected or held (needs --reason)",
    )
    add_stack_options(p)
    p.set_defaults(func=run)


def rollout_arg(text: str) -> tuple[str, float]:
    """``direct``, ``shadow``, ``canary`` or ``canary:PCT`` as (mode, percent)."""
    mode, _, share = text.partition(":")
    if mode not in ("direct", "shadow", "canary") or (share and mode != "canary"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected direct, shadow, canary or canary:PCT (e.g. canary:20)"
        )
    if not share:
        return mode, 10.0
    try:
        percent = float(share)
    except ValueError:
        percent = math.nan
    if not 0.01 <= percent <= 100:  # also refuses nan; below 0.01 % a canary never answers
        raise argparse.ArgumentTypeError(
            f"{text!r}: the canary share must be from 0.01 to 100 (percent)"
        )
    return mode, percent


def _version_arg(text: str) -> str:
    from mlops.domain.versions import parse_version

    try:
        return parse_version(text)
    except MlopsError as exc:  # argparse prints "error: argument version: ..." and exits 2
        raise argparse.ArgumentTypeError(exc.details[0].problem) from exc


def run(args: argparse.Namespace) -> int:
    from mlops.errors import InvalidInputError
    from mlops.services.promotion import promote
    from mlops_cli.emulator.target import resolve_target

    if args.force and not args.reason.strip():
        raise InvalidInputError(
            "--force needs --reason: say why a rejected or held version should serve"
        )
    target = resolve_target(args.stack)
    if args.rollout is not None and args.rollout[0] != "direct":
        from mlops.services.rollout import RolloutService

        if args.alias != PRODUCTION:
            raise InvalidInputError("--rollout proves a version against production only")
        mode, percent = args.rollout
        done = RolloutService(
            model=target.model_name,
            store=target.store(),
            registry=target.registry(),
            actor=actor(args.stack),
        ).start_or_switch(
            args.version,
            mode=mode,
            percent=percent,
            reason=args.reason or "by hand",
            force=args.force,
        )
        rollout = done.rollout
        if args.json:
            print(json.dumps(rollout.as_dict() | {"action": done.action}))
        elif done.action == "switched":
            assert done.previous is not None
            print(
                f"rollout switched: {done.previous.phase} → {rollout.phase} "
                f"(v{rollout.version} against v{rollout.production_version}); its verdict "
                "starts again from now"
            )
        elif done.action == "unchanged":
            print(f"rollout already running, unchanged: {rollout.describe}")
        else:
            ended = (
                f" (it superseded the {done.previous.describe}: archived)" if done.previous else ""
            )
            print(
                f"rollout started: {rollout.describe}{ended}; the drift evaluator's schedule "
                "promotes or rolls it back (`mlops status` shows its verdicts, "
                "`mlops rollback` ends it now)"
            )
        return 0
    change = promote(
        target.registry(),
        target.model_name,
        args.version,
        args.alias,
        actor=actor(args.stack),
        reason=args.reason,
        force=args.force,
        store=target.store(),
    )
    print_change(change, args.json)
    return 0
