"""``mlops local``: the embedded local stack on a port, until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from mlops.domain.names import PRODUCTION


def register(sub: Any) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
        elif running.target.registry().get_alias(model, PRODUCTION) is None:
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
