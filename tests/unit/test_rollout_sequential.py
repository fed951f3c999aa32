"""The always-valid sequential test on live quality (``domain.rollout_sequential``): its
statistic and boundary against independent computations (scipy's integral of the normal
mixture, an analytic delta method, a jackknife), its bounds, both metric directions, the
benchmark's vectorised form, and the ramp's per-step evidence in the judge."""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.metrics import f1_score

from mlops.domain import rollout_sequential as seq
from mlops.domain.comparison import Sample, compare, metric_rows, metric_statistic
from mlops.domain.config import RolloutConfig
from mlops.domain.config_document import parse_config
from mlops.domain.rollout_policy import Ramp, quality_check
from mlops.errors import ConfigError
from tests.conftest import ROOT
from tests.unit.test_rollout_verdict import CONFIG, judge, regression_traffic


def regression(errors: np.ndarray, prefix: str = "r") -> Sample:
    """A sample whose per-row error is ``errors`` (target 0 plus an offset, prediction the
    error on top: the error is what every regression metric reads)."""
    actual = np.full(len(errors), 100.0)
    return Sample(
        [f"{prefix}{i}" for i in range(len(errors))],
        (actual + errors).tolist(),
        actual.tolist(),
        [None] * len(errors),
    )


def answers(right: np.ndarray, prefix: str = "c") -> Sample:
    actual = ["yes"] * len(right)
    said = ["yes" if r else "no" for r in right]
    return Sample([f"{prefix}{i}" for i in range(len(right))], said, actual, [None] * len(right))


def run(production: Sample, candidate: Sample, **overrides: Any) -> seq.SequentialTest:
    kwargs: dict[str, Any] = {
        "task": "regression",
        "metric": "rmse",
        "greater_is_better": False,
        "paired": False,
        "confidence": 0.95,
        "tolerance": 0.05,
    }
    return seq.sequential_test(production, candidate, **(kwargs | overrides))


# --- the statistic against independent computations -------------------------------------------


def mixture_ratio(distance: float, variance: float, mixing: float) -> float:
    """The normal mixture's likelihood ratio of ``theta_hat - theta0 = distance`` by numerical
    integration over the mixing distribution (not the closed form the module uses)."""
    sd = math.sqrt(variance)

    def integrand(theta: float) -> float:
        return stats.norm.pdf(distance, theta, sd) * stats.norm.pdf(theta, 0, math.sqrt(mixing))

    scale = 12 * math.sqrt(mixing + variance)
    value, _ = integrate.quad(integrand, distance - scale, distance + scale, limit=200)
    return value / stats.norm.pdf(distance, 0, sd)


@pytest.mark.parametrize("paired", [False, True])
def test_the_interval_ends_are_where_the_mixture_ratio_reaches_one_over_alpha(
    paired: bool,
) -> None:
    rng = np.random.default_rng(3)
    prod_err = rng.normal(0, 10, 400)
    cand_err = 0.9 * prod_err + rng.normal(0, 3, 400) if paired else rng.normal(0, 9, 300)
    production = regression(prod_err)
    candidate = regression(cand_err, "r" if paired else "c")
    test = run(production, candidate, paired=paired)
    # Independently: theta_hat and V from the raw errors (MSE form of RMSE's tolerance)
    b = 1.05**2
    p2, c2 = prod_err**2, cand_err**2
    if paired:
        d = c2 - b * p2
        estimate = d.mean()
        unit = (np.sum((d - d.mean()) ** 2) + c2.mean() ** 2 + (b * p2.mean()) ** 2) / d.size
        variance = unit / d.size
    else:
        estimate = c2.mean() - b * p2.mean()
        var_c = (c2.size * c2.var() + c2.mean() ** 2) / c2.size
        var_p = (p2.size * p2.var() + p2.mean() ** 2) / p2.size
        unit = var_c + b * b * var_p
        variance = var_c / c2.size + b * b * var_p / p2.size
    assert test.estimate == pytest.approx(estimate, rel=1e-9)
    assert test.radius is not None
    assert test.z == pytest.approx(estimate / math.sqrt(variance), rel=1e-9)
    mixing = unit / seq.TUNED_LABELS
    # At either end of the interval the mixture ratio is exactly 1 / alpha: the boundary
    assert mixture_ratio(test.radius, variance, mixing) == pytest.approx(20.0, rel=1e-6)
    # and inside it below, outside above
    assert mixture_ratio(0.99 * test.radius, variance, mixing) < 20.0
    assert mixture_ratio(1.01 * test.radius, variance, mixing) > 20.0


