"""Mann-Whitney U test, Hodges-Lehmann shift and its order-statistic confidence bounds.

The U test follows R's ``wilcox.test`` (two samples): exact p-values from the null
distribution of U when both samples are smaller than 50 and untied, otherwise the normal
approximation with tie-corrected variance and continuity correction. The Hodges-Lehmann
estimate is the median of the ``n * m`` pairwise differences ``canary_j - baseline_i``;
its bounds are order statistics of those differences (Bauer 1972). The differences are
never materialised: order statistics are selected from the implicit sorted matrix by
randomised bracketing with counting (Monahan 1984), in ``O((n + m) log(n + m))``
expected time and ``O(n + m)`` memory.

Throughout, ``baseline`` has ``n`` values and ``canary`` has ``m``; ``canary`` plays the
role of R's ``x`` (the first argument of ``wilcox.test``), so "greater" means the canary
is stochastically larger than the baseline.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

Alternative = Literal["two-sided", "greater", "less"]
Method = Literal["auto", "exact", "asymptotic"]

_ALTERNATIVES = ("two-sided", "greater", "less")
_METHODS = ("auto", "exact", "asymptotic")
#: R's wilcox.test uses the exact distribution below this many values per sample.
EXACT_LIMIT = 50

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class MannWhitneyResult:
    """Result of :func:`mann_whitney_u`.

    ``u_canary`` counts the pairs with ``canary_j - shift > baseline_i`` plus half the
    tied pairs (R's ``W`` statistic of ``wilcox.test(canary, baseline, mu = shift)``);
    ``u_baseline = n_baseline * n_canary - u_canary``. ``z`` is the normal score of the
    asymptotic test (NaN for the exact test).
    """

    u_canary: float
    u_baseline: float
    p_value: float
    z: float
    method: str
    alternative: str
    n_baseline: int
    n_canary: int


@dataclass(frozen=True, slots=True)
class HodgesLehmannResult:
    """Result of :func:`hodges_lehmann`.

    ``lower`` is a one-sided lower confidence bound at confidence ``1 - alpha_lower``,
    ``upper`` a one-sided upper bound at ``1 - alpha_upper``, both for the shift
    ``canary - baseline``.
    """

    estimate: float
    lower: float
    upper: float
    alpha_lower: float
    alpha_upper: float
    method: str


# --------------------------------------------------------------------------- validation


def _sample(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got {array.ndim} dimensions")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite values")
    return array


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        options = ", ".join(repr(option) for option in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def _alpha(value: float, name: str) -> float:
    alpha = float(value)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return alpha


# ------------------------------------------------------------------ exact distribution


@functools.lru_cache(maxsize=256)
def _u_cdf(n1: int, n2: int) -> FloatArray:
    """``P(U <= u)`` for ``u = 0 .. n1 * n2`` under H0, with ``n1 <= n2``.

    The counts are the coefficients of the Gaussian binomial coefficient
    ``prod_{i=1..n1} (1 - q^(n2 + i)) / (1 - q^i)`` (Mann and Whitney 1947), computed in
    exact integer arithmetic, so tail probabilities are correctly rounded.
    """
    degree = n1 * n2
    coef = np.zeros(degree + 1, dtype=object)
    coef[:] = 0
    coef[0] = 1
    for i in range(1, n1 + 1):
        step = n2 + i
        if step <= degree:
            coef[step:] = coef[step:] - coef[: degree + 1 - step]
        # Divide by (1 - q^i): b[k] = a[k] + b[k - i], a cumulative sum along stride i.
        rows = -(-(degree + 1) // i)
        padded = np.zeros(rows * i, dtype=object)
        padded[:] = 0
        padded[: degree + 1] = coef
        coef = np.cumsum(padded.reshape(rows, i), axis=0).ravel()[: degree + 1]
    cumulative = np.cumsum(coef)
    total = cumulative[-1]
    return np.array([count / total for count in cumulative], dtype=float)


def _exact_p(u: float, n1: int, n2: int, alternative: str) -> float:
    lo, hi = (n1, n2) if n1 <= n2 else (n2, n1)
    cdf = _u_cdf(lo, hi)
    k = round(u)
    nm = n1 * n2
    lower = float(cdf[k])  # P(U <= u)
    upper = float(cdf[nm - k])  # P(U >= u), by the symmetry of U
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2.0 * min(lower, upper))


def _qwilcox(alpha: float, n1: int, n2: int) -> int:
    """Smallest ``q`` with ``P(U <= q) >= alpha``, as R's ``qwilcox`` (for alpha <= 0.5)."""
    lo, hi = (n1, n2) if n1 <= n2 else (n2, n1)
    cdf = _u_cdf(lo, hi)
    # R's qwilcox compares against x - 10 * DBL_EPSILON to absorb rounding in its sums.
    target = alpha - 10.0 * np.finfo(float).eps if alpha <= 0.5 else alpha
    return int(np.searchsorted(cdf, target, side="left"))


# ------------------------------------------------------------------------------ U test


def _tie_term(sorted_pooled: FloatArray) -> float:
    """``sum(t^3 - t)`` over the tie groups of a sorted sample."""
    change = sorted_pooled[1:] != sorted_pooled[:-1]
    if change.all():
        return 0.0
    edges = np.flatnonzero(np.concatenate(([True], change, [True])))
    sizes = np.diff(edges).astype(float)
    return float(np.sum(sizes**3 - sizes))


def _sigma_u(n1: int, n2: int, tie_term: float) -> float:
    total = n1 + n2
    variance = n1 * n2 / 12.0 * ((total + 1) - tie_term / (total * (total - 1)))
    return math.sqrt(max(variance, 0.0))


def mann_whitney_u(
    *,
    baseline: ArrayLike,
    canary: ArrayLike,
    alternative: Alternative = "two-sided",
    shift: float = 0.0,
    method: Method = "auto",
    correct: bool = True,
) -> MannWhitneyResult:
    """Mann-Whitney U (Wilcoxon rank-sum) test of canary against baseline.

    H0: ``canary - shift`` and ``baseline`` have the same distribution. With
    ``alternative="greater"`` the alternative is that ``canary - shift`` is
    stochastically larger than ``baseline``; ``"less"`` the opposite; ``"two-sided"``
    either. The result equals R's ``wilcox.test(canary, baseline, mu = shift,
    alternative = ..., exact = ..., correct = correct)``.

    Parameters
    ----------
    baseline : array_like of float
        The baseline sample (``n`` finite values).
    canary : array_like of float
        The canary sample (``m`` finite values).
    alternative : {"two-sided", "greater", "less"}
        The alternative hypothesis.
    shift : float
        Location shift under H0, subtracted from the canary (R's ``mu``).
    method : {"auto", "exact", "asymptotic"}
        ``"auto"`` uses the exact null distribution when ``n < 50`` and ``m < 50`` and
        there are no ties in the pooled sample after the shift, otherwise the normal
        approximation (R's rule). ``"exact"`` asks for the exact distribution, but as in
        R it falls back to the normal approximation when there are ties (the reported
        ``method`` says which was used). The exact distribution costs
        ``O(min(n, m) * n * m)`` big-integer operations; it is cached per ``(n, m)``.
    correct : bool
        Continuity correction of the normal approximation (0.5 towards the null, with
        ``sign(z) * 0.5`` for the two-sided test), as R's ``correct = TRUE``.

    Returns
    -------
    MannWhitneyResult
        U of both sides, the p-value, the normal score (NaN when exact) and the method.

    References
    ----------
    H. B. Mann and D. R. Whitney, "On a test of whether one of two random variables is
    stochastically larger than the other", Annals of Mathematical Statistics 18(1), 1947.
    E. L. Lehmann, Nonparametrics: Statistical Methods Based on Ranks, Holden-Day, 1975.
    R Core Team, ``wilcox.test`` and ``pwilcox`` documentation, R package stats.
    """
    x = _sample(baseline, "baseline")
    y = _sample(canary, "canary")
    _choice(alternative, "alternative", _ALTERNATIVES)
    _choice(method, "method", _METHODS)
    shift = float(shift)
    if not math.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift!r}")
    if shift != 0.0:
        y = y - shift
        if not np.isfinite(y).all():
            raise ValueError("canary - shift must hold finite values")
    n = int(x.size)
    m = int(y.size)
    xs = np.sort(x)
    ys = np.sort(y)
    pooled = np.sort(np.concatenate((xs, ys)), kind="stable")
    ties = _tie_term(pooled)
    if ties == 0.0:
        u_canary = float(np.searchsorted(xs, ys, side="left").sum())
    else:
        below = np.searchsorted(xs, ys, side="left")
        at_or_below = np.searchsorted(xs, ys, side="right")
        u_canary = float(below.sum()) + 0.5 * float((at_or_below - below).sum())
    nm = n * m
    use_exact = method != "asymptotic" and ties == 0.0
    if method == "auto":
        use_exact = use_exact and n < EXACT_LIMIT and m < EXACT_LIMIT
    if use_exact:
        p = _exact_p(u_canary, m, n, alternative)
        return MannWhitneyResult(u_canary, nm - u_canary, p, math.nan, "exact", alternative, n, m)
    centred = u_canary - nm / 2.0
    sigma = _sigma_u(n, m, ties)
    correction = 0.0
    if correct:
        if alternative == "two-sided":
            correction = math.copysign(0.5, centred) if centred != 0.0 else 0.0
        else:
            correction = 0.5 if alternative == "greater" else -0.5
    # Every value tied (sigma 0): R gives NaN; here z = 0, no evidence either way.
    z = (centred - correction) / sigma if sigma > 0.0 else 0.0
    if alternative == "greater":
        p = float(ndtr(-z))
    elif alternative == "less":
        p = float(ndtr(z))
    else:
        p = min(1.0, 2.0 * float(ndtr(-abs(z))))
    return MannWhitneyResult(u_canary, nm - u_canary, p, z, "asymptotic", alternative, n, m)


