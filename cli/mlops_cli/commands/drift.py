"""``mlops drift``: the drift evaluator's service, run now against a stack's resources."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from mlops_cli.commands.stack_options import add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "drift",
        help="evaluate drift and live quality of production and judge the running rollout now, "
        "as the scheduled evaluator does, and write the reports",
    )
    p.add_argument(
        "--window",
        type=_hours_arg,
        default=24.0,
        metavar="HOURS",
        help="traffic to evaluate, e.g. 24h, 7d or 36 (hours; default 24h)",
    )
    p.add_argument(
        "--no-act",
        action="store_true",
        help="report only: never request retraining, never promote or roll back",
    )
    p.add_argument("--open", action="store_true", help="open the HTML report in a browser")
    add_stack_options(p)
    p.set_defaults(func=run)


def _hours_arg(text: str) -> float:
    units = {"h": 1.0, "d": 24.0}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1.0)
    try:
        hours = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 24h or 7d") from None
    if not 1 <= hours <= 2160:
        raise argparse.ArgumentTypeError("the window is from 1 hour to 90 days")
    return hours


def run(args: argparse.Namespace) -> int:
    """The drift evaluator's two evaluations, run here against the stack's resources (the code
    the scheduled function runs): drift and live quality of production, then the verdict on the
    active rollout. Exit 0; 1 when either failed (the other still ran and is printed)."""
    import tempfile
    import webbrowser

    from mlops_cli import retrain
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    store = target.store()
    service, rollouts, labels, sketches = _evaluators(target, args.stack)
    # Independent, as in the scheduled handler: a drift evaluation that fails must not keep a
    # failing canary in front of users, nor the other way round. What succeeded is printed;
    # any failure is said and makes the exit code 1.
    failures: list[str] = []
    outcome = judged = None
    # The services publish CloudWatch metrics as EMF lines on stdout (Lambda's log is where
    # CloudWatch reads them; the CLI turns them off unless --verbose): never on our stdout.
    with contextlib.redirect_stdout(sys.stderr), labels.run(), sketches.run():
        try:
            outcome = service.evaluate(args.window, act=not args.no_act)
        except Exception as exc:
            failures.append(f"the drift evaluation failed: {_message(exc)}")
        try:
            judged = rollouts.evaluate(act=not args.no_act)
        except Exception as exc:
            failures.append(f"the rollout judgement failed: {_message(exc)}")
    try:
        last = retrain.recent(target, limit=1)
    except Exception as exc:  # an operator role may not list reports: not worth the verdicts
        last = []
        print(f"warning: cannot read the latest retrains: {_message(exc)}", file=sys.stderr)
    last_retrain = (
        {"trigger": retrain.trigger_of(last[0]), "outcome": retrain.outcome(last[0])}
        | {"summary": retrain.describe(last[0])}
        if last
        else None
    )
    if args.json:
        print(
            json.dumps(
                (outcome.as_dict() if outcome else {"drift": None})
                | {"rollout": judged.as_dict() if judged else None, "last_retrain": last_retrain}
                | ({"errors": failures} if failures else {})
            )
        )
    else:
        if outcome is not None:
            print(
                f"{target.model_name} v{outcome.report['version']}: "
                f"{outcome.report['headline']} ({outcome.report['rows']:,} rows, "
                f"{outcome.report['window']['hours']} h)"
            )
            for reason in outcome.report["verdict"]["reasons"]:
                print(f"  - {reason}")
            print(f"Report: {outcome.json_uri}")
            print(f"        {outcome.html_uri}")
            if outcome.report["verdict"]["retrain_requested"]:
                print("Retraining requested: `mlops status` shows what it comes to")
        if judged is not None:
            print(describe_verdict(judged.as_dict()))
        if last_retrain is not None:
            print(f"Last retrain: {last_retrain['trigger']}\n  -> {last_retrain['summary']}")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if args.open and outcome is not None:
        html = store.get_bytes(outcome.html_uri.removeprefix(f"s3://{store.bucket}/"))
        with tempfile.NamedTemporaryFile("wb", suffix=".html", delete=False) as out:
            out.write(html)
        webbrowser.open(f"file://{out.name}")
        print(f"Opened {out.name}", file=sys.stderr)
    return 1 if failures else 0


def _evaluators(target: Any, stack: str | None) -> tuple[Any, Any, Any, Any]:
    """The drift service and rollout judge over one label folder and one sketch store, built
    from the stack's outputs as the function's composition root builds them from settings."""
    from mlops.adapters.aws import client
    from mlops.adapters.events import EventBus
    from mlops.adapters.label_store import LabelStore
    from mlops.adapters.sketch_store import SketchStore
    from mlops.adapters.training_data import TrainingDataStore
    from mlops.services.drift import DriftService
    from mlops.services.labels import LabelFolder
    from mlops.services.rollout import RolloutService
    from mlops_cli.commands.stack_options import actor

    store, registry = target.store(), target.registry()
    traffic = TrainingDataStore(store.bucket, client("s3"))
    sketches = SketchStore(store.bucket, client("s3"))
    labels = LabelFolder(target.model_name, traffic, LabelStore(store.bucket, client("s3")))
    service = DriftService(
        model=target.model_name,
        store=store,
        registry=registry,
        sketches=sketches,
        traffic=traffic,
        labels=labels,
        bus=EventBus(target.output("RetrainBusName"), client("events")),
    )
    rollouts = RolloutService(
        model=target.model_name,
        store=store,
        registry=registry,
        traffic=traffic,
        sketches=sketches,
        labels=labels,
        actor=actor(stack),
    )
    return service, rollouts, labels, sketches


def _message(exc: Exception) -> str:
    from mlops.errors import MlopsError

    return exc.message if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"


def describe_verdict(judged: dict[str, Any]) -> str:
    """A rollout verdict in a few lines: what was judged, what it says, what was done."""
    subject = f"v{judged['version']} ({judged['mode']}"
    subject += f" {judged['percent']:g}%)" if judged["mode"] == "canary" else ")"
    done = {
        ("promote", True): "promoted to production",
        ("rollback", True): "rolled back",
        ("promote", False): "would be promoted (not acted on)",
        ("rollback", False): "would be rolled back (not acted on)",
    }.get((judged["decision"], judged["acted"]), "keeps baking")
    lines = [f"Rollout of {subject} against production v{judged['production_version']}: {done}"]
    lines += [f"  - {reason}" for reason in judged["reasons"]]
    lines.append(f"Verdict: {judged['report']}")
    return "\n".join(lines)