def test_r2_is_linearised_by_the_delta_method() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(50, 10, 500)
    sample = Sample(
        [str(i) for i in range(500)], (y + rng.normal(0, 4, 500)).tolist(), y.tolist(), [None] * 500
    )
    values = metric_rows("regression", "r2", sample)
    phi, value = seq._pseudo_values(metric_statistic("r2"), values)
    # Independently: R² = 1 - m1 / (m3 - m2²), its gradient by hand
    m1, m2, m3 = values.mean(axis=0)
    total = m3 - m2**2
    gradient = np.asarray([-1 / total, -2 * m1 * m2 / total**2, m1 / total**2])
    expected = value + (values - values.mean(axis=0)) @ gradient
    assert value == pytest.approx(
        1 - np.mean((sample_err := np.asarray(sample.predictions) - y) ** 2) / y.var()
    )
    assert sample_err.size == 500
    np.testing.assert_allclose(phi, expected, rtol=1e-5, atol=1e-8)
    assert phi.mean() == pytest.approx(value, rel=1e-9)


def test_macro_f1s_pseudo_values_give_the_jackknife_variance() -> None:
    rng = np.random.default_rng(9)
    n = 300
    actual = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    predicted = np.where(rng.random(n) < 0.7, actual, rng.choice(["a", "b", "c"], n))
    sample = Sample([str(i) for i in range(n)], predicted.tolist(), actual.tolist(), [None] * n)
    phi, value = seq._pseudo_values(
        metric_statistic("f1_macro"), metric_rows("classification", "f1_macro", sample)
    )
    assert value == pytest.approx(f1_score(actual, predicted, average="macro"), rel=1e-9)
    # Independently: scikit-learn's F1 left one out at a time
    keep = np.ones(n, dtype=bool)
    leave_one_out = []
    for i in range(n):
        keep[i] = False
        leave_one_out.append(f1_score(actual[keep], predicted[keep], average="macro"))
        keep[i] = True
    jackknife = (n - 1) / n * np.sum((np.asarray(leave_one_out) - np.mean(leave_one_out)) ** 2)
    delta = phi.var() / n
    assert delta == pytest.approx(jackknife, rel=0.1)


# --- bounds -------------------------------------------------------------------------------------


def test_the_verdict_on_the_boundary_and_one_past_it() -> None:
    radius = 2.5
    # not worse: the interval's upper end at 0 passes; a hair above does not
    assert seq.classify(-radius, radius) == seq.NOT_WORSE
    assert seq.classify(np.nextafter(-radius, 0.0), radius) == seq.UNDECIDED
    # worse: the lower end at 0 is not yet worse; a hair above is
    assert seq.classify(radius, radius) == seq.UNDECIDED
    assert seq.classify(np.nextafter(radius, 10.0), radius) == seq.WORSE


def test_the_boundary_is_the_mixtures_closed_form_and_grows_like_the_log_of_the_labels() -> None:
    alpha = 0.05
    at_tuned = seq.z_boundary(seq.TUNED_LABELS, alpha)
    assert at_tuned == pytest.approx(math.sqrt(2 * (2 * math.log(20) + math.log(2))))
    # wide for few labels, narrowest a little past the tuned size, then slowly wider again
    # (the law of the iterated logarithm's price for looking forever)
    assert seq.z_boundary(seq.TUNED_LABELS / 10, alpha) > at_tuned
    assert seq.z_boundary(10 * seq.TUNED_LABELS, alpha) < at_tuned
    assert seq.z_boundary(1e6 * seq.TUNED_LABELS, alpha) > seq.z_boundary(
        10 * seq.TUNED_LABELS, alpha
    )
    # always wider than the fixed-sample 95 % interval (1.96): the price of looking often
    assert min(seq.z_boundary(n, alpha) for n in np.geomspace(1, 1e7, 200)) > 1.96


