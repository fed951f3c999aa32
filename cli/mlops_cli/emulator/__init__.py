"""The embedded local stack: moto + the template's resources + the real handlers.

An emulator of the AWS pieces the template uses, laid out like moto (one room per service or
event source): the template resolver, the Lambda runtime and its Runtime API, the HTTP API,
the event sources and the asynchronous invoker, and the stack that wires them.

Developer tooling only: not shipped in the Lambda layer.
"""
