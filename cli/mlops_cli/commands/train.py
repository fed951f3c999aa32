"""``mlops train``: train, export to ONNX, gate on parity and register, here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlops.domain.names import PRODUCTION, REJECTED
from mlops_cli.commands.stack_options import add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train, export to ONNX, gate on parity and register")
    p.add_argument("--data", type=Path, required=True, help="CSV or gzip CSV")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="model config (default: the one the stack serves)",
    )
    p.add_argument("--no-promote", action="store_true", help="register without moving production")
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops.domain.config_document import load_config
    from mlops.errors import ConfigError, StorageError
    from mlops.services.stack_config import stack_config
    from mlops_cli.emulator.runner import (
        archive_dataset,
        keep_training_data,
        model_code_folder,
        publish_config,
        read_data,
        training_service,
    )
    from mlops_cli.emulator.target import resolve_target, running_local_stack

    target = resolve_target(args.stack)
    # The config the stack serves: the file the local stack was started with (its code folder
    # lies next to it), else the copy the stack keeps in S3.
    running = None if args.stack else running_local_stack()
    config_path = args.config or (
        Path(running["config"]) if running and running.get("config") else None
    )
    config = (
        stack_config(target.store(), target.model_name)
        if config_path is None
        else load_config(config_path)
    )
    if config.name != target.model_name:
        raise ConfigError(
            f"the config trains {config.name!r} but the {target.description} serves "
            f"{target.model_name!r}: pass the config the stack was started with "
            f"(`--config`), or start the stack with `mlops local --config <this config>`"
        )
    data = read_data(args.data)
    uri = archive_dataset(target.store(), data, args.data.name)
    if args.config is not None:  # the retrainer retrains with the config last trained with
        publish_config(target, args.config)
    result = training_service(target, model_code_folder(config, config_path)).train_and_register(
        config, data, uri, promote=not args.no_promote
    )
    # Where uploads go: a retrain the drift evaluator requests has this data too. The version
    # is registered already: failing to keep its data is a warning, not a failed training.
    try:
        kept: str | None = keep_training_data(target, data, args.data.name, result.version)
    except StorageError as exc:
        kept = None
        print(f"warning: {exc.message}; upload the file yourself to retrain on it", file=sys.stderr)
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
                    "training_data": kept,
                }
            )
        )
        return 1 if result.status == REJECTED else 0
    outcome = {
        PRODUCTION: "and promoted it to production",
        "candidate": "as a candidate (not promoted)",
    }.get(result.status, "as rejected (production unchanged)")
    print(f"Registered {config.name} v{result.version} {outcome}")
    for reason in result.reasons:
        print(f"  - {reason}")
    print("Holdout metrics: " + ", ".join(f"{k}={v:,.4g}" for k, v in result.metrics.items()))
    print(f"Parity: passed ({result.parity.summary()})")
    print(f"Report: {result.report_uri}")
    if kept:
        print(f"Training data kept in {kept} (a requested retrain trains on it)")
    return 1 if result.status == REJECTED else 0
