"""boto3 clients, created lazily and reused for the life of the container.

boto3 honours ``AWS_ENDPOINT_URL``, so the same code talks to moto locally and to AWS.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Short timeouts and few retries: a slow dependency must not hold a request for a minute,
# and the serving path keeps the loaded model when S3 or DynamoDB fails.
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
)


@functools.cache
def session() -> boto3.session.Session:
    # One session per container: its loader caches service models, so a second client is cheap.
    return boto3.session.Session()


@functools.cache
def client(service: str) -> Any:
    return session().client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]
