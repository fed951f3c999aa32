"""An always-valid verdict on live quality: a confidence sequence that may be looked at after
every label batch without raising its error rate (Johari et al., "Always valid inference",
2017/2022; Howard et al., "Time-uniform, nonparametric, nonasymptotic confidence sequences",
2021: the normal-mixture boundary).

What is tested. The rollout rolls back a candidate whose metric is worse than production's
by more than the tolerance ``tau`` (relative) and promotes one shown within it. In the
metric's bad direction that is the sign of

    theta = s * (g_c - g_p) - tau * |g_p|            (s = +1 lower-is-better, -1 greater)

with ``g`` the metric on each variant's labeled rows. RMSE is tested as the mean squared
error, ``theta = mse_c - (1 + tau)^2 mse_p`` (the same hypothesis, exactly linear). Every
other metric except ROC-AUC is a smooth function of means of per-row values
(``comparison.metric_rows``: errors, correct answers, log losses, macro F1's per-class
indicators, R²'s moments), so ``theta`` is, to first order, the mean of per-row
*pseudo-values* ``g(m) + grad g(m) . (x_i - m)`` (the delta method; for a plain mean the
values themselves): ``theta_hat = a * mean(phi_c) - b * mean(phi_p)``.

Its variance ``V``: paired (a shadow: both variants on the same prediction ids) the variance
of the per-id difference over ``n``; independent (a canary) ``a^2 s_c^2 / n_c + b^2 s_p^2 /
n_p``. Each variance holds one pseudo-row at the variant's own scale (its mean value), so a
small perfect sample is not certainty. The normal mixture (mixing variance ``gamma^2``) gives
the radius

    r = sqrt(V (1 + V / gamma^2) (2 log(1/alpha) + log(1 + gamma^2 / V)))

and ``P(exists t: |theta_hat_t - theta| >= r_t) <= alpha`` for Gaussian increments
(Ville's inequality on the mixture martingale); with estimated variances it holds
asymptotically (Waudby-Smith et al., "Time-uniform central limit theory", 2024), which
``benchmarks/foresight_rollouts.py`` measures at the sizes a rollout sees. It holds for the
independent design whatever the two sample sizes do over time (a canary that steps from 5 %
to 25 %): ``(theta_hat - theta) / V`` has independent increments in the information ``1/V``
for any sampling path fixed in advance. ``gamma^2`` is set so the boundary is tightest near
``TUNED_LABELS`` effective labels: ``gamma^2 = sigma^2 / TUNED_LABELS`` with ``sigma^2`` the
variance of one (pair of) row(s).

Verdict: ``worse`` when the whole interval is above 0 (``theta_hat - r > 0``), ``not_worse``
when it is at or below 0 (``theta_hat + r <= 0``), else ``undecided``. numpy only and pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.comparison import Sample, finite_or_none, metric_rows, metric_statistic

FloatArray = npt.NDArray[np.float64]

TUNED_LABELS = 100  # the boundary is tightest near this many effective labels
MIN_LABELS = 2  # per variant: a variance needs two rows
WORSE, NOT_WORSE, UNDECIDED, UNAVAILABLE = "worse", "not_worse", "undecided", "unavailable"
PLAIN_MEANS = frozenset({"mae", "mape", "accuracy", "log_loss"})
_STEP = 1e-6  # relative step of the numerical gradient (pseudo-values)


@dataclass(frozen=True)
class SequentialTest:
    """The always-valid test of ``theta`` (see the module): its estimate and the interval's
    radius in the tested quantity's units, the same as ``z = estimate / sqrt(V)`` against
    ``boundary = radius / sqrt(V)``, and the verdict."""

    metric: str
    paired: bool
    verdict: str  # worse | not_worse | undecided | unavailable
    quantity: str  # what theta is, in words
    estimate: float | None
    radius: float | None
    z: float | None
    boundary: float | None
    confidence: float
    production_labels: int
    candidate_labels: int
    effective_labels: float | None
    detail: str

    @property
    def interval(self) -> tuple[float | None, float | None]:
        if self.estimate is None or self.radius is None:
            return None, None
        return self.estimate - self.radius, self.estimate + self.radius

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "method": "normal-mixture confidence sequence (always valid under repeated looks)",
            "metric": self.metric,
            "paired": self.paired,
            "verdict": self.verdict,
            "quantity": self.quantity,
            "estimate": finite_or_none(self.estimate),
            "radius": finite_or_none(self.radius),
            "interval": [finite_or_none(low), finite_or_none(high)],
            "z": finite_or_none(self.z),
            "boundary": finite_or_none(self.boundary),
            "confidence": self.confidence,
            "labels": {"production": self.production_labels, "candidate": self.candidate_labels},
            "effective_labels": finite_or_none(self.effective_labels),
            "tuned_labels": TUNED_LABELS,
            "detail": self.detail,
        }


def z_boundary(effective_labels: float, alpha: float, tuned: float = TUNED_LABELS) -> float:
    """The normal-mixture boundary on ``z = theta_hat / sqrt(V)`` at ``effective_labels``
    (``V / gamma^2 = tuned / effective_labels``)."""
    ratio = tuned / effective_labels
    return math.sqrt((1.0 + ratio) * (2.0 * math.log(1.0 / alpha) + math.log1p(1.0 / ratio)))


def sequential_test(
    production: Sample,
    candidate: Sample,
    *,
    task: str,
    metric: str,
    greater_is_better: bool,
    paired: bool,
    confidence: float,
    tolerance: float,
) -> SequentialTest:
    """The always-valid verdict on the labeled samples (paired: the same ids in the same
    order, as ``rollout_statistics.pair`` gives them)."""
    n_prod, n_cand = len(production.ids), len(candidate.ids)
    empty = SequentialTest(
        metric=metric,
        paired=paired,
        verdict=UNAVAILABLE,
        quantity="",
        estimate=None,
        radius=None,
        z=None,
        boundary=None,
        confidence=confidence,
        production_labels=n_prod,
        candidate_labels=n_cand,
        effective_labels=None,
        detail="",
    )
    if metric == "roc_auc":
        return _with(empty, detail="ROC-AUC is a rank statistic: no sequential test")
    if min(n_prod, n_cand) < MIN_LABELS:
        return _with(empty, verdict=UNDECIDED, detail="fewer than 2 labels on one side")
    linear = _linearised(
        production,
        candidate,
        task=task,
        metric=metric,
        greater_is_better=greater_is_better,
        tolerance=tolerance,
    )
    if isinstance(linear, str):
        return _with(empty, detail=linear)
    a, b, phi_p, phi_c, quantity = linear
    if paired:
        diff = a * phi_c - b * phi_p
        estimate = float(diff.mean())
        prior = (a * phi_c.mean()) ** 2 + (b * phi_p.mean()) ** 2
        unit = (float(np.sum((diff - estimate) ** 2)) + prior) / n_cand
        variance = unit / n_cand
    else:
        estimate = float(a * phi_c.mean() - b * phi_p.mean())
        var_c = (float(np.sum((phi_c - phi_c.mean()) ** 2)) + phi_c.mean() ** 2) / n_cand
        var_p = (float(np.sum((phi_p - phi_p.mean()) ** 2)) + phi_p.mean() ** 2) / n_prod
        unit = a * a * var_c + b * b * var_p
        variance = a * a * var_c / n_cand + b * b * var_p / n_prod
    if not (math.isfinite(estimate) and math.isfinite(variance)):
        return _with(empty, quantity=quantity, detail="non-finite values in the sample")
    alpha = 1.0 - confidence
    if variance <= 0.0:  # every row identical on both sides (the prior is 0 only for zeros)
        effective, boundary, radius, z = math.inf, 0.0, 0.0, math.copysign(math.inf, estimate)
        if estimate == 0:
            z = 0.0
    else:
        effective = unit / variance
        boundary = z_boundary(effective, alpha)
        scale = math.sqrt(variance)
        radius, z = boundary * scale, estimate / scale
    return _with(
        empty,
        verdict=classify(estimate, radius),
        quantity=quantity,
        estimate=estimate,
        radius=radius,
        z=z,
        boundary=boundary,
        effective_labels=effective,
    )


def classify(estimate: float, radius: float) -> str:
    """``worse`` when the interval lies wholly above 0, ``not_worse`` when wholly at or below
    it, else ``undecided`` (as the bootstrap rule: a breach strictly past the tolerance, a
    pass at it)."""
    if estimate - radius > 0:
        return WORSE
    if estimate + radius <= 0:
        return NOT_WORSE
    return UNDECIDED


def _linearised(
    production: Sample,
    candidate: Sample,
    *,
    task: str,
    metric: str,
    greater_is_better: bool,
    tolerance: float,
) -> tuple[float, float, FloatArray, FloatArray, str] | str:
    """``(a, b, phi_p, phi_c, quantity)`` with ``theta_hat = a mean(phi_c) - b mean(phi_p)``,
    or why the metric is not measurable on this sample."""
    prod_values = metric_rows(task, metric, production)
    cand_values = metric_rows(task, metric, candidate)
    if metric == "rmse":  # RMSE within (1 + tau) <=> MSE within (1 + tau)^2: exactly linear
        b = (1.0 + tolerance) ** 2
        return (
            1.0,
            b,
            prod_values[:, 0],
            cand_values[:, 0],
            f"candidate MSE - {b:.4g} x production MSE",
        )
    if metric in PLAIN_MEANS:  # the metric is the mean of the per-row values
        phi_p, phi_c = prod_values[:, 0], cand_values[:, 0]
        g_p, g_c = float(phi_p.mean()), float(phi_c.mean())
    else:  # r2, f1_macro: the delta method's pseudo-values
        statistic = metric_statistic(metric)
        phi_p, g_p = _pseudo_values(statistic, prod_values)
        phi_c, g_c = _pseudo_values(statistic, cand_values)
    if not (math.isfinite(g_p) and math.isfinite(g_c)):
        return f"{metric} undefined on this sample"
    sign = -1.0 if greater_is_better else 1.0
    b = sign + tolerance * (1.0 if g_p >= 0 else -1.0)
    quantity = (
        f"{'-' if greater_is_better else ''}candidate {metric} - ({b:+.4g}) x production {metric}"
    )
    return sign, b, phi_p, phi_c, quantity


def _pseudo_values(
    statistic: Callable[[FloatArray], FloatArray], values: FloatArray
) -> tuple[FloatArray, float]:
    """Per-row ``g(m) + grad g(m) . (x_i - m)`` (their mean is ``g(m)``) and ``g(m)``; the
    gradient by central differences (plain means: the values themselves)."""
    means = values.mean(axis=0)
    value = float(statistic(means[None, :])[0])
    width = means.shape[0]
    steps = _STEP * np.maximum(np.abs(means), 1.0)
    shifted = np.repeat(means[None, :], 2 * width, axis=0)
    shifted[np.arange(width), np.arange(width)] += steps
    shifted[width + np.arange(width), np.arange(width)] -= steps
    ends = statistic(shifted)
    gradient = (ends[:width] - ends[width:]) / (2 * steps)
    phi: FloatArray = value + (values - means) @ gradient
    return phi, value


def _with(test: SequentialTest, **changes: Any) -> SequentialTest:
    return replace(test, **changes)


def describe(test: SequentialTest) -> str:
    """The statistic against its boundary, for reports (the verdict is the caller's to say)."""
    if test.z is None or test.boundary is None:
        return f"sequential test {test.verdict}: {test.detail}"
    return (
        f"sequential z = {test.z:+.2f} against the boundary ±{test.boundary:.2f} "
        f"(always valid at {test.confidence:.0%})"
    )
