"""``mlops invoke``: one function of the template on an event, as ``sam local invoke`` (no
Docker)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "invoke", help="run one function of the template on an event (sam local invoke, no Docker)"
    )
    p.add_argument("function", help="the function's logical id, e.g. InferenceFunction")
    p.add_argument("--event", "-e", required=True, help="event JSON file, or - for stdin")
    p.add_argument(
        "--template",
        type=Path,
        default=None,
        help="the SAM template (default: the running stack's, else found as `mlops local` does)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The function in its own environment, against the running ``mlops local`` (same folder)
    or, if none runs, a fresh stack of the template's resources. The result goes to stdout,
    the function's logs to stderr; exit code 1 when the function fails."""
    from mlops.domain.config_document import load_config
    from mlops.errors import ConfigError
    from mlops_cli.emulator.runner import model_code_folder, print_function_log
    from mlops_cli.emulator.stack import LocalStack
    from mlops_cli.emulator.target import find_template, running_local_stack

    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        event = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {args.event}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{args.event} is not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{args.event} is not JSON: {exc}") from exc
    try:
        running = running_local_stack()
    except ConfigError as exc:  # a stale state file (now removed): run on a fresh stack
        print(f"note: {exc.message}; invoking on a fresh stack", file=sys.stderr)
        running = None
    template = args.template or (
        Path(running["template"]) if running and running.get("template") else find_template(None)
    )
    config = Path(running["config"]) if running and running.get("config") else None
    stack = LocalStack(
        template,
        parameters=running["parameters"] if running else None,
        # the retrainer finds the config's [estimator] factory where `mlops local` put it
        model_code=model_code_folder(load_config(config), config) if config else None,
    )
    if args.function not in stack.function_names:
        raise ConfigError(
            f"{template} has no function {args.function!r}; it has "
            + ", ".join(stack.function_names)
        )
    stack.log_listeners.append(print_function_log)
    try:
        if running:
            stack.attach(running["endpoint"])
        else:
            stack.start()
        assert stack.runtime is not None
        invocation = stack.runtime.invoke(args.function, event)
    finally:
        stack.stop()
    payload = invocation.payload
    if isinstance(payload, bytes):  # a handler that returned non-JSON bytes
        payload = payload.decode("utf-8", "replace")
    print(json.dumps(payload, indent=2))
    return 0 if invocation.ok else 1
