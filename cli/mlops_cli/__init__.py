"""The operator CLI (`mlops`) and the local runtime: what runs on a laptop or in CI.

Never shipped to Lambda: what runs there is the `mlops` package in `layers/core/`.
"""
