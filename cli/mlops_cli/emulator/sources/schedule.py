"""Schedules: ``Schedule`` (an EventBridge rule) and ``ScheduleV2`` (EventBridge Scheduler).

Faithful to AWS: rate, cron (minutes, hours, day-of-month, month, day-of-week, year; numbers,
names, ``*``, ``?``, lists, ranges, steps) and ``at()``; the real scheduled event (EventBridge's
for Schedule, EventBridge Scheduler's for ScheduleV2, whose ``detail`` is the string ``"{}"``) or
exactly ``Input``; asynchronous invocation.

Not faithful, by design:

* ``schedule_seconds`` makes every schedule fire every N seconds;
* a schedule's RetryPolicy / DeadLetterConfig (about delivery to Lambda, which cannot fail
  locally) and FlexibleTimeWindow are accepted and ignored; cron's L, W and # are refused with
  a ConfigError;
* a cron schedule in a zone with daylight saving fires at the wall-clock time; in the hour that
  does not exist, Python's zoneinfo decides where it lands.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.declarations import Declaration, as_date, json_input, truthy
from mlops_cli.emulator.sources.lambda_service import InvokeAsync
from mlops_cli.emulator.sources.timers import Timers
from mlops_cli.emulator.template import ACCOUNT, REGION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleSource:
    function: str
    event: str
    kind: str  # "Schedule" (an EventBridge rule) or "ScheduleV2" (EventBridge Scheduler)
    expression: str
    resource_arn: str
    input: Any = None
    has_input: bool = False
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    enabled: bool = True


def parse_schedule_event(ctx: Declaration, raw: dict[str, Any]) -> ScheduleSource:
    _template, resolver, stack, function, event, where = ctx
    props = resolver.resolve(raw)
    kind = "Schedule" if "Schedule" in raw else "ScheduleV2"
    expression = props.get("Schedule" if kind == "Schedule" else "ScheduleExpression")
    if not isinstance(expression, str):
        field_name = "Schedule" if kind == "Schedule" else "ScheduleExpression"
        raise ConfigError(f"{where}: {field_name} is required")
    timezone = str(props.get("ScheduleExpressionTimezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown ScheduleExpressionTimezone {timezone!r}") from None
    parse_schedule(expression, where)  # fail at load time, not at the first tick
    name = str(props.get("Name") or f"{stack}-{function}{event}")
    if kind == "Schedule":
        arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
    else:
        group = str(props.get("GroupName") or "default")
        arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"
    enabled = truthy(props.get("Enabled", True)) and str(
        props.get("State", "ENABLED")
    ).upper().startswith("ENABLED")
    has_input = "Input" in props
    return ScheduleSource(
        function=function,
        event=event,
        kind=kind,
        expression=expression,
        resource_arn=arn,
        input=json_input(props["Input"], f"{where}.Input") if has_input else None,
        has_input=has_input,
        timezone=timezone,
        start=as_date(props.get("StartDate"), f"{where}.StartDate"),
        end=as_date(props.get("EndDate"), f"{where}.EndDate"),
        enabled=enabled,
    )


# ------------------------------------------------------------------ delivery


class Scheduler:
    """Fires schedules on the timers' thread, each firing an asynchronous invocation.

    ``every_seconds`` (when set) replaces every schedule's own times.
    """

    def __init__(
        self, timers: Timers, invoke_async: InvokeAsync, every_seconds: float | None
    ) -> None:
        self.timers = timers
        self.invoke_async = invoke_async
        self.every_seconds = every_seconds

    def arm(self, source: ScheduleSource, now: datetime, now_mono: float) -> None:
        """Fire at the next time, then re-arm from that time, so firings do not drift."""
        if self.every_seconds is not None:
            fire_at = now + timedelta(seconds=self.every_seconds)
        else:
            fire_at_or_none = next_fire_time(source, now)
            if fire_at_or_none is None:
                return
            fire_at = fire_at_or_none
        due = now_mono + (fire_at - now).total_seconds()

        def fire() -> None:
            late = time.monotonic() - due
            if late < 1.0:
                self.arm(source, fire_at, due)
            else:
                # Far behind (a suspended laptop): EventBridge does not catch up missed
                # firings, so count the next one from now.
                self.arm(source, datetime.now(UTC), time.monotonic())
            try:
                self.invoke_async(source.function, scheduled_event(source, fire_at))
            except ConfigError as exc:
                log.error("%s.%s: %s", source.function, source.event, exc)

        self.timers.call_at(due, fire)


# ------------------------------------------------------------------ the event


def scheduled_event(source: ScheduleSource, fire_at: datetime) -> Any:
    """What a schedule delivers: exactly Input when set, else the service's own event."""
    if source.has_input:
        return source.input
    v2 = source.kind == "ScheduleV2"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if v2 else "aws.events",
        "account": ACCOUNT,
        "time": fire_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [source.resource_arn],
        # EventBridge Scheduler's default payload carries the detail as the string "{}".
        "detail": "{}" if v2 else {},
    }