def common_language_effect_size(*, baseline: ArrayLike, canary: ArrayLike) -> float:
    """``P(canary > baseline) + 0.5 * P(canary == baseline)`` over all pairs.

    Parameters
    ----------
    baseline : array_like of float
        The baseline sample.
    canary : array_like of float
        The canary sample.

    Returns
    -------
    float
        ``u_canary / (n * m)`` in [0, 1]; 0.5 means no tendency either way.

    References
    ----------
    K. O. McGraw and S. P. Wong, "A common language effect size statistic",
    Psychological Bulletin 111(2), 1992.
    """
    x = np.sort(_sample(baseline, "baseline"))
    y = _sample(canary, "canary")
    below = np.searchsorted(x, y, side="left")
    at_or_below = np.searchsorted(x, y, side="right")
    u = float(below.sum()) + 0.5 * float((at_or_below - below).sum())
    return u / (x.size * y.size)


# ------------------------------------------------------- selection among the differences

#: Fixed seed of the sampling in the selection; the result never depends on it.
_SEED = 20240229
#: Pivots are counted in chunks of at most this many (pivot, row) keys.
_CHUNK = 1 << 20
#: Round-one samples up to this size are cached per shape (drawing them costs more than
#: using them at small sizes).
_CACHED_SAMPLE = 1 << 16
#: Relative slack of a key ``t - c[j]``: four machine epsilons of ``|t| + |c[j]|`` exceed
#: the rounding of the key, of the slack itself, and of ``c[j] + a[i]``.
_SLACK = 4.0 * float(np.finfo(float).eps)
_TINY = float(np.finfo(float).tiny)


