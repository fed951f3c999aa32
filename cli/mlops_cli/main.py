"""``mlops``: the command line for the local stack and for deployed stacks."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import MlopsError

if TYPE_CHECKING:
    from mlops.adapters.registry import AliasChange, Rollout, VersionRecord


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _service_logs_to_stderr()
    try:
        return int(args.func(args) or 0)
    except MlopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for problem in exc.details[:20]:
            print(f"  - {problem.field}: {problem.problem}", file=sys.stderr)
        if len(exc.details) > 20:
            print(f"  ... and {len(exc.details) - 20} more", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _service_logs_to_stderr() -> None:
    """The services log JSON lines for CloudWatch; run from the CLI, their warnings go to
    stderr, so stdout holds only what the command prints (``--json`` stays one object)."""
    from mlops.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    logger.setLevel(os.environ.get("MLOPS_LOG_LEVEL", "WARNING"))


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("local", help="run the embedded local stack (moto + the real handlers)")
    p.add_argument("--port", type=int, default=3000, help="HTTP API port (default 3000)")
    p.add_argument("--moto-port", type=int, default=None, help="moto server port (default: any)")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="your model config (its name sets ModelName; default: the shipped house-prices one)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="CSV to train v1 from when the registry is empty (with --config: else 503 until "
        "`mlops train`)",
    )
    p.add_argument(
        "--schedule-seconds",
        type=float,
        default=None,
        metavar="N",
        help="fire every schedule of the template every N seconds (default: as declared)",
    )
    p.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as for sam deploy (default AliasRefreshSeconds=2)",
    )
    p.set_defaults(func=_local)

    p = sub.add_parser(
        "invoke", help="run one function of the template on an event (sam local invoke, no Docker)"
    )
    p.add_argument("function", help="the function's logical id, e.g. InferenceFunction")
    p.add_argument("--event", "-e", required=True, help="event JSON file, or - for stdin")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.set_defaults(func=_invoke)

    p = sub.add_parser(
        "demo",
        help="the main job on the local stack: the market moves, the system keeps up",
    )
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--port", type=int, default=0, help="HTTP API port (default: any free port)")
    p.add_argument("--seed", type=int, default=0, help="the synthetic market's seed (default 0)")
    p.add_argument(
        "--months", type=int, default=11, help="months of the market, month 0 included (11)"
    )
    p.add_argument(
        "--traffic", type=int, default=1500, help="houses priced per month (default 1500)"
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path("demo-output"),
        help="where the HTML report, the drift reports and the data go (default demo-output/)",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="model config (default: the demo's own)"
    )
    p.add_argument("--json", action="store_true", help="end with one JSON summary object")
    p.set_defaults(func=_demo)

    p = sub.add_parser("generate", help="write synthetic house sales for a month as CSV")
    p.add_argument("--month", type=int, default=0)
    p.add_argument("--rows", type=int, default=4000)
    p.add_argument("--seed", type=int, default=None, help="default: the month number")
    p.add_argument("--out", type=Path, required=True, help="file.csv or file.csv.gz")
    p.set_defaults(func=_generate)

    p = sub.add_parser("train", help="train, export to ONNX, gate on parity and register")
    p.add_argument("--data", type=Path, required=True, help="CSV or gzip CSV")
    p.add_argument("--config", type=Path, default=None, help="model config (default: shipped)")
    p.add_argument("--no-promote", action="store_true", help="register without moving production")
    _stack_option(p)
    p.set_defaults(func=_train)

    _lifecycle_commands(sub)
    return parser


def _lifecycle_commands(sub: Any) -> None:
    """retrain, status, promote, rollback: the model lifecycle on a stack."""
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
    _stack_option(p)
    p.set_defaults(func=_retrain)

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
    _stack_option(p)
    p.set_defaults(func=_drift)

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
    _stack_option(p)
    p.set_defaults(func=_status)

    p = sub.add_parser(
        "promote", help="point an alias at a registered version, or start its shadow/canary"
    )
    p.add_argument("version", type=_version_arg, help="a registered version number, e.g. 3")
    p.add_argument("--alias", default="production")
    p.add_argument("--reason", default="", help="why (kept in the alias history)")
    p.add_argument(
        "--rollout",
        type=_rollout_arg,
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
    _stack_option(p)
    p.set_defaults(func=_promote)

    p = sub.add_parser(
        "rollback",
        help="end the active shadow/canary (candidate off traffic), else move production "
        "back to the version it served before its last promotion",
    )
    p.add_argument("--reason", default="", help="why (kept in the alias history)")
    _stack_option(p)
    p.set_defaults(func=_rollback)


def _rollout_arg(text: str) -> tuple[str, float]:
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


def _stack_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stack",
        default=None,
        help="deployed CloudFormation stack (default: the running `mlops local`)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def _local(args: argparse.Namespace) -> int:
    from mlops_cli.emulator.runner import start_local
    from mlops_cli.emulator.target import clear_local_state, write_local_state

    overrides = dict(item.split("=", 1) for item in args.parameter_overrides if "=" in item)
    running = start_local(
        args.template,
        port=args.port,
        moto_port=args.moto_port,
        config_path=args.config,
        data_path=args.data,
        parameters=overrides,
        schedule_seconds=args.schedule_seconds,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        write_local_state(
            running.stack.endpoint,
            running.api.url,
            running.target.outputs,
            {k: str(v) for k, v in running.stack.resolver.parameters.items()},
        )
        model = running.target.model_name
        if running.bootstrapped:
            source = args.data or "the synthetic housing market, month 0"
            metrics = ", ".join(
                f"{k} {v:,.0f}" if abs(v) >= 1000 else f"{k} {v:.3g}"
                for k, v in running.bootstrapped.metrics.items()
            )
            print(
                f"Trained and promoted {model} v{running.bootstrapped.version} "
                f"from {source} (holdout {metrics})"
            )
        elif running.target.registry().get_alias(model, "production") is None:
            print(
                f"No {model} model yet: /predict answers 503 until "
                f"`mlops train --data FILE{' --config ' + str(args.config) if args.config else ''}`"
            )
        print(f"AWS endpoint: {running.stack.endpoint}")
        print(f"Training data: {running.training_data_uri}")
        print(
            f"Artifacts: {running.artifacts_uri} "
            "(models/, reports/retrain/, datasets/, staging/, config/)"
        )
        print(f"Listening on {running.api.url}", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping the local stack", flush=True)
        clear_local_state()
        running.stop()
    return 0


def _invoke(args: argparse.Namespace) -> int:
    """The function in its own environment, against the running ``mlops local`` (same folder)
    or, if none runs, a fresh stack of the template's resources. The result goes to stdout,
    the function's logs to stderr; exit code 1 when the function fails."""
    from mlops.errors import ConfigError
    from mlops_cli.emulator.runner import print_function_log
    from mlops_cli.emulator.stack import LocalStack
    from mlops_cli.emulator.target import running_local_stack

    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        event = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {args.event}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{args.event} is not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{args.event} is not JSON: {exc}") from exc
    try:
        running = running_local_stack()
    except ConfigError as exc:  # a stale state file (now removed): run on a fresh stack
        print(f"note: {exc.message}; invoking on a fresh stack", file=sys.stderr)
        running = None
    stack = LocalStack(args.template, parameters=running["parameters"] if running else None)
    if args.function not in stack.function_names:
        raise ConfigError(
            f"{args.template} has no function {args.function!r}; it has "
            + ", ".join(stack.function_names)
        )
    stack.log_listeners.append(print_function_log)
    try:
        if running:
            stack.attach(running["endpoint"])
        else:
            stack.start()
        assert stack.runtime is not None
        invocation = stack.runtime.invoke(args.function, event)
    finally:
        stack.stop()
    payload = invocation.payload
    if isinstance(payload, bytes):  # a handler that returned non-JSON bytes
        payload = payload.decode("utf-8", "replace")
    print(json.dumps(payload, indent=2))
    return 0 if invocation.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from mlops.errors import ConfigError
    from mlops_cli.demo.run import DemoOptions, run_demo
    from mlops_cli.demo.summary import json_summary

    if args.months < 2 or args.traffic < 100:
        raise ConfigError("--months must be at least 2 and --traffic at least 100")
    summary = run_demo(
        DemoOptions(
            template=args.template,
            seed=args.seed,
            months=args.months,
            traffic=args.traffic,
            output=args.output,
            port=args.port,
            config=args.config,
            json_mode=args.json,
        )
    )
    if args.json:
        print(json_summary(summary))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from mlops.domain.synthetic import conditions_for_month, generate, write_csv

    seed = args.month if args.seed is None else args.seed
    columns = generate(args.rows, conditions_for_month(args.month), seed=seed)
    write_csv(columns, args.out)
    print(f"Wrote {args.rows} rows of month {args.month} to {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from mlops.domain.config import load_config
    from mlops.errors import ConfigError
    from mlops_cli.emulator.runner import (
        archive_dataset,
        publish_config,
        read_data,
        training_service,
    )
    from mlops_cli.emulator.target import resolve_target

    config = load_config(args.config)
    target = resolve_target(args.stack)
    if config.name != target.model_name:
        raise ConfigError(
            f"the config trains {config.name!r} but the {target.description} serves "
            f"{target.model_name!r}: pass the config the stack was started with "
            f"(`--config`), or start the stack with `mlops local --config <this config>`"
        )
    data = read_data(args.data)
    uri = archive_dataset(target.store(), data, args.data.name)
    # The retrainer retrains with the config the model was last trained with.
    publish_config(target, args.config)
    result = training_service(target).train_and_register(
        config, data, uri, promote=not args.no_promote
    )
    if args.json:
        print(
            json.dumps(
                {
                    "version": result.version,
                    "status": result.status,
                    "promoted": result.promoted,
                    "reasons": list(result.reasons),
                    "metrics": result.metrics,
                    "gate": result.gate,
                    "parity": result.parity.as_dict(),
                    "report_uri": result.report_uri,
                }
            )
        )
        return 0
    outcome = {
        "production": "and promoted it to production",
        "candidate": "as a candidate (not promoted)",
    }.get(result.status, "as rejected (production unchanged)")
    print(f"Registered {config.name} v{result.version} {outcome}")
    for reason in result.reasons:
        print(f"  - {reason}")
    print("Holdout metrics: " + ", ".join(f"{k}={v:,.4g}" for k, v in result.metrics.items()))
    print(f"Parity: passed ({result.parity.summary()})")
    print(f"Report: {result.report_uri}")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    """Exit 0 when a version was promoted or registered as a candidate, 1 when rejected."""
    from mlops_cli import retrain
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    started = retrain.start(target, args.data, args.reason, _actor(args.stack))
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


def _drift(args: argparse.Namespace) -> int:
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


def _status(args: argparse.Namespace) -> int:
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    registry = target.registry()
    model = target.model_name
    versions = registry.list_versions(model)
    aliases, rollout = registry.serving(model)
    default_limit = sys.maxsize if args.json else 10  # --json: the whole history
    limit = default_limit if args.history is None else max(args.history, 0)
    history = registry.history(model, limit=limit)
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
                },
                default=str,
            )
        )
        return 0
    _print_status(
        model,
        target.description,
        versions,
        aliases=aliases,
        history=history,
        limit=args.versions,
        rollout=rollout,
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
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

        if args.alias != "production":
            raise InvalidInputError("--rollout proves a version against production only")
        mode, percent = args.rollout
        done = RolloutService(
            model=target.model_name,
            store=target.store(),
            registry=target.registry(),
            actor=_actor(args.stack),
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
        actor=_actor(args.stack),
        reason=args.reason,
        force=args.force,
        store=target.store(),
    )
    _print_change(change, args.json)
    return 0


def _rollback(args: argparse.Namespace) -> int:
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
            actor=_actor(args.stack),
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
        actor=_actor(args.stack),
        reason=args.reason,
        store=target.store(),
    )
    _print_change(change, args.json)
    return 0