@pytest.mark.parametrize(("labels", "verdict"), [(1, seq.UNDECIDED), (2, None)])
def test_two_labels_per_variant_are_needed_for_a_variance(labels: int, verdict: str | None) -> None:
    test = run(regression(np.ones(labels)), regression(np.ones(labels) * 2, "c"))
    if verdict is not None:
        assert (test.verdict, test.z) == (verdict, None)
    else:
        assert test.z is not None


def test_a_perfect_small_sample_is_not_certainty() -> None:
    # 30 of 30 right on both sides: no variance in the data, the pseudo-row keeps one
    test = run(
        answers(np.ones(30, bool), "p"),
        answers(np.ones(30, bool)),
        task="classification",
        metric="accuracy",
        greater_is_better=True,
    )
    assert test.verdict == seq.UNDECIDED
    assert test.radius is not None
    assert test.radius > 0


def test_roc_auc_has_no_sequential_test_and_the_bootstrap_decides_saying_so() -> None:
    proba = [(0.3, 0.7)] * 40 + [(0.8, 0.2)] * 40
    actual = ["yes"] * 40 + ["no"] * 40
    said = ["yes"] * 40 + ["no"] * 40
    sample = Sample([str(i) for i in range(80)], said, actual, proba)
    test = run(sample, sample, task="classification", metric="roc_auc", greater_is_better=True)
    assert test.verdict == seq.UNAVAILABLE
    quality = compare(
        sample,
        sample,
        task="classification",
        classes=("no", "yes"),
        metric="roc_auc",
        greater_is_better=True,
        paired=True,
        confidence=0.95,
        tolerance=0.05,
        rng=np.random.default_rng(0),
    )
    check = quality_check(quality, test, RolloutConfig(min_labels=30))
    assert check.status == "pass"
    assert "fixed-sample bootstrap decides" in check.detail
    assert "rank statistic" in check.detail


# --- both metric directions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "verdict"), [(0.5, seq.WORSE), (-0.3, seq.NOT_WORSE), (0.05, seq.UNDECIDED)]
)
def test_rmse_lower_is_better(change: float, verdict: str) -> None:
    rng = np.random.default_rng(11)
    err = rng.normal(0, 10, 2000)
    # paired: the candidate's errors are production's scaled (an RMSE change of ``change``)
    test = run(
        regression(err), regression((1 + change) * err + rng.normal(0, 0.5, 2000)), paired=True
    )
    assert test.verdict == verdict, test


@pytest.mark.parametrize(
    ("candidate", "verdict"), [(0.60, seq.WORSE), (0.95, seq.NOT_WORSE), (0.80, seq.UNDECIDED)]
)
def test_accuracy_greater_is_better(candidate: float, verdict: str) -> None:
    rng = np.random.default_rng(12)
    production = answers(rng.random(3000) < 0.8, "p")
    test = run(
        production,
        answers(rng.random(1500) < candidate),
        task="classification",
        metric="accuracy",
        greater_is_better=True,
    )
    assert test.verdict == verdict, test
    if verdict != seq.UNDECIDED:
        # Independently: a candidate as much worse as the tolerance allows is the zero
        assert test.estimate == pytest.approx(-(candidate - 0.8) - 0.05 * 0.8, abs=0.03)


# --- the benchmark computes the same statistic ----------------------------------------------------