def _pair_sample(n: int, m: int, size: int) -> tuple[IntArray, IntArray]:
    """Uniform random cells (baseline index, canary index), reproducible per shape."""
    if size <= _CACHED_SAMPLE:
        return _cached_pair_sample(n, m, size)
    return _draw_pairs(n, m, size)


def _draw_pairs(n: int, m: int, size: int) -> tuple[IntArray, IntArray]:
    flat = np.random.default_rng(_SEED).integers(0, n * m, size=size)
    rows = flat // n
    return flat - rows * n, rows


@functools.lru_cache(maxsize=32)
def _cached_pair_sample(n: int, m: int, size: int) -> tuple[IntArray, IntArray]:
    cols, rows = _draw_pairs(n, m, size)
    cols.flags.writeable = False
    rows.flags.writeable = False
    return cols, rows


@dataclass(frozen=True, slots=True, eq=False)
class _Count:
    """Per-row counts of the cells ``<= pivot``: ``low <= exact <= high`` row by row."""

    pivot: float
    low: IntArray
    high: IntArray
    low_total: int
    high_total: int


class _Matrix:
    """The implicit ``m x n`` matrix ``d[j, i] = c[j] + a[i]``, sorted along rows and columns.

    ``a`` is ``sort(-baseline)`` (ascending) and ``c`` is the canary sorted descending, so
    ``c[j] + a[i]`` is bit for bit the floating-point difference ``canary_j - baseline_i``.
    """

    __slots__ = ("a", "c", "m", "n", "ramp", "slack")

    def __init__(self, a: FloatArray, c: FloatArray) -> None:
        self.a = a
        self.c = c
        self.n = int(a.size)
        self.m = int(c.size)
        self.ramp = np.arange(1, self.n + 1, dtype=float)
        self.slack = np.abs(c) * _SLACK + _TINY

    def count(self, pivots: FloatArray) -> Iterator[_Count]:
        """Bracketing per-row counts of the cells ``<= t`` for each pivot ``t``.

        The count of row ``j`` is ``#{i : a[i] <= t - c[j]}`` up to rounding. Evaluating the
        key ``t - c[j]`` lowered and raised by a slack that exceeds every rounding error
        gives counts that are certainly at most and at least the exact one. Linear
        interpolation over the sorted ``a`` at sorted keys is a merge, cheaper than a binary
        search per key; its floor is the count, or one more when it rounded up to an integer.
        """
        per_chunk = max(1, _CHUNK // self.m)
        top = float(self.n)
        for start in range(0, pivots.size, per_chunk):
            chunk = pivots[start : start + per_chunk]
            keys = chunk[:, None] - self.c[None, :]
            slack = self.slack[None, :] + (np.abs(chunk) * _SLACK)[:, None]
            low = np.interp(keys - slack, self.a, self.ramp, left=0.0, right=top)
            high = np.interp(keys + slack, self.a, self.ramp, left=0.0, right=top)
            # ceil - 1 is the floor except at an integer, where rounding may have reached it.
            lows = np.maximum(np.ceil(low).astype(np.int64) - 1, 0).reshape(chunk.size, self.m)
            highs = high.astype(np.int64).reshape(chunk.size, self.m)
            low_totals = lows.sum(axis=1).tolist()
            high_totals = highs.sum(axis=1).tolist()
            del keys, slack, low, high
            for row, pivot in enumerate(chunk.tolist()):
                # Yielded one by one, so that the counts no bracket keeps are freed early.
                yield _Count(pivot, lows[row], highs[row], low_totals[row], high_totals[row])

    def exact(self, count: _Count) -> _Count:
        """The exact count of ``count.pivot``, by binary search in the rows where it is open."""
        pivot = count.pivot
        open_rows = np.flatnonzero(count.low != count.high)
        if open_rows.size == 0:
            return count
        lo = count.low[open_rows].copy()
        hi = count.high[open_rows].copy()
        cb = self.c[open_rows]
        # Invariant: cells < lo are <= pivot, cells >= hi are > pivot.
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            inside = cb + self.a[np.minimum(mid, self.n - 1)] <= pivot
            lo = np.where(active & inside, mid + 1, lo)
            hi = np.where(active & ~inside, mid, hi)
        exact = count.low.copy()
        exact[open_rows] = lo
        total = int(exact.sum())
        return _Count(pivot, exact, exact, total, total)

    def gather(self, lower: IntArray, upper: IntArray) -> FloatArray:
        """Values of the cells with ``lower[j] <= i < upper[j]``, row by row."""
        width = upper - lower
        rows = np.flatnonzero(width)
        w = width[rows]
        total = int(w.sum())
        ends = np.cumsum(w)
        cols = np.arange(total, dtype=np.int64) + np.repeat(lower[rows] - (ends - w), w)
        values: FloatArray = np.repeat(self.c[rows], w) + self.a[cols]
        return values

    def sample(
        self, lower: IntArray, upper: IntArray, size: int, rng: np.random.Generator
    ) -> FloatArray:
        """Uniform random cells among ``lower[j] <= i < upper[j]``, sorted."""
        ends = np.cumsum(upper - lower)
        draws = rng.integers(0, int(ends[-1]), size=size)
        rows = np.searchsorted(ends, draws, side="right")
        cols = upper[rows] - (ends[rows] - draws)
        return np.sort(self.c[rows] + self.a[cols])


@dataclass(slots=True)
class _Bracket:
    """Selection state of the rank ``k``: ``lo < d_(k) <= hi``.

    ``lo_counts`` are at most and ``hi_counts`` at least the exact per-row counts of the
    cells ``<= lo`` and ``<= hi``, so the cells between them hold every candidate.
    """

    k: int
    lo: float
    lo_counts: IntArray
    lo_total: int
    hi: float
    hi_counts: IntArray
    hi_total: int
    stalled: bool = False
    ready: bool = False

    @property
    def size(self) -> int:
        return self.hi_total - self.lo_total


def _apply(b: _Bracket, count: _Count) -> bool:
    """Tighten ``b`` with a counted pivot; False if the count is too loose to tell."""
    if not b.lo < count.pivot < b.hi:
        return True
    if count.high_total < b.k:
        b.lo, b.lo_counts, b.lo_total = count.pivot, count.low, count.low_total
    elif count.low_total >= b.k:
        b.hi, b.hi_counts, b.hi_total = count.pivot, count.high, count.high_total
    else:
        return False
    return True


def _positions(k_offset: float, size: int, sample: int) -> tuple[int, int]:
    """Sample positions bracketing the ``k_offset``-th of ``size`` candidates (+-3 sd)."""
    frac = min(max(k_offset / size, 0.0), 1.0)
    centre = frac * sample
    spread = 3.0 * math.sqrt(sample * frac * (1.0 - frac)) + 1.0
    return math.floor(centre - spread), math.ceil(centre + spread)


def _count_and_apply(mat: _Matrix, brackets: list[_Bracket], pivots: list[float]) -> None:
    for count in mat.count(np.asarray(pivots, dtype=float)):
        exact: _Count | None = None
        for b in brackets:
            if b.ready or _apply(b, count):
                continue
            if exact is None:  # the pivot is (nearly) d_(k): settle it exactly
                exact = mat.exact(count)
            _apply(b, exact)


def _round_one(mat: _Matrix, brackets: list[_Bracket]) -> None:
    """Pivots for every rank from one uniform sample of the whole matrix."""
    n, m, a, c = mat.n, mat.m, mat.a, mat.c
    nm = n * m
    size = int(min(max(4096, (n + m) // 2), 1 << 20, nm // 4))
    cols, rows = _pair_sample(n, m, size)
    wanted: set[int] = set()
    clusters: list[list[int]] = []
    for b in brackets:  # ranks closer than one sample step share their pivots
        if clusters and (b.k - clusters[-1][-1]) * size < nm:
            clusters[-1].append(b.k)
        else:
            clusters.append([b.k])
    for ks in clusters:
        lo_pos = _positions(ks[0] - 0.5, nm, size)[0]
        hi_pos = _positions(ks[-1] - 0.5, nm, size)[1]
        wanted.update(p for p in (lo_pos, hi_pos) if 0 <= p < size)
    order = sorted(wanted)
    part = np.partition(c[rows] + a[cols], order)
    _count_and_apply(mat, brackets, sorted({float(part[p]) for p in order}))


def _materialise(mat: _Matrix, brackets: list[_Bracket], results: dict[int, float]) -> None:
    """Select the ranks of small brackets among their materialised cells."""
    groups: dict[tuple[float, float], list[_Bracket]] = {}
    for b in brackets:
        groups.setdefault((b.lo, b.hi), []).append(b)
    for (lo, hi), group in groups.items():
        first = group[0]
        cells = mat.gather(first.lo_counts, first.hi_counts)
        below = int(np.count_nonzero(cells <= lo))
        cells = cells[(cells > lo) & (cells <= hi)]
        offsets = [b.k - first.lo_total - below - 1 for b in group]
        chosen = np.partition(cells, offsets)
        for b, offset in zip(group, offsets, strict=True):
            results[b.k] = float(chosen[offset])


def _select(a: FloatArray, c: FloatArray, ranks: list[int]) -> dict[int, float]:
    """Order statistics ``d_(k)`` (1-based) of the differences ``c[j] + a[i]``.

    Randomised bracketing in the manner of Floyd and Rivest, on the sorted matrix as in
    Monahan (1984): a uniform sample of cells gives pivots just below and above each wanted
    rank, and counting a pivot costs one merge of the sorted samples. Later rounds
    interpolate inside each bracket, and sample inside it when a round does not halve it
    (which also resolves ties: a sampled value and the float below it are both counted).
    Once a bracket holds few cells they are materialised and partitioned.
    """
    n, m = int(a.size), int(c.size)
    nm = n * m
    budget = max(2048, (n + m) // 2)
    if nm <= 4 * budget:
        every = np.add.outer(c, a).ravel()
        part = np.partition(every, [k - 1 for k in ranks])
        return {k: float(part[k - 1]) for k in ranks}

    mat = _Matrix(a, c)
    rng = np.random.default_rng(_SEED)
    zeros = np.zeros(m, dtype=np.int64)
    full = np.full(m, n, dtype=np.int64)
    d_min = float(c[-1] + a[0])
    d_max = float(c[0] + a[-1])
    brackets = [_Bracket(k, -math.inf, zeros, 0, math.inf, full, nm) for k in sorted(set(ranks))]

    _round_one(mat, brackets)

    results: dict[int, float] = {}
    for _ in range(10_000):
        pending: list[float] = []
        previous: _Bracket | None = None
        last: list[float] = []
        for b in brackets:
            if b.k in results or b.ready:
                continue
            if math.nextafter(b.lo, math.inf) >= b.hi:
                results[b.k] = b.hi  # no float lies strictly between: d_(k) = hi
                continue
            if b.size <= budget:
                b.ready = True
                continue
            proposal = _propose(mat, b, d_min=d_min, d_max=d_max, budget=budget, rng=rng)
            if (
                previous is not None
                and (previous.lo, previous.hi) == (b.lo, b.hi)
                and b.k - previous.k < budget // 8
                and len(last) == 2
                and len(proposal) == 2
            ):
                # A neighbouring rank in the same bracket (the two middle ranks): one
                # pivot pair, from the lower rank's lower pivot to this one's upper.
                last[1] = proposal[1]
            else:
                pending.extend(last)
                last = proposal
            previous = b
        pending.extend(last)
        if not pending:
            break
        before = [b.size for b in brackets]
        _count_and_apply(mat, brackets, sorted(set(pending)))
        for b, old in zip(brackets, before, strict=True):
            b.stalled = b.size > old // 2
    else:  # pragma: no cover - every stalled round removes at least one value
        raise RuntimeError("selection did not converge")

    _materialise(mat, [b for b in brackets if b.k not in results], results)
    return results


def _propose(
    mat: _Matrix, b: _Bracket, *, d_min: float, d_max: float, budget: int, rng: np.random.Generator
) -> list[float]:
    """Next pivots for ``b``: interpolated, or sampled inside the bracket when stalled."""
    size = b.size
    if not b.stalled:
        lo = b.lo if math.isfinite(b.lo) else d_min
        hi = b.hi if math.isfinite(b.hi) else d_max
        span = hi - lo
        centre = lo + span * ((b.k - b.lo_total - 0.5) / size)
        margin = span * (budget / 4.0) / size
        pivots = [v for v in (centre - margin, centre + margin) if b.lo < v < b.hi]
        if pivots:
            return pivots
    # Sample among the exact candidates, so that every sampled value lies in (lo, hi].
    low = mat.exact(_Count(b.lo, b.lo_counts, b.hi_counts, 0, 0)).low
    high = mat.exact(_Count(b.hi, b.lo_counts, b.hi_counts, 0, 0)).low
    b.lo_counts, b.lo_total = low, int(low.sum())
    b.hi_counts, b.hi_total = high, int(high.sum())
    size = b.size
    sample = int(min(max(64, 4 * (3.0 * size / budget) ** 2), 1 << 16))
    values = mat.sample(b.lo_counts, b.hi_counts, sample, rng)
    lo_pos, hi_pos = _positions(b.k - b.lo_total - 0.5, size, sample)
    mid = min(max((lo_pos + hi_pos) // 2, 0), sample - 1)
    picks = [float(values[p]) for p in (lo_pos, mid, hi_pos) if 0 <= p < sample]
    return [v for p in picks for v in (math.nextafter(p, -math.inf), p)]


# ----------------------------------------------------------------------- Hodges-Lehmann


def hodges_lehmann(
    *,
    baseline: ArrayLike,
    canary: ArrayLike,
    alpha_lower: float = 0.025,
    alpha_upper: float = 0.025,
    method: Method = "auto",
) -> HodgesLehmannResult:
    """Hodges-Lehmann shift estimate of ``canary - baseline`` with one-sided bounds.

    The estimate is the median of the ``n * m`` differences ``canary_j - baseline_i``.
    With ``d_(1) <= ... <= d_(nm)`` those differences in order, the lower bound is
    ``d_(k_lower)`` and the upper bound ``d_(nm - k_upper + 1)`` (Bauer 1972), where

    * exact: ``k = qwilcox(alpha, m, n)``, or 1 if that is 0, as R's
      ``wilcox.test(canary, baseline, conf.int = TRUE, exact = TRUE)``; used when
      ``method="auto"`` and ``n < 50``, ``m < 50`` and the pooled sample has no ties, or
      with ``method="exact"`` when there are no ties (as in R, ties fall back to the
      normal approximation);
    * asymptotic: ``k = floor(nm / 2 + 1/2 - z_(1 - alpha) * sigma_U)``, the largest
      rank whose continuity-corrected normal tail ``P(U <= k - 1)`` is at most
      ``alpha``, with the tie-corrected ``sigma_U`` (Lehmann 1975; Hollander and Wolfe),
      clamped to ``[1, nm]``.

    Each bound holds with confidence at least (exact) or about (asymptotic) ``1 - alpha``
    of its side; ``lower <= estimate <= upper`` whenever both alphas are at most 0.5.
    The differences are never materialised: the needed order statistics are selected
    from the implicit sorted matrix in ``O((n + m) log(n + m))`` expected time and
    ``O(n + m)`` memory (see :func:`_select`), and equal those of ``np.sort`` of all
    the differences bit for bit.

    Parameters
    ----------
    baseline : array_like of float
        The baseline sample (``n`` finite values).
    canary : array_like of float
        The canary sample (``m`` finite values).
    alpha_lower : float
        Error rate of the lower bound, in (0, 1).
    alpha_upper : float
        Error rate of the upper bound, in (0, 1).
    method : {"auto", "exact", "asymptotic"}
        How the ranks of the bounds are chosen (see above).

    Returns
    -------
    HodgesLehmannResult
        The estimate, both bounds, their alphas and the method used.

    References
    ----------
    J. L. Hodges and E. L. Lehmann, "Estimates of location based on rank tests",
    Annals of Mathematical Statistics 34(2), 1963.
    D. F. Bauer, "Constructing confidence sets using rank statistics", Journal of the
    American Statistical Association 67(339), 1972.
    E. L. Lehmann, Nonparametrics: Statistical Methods Based on Ranks, Holden-Day, 1975.
    M. Hollander and D. A. Wolfe, Nonparametric Statistical Methods, Wiley.
    J. F. Monahan, "Algorithm 616: fast computation of the Hodges-Lehmann location
    estimator", ACM Transactions on Mathematical Software 10(3), 1984.
    R. W. Floyd and R. L. Rivest, "Expected time bounds for selection", Communications
    of the ACM 18(3), 1975.
    R Core Team, ``wilcox.test`` documentation, R package stats.
    """
    x = _sample(baseline, "baseline")
    y = _sample(canary, "canary")
    a_lower = _alpha(alpha_lower, "alpha_lower")
    a_upper = _alpha(alpha_upper, "alpha_upper")
    _choice(method, "method", _METHODS)
    n = int(x.size)
    m = int(y.size)
    nm = n * m
    a = np.sort(-x)
    c = np.sort(y)[::-1]
    pooled = np.sort(np.concatenate((-a[::-1], c[::-1])), kind="stable")
    ties = _tie_term(pooled)
    use_exact = method != "asymptotic" and ties == 0.0
    if method == "auto":
        use_exact = use_exact and n < EXACT_LIMIT and m < EXACT_LIMIT
    if use_exact:
        k_lower = max(_qwilcox(a_lower, m, n), 1)
        k_upper = max(_qwilcox(a_upper, m, n), 1)
    else:
        sigma = _sigma_u(n, m, ties)
        k_lower = _normal_rank(a_lower, nm, sigma)
        k_upper = _normal_rank(a_upper, nm, sigma)
    upper_rank = nm - k_upper + 1
    middle = [(nm + 1) // 2, nm // 2 + 1]
    chosen = _select(a, np.ascontiguousarray(c), [k_lower, upper_rank, *middle])
    estimate = 0.5 * (chosen[middle[0]] + chosen[middle[1]])
    return HodgesLehmannResult(
        estimate=estimate,
        lower=chosen[k_lower],
        upper=chosen[upper_rank],
        alpha_lower=a_lower,
        alpha_upper=a_upper,
        method="exact" if use_exact else "asymptotic",
    )


def _normal_rank(alpha: float, nm: int, sigma: float) -> int:
    k = math.floor(nm / 2.0 + 0.5 - float(ndtri(1.0 - alpha)) * sigma)
    return min(max(k, 1), nm)