def next_fire_time(source: ScheduleSource, after: datetime) -> datetime | None:
    """The schedule's next firing time (aware, UTC) strictly after ``after`` (aware)."""
    schedule = parse_schedule(source.expression)
    zone = ZoneInfo(source.timezone)
    if source.start is not None and after < source.start:
        after = source.start - timedelta(microseconds=1)
    if isinstance(schedule, _Rate):
        # A rate counts from when the schedule was created: here, from ``after``.
        fire_at: datetime | None = after + timedelta(seconds=schedule.seconds)
    elif isinstance(schedule, _At):
        at = schedule.when.replace(tzinfo=zone).astimezone(UTC)
        fire_at = at if at > after else None
    else:
        local = schedule.next_after(after.astimezone(zone).replace(tzinfo=None))
        fire_at = None if local is None else local.replace(tzinfo=zone).astimezone(UTC)
    if fire_at is not None and source.end is not None and fire_at > source.end:
        return None
    return fire_at


# ------------------------------------------------------------------ expressions


# Spelled out: calendar.month_abbr follows the locale, EventBridge does not.
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Cron:
    """An EventBridge cron expression: minutes hours day-of-month month day-of-week year.

    ``days_of_month`` or ``days_of_week`` is None for the field written ``?``. Days of week
    count from 1 = Sunday to 7 = Saturday, as EventBridge does.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None
    years: frozenset[int]

    @classmethod
    def parse(cls, text: str, where: str = "cron") -> Cron:
        fields = text.split()
        if len(fields) != 6:
            raise ConfigError(f"{where}: cron needs 6 fields (min hour dom month dow year): {text}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ConfigError(f"{where}: exactly one of day-of-month and day-of-week must be ?")
        return cls(
            minutes=_cron_field(minute, 0, 59, {}, where),
            hours=_cron_field(hour, 0, 23, {}, where),
            days_of_month=None if dom == "?" else _cron_field(dom, 1, 31, {}, where),
            months=_cron_field(month, 1, 12, _MONTHS, where),
            days_of_week=None if dow == "?" else _cron_field(dow, 1, 7, _DAYS, where),
            years=_cron_field(year, 1970, 2199, {}, where),
        )

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing time strictly after ``after`` (naive: wall-clock time in the
        schedule's zone), or None when the years run out."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        last_year = max(self.years)
        while day.year <= last_year:
            if day.year not in self.years:
                day = day.replace(year=day.year + 1, month=1, day=1)
                continue
            if day.month not in self.months:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if self._day_matches(day.day, day.isoweekday() % 7 + 1):
                earliest = (start.hour, start.minute) if day == start.date() else (0, 0)
                for hour in sorted(h for h in self.hours if h >= earliest[0]):
                    low = earliest[1] if hour == earliest[0] else 0
                    minutes = [m for m in sorted(self.minutes) if m >= low]
                    if minutes:
                        return datetime(day.year, day.month, day.day, hour, minutes[0])
            day += timedelta(days=1)
        return None

    def _day_matches(self, day_of_month: int, day_of_week: int) -> bool:
        if self.days_of_month is not None:
            return day_of_month in self.days_of_month
        return self.days_of_week is not None and day_of_week in self.days_of_week


def _cron_field(
    text: str, low: int, high: int, names: Mapping[str, int], where: str
) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{where}: cron {text!r}: bad step {step_text!r}")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = (
                _cron_value(first_text, names, where),
                _cron_value(last_text, names, where),
            )
        else:
            first = _cron_value(base, names, where)
            # "5/15" runs from 5 to the end of the range.
            last = high if step_text else first
        if first > last:
            raise ConfigError(f"{where}: cron {text!r}: the range {base} runs backwards")
        if not low <= first <= last <= high:
            raise ConfigError(f"{where}: cron {text!r}: {base} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _cron_value(text: str, names: Mapping[str, int], where: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if re.search(r"[LW#]", upper):
        raise ConfigError(f"{where}: cron {text!r}: L, W and # are not supported locally")
    if not text.isdigit():
        raise ConfigError(f"{where}: cron value {text!r} is not a number")
    return int(text)


@dataclass(frozen=True)
class _Rate:
    seconds: float


@dataclass(frozen=True)
class _At:
    when: datetime  # naive, in the schedule's zone


def parse_schedule(expression: str, where: str = "schedule") -> Cron | _Rate | _At:
    """``rate(5 minutes)``, ``cron(0 3 * * ? *)`` or ``at(2030-01-01T00:00:00)``."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        # EventBridge's rule: 1 takes the singular unit, more the plural.
        if value == 0 or (value == 1) != (not unit.endswith("s")):
            raise ConfigError(f"{where}: {text}: use rate(1 minute) or rate(N minutes), N > 1")
        return _Rate(float(value * _UNIT_SECONDS[unit.rstrip("s")]))
    if text.startswith("cron(") and text.endswith(")"):
        return Cron.parse(text[5:-1], where)
    at = _AT.fullmatch(text)
    if at:
        return _At(datetime.fromisoformat(at.group(1)))
    raise ConfigError(f"{where}: {expression!r} is not rate(...), cron(...) or at(...)")
