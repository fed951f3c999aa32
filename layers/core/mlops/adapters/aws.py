"""boto3 clients, created lazily and reused for the life of the container.

boto3 honours ``AWS_ENDPOINT_URL``, so the same code talks to moto locally and to AWS.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Short timeouts and one retry: a hung dependency costs at most 2 attempts x (1 s connect +
# 3 s read) + backoff ≈ 9 s, inside the functions' 10 s timeout (botocore's defaults, 60 s
# reads and 3 attempts, held a request for 20 s). A read timeout bounds each socket read, not
# a whole download, so large model files still arrive. The serving path keeps the loaded
# model when S3 or DynamoDB fails, and re-checks off the request path (services/model_provider).
CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=3,
    retries={"total_max_attempts": 2, "mode": "standard"},
)


@functools.cache
def session() -> boto3.session.Session:
    # One session per container: its loader caches service models, so a second client is cheap.
    return boto3.session.Session()


@functools.cache
def client(service: str) -> Any:
    return session().client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]