def _actor(stack: str | None) -> str:
    """Who moves an alias, for its history: the caller's ARN on AWS, the login locally."""
    if stack:
        from botocore.exceptions import BotoCoreError, ClientError

        from mlops.adapters.aws import client
        from mlops.errors import ConfigError

        try:
            return str(client("sts").get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"cannot tell who you are (sts get-caller-identity: {exc})") from exc
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database
        user = "unknown"
    return f"{user} (local)"


def _print_change(change: AliasChange, as_json: bool) -> None:
    if as_json:
        print(json.dumps(change.as_dict()))
        return
    before = f"v{change.from_version}" if change.from_version else "none"
    why = f": {json.dumps(change.reason, ensure_ascii=False)}" if change.reason else ""
    print(
        f"{change.alias}: {before} -> v{change.to_version} ({change.kind} by {change.actor}{why})"
    )


# Headline metrics, in order of preference: the first two a version has are shown.
_HEADLINE_METRICS = ("rmse", "r2", "mae", "mape", "accuracy", "f1_macro", "roc_auc", "log_loss")
_WIDE = 110  # below this many columns the table drops its trigger column and times


def _print_status(
    model: str,
    description: str,
    versions: list[VersionRecord],
    *,
    aliases: dict[str, str],
    history: list[AliasChange],
    limit: int,
    rollout: Rollout | None = None,
) -> None:
    """The registry as two tables sized to the terminal (80 columns when not a TTY, as in CI).

    Narrower than ``_WIDE`` columns, the trigger and creation time are left out, aliases sit
    under the version, and multi-part cells stack their parts, so nothing is cut mid-word.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, emoji=False)
    wide = console.width >= _WIDE
    separator = " " if wide else "\n"  # between the parts of a cell
    console.print(f"Model {model} ({description})")
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(version, []).append(alias)
    newest = sorted(versions, key=lambda v: int(v.version), reverse=True)
    shown = [v for i, v in enumerate(newest) if i < max(limit, 0) or v.version in by_version]
    if not versions:
        console.print("No versions registered yet: `mlops train --data FILE`")
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("version", no_wrap=True)
        table.add_column("status", no_wrap=True)
        if wide:
            table.add_column("created (UTC)", no_wrap=True)
        table.add_column("metrics", no_wrap=not wide)
        table.add_column("data", overflow="fold")
        if wide:
            table.add_column("trigger")
        table.add_column("reasons", ratio=1, min_width=16)
        if wide:
            table.add_column("aliases")
        for v in shown:
            marks = ", ".join(by_version.get(v.version, []))
            cells = [
                f"v{v.version}" + (f"\n{marks}" if marks and not wide else ""),
                v.status,
                *([_when(v.created_at)] if wide else []),
                separator.join(_headline(v.metrics)) or "-",
                separator.join(_data_summary(v.lineage)) or "-",
                *([_trigger(v.lineage)] if wide else []),
                _short("; ".join(v.reasons), 160 if wide else 80) or "-",
                *([marks] if wide else []),
            ]
            row = [_escape(cell) for cell in cells]
            row[1] = f"[{_status_style(v.status)}]{row[1]}[/]"
            table.add_row(*row)
        console.print(table)
        if len(shown) < len(versions):
            console.print(
                f"... and {len(versions) - len(shown)} older versions "
                "(--versions N, or --json for all)"
            )
    if rollout is not None:
        console.print(_escape(_rollout_line(rollout)))
    console.print("Recent alias changes")
    if not history:
        console.print("  none yet")
        return
    moves = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    moves.add_column("when (UTC)", no_wrap=True)
    moves.add_column("alias", no_wrap=True)
    moves.add_column("change", no_wrap=True)
    moves.add_column("by", overflow="fold")
    moves.add_column("reason", ratio=1, min_width=16)
    for change in history:
        before = f"v{change.from_version}" if change.from_version else "none"
        kind = "" if change.kind == "promote" else f"{separator}({change.kind})"
        moves.add_row(
            _when(change.at).replace(" ", separator),
            change.alias,
            f"{before} -> v{change.to_version}{kind}",
            _escape(_short_actor(change.actor)),
            _escape(change.reason or "-"),
        )
    console.print(moves)


def _status_style(status: str) -> str:
    from mlops.adapters.registry import CANDIDATE, HELD, PRODUCTION, REJECTED

    styles = {PRODUCTION: "bold green", CANDIDATE: "cyan", REJECTED: "red", HELD: "yellow"}
    return styles.get(status, "dim")


def _rollout_line(rollout: Rollout) -> str:
    check = rollout.last_check or {}
    verdict = (
        f"{check.get('decision', '?')} at {_when(str(check.get('at', '')))}: "
        + "; ".join(str(r) for r in check.get("reasons", [])[:3])
        if check
        else "not evaluated yet"
    )
    forced = " (forced)" if rollout.forced else ""
    switched = ""
    if rollout.switches:
        last = rollout.switches[-1]
        switched = (
            f"; switched from {last.get('from_mode', '?')} by "
            f"{_short_actor(str(last.get('actor', '?')))}: {last.get('reason') or '-'}"
        )
    return (
        f"Rollout: {rollout.describe}{forced}, since {_when(rollout.started_at)} UTC "
        f"({rollout.rollout_id}){switched}; latest verdict: {verdict}"
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _when(iso: str) -> str:
    """``2025-03-01 14:02`` in UTC; the stored text when it is not ISO 8601."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _headline(metrics: Mapping[str, float]) -> list[str]:
    names = [m for m in _HEADLINE_METRICS if m in metrics] or list(metrics)
    return [f"{name} {_number(metrics[name])}" for name in names[:2]]


