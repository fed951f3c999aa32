"""DLE's MAPE estimate: relative errors r = a / |prediction| and their bounds, the exact sums
a sketch keeps of them (merging, old documents, forged documents), the holdout constants and
the spec, the estimate against an independent computation and a known realized MAPE, and the
report comparing on MAPE when the gate does."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from scipy import stats

from mlops.domain.estimate import (
    MAX_RELATIVE,
    CalibrationError,
    LossModelSpec,
    dle,
    loss_constants,
    relative_errors,
)
from mlops.domain.estimate_report import estimate_section, estimated_metric
from mlops.domain.estimate_sketch import (
    NO_RELATIVE,
    LossSums,
    RelativeSums,
    build_dle,
    merge_parts,
    part_from_dict,
)
from mlops.domain.exact_sum import SCALE_BITS, exact_sum, scaled, to_hex
from mlops.domain.metrics import EPSILON, regression_metrics
from mlops.domain.sketch import Sketch, SketchPlan, build_sketch

Z = stats.norm.ppf(0.975)
BELOW_EPS = float(np.nextafter(EPSILON, 0.0))

BASE = {
    "mae_ratio": 1.1,
    "mse_ratio": 1.5,
    "mae_spread": 0.6,
    "mse_spread": 4.0,
    "mae_rel_se": 0.03,
    "mse_rel_se": 0.05,
    "holdout_mean": 2.0,
    "holdout_mean_sq": 5.0,
}
MAPE = {"mape_ratio": 0.9, "mape_spread": 0.5, "mape_rel_se": 0.04, "holdout_mean_rel": 0.1}


def _spec(mape: bool = True, **changes: float) -> LossModelSpec:
    constants = BASE | (MAPE if mape else {}) | changes
    return LossModelSpec.of("0" * 64, "mlops_prediction", 500, constants)


# ----------------------------------------------------------------------------- r's bounds


def test_a_prediction_below_epsilon_gives_no_relative_error_and_epsilon_does() -> None:
    a = np.full(7, 2.0)
    predicted = np.array([EPSILON, BELOW_EPS, 0.0, -4.0, np.nan, np.inf, -EPSILON])
    r, usable = relative_errors(a, predicted)
    assert usable.tolist() == [True, False, False, True, False, False, True]
    assert r.tolist() == [2.0 / EPSILON, 0.5, 2.0 / EPSILON]  # |prediction|, as metrics' |y|


def test_a_relative_error_beyond_max_relative_is_not_kept() -> None:
    r, usable = relative_errors(np.array([1e75, 1e75, -3.0]), np.array([1.0, 0.999, 2.0]))
    assert usable.tolist() == [True, False, True]
    assert r.tolist() == [MAX_RELATIVE, 0.0]  # on the bound kept; a negative a clipped to 0


def test_build_dle_sums_the_relative_errors_of_scored_rows_only() -> None:
    losses: list[float | None] = [1.0, 3.0, None, float("nan"), 2.0, 4.0]
    predictions = np.array([2.0, -6.0, 5.0, 5.0, 0.0, np.nan])
    part = build_dle(losses, predictions)
    assert (part.count, part.unscored) == (4, 2)
    assert part.relative == RelativeSums(
        2, exact_sum(np.array([0.5, 0.5])), exact_sum(np.array([0.25, 0.25]))
    )
    assert build_dle(losses).relative is None  # no predictions given: no MAPE sums


# ----------------------------------------------------------------------------- sums


def _values(seed: int, rows: int) -> tuple[list[float | None], np.ndarray]:
    rng = np.random.default_rng(seed)
    losses: list[float | None] = list(rng.lognormal(8, 2, rows))
    predictions = rng.lognormal(10, 1, rows) * rng.choice([-1, 1], rows)
    predictions[::50] = 0.0  # some rows predicted 0
    losses[3] = None
    return losses, predictions


def test_relative_sums_merge_exactly_whatever_the_batching() -> None:
    losses, predictions = _values(1, 1000)
    whole = build_dle(losses, predictions)
    assert whole.relative is not None
    assert whole.relative.count == 999 - 20  # one unscored, 20 predicted 0
    for cut in (1, 17, 500, 999):
        parts = [
            (build_dle(losses[:cut], predictions[:cut]), cut),
            (build_dle(losses[cut:], predictions[cut:]), 1000 - cut),
        ]
        assert merge_parts(reversed(parts)) == whole
    a = np.array([v for v in losses if v is not None])
    p = np.delete(predictions, 3)
    keep = p != 0
    assert whole.relative.floats()[1] == pytest.approx(math.fsum(a[keep] / np.abs(p[keep])))


def test_a_merge_with_a_part_written_before_mape_has_no_mape_sums() -> None:
    losses, predictions = _values(2, 100)
    new = build_dle(losses, predictions)
    old = part_from_dict({k: v for k, v in new.to_dict().items() if k != "relative"})
    assert old.relative is None  # an old document still reads
    assert isinstance(old, LossSums)
    merged = merge_parts([(new, 100), (old, 100)])
    assert isinstance(merged, LossSums)
    assert merged.relative is None
    assert (merged.count, merged.sum1) == (2 * new.count, 2 * new.sum1)  # MAE/RMSE as before
    # a sketch without any estimate part adds unscored rows, and keeps the MAPE sums
    kept = merge_parts([(new, 100), (None, 7)])
    assert isinstance(kept, LossSums)
    assert kept.relative == new.relative
    assert merge_parts([(new, 100), (LossSums(0, 0, 0, 0, 5, NO_RELATIVE), 5)]) == LossSums(
        new.count, new.sum1, new.sum2, new.sum4, new.unscored + 5, new.relative
    )


def test_relative_sums_survive_their_document() -> None:
    losses, predictions = _values(3, 300)
    part = build_dle(losses, predictions)
    assert part_from_dict(part.to_dict()) == part
    largest = build_dle([1e75, 0.0], np.array([1.0, 1.0]))  # r on MAX_RELATIVE
    assert largest.relative is not None
    assert largest.relative.sum1 == int(1e75) << SCALE_BITS
    assert part_from_dict(largest.to_dict()) == largest
    equal = build_dle([12_345.678] * 2000, np.full(2000, 3.0))  # Cauchy-Schwarz with equality
    assert part_from_dict(equal.to_dict()) == equal


def _forged(**relative: Any) -> dict[str, Any]:
    doc = build_dle([2.0, 4.0], np.array([1.0, 2.0])).to_dict()  # r = 2, 2
    doc["relative"] = doc["relative"] | relative
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        _forged(sum="-0x1p+2"),  # negative
        _forged(sum_sq="-0x1p+3"),
        _forged(count=3),  # more rows with r than scored rows
        _forged(count=0),  # sums of no rows
        _forged(count=-1),
        # 4 + 2**-26 with squares summing to 8: impossible, past float64's rounding slack
        _forged(sum=to_hex((4 << SCALE_BITS) + (1 << (SCALE_BITS - 26)))),
        _forged(count=1, sum="0x1p+250", sum_sq="0x1p+500"),  # mean r beyond MAX_RELATIVE
        _forged(sum=4.0),  # not an exact hexadecimal sum
        {**_forged(), "relative": [2, "0x1p+2", "0x1p+3"]},
    ],
)
def test_forged_relative_sums_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        part_from_dict(doc)


def test_the_honest_relative_sums_of_the_forged_cases_read() -> None:
    # the forged documents above differ from this one in one field only
    doc = _forged()
    assert doc["relative"] == {"count": 2, "sum": to_hex(4 << SCALE_BITS), "sum_sq": "0x1p+3"}
    part = part_from_dict(doc)
    assert isinstance(part, LossSums)
    assert part.relative == RelativeSums(2, 4 << SCALE_BITS, 8 << SCALE_BITS)
    one = _forged(count=1, sum=to_hex(scaled(1e75)), sum_sq=to_hex(scaled(1e75 * 1e75)))
    assert isinstance(part_from_dict(one), LossSums)  # mean r exactly MAX_RELATIVE: read


# ----------------------------------------------------------------------------- constants


def test_mape_constants_are_the_holdout_ratio_and_spread() -> None:
    rng = np.random.default_rng(5)
    y = rng.lognormal(3, 0.5, 1000)
    predicted = y * rng.normal(1.0, 0.1, 1000)
    e = np.abs(predicted - y)
    a = e * rng.lognormal(0, 0.3, 1000)
    predicted[:10] = 0.0  # no r for these: out of both sums
    constants = loss_constants(predicted - y, a, y, predicted)
    assert constants is not None
    keep = np.arange(1000) >= 10
    true_rel = e[keep] / y[keep]
    r = a[keep] / np.abs(predicted[keep])
    ratio = true_rel.sum() / r.sum()
    assert constants["mape_ratio"] == pytest.approx(ratio)
    assert constants["mape_spread"] == pytest.approx(
        ((true_rel - ratio * r) ** 2).sum() / (r**2).sum()
    )
    assert constants["mape_rel_se"] == pytest.approx(
        math.sqrt(((true_rel - ratio * r) ** 2).sum()) / true_rel.sum()
    )
    assert constants["holdout_mean_rel"] == pytest.approx(r.mean())
    spec = LossModelSpec.of("0" * 64, "p", 1000, constants)
    assert spec.has_mape
    assert LossModelSpec.from_dict(spec.to_dict()) == spec


def test_a_holdout_target_of_zero_gives_no_mape_constants_but_mae_stays() -> None:
    rng = np.random.default_rng(6)
    y = rng.lognormal(3, 0.5, 500)
    y[7] = 0.0  # its true relative error is |e| / EPSILON: ~1e16, beyond any ratio
    predicted = y + rng.normal(0, 1, 500)
    a = np.abs(predicted - y) + 0.1
    constants = loss_constants(predicted - y, a, y, predicted)
    assert constants is not None
    assert "mape_ratio" not in constants
    assert not LossModelSpec.of("0" * 64, "p", 500, constants).has_mape
    assert "mape_ratio" not in (loss_constants(predicted - y, a) or {})  # without y, ŷ: none


# ----------------------------------------------------------------------------- the spec


def test_an_old_spec_without_mape_constants_reads_and_estimates_mae_rmse_only() -> None:
    doc = _spec().to_dict()
    assert LossModelSpec.from_dict(doc) == _spec()
    old = {k: v for k, v in doc.items() if k not in MAPE}
    spec = LossModelSpec.from_dict(old)
    assert not spec.has_mape
    got = dle(spec, 2, 4.0, 8.0, 32.0, relative=(2, 0.4, 0.08))
    assert [e.metric for e in got] == ["mae", "rmse"]


@pytest.mark.parametrize(
    "change",
    [
        {"mape_ratio": 0.0},
        {"mape_ratio": float("nan")},
        {"mape_spread": 2e6},
        {"mape_rel_se": -0.1},
        {"holdout_mean_rel": -1.0},
        {"mape_ratio": "0.9"},
    ],
)
def test_mape_constants_out_of_range_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(CalibrationError):
        LossModelSpec.from_dict(_spec().to_dict() | change)


def test_some_mape_constants_without_the_others_are_refused() -> None:
    doc = _spec().to_dict()
    del doc["mape_spread"]
    with pytest.raises(CalibrationError, match="all of"):
        LossModelSpec.from_dict(doc)


# ----------------------------------------------------------------------------- the estimate


def test_the_mape_estimate_matches_an_independent_computation() -> None:
    rng = np.random.default_rng(8)
    a = rng.gamma(2.0, 1.0, 300)
    predicted = rng.uniform(5, 20, 300)
    part = build_dle(list(a), predicted)
    assert part.relative is not None
    got = {
        e.metric: e
        for e in dle(_spec(), part.count, *part.floats(), relative=part.relative.floats())
    }
    r = a / predicted
    m = 0.9 * r.mean()
    sd = math.sqrt(0.5 * (r**2).sum() / 300**2 + (m * 0.04) ** 2)
    moved = 0.5 * abs(m - 0.9 * 0.1)
    assert m > 0.09  # above the holdout's: only the upper bound widens
    assert got["mape"].value == pytest.approx(m, rel=1e-12)
    assert got["mape"].low == pytest.approx(m - Z * sd, rel=1e-9)
    assert got["mape"].high == pytest.approx(m + Z * math.hypot(sd, moved), rel=1e-9)
    assert got["mape"].rows == 300
    assert "mape" not in {e.metric for e in dle(_spec(), 300, *part.floats())}  # no sums
    assert "mape" not in {e.metric for e in dle(_spec(), 300, *part.floats(), relative=(0, 0, 0))}


def _market(rng: np.random.Generator, rows: int, share_b: float) -> tuple[np.ndarray, ...]:
    """Segment a: prices ~100, noise 5 %; segment b: prices ~10, noise 30 % (large relative
    errors). The model predicts the segment's mean price; the 'loss model' knows the noise."""
    b = rng.random(rows) < share_b
    price = np.where(b, 10.0, 100.0) * rng.lognormal(0, 0.05, rows)
    noise_sd = np.where(b, 0.3, 0.05) * price
    y = price + rng.normal(0, 1, rows) * noise_sd
    predicted = price
    a = noise_sd * math.sqrt(2 / math.pi) * rng.lognormal(0, 0.2, rows)  # imperfect E|e|
    return y, predicted, a


