"""Schedule and ScheduleV2: expressions, next firing times, and what a firing delivers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.schedule import Cron, ScheduleSource, next_fire_time, parse_schedule
from tests.conftest import load_event
from tests.sources.conftest import Running, stack_template


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# Each row: expression, after, the next firing (None: never again). Times are wall-clock.
# 2026-11-27 is a Friday, 2026-11-29 a Sunday.
CRON_TABLE = [
    # on the minute: strictly after, so the next day
    ("0 3 * * ? *", "2026-11-28T03:00:00", "2026-11-29T03:00:00"),
    ("0 3 * * ? *", "2026-11-28T02:59:59", "2026-11-28T03:00:00"),
    ("0 3 * * ? *", "2026-11-28T03:00:01", "2026-11-29T03:00:00"),
    ("0 3 * * ? *", "2026-12-31T03:00:00", "2027-01-01T03:00:00"),
    # steps from * and from a start, lists
    ("0/15 * * * ? *", "2026-11-28T10:14:00", "2026-11-28T10:15:00"),
    ("*/15 * * * ? *", "2026-11-28T10:15:00", "2026-11-28T10:30:00"),
    ("0/15 * * * ? *", "2026-11-28T10:45:00", "2026-11-28T11:00:00"),
    ("5/20 * * * ? *", "2026-11-28T10:45:00", "2026-11-28T11:05:00"),
    ("30 1,13 * * ? *", "2026-11-28T01:30:00", "2026-11-28T13:30:00"),
    ("30 1,13 * * ? *", "2026-11-28T13:29:00", "2026-11-28T13:30:00"),
    # ranges and names in day-of-week (1 = SUN)
    ("0 9-17 ? * MON-FRI *", "2026-11-27T16:59:00", "2026-11-27T17:00:00"),
    ("0 9-17 ? * MON-FRI *", "2026-11-27T17:00:00", "2026-11-30T09:00:00"),
    ("0 9-17 ? * 2-6 *", "2026-11-27T17:00:00", "2026-11-30T09:00:00"),
    ("0 12 ? * 1 *", "2026-11-28T12:00:00", "2026-11-29T12:00:00"),
    ("0 12 ? * SUN *", "2026-11-29T12:00:00", "2026-12-06T12:00:00"),
    ("0 12 ? * SAT *", "2026-11-28T11:59:00", "2026-11-28T12:00:00"),
    # day-of-month and month boundaries
    ("0 0 1 * ? *", "2026-01-31T23:59:00", "2026-02-01T00:00:00"),
    ("0 0 1 * ? *", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
    ("0 0 31 * ? *", "2026-01-31T00:00:00", "2026-03-31T00:00:00"),
    ("0 0 29 2 ? *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
    ("0 0 1 JAN-MAR/2 ? *", "2026-01-01T00:00:00", "2026-03-01T00:00:00"),
    ("0 0 1 JAN-MAR/2 ? *", "2026-03-01T00:00:00", "2027-01-01T00:00:00"),
    ("0 0 28 * ? *", "2026-02-27T23:59:00", "2026-02-28T00:00:00"),
    # years run out
    ("0 0 1 1 ? 2027", "2026-12-31T23:59:00", "2027-01-01T00:00:00"),
    ("0 0 1 1 ? 2027", "2027-01-01T00:00:00", None),
    ("0 0 1 1 ? 2027-2029/2", "2027-01-01T00:00:00", "2029-01-01T00:00:00"),
    ("59 23 31 12 ? *", "2026-12-31T23:58:00", "2026-12-31T23:59:00"),
    ("59 23 31 12 ? *", "2026-12-31T23:59:00", "2027-12-31T23:59:00"),
]


@pytest.mark.parametrize(("expression", "after", "expected"), CRON_TABLE)
def test_cron_next_firing(expression: str, after: str, expected: str | None) -> None:
    nxt = Cron.parse(expression).next_after(_at(after))
    assert nxt == (None if expected is None else _at(expected))


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 * * ?)", "6 fields"),
        ("cron(60 3 * * ? *)", "outside 0-59"),
        ("cron(0 24 * * ? *)", "outside 0-23"),
        ("cron(0 3 0 * ? *)", "outside 1-31"),
        ("cron(0 3 ? * 8 *)", "outside 1-7"),
        ("cron(0 3 * 13 ? *)", "outside 1-12"),
        ("cron(0 3 * * ? 1969)", "outside 1970-2199"),
        ("cron(0 3 L * ? *)", "L, W and # are not supported"),
        ("cron(0 3 15W * ? *)", "L, W and # are not supported"),
        ("cron(0 3 ? * 6#3 *)", "L, W and # are not supported"),
        ("cron(0 3 ? * 6L *)", "L, W and # are not supported"),
        ("cron(0/0 3 * * ? *)", "bad step"),
        ("cron(10-5 3 * * ? *)", "runs backwards"),
        ("cron(x 3 * * ? *)", "not a number"),
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(1 minute)"),
        ("rate(0 minutes)", "rate(1 minute)"),
        ("rate(5 seconds)", "is not rate"),
        ("every 5 minutes", "is not rate"),
    ],
)
def test_bad_expressions_are_config_errors(expression: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(expression)


def _source(expression: str, **fields: Any) -> ScheduleSource:
    return ScheduleSource("F", "E", "ScheduleV2", expression, "arn", **fields)


NOW = datetime(2026, 11, 28, 10, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after"),
    [
        ("rate(1 minute)", NOW + timedelta(minutes=1)),
        ("rate(5 minutes)", NOW + timedelta(minutes=5)),
        ("rate(1 hour)", NOW + timedelta(hours=1)),
        ("rate(2 days)", NOW + timedelta(days=2)),
        ("at(2026-11-28T10:30:00)", datetime(2026, 11, 28, 10, 30, tzinfo=UTC)),
        ("at(2026-11-28T10:00:07)", None),
    ],
)
def test_rates_count_from_the_previous_firing(expression: str, after: datetime | None) -> None:
    assert next_fire_time(_source(expression), NOW) == after


def test_a_timezone_applies_to_cron_across_daylight_saving() -> None:
    source = _source("cron(0 3 * * ? *)", timezone="Europe/Paris")
    winter = next_fire_time(source, datetime(2026, 11, 28, 0, 0, tzinfo=UTC))
    summer = next_fire_time(source, datetime(2026, 7, 1, 0, 0, tzinfo=UTC))
    assert winter == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert summer == datetime(2026, 7, 1, 1, 0, tzinfo=UTC)


def test_start_and_end_dates_bound_the_firings() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    end = datetime(2026, 12, 2, 12, tzinfo=UTC)
    source = _source("cron(0 3 * * ? *)", start=start, end=end)
    assert next_fire_time(source, NOW) == datetime(2026, 12, 1, 3, tzinfo=UTC)
    assert next_fire_time(source, datetime(2026, 12, 1, 3, tzinfo=UTC)) == datetime(
        2026, 12, 2, 3, tzinfo=UTC
    )
    assert next_fire_time(source, datetime(2026, 12, 2, 3, tzinfo=UTC)) is None


def _with_v2_default() -> dict[str, Any]:
    template = stack_template("NightlyFunction")
    events = template["Resources"]["NightlyFunction"]["Properties"]["Events"]
    events["Hourly"] = {
        "Type": "ScheduleV2",
        "Properties": {"ScheduleExpression": "rate(1 hour)", "GroupName": "jobs"},
    }
    events["Off"] = {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(1 hour)", "Input": '{"off": true}', "Enabled": False},
    }
    return template


def test_schedule_seconds_fires_every_schedule_with_real_events(
    start_sources: Callable[..., Running],
) -> None:
    # Given three enabled schedules and one disabled, every 0.2 s
    running = start_sources(template=_with_v2_default(), schedule_seconds=0.2)
    # Then within a second each enabled one fires several times
    events = running.invoker.wait_for("NightlyFunction", 9, timeout=3)
    running.sources.stop()
    events = running.invoker.events_for("NightlyFunction")
    rule = [e for e in events if e.get("source") == "aws.events"]
    scheduler = [e for e in events if e.get("source") == "aws.scheduler"]
    with_input = [e for e in events if e == {"job": "refresh"}]
    assert len(rule) >= 3
    assert len(scheduler) >= 3
    assert len(with_input) >= 3
    assert len(rule) + len(scheduler) + len(with_input) == len(events)  # the disabled one: never
    # The EventBridge rule's event is shaped like events/schedule.json
    assert list(rule[0]) == list(load_event("schedule.json"))
    assert rule[0]["version"] == "0"
    assert rule[0]["detail"] == {}
    assert rule[0]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/nightly-rule"]
    assert rule[0]["id"] != rule[1]["id"]
    # EventBridge Scheduler's default payload carries detail as the string "{}"
    assert scheduler[0]["detail"] == "{}"
    assert scheduler[0]["resources"] == [
        "arn:aws:scheduler:us-east-1:123456789012:schedule/jobs/mlops-local-NightlyFunctionHourly"
    ]


def test_without_schedule_seconds_schedules_keep_their_own_period(
    start_sources: Callable[..., Running],
) -> None:
    running = start_sources("NightlyFunction")
    time.sleep(0.8)
    assert running.invoker.events_for("NightlyFunction") == []