def _number(value: float) -> str:
    try:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    except (TypeError, ValueError):  # a metric stored as null or text
        return str(value)


def _data_summary(lineage: Mapping[str, Any]) -> list[str]:
    """Rows, and the name of the object a version was trained on (``+N``: and N others),
    from its lineage's ``data``: a list of ``{"uri", "rows", "role"}`` or one of them."""
    data = lineage.get("data")
    listed = data if isinstance(data, list) else [data]
    sources = [s for s in listed if isinstance(s, Mapping)]
    if not sources:
        return []
    rows = [s["rows"] for s in sources if isinstance(s.get("rows"), int)]
    main = next((s for s in sources if s.get("role") == "new"), sources[0])
    name = str(main.get("uri") or main.get("key") or "").rstrip("/").rsplit("/", 1)[-1]
    more = f"+{len(sources) - 1}" if len(sources) > 1 else ""
    parts = [f"{sum(rows):,} rows"] if rows else []
    return [*parts, " ".join(part for part in (name, more) if part)]


def _trigger(lineage: Mapping[str, Any]) -> str:
    trigger = lineage.get("trigger")
    if isinstance(trigger, Mapping):
        trigger = trigger.get("kind")
    names = {"s3_upload": "upload", "retrain_request": "retrain request"}
    return names.get(str(trigger), str(trigger)) if trigger else "-"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _short_actor(actor: str) -> str:
    """``Admin/alice`` for an assumed role's ARN, ``alice`` for a user's; else as it is."""
    if not actor.startswith("arn:"):
        return actor
    kind, _, name = actor.rsplit(":", 1)[-1].partition("/")
    return name if kind in ("assumed-role", "user", "role") and name else actor


if __name__ == "__main__":
    sys.exit(main())
