"""What the commands that act on a stack share: its options (``--stack``, ``--json``) and who
is acting on it, for the alias history."""

from __future__ import annotations

import argparse


def add_stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stack",
        default=None,
        help="deployed CloudFormation stack (default: the running `mlops local`)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def actor(stack: str | None) -> str:
    """Who moves an alias, for its history: the caller's ARN on AWS, the login locally."""
    if stack:
        from botocore.exceptions import BotoCoreError, ClientError

        from mlops.adapters.aws import client
        from mlops.errors import ConfigError

        try:
            return str(client("sts").get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"cannot tell who you are (sts get-caller-identity: {exc})") from exc
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database
        user = "unknown"
    return f"{user} (local)"
