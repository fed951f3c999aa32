"""Function logs: shipped to moto's CloudWatch Logs, and subscription filters' awslogs payloads."""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import string
import time
from collections.abc import Callable
from typing import Any

from mlops_cli.emulator.runtime import LogLine
from mlops_cli.emulator.sources.logs import awslogs_payload, log_event_id
from tests.conftest import load_event
from tests.sources.conftest import Aws, Running

GROUP = "/mlops/producer"  # ProducerFunction's LoggingConfig.LogGroup
# Printable characters JSON leaves alone: random text over them hardly compresses.
ALPHABET = [c for c in string.printable if c not in '"\\' and c.isprintable()]


def _decode(payload: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(gzip.decompress(base64.b64decode(payload["awslogs"]["data"]))))


def _capture(n: int) -> str:
    return json.dumps({"level": "INFO", "message": "capture", "type": "capture", "n": n})


def test_matching_lines_arrive_as_one_decodable_awslogs_payload(
    start_sources: Callable[..., Running],
) -> None:
    # Given CaptureFunction subscribes to ProducerFunction's log group with { $.type = "capture" }
    running = start_sources("ProducerFunction", "CaptureFunction")
    now = int(time.time() * 1000)
    lines = [
        LogLine("ProducerFunction", now, "START RequestId: r1 Version: $LATEST", "r1"),
        LogLine("ProducerFunction", now + 1, _capture(1), "r1"),
        LogLine("ProducerFunction", now + 1, json.dumps({"type": "metric"}), "r1"),
        # the runtime may name the function by its physical name
        LogLine("mlops-local-ProducerFunction", now + 2, _capture(2), "r1"),
        LogLine("ProducerFunction", now + 3, _capture(3), "r1"),
        # another function's group: not subscribed
        LogLine("CaptureFunction", now + 3, _capture(4), None),
    ]
    # When the lines arrive within the 0.5 s batching time
    for line in lines:
        running.sources.on_log(line)
    # Then the subscriber gets one payload with the three matching lines, in order
    (payload,) = running.invoker.wait_for("CaptureFunction", 1)
    data = _decode(payload)
    assert list(data) == [
        "messageType",
        "owner",
        "logGroup",
        "logStream",
        "subscriptionFilters",
        "logEvents",
    ]
    assert data["messageType"] == "DATA_MESSAGE"
    assert data["owner"] == "123456789012"
    assert data["logGroup"] == GROUP
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", data["logStream"])
    assert data["subscriptionFilters"] == ["mlops-local-CaptureFunctionCaptures"]
    assert [e["message"] for e in data["logEvents"]] == [_capture(1), _capture(2), _capture(3)]
    assert [e["timestamp"] for e in data["logEvents"]] == [now + 1, now + 2, now + 3]
    # And each event id is CloudWatch's: 56 digits, unique, leading with the timestamp
    ids = [e["id"] for e in data["logEvents"]]
    assert all(re.fullmatch(r"\d{56}", i) for i in ids)
    assert len(set(ids)) == 3
    assert [int(i) >> 144 for i in ids] == [now + 1, now + 2, now + 3]
    time.sleep(0.7)
    assert len(running.invoker.events_for("CaptureFunction")) == 1


def test_every_line_is_shipped_to_cloudwatch_logs(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("ProducerFunction", "CaptureFunction")
    now = int(time.time() * 1000)
    messages = ["plain text line", _capture(1), json.dumps({"type": "metric"})]
    for i, message in enumerate(messages):
        running.sources.on_log(LogLine("ProducerFunction", now + i, message, "r1"))
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 3
    while len(found) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            found = aws.logs.filter_log_events(logGroupName=GROUP)["events"]
        except aws.logs.exceptions.ResourceNotFoundException:
            continue
    assert [e["message"] for e in found] == messages
    # (moto 5.2.5's filter_log_events treats a JSON filterPattern as "match everything", so
    # there is nothing more to check against it here.)
    # A function without LoggingConfig logs to /aws/lambda/<physical name>
    running.sources.on_log(LogLine("CaptureFunction", now, "hello", None))
    deadline = time.monotonic() + 3
    own: list[dict[str, Any]] = []
    while not own and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            own = aws.logs.filter_log_events(
                logGroupName="/aws/lambda/mlops-local-CaptureFunction"
            )["events"]
        except aws.logs.exceptions.ResourceNotFoundException:
            continue
    assert [e["message"] for e in own] == ["hello"]


def test_a_thousand_events_fill_a_payload(start_sources: Callable[..., Running]) -> None:
    running = start_sources("ProducerFunction", "CaptureFunction")
    now = int(time.time() * 1000)
    for i in range(1_500):
        running.sources.on_log(LogLine("ProducerFunction", now, _capture(i), None))
    first, second = running.invoker.wait_for("CaptureFunction", 2)
    assert len(_decode(first)["logEvents"]) == 1_000
    assert len(_decode(second)["logEvents"]) == 500
    ids = [e["id"] for p in (first, second) for e in _decode(p)["logEvents"]]
    assert len(set(ids)) == 1_500


def test_log_event_ids_sort_by_time_and_never_repeat() -> None:
    ids = [log_event_id(1_700_000_000_000 + i // 100) for i in range(1_000)]
    assert len(set(ids)) == 1_000
    assert all(len(i) == 56 for i in ids)
    assert [int(i) >> 144 for i in ids] == sorted(int(i) >> 144 for i in ids)


def test_the_fixture_event_is_what_awslogs_payload_builds() -> None:
    fixture = load_event("cloudwatch_logs.json")
    data = _decode(fixture)
    rebuilt = awslogs_payload(
        data["logGroup"],
        data["logStream"],
        data["subscriptionFilters"][0],
        [(e["id"], e["timestamp"], e["message"]) for e in data["logEvents"]],
    )
    assert _decode(rebuilt) == data
    assert all(int(e["id"]) >> 144 == e["timestamp"] for e in data["logEvents"])


def test_incompressible_lines_are_split_into_payloads_under_the_async_limit(
    start_sources: Callable[..., Running],
) -> None:
    running = start_sources("ProducerFunction", "CaptureFunction")
    now = int(time.time() * 1000)
    # ≈1.2 MB of random text: over the 1 MB batch, and barely compressible
    for i in range(12):
        noise = "".join(random.choices(ALPHABET, k=100_000))
        running.sources.on_log(LogLine("ProducerFunction", now + i, _doc_line(i, noise), None))
    deadline = time.monotonic() + 5
    delivered: list[dict[str, Any]] = []
    while sum(len(_decode(p)["logEvents"]) for p in delivered) < 12:
        assert time.monotonic() < deadline, "not every line was delivered"
        time.sleep(0.1)
        delivered = running.invoker.events_for("CaptureFunction")
    # Over one batch's worth: split (how many payloads depends on how well the noise
    # compresses, and on how the flushes fall on a busy machine), each under the limit
    assert len(delivered) >= 2
    assert all(len(json.dumps(p)) <= 1024 * 1024 for p in delivered)
    numbers = [json.loads(e["message"])["n"] for p in delivered for e in _decode(p)["logEvents"]]
    assert sorted(numbers) == list(range(12))


def _doc_line(n: int, noise: str) -> str:
    return json.dumps({"type": "capture", "n": n, "noise": noise})
