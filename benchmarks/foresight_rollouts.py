"""Rollout verdicts under hourly peeking: how often the always-valid sequential test
(``domain.rollout_sequential``) promotes a worse candidate or rolls back an equal or better
one when the verdict is evaluated after every hourly label batch for a week (168 looks), and
the old fixed-sample rule's rates under the same looks, in the same run.

    .venv/bin/python benchmarks/foresight_rollouts.py [--json] [--simulations N] [--hours H]

Each case simulates ``--simulations`` rollouts hour by hour, vectorised over rollouts: every
hour brings ``LABELS_PER_HOUR`` labeled predictions, split between the variants by the canary
share (a shadow labels every id for both); after each hour the verdict is computed on all
labels since the start, and the first verdict ends the rollout (as the evaluator does). A
verdict needs ``MIN_LABELS`` labels per variant (the ``min_labels`` default), and a step of a
ramp its own ``MIN_LABELS`` candidate labels since the step began. The statistic is the one
``sequential_test`` computes, from running sums (a unit test checks the two agree); the old
rule is the same quantity's fixed-sample 95 % interval (the normal form of the percentile
bootstrap the judge used: at these sizes the two intervals agree closely), looked at as often.

Cases (tolerance 5 %, confidence 95 %, so the nominal level is 5 %): regression RMSE with
normal and heavy-tailed (Student t, 5 degrees of freedom) errors, a 10 % canary; the same as
a shadow (paired, errors correlated 0.9); a stepped ramp 5 -> 25 -> 50 %; classification
accuracy (0.85) in a 10 % canary. Candidates: clearly better (RMSE -20 %), equal, at the
tolerance (+5 %: not worse than the tolerance, the hardest case for a false rollback),
slightly worse (+10 %) and clearly worse (+30 %); accuracy: +3 points, equal, -4 % and -10 %
relative.

A false promotion is a promotion of a candidate worse than the tolerance; a false rollback a
rollback of one within it. Targets: both at most the nominal 5 % in every case. --json prints
one object: ``measure``'s {"figures", "targets", "targets_met"} plus ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "core"))

from mlops.domain.rollout_sequential import TUNED_LABELS  # noqa: E402

CONFIDENCE = 0.95
TOLERANCE = 0.05
MIN_LABELS = 30
LABELS_PER_HOUR = 100
FIXED_Z = 1.959963984540054  # two-sided 95 %: the old rule's interval, looked at each hour


@dataclass(frozen=True)
class Case:
    name: str
    metric: str  # rmse | accuracy
    design: str  # canary | shadow
    shares: tuple[float, ...]  # canary share per step (one: no ramp)
    change: float  # relative change of the metric (RMSE: +0.1 = 10 % worse)
    noise: str = "normal"  # normal | t5

    @property
    def worse(self) -> bool:
        """Worse than the tolerance (a promotion is false)."""
        if self.metric == "rmse":
            return self.change > TOLERANCE
        return -self.change > TOLERANCE


def cases() -> list[Case]:
    out = []
    for change in (-0.2, 0.0, 0.05, 0.1, 0.3):
        tag = f"{change:+.0%}"
        out.append(Case(f"rmse canary 10% {tag}", "rmse", "canary", (0.1,), change))
        out.append(Case(f"rmse canary 10% t5 {tag}", "rmse", "canary", (0.1,), change, "t5"))
        out.append(Case(f"rmse shadow {tag}", "rmse", "shadow", (1.0,), change))
        out.append(Case(f"rmse ramp 5/25/50 {tag}", "rmse", "canary", (0.05, 0.25, 0.5), change))
    for change in (3 / 85, 0.0, -0.04, -0.1):
        tag = f"{change:+.0%}"
        out.append(Case(f"accuracy canary 10% {tag}", "accuracy", "canary", (0.1,), change))
    return out


def _errors(rng: np.random.Generator, noise: str, shape: tuple[int, ...]) -> np.ndarray:
    if noise == "t5":
        return rng.standard_t(5, size=shape) / math.sqrt(5 / 3)  # unit variance
    return rng.standard_normal(shape, dtype=np.float32)  # float32 draws: twice as fast


def _boundary(effective: np.ndarray, alpha: float) -> np.ndarray:
    """``rollout_sequential.z_boundary``, vectorised."""
    ratio = TUNED_LABELS / effective
    return np.sqrt((1 + ratio) * (2 * math.log(1 / alpha) + np.log1p(1 / ratio)))


class Sums:
    """Running sums of a batch of rollouts: each variant's label count, sum and sum of squares
    of its per-row values; paired, of the per-id difference too."""

    def __init__(self, n: int) -> None:
        self.n_c, self.n_p = np.zeros(n), np.zeros(n)
        self.s_c, self.s_p, self.q_c, self.q_p = (np.zeros(n) for _ in range(4))
        self.s_d, self.q_d = np.zeros(n), np.zeros(n)

    def add_pairs(self, phi_c: np.ndarray, phi_p: np.ndarray, a: float, b: float) -> None:
        d = a * phi_c - b * phi_p
        rows = phi_c.shape[1]
        self.n_c += rows
        self.n_p += rows
        self.s_d += d.sum(axis=1)
        self.q_d += (d**2).sum(axis=1)
        self.s_c += phi_c.sum(axis=1)
        self.s_p += phi_p.sum(axis=1)

    def add_split(self, values: np.ndarray, to_candidate: np.ndarray) -> np.ndarray:
        taken = to_candidate.sum(axis=1)
        self.n_c += taken
        self.n_p += values.shape[1] - taken
        self.s_c += np.where(to_candidate, values, 0).sum(axis=1)
        self.q_c += np.where(to_candidate, values**2, 0).sum(axis=1)
        self.s_p += np.where(to_candidate, 0, values).sum(axis=1)
        self.q_p += np.where(to_candidate, 0, values**2).sum(axis=1)
        return taken

    def statistic(self, paired: bool, a: float, b: float) -> tuple[np.ndarray, ...]:
        """``sequential_test``'s estimate, variance and one row's variance, from the sums."""
        with np.errstate(divide="ignore", invalid="ignore"):
            m_c, m_p = self.s_c / self.n_c, self.s_p / self.n_p
            if paired:
                estimate = self.s_d / self.n_c
                prior = (a * m_c) ** 2 + (b * m_p) ** 2
                unit = (self.q_d - self.n_c * estimate**2 + prior) / self.n_c
                return estimate, unit / self.n_c, unit
            estimate = a * m_c - b * m_p
            var_c = (self.q_c - self.n_c * m_c**2 + m_c**2) / self.n_c
            var_p = (self.q_p - self.n_p * m_p**2 + m_p**2) / self.n_p
            unit = a * a * var_c + b * b * var_p
            return estimate, a * a * var_c / self.n_c + b * b * var_p / self.n_p, unit


def coefficients(metric: str) -> tuple[float, float]:
    """``theta = a mean(phi_c) - b mean(phi_p)``, as ``sequential_test`` tests it."""
    if metric == "rmse":
        return 1.0, (1 + TOLERANCE) ** 2  # mse_c - (1 + tau)^2 mse_p
    return -1.0, -1.0 + TOLERANCE  # -acc_c + (1 - tau) acc_p


def _hour(case: Case, rng: np.random.Generator, sums: Sums, share: np.ndarray) -> np.ndarray:
    """One hour's labels into ``sums``; the candidate's labels per rollout."""
    n, rows = len(share), LABELS_PER_HOUR
    a, b = coefficients(case.metric)
    if case.design == "shadow":
        e_p = _errors(rng, case.noise, (n, rows))
        e_c = (1 + case.change) * (
            0.9 * e_p + math.sqrt(1 - 0.81) * _errors(rng, case.noise, (n, rows))
        )
        sums.add_pairs(e_c**2, e_p**2, a, b)
        return np.full(n, float(rows))
    to_candidate = rng.random((n, rows), dtype=np.float32) < share[:, None]
    if case.metric == "rmse":
        values = _errors(rng, case.noise, (n, rows)) ** 2
        values = np.where(to_candidate, values * (1 + case.change) ** 2, values)
    else:
        accuracy = np.where(to_candidate, 0.85 * (1 + case.change), 0.85)
        values = (rng.random((n, rows), dtype=np.float32) < accuracy).astype(np.float32)
    return sums.add_split(values, to_candidate).astype(np.float64)


def simulate(case: Case, simulations: int, hours: int, seed: int) -> dict[str, Any]:
    """First verdicts of ``simulations`` rollouts, for the sequential and the old rule (the
    same traffic for both)."""
    rng = np.random.default_rng(seed)
    alpha = 1 - CONFIDENCE
    a, b = coefficients(case.metric)
    n = simulations
    sums = Sums(n)
    step = np.zeros(n, dtype=np.int64)
    step_labels = np.zeros(n)
    shares = np.asarray(case.shares)
    verdicts = {rule: np.zeros(n, dtype=np.int8) for rule in ("sequential", "fixed")}
    decided_at = {rule: np.full(n, -1) for rule in verdicts}
    for hour in range(hours):
        step_labels += _hour(case, rng, sums, shares[step])
        estimate, variance, unit = sums.statistic(case.design == "shadow", a, b)
        enough = np.minimum(sums.n_c, sums.n_p) >= MIN_LABELS
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.sqrt(variance)
            radii = {
                "sequential": _boundary(unit / variance, alpha) * scale,
                "fixed": FIXED_Z * scale,
            }
        for rule, radius in radii.items():
            verdict = verdicts[rule]
            open_ = (verdict == 0) & enough
            worse = open_ & (estimate - radius > 0)
            fine = open_ & (estimate + radius <= 0)
            if rule == "sequential" and len(case.shares) > 1:
                fine &= step_labels >= MIN_LABELS  # each step its own labels
                up = fine & (step < len(case.shares) - 1)
                fine &= ~up
                step[up] += 1
                step_labels[up] = 0
            verdict[worse] = -1
            verdict[fine] = 1
            decided_at[rule][worse | fine] = hour + 1
    out: dict[str, Any] = {"worse_than_tolerance": case.worse}
    for rule, verdict in verdicts.items():
        decided = decided_at[rule] > 0
        promoted, rolled_back = float(np.mean(verdict == 1)), float(np.mean(verdict == -1))
        out[rule] = {
            "promoted": promoted,
            "rolled_back": rolled_back,
            "undecided": float(np.mean(verdict == 0)),
            "false_promotion": promoted if case.worse else 0.0,
            "false_rollback": 0.0 if case.worse else rolled_back,
            "median_hours_to_verdict": float(np.median(decided_at[rule][decided]))
            if decided.any()
            else None,
        }
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """{"figures", "targets", "targets_met"}: per case the sequential test's and the old
    rule's verdict rates under hourly looks, and the worst false rates over the cases."""
    figures: dict[str, Any] = {
        "simulations": args.simulations,
        "looks": args.hours,
        "labels_per_hour": LABELS_PER_HOUR,
        "confidence": CONFIDENCE,
        "tolerance": TOLERANCE,
        "min_labels": MIN_LABELS,
        "cases": {},
    }
    for i, case in enumerate(cases()):
        figures["cases"][case.name] = simulate(case, args.simulations, args.hours, args.seed + i)
    nominal = 1 - CONFIDENCE
    for rule in ("sequential", "fixed"):
        for kind in ("false_promotion", "false_rollback"):
            figures[f"{rule}_max_{kind}"] = max(c[rule][kind] for c in figures["cases"].values())
    figures["nominal"] = nominal
    targets = {
        "sequential_max_false_promotion": f"<= {nominal:g}",
        "sequential_max_false_rollback": f"<= {nominal:g}",
    }
    met = {
        "sequential_max_false_promotion": figures["sequential_max_false_promotion"] <= nominal,
        "sequential_max_false_rollback": figures["sequential_max_false_rollback"] <= nominal,
    }
    return {"figures": figures, "targets": targets, "targets_met": met}


