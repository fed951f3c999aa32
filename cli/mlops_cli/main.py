"""``mlops``: the command line for the local stack and for deployed stacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mlops.errors import ConfigError, InvalidInputError, MlopsError
from mlops_cli.commands import (
    batch,
    demo,
    drift,
    generate,
    invoke,
    local,
    predict,
    promote,
    query,
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
    predict,
    batch,
    drift,
    query,
    status,
    rollout,
    promote,
    rollback,
)


# Exit codes, the same for every command: 0 done; 1 the operation was refused or failed (a
# rejected version, a conflicting move, storage down); 2 bad usage (arguments, files, config,
# no stack to act on), as argparse itself exits.
DONE, REFUSED, BAD_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_services(verbose=args.verbose)
    _service_logs_to_stderr()
    try:
        return int(args.func(args) or DONE)
    except MlopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for problem in exc.details[:20]:
            print(f"  - {problem.field}: {problem.problem}", file=sys.stderr)
        if len(exc.details) > 20:
            print(f"  ... and {len(exc.details) - 20} more", file=sys.stderr)
        return BAD_USAGE if isinstance(exc, ConfigError | InvalidInputError) else REFUSED
    except KeyboardInterrupt:
        return 130


def _quiet_services(*, verbose: bool) -> None:
    """The services publish CloudWatch metrics as EMF lines and log as ``mlops-cli``; on a
    console the metrics only bury what the command prints, so they are off unless --verbose
    (their INFO logs then too, on stderr; else not even warnings: a command says what went
    wrong in its own words). Set before the services' logger and metrics exist."""
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mlops-cli")
    if verbose:
        os.environ.setdefault("MLOPS_LOG_LEVEL", "INFO")
    else:  # what goes wrong reaches the user as the command's own error line
        os.environ.setdefault("MLOPS_LOG_LEVEL", "CRITICAL")
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"


def _service_logs_to_stderr() -> None:
    """The services log JSON lines for CloudWatch; run from the CLI, their warnings go to
    stderr, so stdout holds only what the command prints (``--json`` stays one object)."""
    from mlops.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    logger.setLevel(os.environ.get("MLOPS_LOG_LEVEL", "WARNING"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description=__doc__,
        epilog="Exit codes: 0 done, 1 the operation was refused or failed, 2 bad usage.",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the services' logs and metric lines (on stderr)",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
