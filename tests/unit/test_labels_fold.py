"""Labels folded hour by hour equal the join of everything at once (the property the cost
model rests on), whatever order and batches the labels arrive in."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.domain import quality
from mlops.domain.ids import uuid7_ms, uuid7s
from mlops.domain.labels import Label, as_join_inputs, capture_hour, fold, latest_labels

HOUR = 3_600_000
T0 = 1_780_000_000_000  # 2026-05-28


def test_a_uuid7_carries_its_millisecond_and_a_uuid4_does_not() -> None:
    ids = uuid7s(T0 + 123, 3)
    assert [uuid7_ms(i) for i in ids] == [T0 + 123] * 3
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert uuid7_ms(str(uuid.uuid4())) is None
    assert uuid7_ms("not-an-id") is None
    assert capture_hour(ids[0]) == "dt=2026-05-28/hour=20"


def test_the_capture_hour_edges() -> None:
    # The last millisecond of an hour is in it; the next one is in the next hour
    edge = (T0 // HOUR + 1) * HOUR
    assert capture_hour(uuid7s(edge - 1, 1)[0]) != capture_hour(uuid7s(edge, 1)[0])


def captures(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        ts = T0 + i * 997_000  # spread over ~n/3.6 hours
        pid = uuid7s(ts, 1)[0]
        rows.append({"prediction_id": pid, "ts": ts, "version": "1", "variant": None,
                     "prediction": float(i), "inputs": {"x": i}})  # fmt: skip
    return rows


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    # Arrival times distinct: two labels of one id in the same millisecond have no order
    labels=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 100 * HOUR), st.floats(-1e6, 1e6)),
        max_size=80,
        unique_by=lambda label: label[1],
    ),
    runs=st.integers(1, 5),
)
def test_folding_in_any_batches_equals_joining_everything_at_once(
    n: int, labels: list[tuple[int, int, float]], runs: int
) -> None:
    rows = captures(n)
    feedback = [
        {"prediction_id": rows[i % n]["prediction_id"], "ts": rows[i % n]["ts"] + delay,
         "actual": actual, "model": "m"}
        for i, delay, actual in labels
    ]  # fmt: skip
    # Then folded over `runs` arrivals, each run's labels joined to their capture hour
    documents: dict[str, list[dict]] = {}
    for run in range(runs):
        arrived = latest_labels(feedback[run::runs], "m")
        for hour in {capture_hour(pid) for pid in arrived}:
            in_hour = [r for r in rows if capture_hour(r["prediction_id"]) == hour]
            group = {pid: lab for pid, lab in arrived.items() if capture_hour(pid) == hour}
            documents[hour] = fold(documents.get(hour, []), in_hour, group).rows
    folded_captures, folded_feedback = as_join_inputs(
        r for hour in sorted(documents) for r in documents[hour]
    )
    delay = 72 * HOUR
    expected = quality.join(rows, feedback, label_delay_ms=delay)
    got = quality.join(folded_captures, folded_feedback, label_delay_ms=delay)
    assert (got.ts, got.predictions, got.actuals) == (
        expected.ts,
        expected.predictions,
        expected.actuals,
    )


def test_the_last_label_wins_across_folds_and_a_late_older_one_does_not() -> None:
    rows = captures(1)
    pid = rows[0]["prediction_id"]
    first = fold([], rows, {pid: Label(T0 + 10, 1.0)})
    second = fold(first.rows, rows, {pid: Label(T0 + 20, 2.0)})
    stale = fold(second.rows, rows, {pid: Label(T0 + 15, 9.0)})
    assert (first.added, second.updated, stale.updated) == (1, 1, 0)
    assert stale.rows[0]["actual"] == 2.0


def test_a_shadow_row_sharing_the_prediction_id_keeps_its_own_row() -> None:
    rows = captures(1)
    shadow = rows[0] | {"version": "2", "variant": "shadow", "prediction": 7.0}
    pid = rows[0]["prediction_id"]
    folded = fold([], [rows[0], shadow], {pid: Label(T0 + 5, 3.0)})
    assert sorted(r["version"] for r in folded.rows) == ["1", "2"]


def test_an_hour_keeps_at_most_max_rows_and_counts_the_rest() -> None:
    rows = captures(5)
    labels = {r["prediction_id"]: Label(r["ts"] + 1, 0.0) for r in rows}
    at = fold([], rows, labels, max_rows=5)
    past = fold([], rows, labels, max_rows=4)
    assert (len(at.rows), at.dropped) == (5, 0)
    assert (len(past.rows), past.dropped) == (4, 1)


def test_a_label_of_an_evaluation_prediction_is_found_counted_and_left_out() -> None:
    # Given an hour with a live and an evaluation capture, both labeled
    live, evaluation = captures(2)
    evaluation = evaluation | {"source": "evaluation"}
    labels = {r["prediction_id"]: Label(r["ts"] + 1, 1.0) for r in (live, evaluation)}
    folded = fold([], [live, evaluation], labels)
    # Then only the live one is in the labeled rows; the other is joined (not left pending)
    # and counted
    assert [r["prediction_id"] for r in folded.rows] == [live["prediction_id"]]
    assert folded.joined == set(labels)
    assert (folded.added, folded.evaluation) == (1, 1)