def test_the_mape_estimate_covers_the_realized_mape_and_rises_under_covariate_shift() -> None:
    rng = np.random.default_rng(9)
    y, predicted, a = _market(rng, 2000, share_b=0.2)  # the holdout
    constants = loss_constants(predicted - y, a, y, predicted)
    assert constants is not None
    spec = LossModelSpec.of("0" * 64, "p", 2000, constants)
    covered, values, realized = 0, [], []
    shares = np.linspace(0.2, 0.8, 30)  # traffic moves toward segment b, hour by hour
    for share in shares:
        y, predicted, a = _market(rng, 400, share_b=float(share))
        part = build_dle(list(a), predicted)
        assert part.relative is not None
        estimate = {
            e.metric: e
            for e in dle(spec, part.count, *part.floats(), relative=part.relative.floats())
        }["mape"]
        truth = regression_metrics(y, predicted)["mape"]
        covered += estimate.low <= truth <= estimate.high
        values.append(estimate.value)
        realized.append(truth)
    assert covered >= 0.9 * len(shares)
    assert realized[-1] > 2 * realized[0]  # the shift raised the realized MAPE ...
    assert values[-1] > 2 * values[0]  # ... and the estimate with it, without labels


# ----------------------------------------------------------------------------- the report

HOUR = datetime(2026, 12, 7, 10, tzinfo=UTC)


