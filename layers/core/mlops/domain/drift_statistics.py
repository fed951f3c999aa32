"""The two-sample statistics drift is judged with, on counts over shared bins or categories.

numpy and the standard library only: the drift evaluator ships numpy but not scipy, so every
statistic is written out here and checked against scipy on the same data in
``tests/unit/test_drift_statistics.py``. ``mlops.domain.feature_drift`` holds the rules that use
them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PSI_EPSILON = 1e-4  # an empty bin's share in PSI, as Evidently: log(0) would be infinite
CHI2_MIN_EXPECTED = 5.0  # Cochran's rule: sparser columns are pooled before a chi-square test
_KS_SERIES_TERMS = 100
_GAMMA_ITERATIONS = 100_000  # enough for 10^5 degrees of freedom; ~sqrt(dof) are typical
_GAMMA_EPSILON = 1e-15
_TAIL_POINTS = 513  # trapezoid points over an open end bin (error ~1e-6 of its mass * scale)
_TAIL_SPAN = 40.0  # scales after which an exponential tail holds under e**-40 of its mass


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` over bin shares.

    An empty bin's share is taken as ``PSI_EPSILON`` (1e-4, Evidently's choice) on either side,
    without renormalising, so a bin empty on both sides adds nothing. Raises ``ValueError`` when
    a side has no counts.
    """
    p = _shares(reference_counts)
    q = _shares(current_counts)
    p = np.where(p == 0.0, PSI_EPSILON, p)
    q = np.where(q == 0.0, PSI_EPSILON, q)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(p_counts: npt.ArrayLike, q_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]): the square root of the JS divergence of the
    two normalised count vectors, as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
    p = _shares(p_counts)
    q = _shares(q_counts)
    m = (p + q) / 2.0
    divergence = _relative_entropy(p, m) + _relative_entropy(q, m)
    return math.sqrt(max(divergence / (2.0 * math.log(2.0)), 0.0))


def wasserstein_binned(
    edges: npt.ArrayLike,
    ref_counts: npt.ArrayLike,
    cur_counts: npt.ArrayLike,
    ref_bounds: tuple[float, float],
    cur_bounds: tuple[float, float],
    *,
    means: tuple[float, float] | None = None,
) -> float:
    """W1 = ``integral |F_ref - F_cur|`` between two distributions binned on ``edges``
    (``len(edges) + 1`` open-ended bins), each side's CDF rebuilt from its counts.

    Interior bins: mass uniform within the bin, so both CDFs are linear between edges and each
    segment is integrated exactly (where the difference changes sign a segment contributes
    ``w (a² + b²) / (2 (|a| + |b|))``). Open end bins: each side's mass decays exponentially
    away from the edge, with the scale a density continuing that of its neighbouring bin would
    have (``tail count / neighbour count * neighbour width``), truncated at that side's own
    extreme (``ref_bounds``/``cur_bounds``: training and live min/max); these two short
    integrals are taken numerically. Uniform tails closed at the extremes were tried first and
    overestimated a 0.5-std shift by 0.12 std and a lognormal's scale change by up to 2 std,
    and one live outlier far out spread the whole tail's mass over its range. ``means`` (exact
    on both sides: the baseline's mean, the sketch's exact sum) give the bound
    ``W1 >= |mean_ref - mean_cur|``; the larger of the two is returned. In the feature's
    unit; the caller divides by the reference std. Raises ``ValueError`` on an empty side.
    """
    inner = np.asarray(edges, dtype=np.float64).reshape(-1)
    ref = _shares(ref_counts)
    cur = _shares(cur_counts)
    if ref.size != inner.size + 1 or cur.size != inner.size + 1:
        raise ValueError(f"{inner.size} edges need {inner.size + 1} counts per side")
    floor = abs(means[0] - means[1]) if means is not None else 0.0
    if inner.size == 0:  # one bin: nothing but the means to compare
        return floor
    interior = _interior_gap(inner, ref, cur)
    widths = np.diff(inner)
    low = _tail_gap(
        (ref[0], _density_near(ref[1:-1], widths), ref_bounds[0]),
        (cur[0], _density_near(cur[1:-1], widths), cur_bounds[0]),
        edge=inner[0],
        outwards=-1.0,
    )
    high = _tail_gap(
        (ref[-1], _density_near(ref[-2:0:-1], widths[::-1]), ref_bounds[1]),
        (cur[-1], _density_near(cur[-2:0:-1], widths[::-1]), cur_bounds[1]),
        edge=inner[-1],
        outwards=1.0,
    )
    return max(interior + low + high, floor)


