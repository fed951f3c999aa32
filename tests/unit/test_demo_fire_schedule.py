"""``EventSources.fire_schedule``: what ``mlops demo`` uses to run the drift evaluator's schedule
now ("Run now"), with the event the schedule itself delivers, instead of waiting an hour."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.event_sources import EventSources
from mlops_cli.emulator.template import Resolver

TEMPLATE = {
    "Resources": {
        "EvaluatorFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {
                    "Evaluate": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}},
                    "Nightly": {
                        "Type": "ScheduleV2",
                        "Properties": {
                            "ScheduleExpression": "cron(0 3 * * ? *)",
                            "Input": '{"window_hours": 24}',
                        },
                    },
                }
            },
        },
        "OtherFunction": {"Type": "AWS::Serverless::Function", "Properties": {}},
    }
}


class NoInvoker:
    def invoke(self, function: str, event: Any) -> Any:  # pragma: no cover - never started
        raise AssertionError("not started")


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> tuple[EventSources, list[tuple[str, Any]]]:
    resolver = Resolver({}, {})
    resolver.refs.update({name: f"mlops-local-{name}" for name in TEMPLATE["Resources"]})
    sources = EventSources(TEMPLATE, resolver, NoInvoker(), "http://127.0.0.1:9")
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(sources, "invoke_async", lambda f, e: calls.append((f, e)) or "id")
    return sources, calls


def test_fires_the_schedule_now_with_the_event_it_delivers(
    fired: tuple[EventSources, list[tuple[str, Any]]],
) -> None:
    sources, calls = fired
    assert sources.fire_schedule("EvaluatorFunction") == "id"
    ((function, event),) = calls
    assert function == "EvaluatorFunction"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["detail"] == {}


def test_picks_a_schedule_by_event_name_and_keeps_its_input(
    fired: tuple[EventSources, list[tuple[str, Any]]],
) -> None:
    sources, calls = fired
    sources.fire_schedule("EvaluatorFunction", "Nightly")
    assert calls == [("EvaluatorFunction", {"window_hours": 24})]


def test_a_function_without_that_schedule_is_a_config_error(
    fired: tuple[EventSources, list[tuple[str, Any]]],
) -> None:
    sources, calls = fired
    with pytest.raises(ConfigError, match="OtherFunction has no schedule"):
        sources.fire_schedule("OtherFunction")
    with pytest.raises(ConfigError, match="no schedule Hourly"):
        sources.fire_schedule("EvaluatorFunction", "Hourly")
    assert calls == []