def benchmark() -> Any:
    spec = importlib.util.spec_from_file_location(
        "foresight_rollouts", ROOT / "benchmarks" / "foresight_rollouts.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["foresight_rollouts"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("paired", [False, True])
def test_the_benchmarks_vectorised_statistic_is_the_judges(paired: bool) -> None:
    bench = benchmark()
    rng = np.random.default_rng(2)
    prod_err = rng.normal(0, 1, (1, 120))
    cand_err = 1.1 * prod_err if paired else rng.normal(0, 1.1, (1, 40))
    a, b = bench.coefficients("rmse")
    sums = bench.Sums(1)
    if paired:
        sums.add_pairs(cand_err**2, prod_err**2, a, b)
    else:
        values = np.hstack([cand_err, prod_err]) ** 2
        sums.add_split(values, np.arange(values.shape[1])[None, :] < cand_err.shape[1])
    estimate, variance, unit = sums.statistic(paired, a, b)
    test = run(
        regression(prod_err[0]), regression(cand_err[0], "r" if paired else "c"), paired=paired
    )
    assert estimate[0] == pytest.approx(test.estimate, rel=1e-9)
    boundary = bench._boundary(unit / variance, 0.05)[0]
    assert boundary * math.sqrt(variance[0]) == pytest.approx(test.radius, rel=1e-9)


# --- the ramp's per-step evidence in the judge ---------------------------------------------------


def ramp(percent: float, started_ms: int = 0, elapsed: float = 7200.0) -> Ramp:
    return Ramp(
        steps=(5.0, 25.0, 50.0), percent=percent, started_ms=started_ms, elapsed_seconds=elapsed
    )


def test_a_pass_before_the_last_step_steps_up_and_the_last_promotes() -> None:
    traffic = regression_traffic(400, mode="shadow", improvement=0.3)
    first = judge(traffic, mode="shadow", ramp=ramp(5.0))
    assert first.decision == "step_up"
    assert first.reasons[0].startswith(
        "step 1 of 3 (5 % of requests) passed: the share moves to 25 %"
    )
    assert first.as_dict()["ramp"]["next_percent"] == 25.0
    assert judge(traffic, mode="shadow", ramp=ramp(50.0)).decision == "promote"
    # A share off the steps (a start by hand at 10 %) moves to the next step above it
    off = judge(traffic, mode="shadow", ramp=ramp(10.0))
    assert (off.decision, off.ramp.index if off.ramp else None) == ("step_up", 0)
    assert off.as_dict()["ramp"]["next_percent"] == 25.0


def test_a_step_needs_its_own_labels_and_bake() -> None:
    traffic = regression_traffic(400, mode="shadow", improvement=0.3)
    # Every labeled prediction was made at ts 0: a step begun at 1 ms has none of its own
    waiting = judge(traffic, mode="shadow", ramp=ramp(25.0, started_ms=1))
    assert waiting.decision == "wait"
    assert "0 candidate labels since this step began, 30 needed" in waiting.check("quality").detail
    # The step's bake, not the rollout's, counts
    young = judge(traffic, mode="shadow", ramp=ramp(25.0, elapsed=60.0))
    assert young.decision == "wait"
    assert young.check("bake").value == 60.0


def test_a_worse_candidate_rolls_back_at_any_step() -> None:
    traffic = regression_traffic(400, mode="shadow", improvement=-0.5)
    verdict = judge(traffic, mode="shadow", ramp=ramp(25.0, started_ms=1))
    assert verdict.decision == "rollback"
    assert verdict.sequential.verdict == seq.WORSE


# --- config -------------------------------------------------------------------------------------

MINIMAL: dict[str, Any] = {
    "name": "mm",
    "task": "regression",
    "target": "y",
    "features": [{"name": "a", "type": "numeric"}],
}


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([5, 5], "rollout.canary_steps[1]"),
        ([25, 5], "rollout.canary_steps[1]"),
        ([0, 50], "rollout.canary_steps[0]"),
        ([0.009], "rollout.canary_steps[0]"),
        ([5, 100.01], "rollout.canary_steps[1]"),
        ([5, "25"], "rollout.canary_steps"),
        ([True], "rollout.canary_steps"),
        (25, "rollout.canary_steps"),
        ([5, math.inf], "rollout.canary_steps"),
    ],
)
def test_bad_canary_steps_are_named(steps: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**MINIMAL, "rollout": {"canary_steps": steps}})
    assert field in [p.field for p in caught.value.details]


def test_canary_steps_accept_their_bounds_and_set_the_first_share() -> None:
    config = parse_config({**MINIMAL, "rollout": {"canary_steps": [0.01, 5, 100]}})
    assert config.rollout.canary_steps == (0.01, 5.0, 100.0)
    assert config.rollout.start_percent == 0.01  # the canary starts at the first step
    plain = parse_config({**MINIMAL, "rollout": {"canary_percent": 20}})
    assert (plain.rollout.canary_steps, plain.rollout.start_percent) == ((), 20.0)
    assert replace(CONFIG, canary_steps=(5.0,)).start_percent == 5.0