def _table(result: dict[str, Any]) -> str:
    figures = result["figures"]
    lines = [
        f"{figures['simulations']:,} rollouts per case, verdict after each of {figures['looks']} "
        f"hourly label batches ({figures['labels_per_hour']} labels/h), tolerance "
        f"{figures['tolerance']:.0%}, confidence {figures['confidence']:.0%}",
        f"{'case':34} {'promoted':>9} {'rolled back':>12} {'undecided':>10} {'median h':>9}"
        f" | {'old: promoted':>13} {'rolled back':>12}",
    ]
    for name, case in figures["cases"].items():
        seq, old = case["sequential"], case["fixed"]
        hours = seq["median_hours_to_verdict"]
        lines.append(
            f"{name:34} {seq['promoted']:>9.1%} {seq['rolled_back']:>12.1%} "
            f"{seq['undecided']:>10.1%} {hours if hours is not None else '-':>9} | "
            f"{old['promoted']:>13.1%} {old['rolled_back']:>12.1%}"
        )
    for rule in ("sequential", "fixed"):
        lines.append(
            f"{rule}: worst false promotion {figures[f'{rule}_max_false_promotion']:.2%}, "
            f"worst false rollback {figures[f'{rule}_max_false_rollback']:.2%} "
            f"(nominal {figures['nominal']:.0%})"
        )
    lines.append(f"targets met: {result['targets_met']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--simulations", type=int, default=1500)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    result = measure(args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result) if args.json else _table(result) + f"\n{result['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