def _plan(spec: LossModelSpec) -> SketchPlan:
    return SketchPlan("f" * 64, {}, {}, np.array([0.0, 50.0]), None, loss_model=spec)


def _sketch(plan: SketchPlan, a: float, predicted: float, rows: int = 400) -> Sketch:
    """A real sketch of ``rows`` rows, built as the logger builds one."""
    ts = int(HOUR.timestamp() * 1000)
    records = [
        {"model": "m", "version": "1", "ts": ts + i, "inputs": {}, "prediction": predicted}
        for i in range(rows)
    ]
    return build_sketch(plan, records, losses=[a] * rows)


def _section(
    plan: SketchPlan, sketch: Sketch, gate_metric: str = "mape", min_rows: int = 100
) -> dict[str, Any]:
    return estimate_section(
        task="regression",
        plan=plan,
        window=sketch,
        hourly=[(HOUR, sketch)],
        realized_hours=[{"start": HOUR.isoformat(timespec="seconds"), "labels": 400,
                         "metrics": {"mape": 0.2, "rmse": 3.0}}],
        holdout_metrics={"mape": 0.1, "rmse": 2.5, "mae": 2.0},
        gate_metric=gate_metric,
        tolerance=0.1,
        min_rows=min_rows,
    )  # fmt: skip


