"""``mlops``: the command line for the local stack and for deployed stacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mlops.errors import MlopsError
from mlops_cli.commands import (
    demo,
    drift,
    generate,
    invoke,
    local,
    promote,
    retrain,
    rollback,
    rollout,
    status,
    train,
)

# In the order ``mlops --help`` lists them.
COMMANDS = (
    local,
    invoke,
    demo,
    generate,
    train,
    retrain,
    drift,
    status,
    rollout,
    promote,
    rollback,
)


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
