"""``mlops``: the command line for the local stack and for deployed stacks."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from mlops.errors import MlopsError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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

    p = sub.add_parser("demo", help="the main job on the local stack")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--port", type=int, default=0, help="HTTP API port (default: any free port)")
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

    p = sub.add_parser("status", help="versions and aliases in the registry")
    _stack_option(p)
    p.set_defaults(func=_status)

    p = sub.add_parser("promote", help="point an alias at a registered version")
    p.add_argument("version", type=_version_arg, help="a registered version number, e.g. 3")
    p.add_argument("--alias", default="production")
    _stack_option(p)
    p.set_defaults(func=_promote)
    return parser


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
    from mlops_cli.local.runner import start_local
    from mlops_cli.local.target import clear_local_state, write_local_state

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
            f"Artifacts: {running.artifacts_uri} (models/, and datasets/ that `mlops train` used)"
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
    from mlops_cli.local.runner import print_function_log
    from mlops_cli.local.stack import LocalStack
    from mlops_cli.local.target import running_local_stack

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
    from mlops_cli.local.demo import run_demo

    summary = run_demo(args.template, port=args.port, quiet=args.json)
    if args.json:
        print(json.dumps(summary))
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
    from mlops_cli.local.runner import archive_dataset, read_data, training_service
    from mlops_cli.local.target import resolve_target

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
    result = training_service(target).train_and_register(
        config, data, uri, promote=not args.no_promote
    )
    if args.json:
        print(
            json.dumps(
                {
                    "version": result.version,
                    "promoted": result.promoted,
                    "metrics": result.metrics,
                    "parity": result.parity.as_dict(),
                }
            )
        )
        return 0
    print(
        f"Registered {config.name} v{result.version}"
        + (" and promoted it to production" if result.promoted else " (not promoted)")
    )
    print("Holdout metrics: " + ", ".join(f"{k}={v:,.4g}" for k, v in result.metrics.items()))
    print(f"Parity: passed ({result.parity.summary()})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from mlops_cli.local.target import resolve_target

    target = resolve_target(args.stack)
    registry = target.registry()
    aliases = registry.aliases(target.model_name)
    versions = registry.list_versions(target.model_name)
    if args.json:
        print(
            json.dumps(
                {
                    "model": target.model_name,
                    "aliases": aliases,
                    "versions": [v.__dict__ | {"metrics": dict(v.metrics)} for v in versions],
                },
                default=str,
            )
        )
        return 0
    print(f"Model {target.model_name} ({target.description})")
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    for v in versions:
        marks = ", ".join(by_version.get(v.version, []))
        metrics = ", ".join(f"{k}={val:,.4g}" for k, val in v.metrics.items())
        print(f"  v{v.version:<4} {v.created_at}  {metrics}  {marks}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from mlops.services.promotion import promote
    from mlops_cli.local.target import resolve_target

    target = resolve_target(args.stack)
    previous = promote(target.registry(), target.model_name, args.version, args.alias)
    print(f"{args.alias}: v{previous} -> v{args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
