"""The embedded local stack: moto + the template's resources + the real handlers.

Developer tooling only: not shipped in the Lambda layer.
"""