def test_the_report_compares_on_mape_when_the_gate_does_lower_being_better() -> None:
    assert estimated_metric("regression", "mape") == "mape"
    assert estimated_metric("regression", "r2") == "rmse"
    plan = _plan(_spec())
    worse = _section(plan, _sketch(plan, a=2.0, predicted=10.0))  # r = 0.2: MAPE 0.18
    assert (worse["metric"], worse["greater_is_better"], worse["holdout"]) == ("mape", False, 0.1)
    assert worse["available"]
    assert worse["window"]["mape"]["value"] == pytest.approx(0.9 * 0.2)
    assert worse["breach"], worse["reason"]  # its low bound is above 0.1 * 1.1
    assert "ESTIMATED mape 18.00%" in worse["reason"]  # a fraction shown as a percentage
    assert worse["no_relative"] == 0
    [hour] = worse["hours"]
    assert hour["realized"] == 0.2
    assert hour["error"] == pytest.approx(0.18 - 0.2)
    better = _section(plan, _sketch(plan, a=0.5, predicted=10.0))  # MAPE 0.045: below holdout
    assert better["available"]
    assert not better["breach"], better["reason"]
    assert "within" in better["reason"]
    # the gate metric rmse: compared on rmse even though MAPE is estimated too
    assert _section(plan, _sketch(plan, a=2.0, predicted=10.0), "rmse")["metric"] == "rmse"


