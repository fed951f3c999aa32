"""moto as every event source reaches it: one set of clients on the local endpoint, calls from
background threads that log instead of failing, and the internal queues through which moto hands
over what it delivers (S3 notifications, EventBridge matches, SNS notifications)."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.emulator.template import ACCOUNT, REGION

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

# SQS's most messages per ReceiveMessage (and per DeleteMessageBatch).
SQS_MAX_PER_RECEIVE: Final = 10
POLL_SECONDS: Final = 1


class MotoBackend:
    """The event sources' clients on ``endpoint_url``; ``stopping`` tells their threads to end."""

    def __init__(self, endpoint_url: str, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._queue_urls: dict[str, str] = {}
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=15)
        credentials = {
            "region_name": REGION,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_session_token": "testing",
            "config": config,
        }
        self.sqs: SQSClient = boto3.client("sqs", **credentials)  # type: ignore[call-overload]
        self.s3: S3Client = boto3.client("s3", **credentials)  # type: ignore[call-overload]
        # No stubs are installed for these three services: typed as Any.
        self.events: Any = boto3.client("events", **credentials)  # type: ignore[call-overload]
        self.logs: Any = boto3.client("logs", **credentials)  # type: ignore[call-overload]
        self.sns: Any = boto3.client("sns", **credentials)  # type: ignore[call-overload]

    def guarded(self, call: Callable[..., Any], /, **kwargs: Any) -> Any:
        """An AWS call from a background thread: errors are logged, never fatal (None is
        returned). While stopping, moto may already be gone: stay quiet then."""
        try:
            return call(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if not self.stopping.is_set():
                log.warning("local event sources: %s", exc)
                self.stopping.wait(0.5)
            return None

    def queue(self, name: str) -> tuple[str, str]:
        """An internal queue of ours (created if missing): its URL and ARN."""
        # Queue names allow 80 characters of [A-Za-z0-9_-].
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]
        url = self.sqs.create_queue(QueueName=safe)["QueueUrl"]
        return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{safe}"

    def queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            name = arn.rsplit(":", 1)[-1]
            self._queue_urls[arn] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._queue_urls[arn]

    def queue_url_or_create(self, arn: str) -> str:
        try:
            return self.queue_url(arn)
        except ClientError:
            # A SAM-created destination queue (Destination left out): create it.
            return self.queue(arn.rsplit(":", 1)[-1])[0]

    def drain(self, queue_url: str, deliver: Callable[[Any], None]) -> None:
        """Poll an internal queue; each message is handed to ``deliver`` then deleted (once
        queued for asynchronous invocation, the event is Lambda's, as on AWS)."""
        while not self.stopping.is_set():
            response = self.guarded(
                self.sqs.receive_message,
                QueueUrl=queue_url,
                MaxNumberOfMessages=SQS_MAX_PER_RECEIVE,
                WaitTimeSeconds=POLL_SECONDS,
            )
            messages = response.get("Messages", []) if response else []
            for message in messages:
                body = message.get("Body", "")
                try:
                    deliver(json.loads(body))
                except ValueError:
                    log.warning("skipping a message that is not JSON on %s", queue_url)
                except Exception:
                    # e.g. an event over the asynchronous payload limit: say which, go on.
                    log.exception("could not deliver %s from %s", body[:1024], queue_url)
                self.guarded(
                    self.sqs.delete_message,
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                )
