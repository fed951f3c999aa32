"""What the drift evaluator accepts: its schedule's event, or an on-demand request."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.domain.triggers import drift_request
from mlops.errors import InvalidEventError
from tests.conftest import load_event


def test_a_scheduled_event_evaluates_the_default_window_and_acts() -> None:
    assert drift_request(load_event("schedule.json"), 24.0) == (24.0, True)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, (24.0, True)),
        ({"window_hours": 1}, (1.0, True)),
        ({"window_hours": 2160, "act": False}, (2160.0, False)),
    ],
)
def test_an_on_demand_request_names_its_window_and_whether_to_act(
    event: dict[str, Any], expected: tuple[float, bool]
) -> None:
    assert drift_request(event, 24.0) == expected


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ({"window_hours": 0.99}, "window_hours"),
        ({"window_hours": 2161}, "window_hours"),
        ({"window_hours": True}, "window_hours"),
        ({"window_hours": "24"}, "window_hours"),
        ({"act": "yes"}, "act"),
        ({"windows": 3}, "unknown keys"),
        ([1, 2], "scheduled event"),
    ],
)
def test_anything_else_is_refused_naming_the_field(event: Any, words: str) -> None:
    with pytest.raises(InvalidEventError, match=words):
        drift_request(event, 24.0)
