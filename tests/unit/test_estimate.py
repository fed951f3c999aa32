"""Quality estimates before labels (CBPE, DLE): the statistics against independent numpy/scipy
computations, the calibration's bounds, and the sketch part's merging and reading."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from mlops.domain import estimate as est
from mlops.domain.estimate import (
    MAX_BINS,
    MAX_CLASSES,
    SHRINK,
    Calibration,
    CalibrationError,
    LossModelSpec,
    cbpe,
    dle,
    fit_calibration,
    loss_constants,
)
from mlops.domain.estimate_sketch import (
    ConfidenceCounts,
    LossSums,
    build_cbpe,
    build_dle,
    merge_parts,
    part_from_dict,
)
from mlops.domain.exact_sum import SCALE_BITS, to_hex

Z = stats.norm.ppf(0.975)


def calibrated_data(rows: int, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Binary predictions whose top probability is exactly the chance they are right."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(0.5, 1.0, rows)
    predicted = rng.choice(["a", "b"], rows)
    right = rng.random(rows) < top
    other = np.where(predicted == "a", "b", "a")
    actual = np.where(right, predicted, other)
    as_a = np.column_stack([top, 1 - top])
    proba = np.where((predicted == "a")[:, None], as_a, as_a[:, ::-1])
    return list(predicted), proba, list(actual)


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    predicted, proba, actual = calibrated_data(4000, seed=0)
    fitted = fit_calibration(predicted, proba, actual, ["a", "b"])
    assert fitted is not None
    return fitted


# ----------------------------------------------------------------------------- calibration


def test_a_fitted_calibration_is_monotone_bounded_and_close_to_the_truth(
    calibration: Calibration,
) -> None:
    assert calibration.bins == MAX_BINS  # 4,000 rows: 80 a bin, capped at 20 bins
    assert sum(sum(s) for s in calibration.support.values()) == 4000 == calibration.holdout_rows
    edges = np.asarray(calibration.edges)
    centres = np.concatenate([[0.5], edges]) / 2 + np.concatenate([edges, [1.0]]) / 2
    for c in ("a", "b"):
        values = np.asarray(calibration.values[c])
        assert np.all(np.diff(values) >= 0)
        assert values.min() >= 0
        assert values.max() <= 1
        # Calibrated data: each bin's value is near its confidence (bins hold ~100 rows)
        assert np.max(np.abs(values - centres)) < 0.12
    # A round trip through the document keeps it exactly
    assert Calibration.from_dict(calibration.to_dict()) == calibration


def test_too_few_rows_or_too_many_classes_get_no_calibration() -> None:
    predicted, proba, actual = calibrated_data(19, seed=1)
    assert fit_calibration(predicted, proba, actual, ["a", "b"]) is None
    assert fit_calibration(*calibrated_data(20, seed=1), ["a", "b"]) is not None
    many = [f"c{i}" for i in range(MAX_CLASSES + 1)]
    rows = 500
    proba = np.full((rows, len(many)), 1 / len(many))
    labels = [many[i % len(many)] for i in range(rows)]
    assert fit_calibration(labels, proba, labels, many) is None
    assert fit_calibration(labels, proba[:, :MAX_CLASSES], labels, many[:MAX_CLASSES]) is not None


def _doc(calibration: Calibration) -> dict[str, Any]:
    return copy.deepcopy(calibration.to_dict())


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: d["values"]["a"].__setitem__(3, 0.0), "decrease"),
        (lambda d: d["values"]["a"].__setitem__(-1, 1.5), "from 0 to 1"),
        (lambda d: d["values"]["b"].__setitem__(0, float("nan")), "from 0 to 1"),
        (lambda d: d["edges"].reverse(), "strictly increasing"),
        (lambda d: d["edges"].append(d["edges"][-1]), "strictly increasing"),
        (lambda d: d["support"]["a"].__setitem__(0, d["support"]["a"][0] + 1), "add up"),
        (lambda d: d["support"]["a"].__setitem__(0, True), "counts"),
        (lambda d: d["support"]["b"].__setitem__(0, -1), "counts"),
        (lambda d: d["error_shares"]["a"].__setitem__("b", 0.5), "add up to 1"),
        (lambda d: d["error_shares"]["a"].__setitem__("a", 0.5), "other classes"),
        (lambda d: d["values"].pop("b"), "one entry per class"),
        (lambda d: d["values"]["a"].pop(), "bins"),
        (lambda d: d.pop("holdout_rows"), "lacks"),
        (lambda d: d.__setitem__("kind", "dle"), "cbpe"),
        (lambda d: d.__setitem__("classes", ["a"]), "2 to"),
    ],
)
def test_a_broken_calibration_is_refused_naming_what_is_wrong(
    calibration: Calibration, damage: Any, words: str
) -> None:
    doc = _doc(calibration)
    damage(doc)
    with pytest.raises(CalibrationError, match=words):
        Calibration.from_dict(doc)


def _uniform_doc(classes: int, bins: int) -> dict[str, Any]:
    labels = [f"c{i}" for i in range(classes)]
    edges = [round((i + 1) / (bins + 1), 6) for i in range(bins - 1)]
    return {
        "kind": "cbpe",
        "schema": 1,
        "classes": labels,
        "edges": edges,
        "values": {c: [0.5] * bins for c in labels},
        "support": {c: [1] * bins for c in labels},
        "error_shares": {c: {t: 1 / (classes - 1) for t in labels if t != c} for c in labels},
        "holdout_rows": classes * bins,
    }


def test_calibration_bounds_hold_exactly_on_them_and_refuse_one_past() -> None:
    assert Calibration.from_dict(_uniform_doc(MAX_CLASSES, MAX_BINS)).bins == MAX_BINS
    with pytest.raises(CalibrationError, match="edges"):
        Calibration.from_dict(_uniform_doc(2, MAX_BINS + 1))
    with pytest.raises(CalibrationError, match="classes"):
        Calibration.from_dict(_uniform_doc(MAX_CLASSES + 1, 2))


# ----------------------------------------------------------------------------- CBPE


def test_cbpe_accuracy_and_interval_match_an_independent_computation(
    calibration: Calibration,
) -> None:
    rng = np.random.default_rng(2)
    counts = {c: [int(v) for v in rng.integers(0, 30, calibration.bins)] for c in ("a", "b")}
    accuracy = next(e for e in cbpe(calibration, counts) if e.metric == "accuracy")
    n = np.asarray([counts["a"], counts["b"]], float)
    p = np.asarray([calibration.values["a"], calibration.values["b"]])
    s = np.asarray([calibration.support["a"], calibration.support["b"]], float)
    rows = n.sum()
    expected = (n * p).sum() / rows
    variance = (n * p * (1 - p)).sum() + (n**2 * p * (1 - p) / (s + SHRINK + 1)).sum()
    assert accuracy.rows == rows
    assert accuracy.value == pytest.approx(expected, rel=1e-12)
    assert accuracy.high - accuracy.value == pytest.approx(Z * math.sqrt(variance) / rows)


def test_cbpe_intervals_cover_poisson_binomial_draws_at_their_level(
    calibration: Calibration,
) -> None:
    # Given rows whose correctness is drawn with the calibrated chances
    rng = np.random.default_rng(3)
    p = {c: np.asarray(calibration.values[c]) for c in ("a", "b")}
    covered = 0
    for _ in range(400):
        counts = {c: rng.integers(0, 15, calibration.bins) for c in ("a", "b")}
        right = sum(rng.binomial(counts[c], p[c]).sum() for c in ("a", "b"))
        rows = sum(int(v.sum()) for v in counts.values())
        accuracy = cbpe(calibration, {c: list(map(int, v)) for c, v in counts.items()})[0]
        covered += accuracy.low <= right / rows <= accuracy.high
    # Then the 95 % interval covers about its level (it also carries the calibration's
    # error, so a little more); 0.93 is the level less two standard errors of 400 draws
    assert covered / 400 >= 0.93


def test_cbpe_macro_f1_is_the_f1_of_the_expected_confusion() -> None:
    doc = _uniform_doc(2, 2)
    doc["values"] = {"c0": [0.6, 0.9], "c1": [0.7, 0.8]}
    calibration = Calibration.from_dict(doc)
    counts = {"c0": [10, 30], "c1": [20, 40]}
    f1 = next(e for e in cbpe(calibration, counts) if e.metric == "f1_macro")
    tp = np.array([10 * 0.6 + 30 * 0.9, 20 * 0.7 + 40 * 0.8])
    fp = np.array([40, 60]) - tp
    fn = fp[::-1]  # two classes: a miss of one is a miss against the other
    assert f1.value == pytest.approx(float(np.mean(2 * tp / (2 * tp + fp + fn))))
    assert f1.low <= f1.value <= f1.high


def test_cbpe_of_no_rows_is_no_estimate(calibration: Calibration) -> None:
    assert cbpe(calibration, {}) == []
    assert cbpe(calibration, {"a": [0] * calibration.bins}) == []


# ----------------------------------------------------------------------------- DLE


def _spec(**changes: float) -> LossModelSpec:
    constants = {
        "mae_ratio": 1.1,
        "mse_ratio": 1.5,
        "mae_spread": 0.6,
        "mse_spread": 4.0,
        "mae_rel_se": 0.03,
        "mse_rel_se": 0.05,
        "holdout_mean": 2.0,
        "holdout_mean_sq": 5.0,
    } | changes
    return LossModelSpec.of("0" * 64, "mlops_prediction", 500, constants)


def test_dle_estimates_and_intervals_match_an_independent_computation() -> None:
    a = np.random.default_rng(4).gamma(2.0, 1.0, 300)
    spec = _spec()
    part = build_dle(list(a))
    s1, s2, s4 = part.floats()
    mae, rmse = dle(spec, part.count, s1, s2, s4)
    n = a.size
    m1, m2 = 1.1 * a.mean(), 1.5 * (a**2).mean()
    sd1 = math.sqrt(0.6 * (a**2).sum() / n**2 + (m1 * 0.03) ** 2)
    sd2 = math.sqrt(4.0 * (a**4).sum() / n**2 + (m2 * 0.05) ** 2)
    moved1, moved2 = 0.5 * abs(m1 - 1.1 * 2.0), 0.5 * abs(m2 - 1.5 * 5.0)
    assert mae.value == pytest.approx(m1, rel=1e-12)
    assert rmse.value == pytest.approx(math.sqrt(m2), rel=1e-12)
    # Traffic moved above the holdout's errors: only the upper bounds widen
    assert m1 > 2.2
    assert m2 > 7.5
    assert mae.low == pytest.approx(m1 - Z * sd1, rel=1e-9)
    assert mae.high == pytest.approx(m1 + Z * math.hypot(sd1, moved1), rel=1e-9)
    assert rmse.low == pytest.approx(math.sqrt(m2 - Z * sd2), rel=1e-9)
    assert rmse.high == pytest.approx(math.sqrt(m2 + Z * math.hypot(sd2, moved2)), rel=1e-9)


def test_dle_widens_toward_lower_errors_when_traffic_got_easier() -> None:
    spec = _spec(holdout_mean=100.0, holdout_mean_sq=1e4)
    mae, _ = dle(spec, 4, 4.0, 4.0, 4.0)  # a = 1 on four rows, far below the holdout's 100
    sd = math.sqrt(0.6 * 4 / 16 + (1.1 * 0.03) ** 2)
    assert mae.high == pytest.approx(1.1 + Z * sd)
    assert mae.low == 0.0  # widened down, and clipped at no error


def test_dle_constants_are_the_holdout_ratios_and_spreads() -> None:
    rng = np.random.default_rng(5)
    a = rng.gamma(2.0, 1.0, 1000)
    e = a * rng.normal(1.0, 0.3, 1000)
    constants = loss_constants(e, a)
    assert constants is not None
    assert constants["mae_ratio"] == pytest.approx(np.abs(e).sum() / a.sum())
    assert constants["mse_ratio"] == pytest.approx((e**2).sum() / (a**2).sum())
    resid = np.abs(e) - constants["mae_ratio"] * a
    assert constants["mae_spread"] == pytest.approx((resid**2).sum() / (a**2).sum())
    assert constants["holdout_mean"] == pytest.approx(a.mean())
    assert loss_constants(e, np.zeros(1000)) is None  # nothing to scale


def test_a_dle_description_out_of_range_is_refused() -> None:
    doc = _spec().to_dict()
    assert LossModelSpec.from_dict(doc) == _spec()
    for key, value in [
        ("mse_ratio", 0.0),
        ("mse_ratio", float("inf")),
        ("mae_spread", est.MAX_SPREAD * 2),
        ("sha256", "xyz"),
        ("artifact", "../model.onnx"),
        ("holdout_mean", -1.0),
    ]:
        with pytest.raises(CalibrationError):
            LossModelSpec.from_dict(doc | {key: value})


# ----------------------------------------------------------------------------- sketch parts


def _rows(rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for _ in range(count):
        top = float(rng.uniform(0.5, 1.0))
        label = str(rng.choice(["a", "b", "zebra"]))  # "zebra": a class the model lacks
        rows.append({"prediction": label, "probabilities": {"a": top, "b": 1 - top}})
    rows.append({"prediction": "a", "probabilities": None})  # truncated capture
    rows.append({"prediction": "a", "probabilities": {"a": float("nan")}})
    return rows


def test_cbpe_parts_merge_to_the_part_built_on_the_union(calibration: Calibration) -> None:
    rng = np.random.default_rng(6)
    pieces = [_rows(rng, n) for n in (0, 7, 120, 33)]
    union = [r for piece in pieces for r in piece]
    parts = [(build_cbpe(calibration, piece), len(piece)) for piece in pieces]
    merged = merge_parts(parts)
    whole = build_cbpe(calibration, union)
    assert merged == whole
    assert whole.scored + whole.unscored == len(union)
    assert whole.unscored >= 8  # the zebras, the truncated and the NaN rows


def test_dle_parts_merge_exactly_whatever_the_batching() -> None:
    values = [*list(np.random.default_rng(7).lognormal(8, 2, 1000)), None, float("nan"), -3.0]
    whole = build_dle(values)
    for cut in (1, 17, 500, 1002):
        parts = [(build_dle(values[:cut]), cut), (build_dle(values[cut:]), len(values) - cut)]
        assert merge_parts(reversed(parts)) == whole
    assert whole.count == 1001
    assert whole.unscored == 2
    assert whole.floats()[0] == pytest.approx(math.fsum(v for v in values[:1000] if v))


def test_a_sketch_without_a_part_adds_its_rows_as_unscored() -> None:
    part = build_dle([1.0, 2.0])
    assert merge_parts([(part, 2), (None, 5)]) == LossSums(2, part.sum1, part.sum2, part.sum4, 5)
    assert merge_parts([(None, 5)]) is None
    with pytest.raises(ValueError, match="kinds"):
        merge_parts([(part, 2), (ConfidenceCounts({}, 1, 3), 1)])


def test_parts_survive_their_documents(calibration: Calibration) -> None:
    cbpe_part = build_cbpe(calibration, _rows(np.random.default_rng(8), 50))
    dle_part = build_dle([0.5, 3.25, 1e6])
    assert part_from_dict(cbpe_part.to_dict()) == cbpe_part
    assert part_from_dict(dle_part.to_dict()) == dle_part


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": "dle", "count": 2, "sum": "-0x1p+0", "sum_sq": "0x1p+0", "sum_4": "0x1p+0"},
        {"kind": "dle", "count": 1, "sum": "0x1p+4", "sum_sq": "0x1p+0", "sum_4": "0x1p+0"},
        {"kind": "dle", "count": 0, "sum": "0x1p+0", "sum_sq": "0x1p+0", "sum_4": "0x1p+0"},
        {"kind": "dle", "count": 1, "sum": "0x1p+99999", "sum_sq": "0x0p+0", "sum_4": "0x0p+0"},
        {"kind": "dle", "count": 2**53, "sum": "0x0p+0", "sum_sq": "0x0p+0", "sum_4": "0x0p+0"},
        {"kind": "cbpe", "bins": MAX_BINS + 1, "counts": {}},
        {"kind": "cbpe", "bins": 2, "counts": {"a": [1, 2, 3]}},
        {"kind": "cbpe", "bins": 2, "counts": {"a": [1, -2]}},
        {"kind": "cbpe", "bins": 2, "counts": {"x" * 65: [1, 2]}},
        {"kind": "cbpe", "bins": 2, "counts": {f"c{i}": [0, 0] for i in range(MAX_CLASSES + 1)}},
        {"kind": "cbpe", "bins": True, "counts": {}},
        {"kind": "something", "count": 0},
        [],
    ],
)
def test_a_hostile_part_is_refused(doc: Any) -> None:
    if isinstance(doc, dict):
        doc = doc | {"unscored": 0}
    with pytest.raises((ValueError, TypeError, KeyError)):
        part_from_dict(doc)


def test_the_largest_honest_dle_sums_are_read() -> None:
    part = build_dle([1e75, 0.0])
    assert part.count == 2
    assert part_from_dict(part.to_dict()) == part
    assert part.sum1 == int(1e75) << SCALE_BITS
    assert build_dle([1e76]).unscored == 1  # beyond MAX_LOSS: not scored
    assert to_hex(part.sum4)  # its fourth power is still a finite float64 sum


# ----------------------------------------------------------------------------- the page


def _report_with(estimate: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "drift_report",
        "schema_version": 1,
        "model": "m",
        "version": "1",
        "verdict": {"status": "ok", "estimate_breach": estimate.get("breach")},
        "features": [],
        "estimate": estimate,
    }


def test_the_page_names_the_estimate_and_escapes_what_it_shows() -> None:
    from mlops.domain.drift_report import headline
    from mlops.domain.drift_report_html import render_html

    estimate = {
        "label": "ESTIMATE",
        "method": "DLE (loss model)",
        "metric": "rmse",
        "holdout": 100.0,
        "available": True,
        "breach": True,
        "reason": "ESTIMATED rmse <script>alert(1)</script>",
        "window": {"rmse": {"value": 150.0, "low": 130.0, "high": 170.0, "rows": 10}},
        "rows": 10,
        "unscored": 0,
        "hours": [
            {
                "start": "2026-12-07T10:00:00+00:00",
                "rows": 5,
                "realized": 140.0,
                "error": 10.0,
                "labels": 5,
                "estimates": {"rmse": {"value": 150.0, "low": 0.0, "high": 170.0}},
            },
            {
                "start": "2026-12-07T11:00:00+00:00",
                "rows": 5,
                "realized": None,
                "labels": 0,
                "estimates": {"rmse": {"value": None, "low": None, "high": None}},
            },
        ],
    }
    page = render_html(_report_with(estimate))
    assert "<script>alert" not in page
    assert "Estimated quality (ESTIMATE, before labels)" in page
    assert "no labels yet" in page
    assert headline(_report_with(estimate))[0] == (
        "Estimated quality loss: ESTIMATED RMSE +50 % (an estimate, before labels)"
    )
    assert "Estimated quality" not in render_html(_report_with({}) | {"estimate": None})


@pytest.mark.parametrize(
    "losses",
    [
        [12_345.678] * 2000,  # identical rows: Cauchy-Schwarz with equality
        [0.1] * 7,
        [1e-300] * 3,  # squares underflow to 0
        [3.3, 3.3, 3.3000000000000003],
    ],
)
def test_loss_sums_of_equal_or_tiny_errors_read_back(losses: list[float]) -> None:
    # Was a defect: float64's rounding of each square put equal values just past the
    # Cauchy-Schwarz bound, and the reader refused the whole sketch (drift and serving lost)
    from mlops.domain.estimate_sketch import build_dle, part_from_dict

    part = build_dle(losses)
    assert part_from_dict(part.to_dict()) == part


def test_loss_sums_past_the_rounding_slack_are_refused() -> None:
    from mlops.domain.estimate_sketch import build_dle, part_from_dict

    document = build_dle([2.0, 2.0]).to_dict()
    forged = build_dle([2.0, 2.0000001]).to_dict()  # a larger sum of the same squares' size
    document["sum"] = forged["sum"]
    with pytest.raises(ValueError, match="no set of numbers"):
        part_from_dict(document)
