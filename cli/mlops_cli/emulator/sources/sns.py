"""SNS subscriptions of functions.

Faithful to AWS: an internal queue subscribes to the topic (moto applies FilterPolicy and
FilterPolicyScope); each notification is invoked asynchronously as the real ``aws:sns`` record.

Not faithful: SqsSubscription is refused with a ConfigError naming the function and event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.declarations import Declaration, truthy
from mlops_cli.emulator.sources.lambda_service import InvokeAsync
from mlops_cli.emulator.sources.moto_backend import MotoBackend


@dataclass(frozen=True)
class SnsSource:
    function: str
    event: str
    topic_arn: str
    filter_policy: dict[str, Any] | None = None
    filter_policy_scope: str = "MessageAttributes"
    enabled: bool = True


def parse_sns_event(ctx: Declaration, raw: dict[str, Any]) -> SnsSource:
    _template, resolver, _stack, function, event, where = ctx
    props = resolver.resolve(raw)
    if truthy(props.get("SqsSubscription", False)):
        raise ConfigError(f"{where}: SqsSubscription is not supported by the local stack")
    topic = props.get("Topic")
    if not isinstance(topic, str) or not topic.startswith("arn:aws:sns:"):
        raise ConfigError(f"{where}: Topic must be a topic ARN (!Ref Topic)")
    policy = props.get("FilterPolicy")
    if policy is not None and not isinstance(policy, dict):
        raise ConfigError(f"{where}: FilterPolicy must be a mapping")
    scope = str(props.get("FilterPolicyScope") or "MessageAttributes")
    if scope not in ("MessageAttributes", "MessageBody"):
        raise ConfigError(f"{where}: FilterPolicyScope must be MessageAttributes or MessageBody")
    return SnsSource(function, event, topic, policy, scope)


# ------------------------------------------------------------------ delivery


def subscription_queue(source: SnsSource, moto: MotoBackend, stack: str) -> tuple[str, str]:
    """An internal queue subscribed to the topic: its URL and the subscription's ARN."""
    url, arn = moto.queue(f"{stack}-sns-{source.function}-{source.event}")
    # create_topic is idempotent: the stack may not create topics itself.
    moto.sns.create_topic(Name=source.topic_arn.rsplit(":", 1)[-1])
    attributes = {}
    if source.filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(source.filter_policy)
        attributes["FilterPolicyScope"] = source.filter_policy_scope
    subscription = moto.sns.subscribe(
        TopicArn=source.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
    )
    return url, subscription["SubscriptionArn"]


def notification_delivery(
    source: SnsSource, subscription_arn: str, invoke_async: InvokeAsync
) -> Callable[[Any], None]:
    """What becomes of each notification of the subscription: invoked asynchronously."""

    def deliver(body: Any) -> None:
        if isinstance(body, dict) and body.get("Type") == "Notification":
            invoke_async(source.function, sns_event(body, subscription_arn))

    return deliver


# ------------------------------------------------------------------ the event


def sns_event(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """An SNS notification (as SNS writes it to SQS) as Lambda's ``aws:sns`` event."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId"),
                    "TopicArn": envelope.get("TopicArn"),
                    "Subject": envelope.get("Subject"),
                    "Message": envelope.get("Message"),
                    "Timestamp": envelope.get("Timestamp"),
                    "SignatureVersion": envelope.get("SignatureVersion"),
                    "Signature": envelope.get("Signature"),
                    "SigningCertUrl": envelope.get("SigningCertURL"),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL"),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }
