"""``mlops demo``: months of a moving housing market run through the local stack.

The demo is a user of the system, not part of the emulator: it talks to the stack through the
HTTP API, S3 and the registry, as an operator would. ``run`` drives it, ``market`` is the
market's schedule, ``watch`` reads what the stack did, ``report`` renders the HTML page;
``demo_config.toml`` (package data) is the model config the stack runs with.
"""

# The run's defaults, here so ``mlops --help`` needs no numpy to show them.
DEFAULT_MONTHS = 12  # months 0 to 11: four shocks, and two calm months to end on
DEFAULT_TRAFFIC = 1500  # houses priced per month
