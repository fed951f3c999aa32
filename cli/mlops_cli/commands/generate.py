"""``mlops generate``: synthetic house sales for a month, as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="write synthetic house sales for a month as CSV")
    p.add_argument("--month", type=int, default=0)
    p.add_argument("--rows", type=int, default=4000)
    p.add_argument("--seed", type=int, default=None, help="default: the month number")
    p.add_argument("--out", type=Path, required=True, help="file.csv or file.csv.gz")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops.domain.synthetic import conditions_for_month, generate, write_csv

    seed = args.month if args.seed is None else args.seed
    columns = generate(args.rows, conditions_for_month(args.month), seed=seed)
    write_csv(columns, args.out)
    print(f"Wrote {args.rows} rows of month {args.month} to {args.out}")
    return 0