def wasserstein_winsorised(
    edges: npt.ArrayLike, ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike
) -> float:
    """W1 between the two binned distributions winsorised at the outermost edges: every value
    under ``edges[0]`` counted at ``edges[0]``, every value from ``edges[-1]`` up at
    ``edges[-1]``, as ``scipy.stats.wasserstein_distance(np.clip(a, lo, hi), np.clip(b, lo,
    hi))``, the mass uniform within each interior bin (the interior part of
    ``wasserstein_binned``, integrated exactly).

    Robust where W1 is not: a value moved arbitrarily far adds at most ``(edges[-1] -
    edges[0]) / n`` to it, and how far past the edges a tail reaches does not count at all
    (whether the tail holds more or less mass does). 0 with fewer than two edges (no interior).
    In the feature's unit. Raises ``ValueError`` on an empty side.
    """
    inner = np.asarray(edges, dtype=np.float64).reshape(-1)
    ref = _shares(ref_counts)
    cur = _shares(cur_counts)
    if ref.size != inner.size + 1 or cur.size != inner.size + 1:
        raise ValueError(f"{inner.size} edges need {inner.size + 1} counts per side")
    return _interior_gap(inner, ref, cur) if inner.size >= 2 else 0.0


def _interior_gap(inner: FloatArray, ref: FloatArray, cur: FloatArray) -> float:
    """``integral |F_ref - F_cur|`` from the first edge to the last, both CDFs linear between
    edges; a segment where the difference changes sign contributes
    ``w (a² + b²) / (2 (|a| + |b|))``."""
    difference = np.cumsum(ref)[:-1] - np.cumsum(cur)[:-1]  # F_ref - F_cur at each edge
    a, b = difference[:-1], difference[1:]
    size = np.abs(a) + np.abs(b)
    crossing = np.divide(a * a + b * b, 2.0 * size, out=np.zeros_like(size), where=size > 0)
    return float(np.sum(np.diff(inner) * np.where(a * b >= 0.0, size / 2.0, crossing)))


def _density_near(shares: FloatArray, widths: FloatArray) -> float:
    """The density (share per unit) of the first non-empty interior bin, from a tail inwards;
    0 when every interior bin is empty."""
    filled = np.flatnonzero(shares > 0)
    if filled.size == 0:
        return 0.0
    first = int(filled[0])
    return float(shares[first] / widths[first])


def _tail_gap(
    ref: tuple[float, float, float],
    cur: tuple[float, float, float],
    *,
    edge: float,
    outwards: float,
) -> float:
    """``integral |P_ref(beyond u) - P_cur(beyond u)| du`` over an open end bin, u being the
    distance from its edge outwards; each side is (tail share, density of the nearest
    non-empty interior bin, the side's own extreme). A side's tail decays exponentially with
    the scale at which it starts at that density (uniform when there is none)."""
    sides = []
    for tail, density, extreme in (ref, cur):
        length = max((extreme - edge) * outwards, 0.0)
        scale = tail / density if density > 0 else math.inf
        sides.append((tail, length, scale))
    reach = max(
        min(length, _TAIL_SPAN * scale) if tail > 0 else 0.0 for tail, length, scale in sides
    )
    if reach <= 0.0:
        return 0.0
    u = np.linspace(0.0, reach, _TAIL_POINTS)
    u = np.union1d(u, [min(length, reach) for _, length, _ in sides])
    beyond = [_share_beyond(u, *side) for side in sides]
    gap = np.abs(beyond[0] - beyond[1])
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(u)) / 2.0)


def _share_beyond(u: FloatArray, tail: float, length: float, scale: float) -> FloatArray:
    """The share beyond ``u`` of a tail of ``tail`` mass with density ∝ exp(-u/scale) on
    [0, length] (uniform for an infinite scale)."""
    if tail <= 0.0 or length <= 0.0:
        return np.zeros_like(u)
    inside = np.minimum(u, length)
    if math.isinf(scale) or length / scale < 1e-9:
        return tail * (1.0 - inside / length)
    ratio = length / scale
    if ratio > _TAIL_SPAN:  # truncation beyond any float64 effect
        return tail * np.exp(-inside / scale)
    return tail * (np.exp(-inside / scale) - math.exp(-ratio)) / -math.expm1(-ratio)


def ks_binned(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """The KS statistic of two binned samples: ``max |F_ref - F_cur|`` at the bin edges, where
    both CDFs are known exactly. A lower bound of the raw samples' statistic (the supremum may
    fall inside a bin), so a test on it is conservative; exact for data with values on the
    edges only (a discrete feature)."""
    ref = np.cumsum(_shares(reference_counts))[:-1]
    cur = np.cumsum(_shares(current_counts))[:-1]
    return float(np.max(np.abs(ref - cur))) if ref.size else 0.0


def kolmogorov_pvalue(statistic: float, n: float) -> float:
    """P(D_n >= statistic) from the Kolmogorov distribution at ``(√n + 0.12 + 0.11/√n) D``
    (Stephens 1970, as Numerical Recipes' ``probks``).

    Against scipy's exact distribution (``kstwo``) it is within 1e-3 where the p-value is
    between 0.005 and 0.1 (where a decision at 0.05 is made) for every n >= 35, and within
    5e-3 for any p-value under 0.2; above that, where nothing is decided, it can be off by up to
    0.02 at n = 35. For a two-sample test pass the effective size ``n m / (n + m)``.
    """
    if statistic <= 0.0:
        return 1.0
    root = math.sqrt(n)
    x = (root + 0.12 + 0.11 / root) * statistic
    if x < 1.18:  # the theta-function form converges fast for small x
        k = np.arange(1, _KS_SERIES_TERMS + 1, dtype=np.float64)
        cdf = (
            math.sqrt(2.0 * math.pi)
            / x
            * np.sum(np.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x)))
        )
        return float(min(max(1.0 - cdf, 0.0), 1.0))
    k = np.arange(1, _KS_SERIES_TERMS + 1, dtype=np.float64)
    signs = np.where(k % 2 == 1, 1.0, -1.0)
    tail = 2.0 * np.sum(signs * np.exp(-2.0 * k * k * x * x))
    return float(min(max(tail, 0.0), 1.0))


