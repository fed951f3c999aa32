"""``mlops demo``: the main job on the local stack (the ``mlops_cli.demo`` package)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_cli.demo import DEFAULT_MONTHS, DEFAULT_TRAFFIC


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job on the local stack: the market moves, the system keeps up",
    )
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--port", type=int, default=0, help="HTTP API port (default: any free port)")
    p.add_argument("--seed", type=int, default=0, help="the synthetic market's seed (default 0)")
    p.add_argument(
        "--months",
        type=int,
        default=DEFAULT_MONTHS,
        help=f"months of the market, month 0 included ({DEFAULT_MONTHS})",
    )
    p.add_argument(
        "--traffic",
        type=int,
        default=DEFAULT_TRAFFIC,
        help=f"houses priced per month (default {DEFAULT_TRAFFIC})",
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