def test_rows_predicting_zero_are_outside_the_mape_estimate_and_counted() -> None:
    plan = _plan(_spec())
    ts = int(HOUR.timestamp() * 1000)
    records = [
        {"model": "m", "version": "1", "ts": ts + i, "inputs": {}, "prediction": p}
        for i, p in enumerate([10.0] * 300 + [0.0] * 100)
    ]
    section = _section(plan, build_sketch(plan, records, losses=[2.0] * 400))
    assert section["no_relative"] == 100
    assert section["rows"] == 400
    assert section["window"]["mape"]["rows"] == 300
    assert section["window"]["mape"]["value"] == pytest.approx(0.9 * 0.2)
    assert section["window"]["mae"]["rows"] == 400
    assert section["breach"]
    # judged on the rows the MAPE estimate is over: 300, one short of 301
    short = _section(plan, build_sketch(plan, records, losses=[2.0] * 400), min_rows=301)
    assert not short["breach"]
    assert "fewer than the 301 rows" in short["reason"]


def test_without_mape_constants_or_sums_the_report_says_so_and_compares_rmse() -> None:
    old_plan = _plan(_spec(mape=False))
    section = _section(old_plan, _sketch(old_plan, a=2.0, predicted=10.0))
    assert section["metric"] == "rmse"
    assert section["available"]
    assert "trained before them" in section["fallback"]
    assert "compared on rmse" in section["reason"]
    plan = _plan(_spec())
    new = _sketch(plan, a=2.0, predicted=10.0)
    assert isinstance(new.estimate, LossSums)
    old_part = LossSums(
        *(getattr(new.estimate, f) for f in ("count", "sum1", "sum2", "sum4", "unscored"))
    )
    old_sketch = Sketch.from_dict(new.to_dict() | {"estimate": old_part.to_dict()})
    section = _section(plan, old_sketch)
    assert section["metric"] == "rmse"
    assert "written before MAPE sums" in section["reason"]


def test_when_every_row_predicted_zero_there_is_no_mape_estimate_and_the_report_says_why() -> None:
    plan = _plan(_spec())
    section = _section(plan, _sketch(plan, a=2.0, predicted=0.0))
    assert section["metric"] == "mape"
    assert not section["available"]
    assert not section["breach"]
    assert section["no_relative"] == 400
    assert section["reason"] == (
        "no estimate of mape: no scored rows with a relative error (predictions of 0)"
    )
    assert section["window"]["mae"]["rows"] == 400  # MAE and RMSE are still estimated


def test_the_page_counts_the_rows_outside_the_mape_estimate() -> None:
    from mlops.domain.drift_report_html import render_html

    plan = _plan(_spec())
    ts = int(HOUR.timestamp() * 1000)
    records = [
        {"model": "m", "version": "1", "ts": ts + i, "inputs": {}, "prediction": p}
        for i, p in enumerate([10.0] * 300 + [0.0] * 100)
    ]
    section = _section(plan, build_sketch(plan, records, losses=[2.0] * 400))
    page = render_html(
        {
            "kind": "drift_report",
            "schema_version": 1,
            "model": "m",
            "version": "1",
            "verdict": {"status": "ok", "estimate_breach": section["breach"]},
            "features": [],
            "estimate": section,
        }
    )
    assert "100 scored rows predicted 0 (or too near it)" in page
    assert "MAPE 0.18 [" in page  # a fraction, as the page shows live MAPE


def test_a_sum_of_squares_past_the_square_of_the_sum_is_refused() -> None:
    # Given honest sums of 200 estimated errors of 0.2, a forged sum of squares would widen
    # the interval to [0, 1e148]: no estimate could ever breach. It is refused, for the
    # relative sums and for the absolute ones (a**2 and a**4).
    honest = build_dle([0.2] * 200, np.full(200, 1.0)).to_dict()
    assert isinstance(part_from_dict(honest), LossSums)
    forged_rel = json.loads(json.dumps(honest))
    forged_rel["relative"]["sum_sq"] = "0x1p+1000"
    for forged in (
        forged_rel,
        honest | {"sum_sq": "0x1p+1000"},
        honest | {"sum_4": "0x1p+1000"},
    ):
        with pytest.raises(ValueError, match=r"no set of numbers|beyond the square"):
            part_from_dict(forged)


@pytest.mark.parametrize(
    "values",
    [[0.1], [1e-300], [3.0, 0.0, 0.0], [1e-200] * 5, list(np.random.default_rng(3).random(500))],
)
def test_honest_sums_sit_under_the_square_of_the_sum_whatever_the_rounding(
    values: list[float],
) -> None:
    # One value (its square rounded up), values whose squares underflow, zeros: all read
    part = build_dle(values, np.full(len(values), 0.5))
    read = part_from_dict(part.to_dict())
    assert read == part
