"""``mlops local``: the embedded local stack on a port, until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from mlops.domain.names import PRODUCTION

DEFAULT_STATE_DIR = Path(".mlops") / "state"


def register(sub: Any) -> None:
    p = sub.add_parser("local", help="run the embedded local stack (moto + the real handlers)")
    p.add_argument("--port", type=int, default=3000, help="HTTP API port (default 3000)")
    p.add_argument("--moto-port", type=int, default=None, help="moto server port (default: any)")
    p.add_argument(
        "--template",
        type=Path,
        default=None,
        help="the SAM template (default: template.yaml here or in a parent folder, else the "
        "project this CLI was installed from)",
    )
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
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where S3 objects, DynamoDB items and queued messages are kept between runs "
        f"(default {DEFAULT_STATE_DIR}/ in this folder)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start empty instead of restoring --state-dir (its state is replaced at exit)",
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
    from mlops_cli.emulator.target import (
        claim_local_state,
        clear_local_state,
        find_template,
        write_local_state,
    )

    claim_local_state()
    template = find_template(args.template)
    print(f"Template: {template}", flush=True)
    overrides = dict(item.split("=", 1) for item in args.parameter_overrides if "=" in item)
    running = start_local(
        template,
        port=args.port,
        moto_port=args.moto_port,
        config_path=args.config,
        data_path=args.data,
        parameters=overrides,
        schedule_seconds=args.schedule_seconds,
        restore_from=None if args.fresh else args.state_dir,
    )
    stop = threading.Event()
    # A closed terminal (SIGHUP) and a service manager (SIGTERM) stop it as Ctrl-C does: the
    # state is kept on every way out but kill -9.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        write_local_state(
            running.stack.endpoint,
            running.api.url,
            running.target.outputs,
            {k: str(v) for k, v in running.stack.resolver.parameters.items()},
            template=template,
            config=args.config,
            state_dir=args.state_dir,
        )
        model = running.target.model_name
        restored = running.stack.restored
        print(
            f"State: {args.state_dir} ("
            + (f"restored {restored.describe()}" if restored else "starting empty")
            + "; kept there at exit)"
        )
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
        saved = running.stop(save_to=args.state_dir)
        if saved is not None:
            print(f"Kept {saved.describe()} in {args.state_dir}", flush=True)
    return 0