def chi_square_test(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, int, float]:
    """Pearson's chi-square test that two count vectors over the same bins or categories come
    from one distribution (homogeneity of a 2 x k table): ``(statistic, degrees of freedom,
    p-value)``, as ``scipy.stats.chi2_contingency(table, correction=False)``.

    Columns empty on both sides are dropped. So that the chi-square law holds (Cochran: every
    expected count at least ``CHI2_MIN_EXPECTED``), columns too sparse for it are pooled into
    one, and that pool joins the smallest other column if it is still too sparse. ``(0, 0,
    1)`` when fewer than two columns remain. Raises ``ValueError`` when a side has no counts.
    """
    ref = np.asarray(reference_counts, dtype=np.float64).reshape(-1)
    cur = np.asarray(current_counts, dtype=np.float64).reshape(-1)
    if ref.size != cur.size:
        raise ValueError(f"{ref.size} reference counts for {cur.size} current counts")
    n_ref, n_cur = float(ref.sum()), float(cur.sum())
    if not (n_ref > 0.0 and n_cur > 0.0):
        raise ValueError("a chi-square test needs counts on both sides")
    total = n_ref + n_cur
    present = (ref + cur) > 0
    ref, cur = _pool_sparse(
        ref[present], cur[present], CHI2_MIN_EXPECTED * total / min(n_ref, n_cur)
    )
    if ref.size < 2:
        return 0.0, 0, 1.0
    column = ref + cur
    statistic = 0.0
    for observed, rows in ((ref, n_ref), (cur, n_cur)):
        expected = column * rows / total
        statistic += float(np.sum((observed - expected) ** 2 / expected))
    dof = int(ref.size - 1)
    return statistic, dof, chi2_sf(statistic, dof)


def _pool_sparse(ref: FloatArray, cur: FloatArray, floor: float) -> tuple[FloatArray, FloatArray]:
    """Columns whose total is under ``floor`` (an expected count under the minimum on the
    smaller side) pooled into one; the pool joins the smallest other column when it is
    under ``floor`` too."""
    sparse = (ref + cur) < floor
    if not sparse.any():
        return ref, cur
    pool = np.array([ref[sparse].sum(), cur[sparse].sum()])
    ref, cur = ref[~sparse].copy(), cur[~sparse].copy()
    if pool.sum() >= floor or ref.size == 0:
        return np.append(ref, pool[0]), np.append(cur, pool[1])
    smallest = int(np.argmin(ref + cur))
    ref[smallest] += pool[0]
    cur[smallest] += pool[1]
    return ref, cur


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X chi-square with ``dof`` degrees of freedom, as
    ``scipy.stats.chi2.sf``: the regularised upper incomplete gamma function
    ``Q(dof / 2, statistic / 2)``."""
    if dof < 1:
        raise ValueError("a chi-square law needs at least one degree of freedom")
    if statistic <= 0.0:
        return 1.0
    return _gamma_q(dof / 2.0, statistic / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """``Q(a, x) = Γ(a, x) / Γ(a)`` for ``a, x > 0``: one minus the series of ``P(a, x)``
    where ``x < a + 1``, else the continued fraction of ``Q`` by the modified Lentz method
    (Numerical Recipes, ``gammq``); both converge in about ``√a`` terms."""
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(_GAMMA_ITERATIONS):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _GAMMA_EPSILON:
                break
        return min(max(1.0 - total * math.exp(log_front), 0.0), 1.0)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, _GAMMA_ITERATIONS):
        step = -i * (i - a)
        b += 2.0
        d = step * d + b
        d = tiny if abs(d) < tiny else d
        c = b + step / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        fraction *= d * c
        if abs(d * c - 1.0) < _GAMMA_EPSILON:
            break
    return min(max(math.exp(log_front) * fraction, 0.0), 1.0)


def _shares(counts: npt.ArrayLike) -> FloatArray:
    array = np.asarray(counts, dtype=np.float64).reshape(-1)
    total = float(array.sum())
    if not total > 0.0:
        raise ValueError("a distribution needs at least one count")
    return array / total


def _relative_entropy(p: FloatArray, m: FloatArray) -> float:
    """``sum p ln(p / m)`` over p > 0 (m > 0 wherever p > 0), natural log."""
    present = p > 0.0
    return float(np.sum(p[present] * np.log(p[present] / m[present])))
