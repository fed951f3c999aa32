"""``mlops drift``: the drift evaluator's service, run now against a stack's resources."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from mlops_cli.commands.stack_options import add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "drift", help="evaluate drift and live quality of production now, and write the reports"
    )
    p.add_argument(
        "--window",
        type=_hours_arg,
        default=24.0,
        metavar="HOURS",
        help="traffic to evaluate, e.g. 24h, 7d or 36 (hours; default 24h)",
    )
    p.add_argument("--no-act", action="store_true", help="report only: never request retraining")
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


@contextlib.contextmanager
def _metrics_off_stdout() -> Iterator[None]:
    """Send what the services print while this runs (Powertools' EMF metric lines) to stderr
    with ``MLOPS_LOG_LEVEL=DEBUG``, else nowhere: stdout stays the command's own output."""
    if os.environ.get("MLOPS_LOG_LEVEL", "").upper() == "DEBUG":
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def run(args: argparse.Namespace) -> int:
    """The drift evaluator's service, run here against the stack's resources (the same code
    the scheduled function runs). Exit 0; the verdict is in the output and the reports."""
    import tempfile
    import webbrowser

    from mlops.adapters.aws import client
    from mlops.adapters.events import EventBus
    from mlops.adapters.label_store import LabelStore
    from mlops.adapters.sketch_store import SketchStore
    from mlops.adapters.training_data import TrainingDataStore
    from mlops.services.drift import DriftService
    from mlops.services.labels import LabelFolder
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    store = target.store()
    service = DriftService(
        model=target.model_name,
        store=store,
        registry=target.registry(),
        sketches=SketchStore(store.bucket, client("s3")),
        traffic=TrainingDataStore(store.bucket, client("s3")),
        labels=LabelFolder(
            target.model_name,
            TrainingDataStore(store.bucket, client("s3")),
            LabelStore(store.bucket, client("s3")),
        ),
        bus=EventBus(target.output("RetrainBusName"), client("events")),
    )
    # The service publishes CloudWatch metrics as EMF lines on stdout (Lambda's log is where
    # CloudWatch reads them); here they would only bury the verdict, or break --json.
    with _metrics_off_stdout():
        outcome = service.evaluate(args.window, act=not args.no_act)
    if args.json:
        print(json.dumps(outcome.as_dict()))
    else:
        print(
            f"{target.model_name} v{outcome.report['version']}: {outcome.report['headline']} "
            f"({outcome.report['rows']:,} rows, {outcome.report['window']['hours']} h)"
        )
        verdict = outcome.report["verdict"]
        for reason in verdict["reasons"]:
            print(f"  - {reason}")
        print(f"Report: {outcome.json_uri}")
        print(f"        {outcome.html_uri}")
    if args.open:
        html = store.get_bytes(outcome.html_uri.removeprefix(f"s3://{store.bucket}/"))
        with tempfile.NamedTemporaryFile("wb", suffix=".html", delete=False) as out:
            out.write(html)
        webbrowser.open(f"file://{out.name}")
        print(f"Opened {out.name}", file=sys.stderr)
    return 0
