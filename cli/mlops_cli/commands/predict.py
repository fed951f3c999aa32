"""``mlops predict``: score a CSV offline with a registered version; nothing is captured.

For evaluations, backfills and what-ifs: the rows never reach ``/predict``, so they never count
as live traffic in drift, live quality or a canary's verdict. The ONNX model is loaded from the
registry exactly as the inference function loads it (sha256 checked), and the file is read and
written in chunks, so memory follows ``--chunk-rows``, not the file.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from mlops_cli.commands.stack_options import add_stack_options

CHUNK_ROWS = 10_000


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="score a CSV offline with a registered version (never captured: no effect on "
        "drift, live quality or rollouts)",
    )
    p.add_argument("--data", type=Path, required=True, help="CSV with the feature columns")
    p.add_argument(
        "--version", default=None, help="the registered version to use (default: production)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where to write the predictions (default: stdout)"
    )
    p.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help=argparse.SUPPRESS)
    add_stack_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every row was scored, 1 when some were not (each says why in ``problem``)."""
    from mlops.domain.names import PRODUCTION
    from mlops.errors import ConfigError, ModelUnavailableError
    from mlops.services.model_loading import load_version
    from mlops_cli.emulator.target import resolve_target

    if args.out is not None and args.out.resolve() == args.data.resolve():
        raise ConfigError(f"--out {args.out} is the --data file: write the predictions elsewhere")
    target = resolve_target(args.stack)
    registry = target.registry()
    version = args.version or registry.get_alias(target.model_name, PRODUCTION)
    if version is None:
        raise ModelUnavailableError(f"{target.model_name} has no production version yet")
    loaded = load_version(target.store(), registry, target.model_name, str(version))
    try:
        source = args.data.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read {args.data}: {exc.strerror}") from exc
    # Written beside --out and renamed at the end: a failed run leaves no half-written file.
    partial = None if args.out is None else args.out.with_name(f".{args.out.name}.partial")
    out: TextIO = sys.stdout if partial is None else partial.open("w", newline="")
    try:
        with source:
            scored, rejected = _score(source, out, loaded, str(version), args.chunk_rows)
    except BaseException:
        if partial is not None:
            out.close()
            partial.unlink(missing_ok=True)
        raise
    if partial is not None and args.out is not None:
        out.close()
        partial.replace(args.out)
    summary = f"Scored {scored:,} rows of {args.data} with {target.model_name} v{version}"
    if rejected:
        summary += f"; {rejected:,} rejected (the problem column says why)"
    print(summary + (f": {args.out}" if args.out else ""), file=sys.stderr)
    return 1 if rejected else 0


def _score(
    source: TextIO, out: TextIO, loaded: Any, version: str, chunk_rows: int
) -> tuple[int, int]:
    from mlops.domain.csv_rows import csv_chunks
    from mlops.domain.scoring import OnnxModel

    model: OnnxModel = loaded.model
    classes = [str(c) for c in model.classes]
    writer = csv.writer(out)
    writer.writerow(
        ["line", "prediction", *(f"probability_{c}" for c in classes), "model_version", "problem"]
    )
    scored = rejected = 0
    for chunk in csv_chunks(source, model.signature, chunk_rows):
        answers: list[list[Any]] = []
        if any(chunk.valid):
            scores = model.score(chunk.columns)
            probabilities = scores.probabilities
            for i, value in enumerate(scores.values):
                row = [value]
                if probabilities is not None:
                    row += [f"{p:.6g}" for p in probabilities[i]]
                answers.append(row)
        valid = iter(answers)
        for i, line in enumerate(chunk.lines):
            if chunk.valid[i]:
                writer.writerow([line, *next(valid), version, ""])
                scored += 1
            else:
                blanks = [""] * (1 + len(classes))
                writer.writerow([line, *blanks, version, chunk.problems[i]])
                rejected += 1
    return scored, rejected
