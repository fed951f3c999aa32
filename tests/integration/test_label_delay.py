"""A label that arrives hours after its prediction, through the services that join them: the
drift evaluator's live quality and the rollout evaluator's judge, on captures and feedback the
real prediction logger stored, with ``[drift] label_delay_hours`` from the stack's config and
the evaluators' clocks injected.

Both services turn the configured hours into the milliseconds capture timestamps are in: a
label 6 h 29 min after its prediction is inside a 6.5-hour delay, one 6 h 31 min after is not.
Any other unit (``* 1000``: seconds; ``* 60_000``: minutes) or a truncation to whole hours
joins neither, and a longer delay joins both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mlops.adapters import aws
from mlops.adapters.label_store import LabelStore
from mlops.adapters.sketch_store import SketchStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.domain import capture
from mlops.domain.ids import uuid7s
from mlops.domain.layout import config_key
from mlops.services.drift import DriftService
from mlops.services.labels import LabelFolder
from mlops.services.prediction_logger import LogEvent
from mlops.services.rollout import RolloutService
from tests.conftest import BUCKET
from tests.integration.rollout_stack import MODEL, Stack, market_rows

DELAY_HOURS = 6.5
INSIDE = timedelta(hours=6, minutes=29)
OUTSIDE = timedelta(hours=6, minutes=31)
ROWS = 60  # per variant: above the drift evaluator's min_labels (50)


@pytest.fixture
def stack(rollout_stack: Stack) -> Stack:
    """v1 in production, v2 and v3 candidates; ``label_delay_hours`` = 6.5 in the config."""
    rollout_stack.configure(metric="mape", min_requests="50", min_labels="30")
    text = rollout_stack.store.get_bytes(config_key(MODEL)).decode()
    text += f"\n[drift]\nlabel_delay_hours = {DELAY_HOURS}\n"
    rollout_stack.store.put_bytes(config_key(MODEL), text.encode())
    return rollout_stack


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def predict_then_label(
    stack: Stack, *, version: str, variant: str | None, at: datetime, after: timedelta
) -> None:
    """``ROWS`` predictions of ``version`` at ``at``, each labeled ``after`` later, stored by
    the real prediction logger as its log subscription delivers them."""
    instances, prices = market_rows(0, ROWS, seed=int(version))
    ids = uuid7s(ms(at), ROWS)  # time-ordered, as the inference function issues them
    lines = capture.capture_lines(
        model=MODEL, version=version, alias="production", variant=variant,
        request_id=str(uuid.uuid4()), timestamp_ms=ms(at), latency_ms=4.0,
        instances=instances, prediction_ids=ids, predictions=[300_000.0] * ROWS,
        probabilities=None,
    )  # fmt: skip
    labeled = at + after
    feedback = capture.feedback_line(
        model=MODEL,
        timestamp_ms=ms(labeled),
        items=[{"prediction_id": p, "actual": float(y)} for p, y in zip(ids, prices, strict=True)],
    )
    stack.logger.store_batch(
        [LogEvent(uuid.uuid4().hex, ms(at), line) for line in lines]
        + [LogEvent(uuid.uuid4().hex, ms(labeled), line) for line in feedback]
    )


@pytest.mark.parametrize(("after", "joined"), [(INSIDE, ROWS), (OUTSIDE, 0)], ids=["in", "out"])
def test_live_quality_joins_a_label_hours_late_within_the_label_delay(
    stack: Stack, after: timedelta, joined: int
) -> None:
    # Pins DriftService's hours-to-milliseconds conversion of label_delay_hours.
    now = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
    predict_then_label(stack, version="1", variant=None, at=now - timedelta(hours=10), after=after)
    s3 = aws.client("s3")
    drift = DriftService(
        model=MODEL,
        store=stack.store,
        registry=stack.registry,
        sketches=SketchStore(BUCKET, s3),
        traffic=TrainingDataStore(BUCKET, s3),
        labels=LabelFolder(
            MODEL, TrainingDataStore(BUCKET, s3), LabelStore(BUCKET, s3), clock=lambda: now
        ),
        bus=None,
        clock=lambda: now,
    )
    quality = drift.evaluate(24, act=False).report["quality"]
    assert quality["labels"] == joined, quality


@pytest.mark.parametrize(("after", "joined"), [(INSIDE, ROWS), (OUTSIDE, 0)], ids=["in", "out"])
def test_the_rollout_judge_joins_a_label_hours_late_within_the_label_delay(
    stack: Stack, after: timedelta, joined: int
) -> None:
    # Pins RolloutService's hours-to-milliseconds conversion of label_delay_hours (the
    # judge's label_delay_ms).
    rollout = stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    served = datetime.fromisoformat(rollout.started_at) + timedelta(minutes=1)
    predict_then_label(stack, version="1", variant="production", at=served, after=after)
    predict_then_label(stack, version="2", variant="canary", at=served, after=after)
    evaluator = RolloutService(
        model=MODEL,
        store=stack.store,
        registry=stack.registry,
        actor="test",
        traffic=TrainingDataStore(BUCKET, aws.client("s3")),
        clock=lambda: served + timedelta(hours=8),
    )
    outcome = evaluator.evaluate(act=False)
    assert outcome is not None
    variants = outcome.verdict["variants"]
    assert (variants["production"]["rows"], variants["candidate"]["rows"]) == (ROWS, ROWS)
    assert (variants["production"]["labels"], variants["candidate"]["labels"]) == (joined, joined)
