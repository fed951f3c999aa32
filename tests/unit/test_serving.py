"""Serving digests (``domain.serving``): what a rollout is judged on, merged exactly, sampled
by bottom-K hashes, refused when a document could not have been written by the builder."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.domain import serving
from mlops.domain.serving import SAMPLE_SIZE, Serving, build, id_hash, merge


def row(
    i: int,
    *,
    variant: str | None = None,
    prediction: Any = 1.0,
    latency: Any = 2.0,
    request: str | None = None,
    ts: int = 1_000,
    failed: str | None = None,
    named: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction_id": f"p{i}",
        "request_id": request if request is not None else f"r{i}",
        "ts": ts,
        "variant": variant,
        "prediction": prediction,
        "latency_ms": latency,
    }
    if failed is not None:
        out["candidate_error"] = failed
        if named is not None:
            out["candidate_version"] = named
    return out


def one(rows: list[dict[str, Any]], task: str = "regression") -> Serving:
    return merge(build(rows, task=task).values())


rows_strategy = st.lists(
    st.builds(
        lambda i, p, ms, r, ts, f: row(
            i, prediction=p, latency=ms, request=f"r{r}", ts=ts, failed=f, named=f and "2"
        ),
        st.integers(0, 60),  # repeated ids: a redelivery
        st.one_of(st.floats(-1e6, 1e6), st.none(), st.just(float("nan"))),
        st.one_of(st.floats(0, 1e4), st.none(), st.just(-1.0)),
        st.integers(0, 30),  # requests of several rows
        st.integers(0, 10**13),
        st.one_of(st.none(), st.just("boom")),
    ),
    max_size=50,
)


@settings(derandomize=True, deadline=None, max_examples=150)
@given(rows=rows_strategy, data=st.data())
def test_merging_digests_of_any_split_equals_the_digest_of_all_rows(
    rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=5)))
    bounds = [0, *cuts, len(rows)]
    parts = [one(rows[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    parts = data.draw(st.permutations(parts))
    whole = one(rows) if rows else serving.EMPTY
    assert (merge(parts) if parts else serving.EMPTY) == whole
    assert Serving.from_dict(json.loads(json.dumps(whole.to_dict())), task="regression") == whole


def test_counts_are_exact_and_failures_are_attributed_to_the_candidate_they_name() -> None:
    rows = [
        row(0),
        row(1, prediction=None),  # a NaN output, captured null: served, not usable
        row(2, failed="timeout"),  # names no candidate: counts against any
        row(3, failed="timeout", named="2"),
        row(4, failed="timeout", named="3", ts=500),  # a superseded candidate's failure
    ]
    digest = one(rows)
    assert (digest.rows, digest.predictions) == (5, 4)
    assert (digest.failed_for("2"), digest.failed_for("3"), digest.failed_for("9")) == (2, 2, 1)
    assert (digest.first_ts, digest.first_failed_ts) == (500, 500)


def test_a_request_of_many_rows_has_one_latency() -> None:
    digest = one([row(i, request="r", latency=7.0) for i in range(10)] + [row(99, latency=1.0)])
    assert sorted(ms for _, ms in digest.latencies) == [1.0, 7.0]


def test_variants_are_digested_apart() -> None:
    parts = build([row(0), row(1, variant="canary"), row(2, variant="canary")], task="regression")
    assert {name: d.rows for name, d in parts.items()} == {"canary": 2, "production": 1}


@pytest.mark.parametrize("extra", [0, 1])
def test_the_sample_is_the_whole_population_up_to_k_and_the_k_smallest_hashes_beyond(
    extra: int,
) -> None:
    n = SAMPLE_SIZE + extra
    digest = one([row(i, prediction=float(i)) for i in range(n)])
    expected = sorted((id_hash(f"p{i}"), float(i)) for i in range(n))[:SAMPLE_SIZE]
    assert list(digest.answers) == expected
    assert len(digest.latencies) == SAMPLE_SIZE


def test_production_and_its_shadow_keep_the_same_ids_so_pairs_survive_sampling() -> None:
    n = 3 * SAMPLE_SIZE
    production = one([row(i, prediction=float(i)) for i in range(n)])
    shadow = one([row(i, variant="shadow", prediction=float(i) + 0.5) for i in range(n)])
    assert [h for h, _ in production.answers] == [h for h, _ in shadow.answers]


def test_a_uniform_sample_estimates_the_p95_of_many_requests() -> None:
    rng = np.random.default_rng(0)
    latencies = rng.lognormal(1.0, 0.5, 50_000)
    digest = one([row(i, latency=float(ms)) for i, ms in enumerate(latencies)])
    sampled = np.percentile([ms for _, ms in digest.latencies], 95)
    assert sampled == pytest.approx(np.percentile(latencies, 95), rel=0.05)


def good() -> dict[str, Any]:
    return one([row(0, failed="x", named="2"), row(1)]).to_dict()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"rows": -1}, id="negative-rows"),
        pytest.param({"rows": 2**53}, id="rows-past-2-53"),
        pytest.param({"rows": 1e30}, id="rows-a-float"),
        pytest.param({"predictions": 3}, id="more-predictions-than-rows"),
        pytest.param({"failed": {"2": 3}}, id="more-failures-than-rows"),
        pytest.param({"failed": {str(i): 0 for i in range(9)}}, id="too-many-names"),
        pytest.param({"latency_ms": [2.0, float("inf")]}, id="infinite-latency"),
        pytest.param({"latency_ms": [2.0, 1e10]}, id="latency-out-of-range"),
        pytest.param({"latency_hashes": [5, 5]}, id="hashes-repeated"),
        pytest.param({"latency_hashes": [1, 2**52]}, id="hash-past-52-bits"),
        pytest.param({"answers": [1e308 * 10]}, id="answer-infinite"),
        pytest.param({"answers": ["x"]}, id="answer-a-label-in-regression"),
        pytest.param({"first_ts": None}, id="rows-without-a-first-ts"),
        pytest.param({"first_failed_ts": None}, id="failures-without-a-first-ts"),
        pytest.param({"answer_hashes": []}, id="answers-of-other-length"),
    ],
)
def test_a_document_the_builder_cannot_have_written_is_refused(change: dict[str, Any]) -> None:
    assert Serving.from_dict(good(), task="regression")  # the unchanged document reads
    with pytest.raises((ValueError, TypeError, KeyError)):
        Serving.from_dict(good() | change, task="regression")


def test_a_sample_larger_than_k_is_refused_and_k_is_read() -> None:
    big = one([row(i) for i in range(SAMPLE_SIZE + 5)]).to_dict()
    assert len(Serving.from_dict(big, task="regression").answers) == SAMPLE_SIZE
    over = big | {
        "answer_hashes": [*big["answer_hashes"], 2**52 - 1],
        "answers": [*big["answers"], 1.0],
    }
    with pytest.raises(ValueError, match="larger than K"):
        Serving.from_dict(over, task="regression")


def test_classification_answers_are_short_labels() -> None:
    digest = one([row(0, prediction="yes"), row(1, prediction="n" * 100)], task="classification")
    assert sorted(v for _, v in digest.answers) == ["n" * 64, "yes"]
    with pytest.raises(ValueError, match="short label"):
        Serving.from_dict(digest.to_dict() | {"answers": ["yes", {"a": 1}]}, task="classification")
