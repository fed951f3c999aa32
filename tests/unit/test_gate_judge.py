"""The gate's judgement (domain.gate.judge) on numbers alone: paired sets, outcomes, the label
check, and the paired bootstrap against scipy's on the same rows."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from mlops.domain.comparison import Sample, compare
from mlops.domain.config import PromotionConfig
from mlops.domain.gate import GATE_RESAMPLES, RowSet, judge
from mlops.domain.label_check import check_labels
from mlops.domain.metrics import regression_metrics

RNG = np.random.default_rng(0)


def regression_set(
    name: str, y: np.ndarray, champion: np.ndarray, challenger: np.ndarray
) -> RowSet:
    return RowSet(
        name,
        Sample.of_outputs("rmse", list(champion), list(y)),
        Sample.of_outputs("rmse", list(challenger), list(y)),
    )


def predictions(rows: int, champion_noise: float, challenger_noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.normal(300_000, 80_000, rows)
    return y, y + rng.normal(0, champion_noise, rows), y + rng.normal(0, challenger_noise, rows)


def judged(
    holdout: RowSet,
    references: tuple[RowSet, ...] = (),
    policy: PromotionConfig | None = None,
    label_check=None,
):
    policy = policy or PromotionConfig()
    y = np.asarray(holdout.challenger.actuals, dtype=float)
    mine = regression_metrics(y, holdout.challenger.predictions)
    theirs = regression_metrics(y, holdout.champion.predictions)
    return judge(
        policy, "regression", challenger=mine, champion=theirs, naive=None, holdout=holdout,
        references=references, label_check=label_check,
    )  # fmt: skip


def test_a_clearly_better_challenger_passes_on_the_holdout() -> None:
    y, champ, chal = predictions(400, 40_000, 20_000)
    decision = judged(regression_set("holdout", y, champ, chal))
    assert decision.outcome == "passed"
    assert decision.passed
    assert decision.sets[0].verdict == "better"
    assert decision.reasons[-1].startswith("passed:")


def test_a_tie_is_inconclusive_not_rejected() -> None:
    # Given two models of the same quality on 150 rows
    y, champ, chal = predictions(150, 30_000, 30_000, seed=3)
    decision = judged(regression_set("holdout", y, champ, chal))
    # Then live labels decide
    assert decision.outcome == "inconclusive"
    assert not decision.passed
    assert "live labels decide" in decision.reasons[-1]


def test_a_small_real_improvement_the_holdout_cannot_show_is_inconclusive() -> None:
    # 3 % better on 60 rows: the interval straddles 0 (the 150-row tie that was rejected)
    y, champ, chal = predictions(60, 30_000, 29_100, seed=5)
    decision = judged(regression_set("holdout", y, champ, chal))
    assert decision.sets[0].verdict in ("inconclusive", "equivalent")
    assert decision.outcome == "inconclusive"


def test_a_clearly_worse_challenger_is_rejected() -> None:
    y, champ, chal = predictions(400, 20_000, 40_000)
    decision = judged(regression_set("holdout", y, champ, chal))
    assert decision.outcome == "rejected"
    assert "worse than production on the new data's holdout" in decision.reasons[-1]


def test_worse_on_recent_traffic_is_rejected_whatever_its_own_holdout_says() -> None:
    y, champ, chal = predictions(400, 40_000, 10_000)  # the upload's own rows: much better
    ty, tchamp, tchal = predictions(300, 20_000, 60_000, seed=9)  # the world: much worse
    decision = judged(
        regression_set("holdout", y, champ, chal), (regression_set("traffic", ty, tchamp, tchal),)
    )
    assert decision.outcome == "rejected"
    assert "recent labeled traffic" in decision.reasons[-1]


def test_worse_on_the_golden_set_without_traffic_is_held_not_rejected() -> None:
    y, champ, chal = predictions(400, 40_000, 10_000)
    gy, gchamp, gchal = predictions(300, 20_000, 60_000, seed=9)
    decision = judged(
        regression_set("holdout", y, champ, chal), (regression_set("golden", gy, gchamp, gchal),)
    )
    assert decision.outcome == "held"


def test_traffic_speaks_for_the_world_when_it_and_the_golden_set_disagree() -> None:
    # The world moved: better on today's labeled traffic, worse on the old golden set
    y, champ, chal = predictions(400, 40_000, 10_000)
    ty, tchamp, tchal = predictions(300, 40_000, 15_000, seed=8)
    gy, gchamp, gchal = predictions(300, 20_000, 60_000, seed=9)
    decision = judged(
        regression_set("holdout", y, champ, chal),
        (
            regression_set("traffic", ty, tchamp, tchal),
            regression_set("golden", gy, gchamp, gchal),
        ),
    )
    assert decision.outcome == "passed"


@pytest.mark.parametrize(("rows", "used"), [(99, False), (100, True)])
def test_a_reference_set_is_used_from_min_reference_rows(rows: int, used: bool) -> None:
    y, champ, chal = predictions(400, 40_000, 10_000)
    ty, tchamp, tchal = predictions(rows, 20_000, 200_000, seed=9)
    decision = judged(
        regression_set("holdout", y, champ, chal), (regression_set("traffic", ty, tchamp, tchal),)
    )
    traffic = decision.sets[1]
    assert (traffic.verdict != "unused") is used
    assert decision.outcome == ("rejected" if used else "passed")


def test_max_reference_degradation_is_the_tolerance_on_a_reference_set() -> None:
    y, champ, chal = predictions(400, 40_000, 10_000)
    ty, tchamp, tchal = predictions(3000, 20_000, 23_000, seed=9)  # ~15 % worse rmse
    holdout, traffic = (
        regression_set("holdout", y, champ, chal),
        regression_set("traffic", ty, tchamp, tchal),
    )
    strict = judged(holdout, (traffic,), PromotionConfig(max_reference_degradation=0.05))
    loose = judged(holdout, (traffic,), PromotionConfig(max_reference_degradation=0.5))
    assert strict.outcome == "rejected"
    assert loose.outcome == "passed"


def test_flagged_labels_hold_a_challenger_that_looks_better_on_its_own_holdout() -> None:
    y, champ, chal = predictions(400, 40_000, 10_000)
    check = check_labels("regression", champ / 3, y, {"mae": 5_000.0}, 5.0)
    assert check is not None
    assert check.flagged
    decision = judged(regression_set("holdout", y, champ, chal), label_check=check)
    assert decision.outcome == "held"
    assert decision.label_check is check


@pytest.mark.parametrize(("scale", "flagged"), [(1.0, False), (3.0, True), (-1.0, True)])
def test_the_label_check_sees_scale_and_sign(scale: float, flagged: bool) -> None:
    # Production predicts within 8 % of the truth; the upload's labels are the truth x scale
    rng = np.random.default_rng(1)
    truth = rng.uniform(100_000, 900_000, 500)
    predicted = truth * rng.normal(1.0, 0.08, 500)
    own_mae = float(np.mean(np.abs(predicted - truth)))
    check = check_labels("regression", predicted, truth * scale, {"mae": own_mae}, 5.0)
    assert check is not None
    assert check.flagged is flagged
    assert check.evidence["label scale vs predictions"] == pytest.approx(abs(scale), rel=0.1)


def test_the_label_check_bound_is_inclusive() -> None:
    check = check_labels("regression", [0.0, 0.0], [5.0, 5.0], {"mae": 1.0}, 5.0)
    assert check is not None
    assert (check.ratio, check.flagged) == (5.0, False)
    past = check_labels("regression", [0.0, 0.0], [5.0, 5.00001], {"mae": 1.0}, 5.0)
    assert past is not None
    assert past.flagged


def test_classification_labels_flipped_are_flagged_but_a_near_perfect_model_is_not_fragile() -> (
    None
):
    labels = np.asarray(["yes", "no"] * 100)
    flipped = np.where(labels == "yes", "no", "yes")
    check = check_labels("classification", labels, flipped, {"accuracy": 0.999}, 5.0)
    assert check is not None
    assert check.flagged
    # 10 % errors on fresh rows against 0.1 % on its holdout: within the 5 % floor's bar (2x)
    some = labels.copy()
    some[:20] = flipped[:20]
    calm = check_labels("classification", labels, some, {"accuracy": 0.999}, 5.0)
    assert calm is not None
    assert not calm.flagged


def test_a_first_model_must_beat_the_no_skill_model_significantly() -> None:
    # Given a model on pure noise: barely different from predicting the mean
    rng = np.random.default_rng(2)
    y = rng.normal(0, 1, 200)
    noise_model = y.mean() + rng.normal(0, 0.05, 200)
    naive = np.full(200, y.mean())
    holdout = regression_set("no_skill", y, naive, noise_model)
    mine = regression_metrics(y, noise_model)
    decision = judge(
        PromotionConfig(min_relative_change=0.0), "regression", challenger=mine, champion=None,
        naive=regression_metrics(y, naive), holdout=holdout,
    )  # fmt: skip
    assert decision.outcome == "rejected"


def test_the_paired_interval_matches_scipys_bootstrap_on_the_same_rows() -> None:
    # MAE of two models on the same 500 rows: our paired percentile interval of the relative
    # change against scipy.stats.bootstrap(paired=True) of the same statistic
    rng = np.random.default_rng(4)
    y = rng.normal(0, 1, 500)
    a = y + rng.normal(0, 1.0, 500)
    b = y + rng.normal(0, 0.9, 500)
    ours = compare(
        Sample.of_outputs("mae", list(a), list(y)),
        Sample.of_outputs("mae", list(b), list(y)),
        task="regression", classes=(), metric="mae", greater_is_better=False, paired=True,
        confidence=0.95, tolerance=0.0, rng=np.random.default_rng(0),
    )  # fmt: skip

    def relative(ea: np.ndarray, eb: np.ndarray, axis: int = -1) -> np.ndarray:
        return (np.mean(eb, axis=axis) - np.mean(ea, axis=axis)) / np.mean(ea, axis=axis)

    theirs = stats.bootstrap(
        (np.abs(a - y), np.abs(b - y)), relative, paired=True, method="percentile",
        n_resamples=4000, random_state=1, vectorized=True,
    ).confidence_interval  # fmt: skip
    assert ours.relative_change == pytest.approx(relative(np.abs(a - y), np.abs(b - y)))
    assert ours.ci_low == pytest.approx(theirs.low, abs=0.01)
    assert ours.ci_high == pytest.approx(theirs.high, abs=0.01)


def test_equal_models_pass_the_gate_rarely() -> None:
    # 200 uploads where the challenger is exactly as good: a false "better" at most at the
    # one-sided 2.5 % the 95 % interval implies (plus sampling slack)
    passed = 0
    for seed in range(200):
        y, champ, chal = predictions(300, 30_000, 30_000, seed=seed)
        passed += judged(regression_set("holdout", y, champ, chal)).passed
    assert passed / 200 <= 0.05


def test_a_challenger_identical_on_every_row_is_rejected_not_rolled_out() -> None:
    # A re-upload of the same bytes trains the same model: nothing for live labels to decide
    y, champ, _ = predictions(300, 30_000, 30_000)
    decision = judged(regression_set("holdout", y, champ, champ))
    assert decision.sets[0].verdict == "identical"
    assert decision.outcome == "rejected"


def test_the_interval_is_said_in_the_direction_it_lies() -> None:
    y, champ, chal = predictions(400, 40_000, 20_000)
    better = judged(regression_set("holdout", y, champ, chal)).sets[0].detail
    worse = judged(regression_set("holdout", y, chal, champ)).sets[0].detail
    assert re.search(r"interval \d+\.\d% to \d+\.\d% better;", better), better
    assert re.search(r"interval \d+\.\d% to \d+\.\d% worse;", worse), worse


def test_the_gate_draws_its_own_number_of_resamples() -> None:
    y, champ, chal = predictions(400, 40_000, 20_000)
    comparison = judged(regression_set("holdout", y, champ, chal)).sets[0].comparison
    assert comparison is not None
    assert comparison.resamples == GATE_RESAMPLES
