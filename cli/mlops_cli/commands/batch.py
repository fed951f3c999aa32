"""``mlops batch``: score a CSV file through the stack's batch-scoring path and show its summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops_cli.commands.stack_options import add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="score a CSV file through the stack's batch path (upload under its batch prefix)",
    )
    p.add_argument("--data", required=True, type=Path, metavar="FILE", help="the CSV to score")
    p.add_argument(
        "--version", default=None, help="the model version to score with (default: production)"
    )
    p.add_argument(
        "--id-column",
        default=None,
        metavar="NAME",
        help="a column echoed beside each prediction (default: the data row number)",
    )
    p.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=900.0,
        default=900.0,
        metavar="SECONDS",
        help="how long to wait for the job's summary (0: do not wait; default 900)",
    )
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every row was scored or reported, 1 when the file or a part of it was not."""
    from mlops_cli import batch
    from mlops_cli.emulator.target import resolve_target

    target = resolve_target(args.stack)
    started = batch.start(target, args.data, args.version, args.id_column)
    if not args.json:
        print(f"Uploaded {args.data} to s3://{started.bucket}/{started.key}", flush=True)
        print(f"Job {started.job_id}", flush=True)
    if args.wait <= 0:
        if args.json:
            print(json.dumps({"job_id": started.job_id, "key": started.key}))
        return 0
    summary: dict[str, Any] = {}
    for progress in batch.follow(started, args.wait):
        if progress.summary is not None:
            summary = progress.summary
        elif not args.json:
            engine = progress.engine or "starting"
            print(f"  {engine}: {progress.parts:,} part(s) written", flush=True)
    if args.json:
        print(json.dumps(summary))
    else:
        batch.print_summary(summary)
    return 0 if summary.get("status") == "succeeded" else 1
