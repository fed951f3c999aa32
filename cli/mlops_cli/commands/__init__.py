"""The ``mlops`` commands, one module each: ``register(subparsers)`` adds the command's parser,
``run(args)`` parses nothing more, calls a service, prints, and returns the exit code.

Heavy imports (the services, boto3, the emulator) stay inside ``run``: ``mlops --help`` and
``mlops promote`` must not pay for what other commands need.
"""
