"""Data sufficiency: how much more canary data a bound needs to settle.

The judge's PASS rule (the bound at confidence 1 - beta inside the acceptable region) is
itself the data-sufficiency check; this module answers the follow-up question a
controller asks of an INCONCLUSIVE verdict: how many more canary requests, at what rate,
for how long.
"""

from __future__ import annotations

import math
from collections.abc import Callable

_MAX_SCALE = 1e6


def scale_to_settle(settled: Callable[[float], bool], *, limit: float = _MAX_SCALE) -> float:
    """Smallest factor ``f >= 1`` of the data for which ``settled(f)`` holds.

    Parameters
    ----------
    settled : callable
        ``settled(f)`` tells whether the decision settles when every count grows by ``f``
        at the current estimate; assumed monotone in ``f``.
    limit : float
        Largest factor tried.

    Returns
    -------
    float
        The factor, to within 2 % (plenty for a load hint); +inf when even ``limit`` does not
        settle it.

    Notes
    -----
    Bisection on ``log f``: about 12 evaluations of ``settled``.
    """
    if settled(1.0):
        return 1.0
    if not settled(limit):
        return math.inf
    lo, hi = 0.0, math.log(limit)
    while hi - lo > 0.02:
        mid = 0.5 * (lo + hi)
        if settled(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def normal_scale_to_settle(*, distance: float, half_width: float) -> float:
    """Factor by which the sample sizes must grow for a bound to cross a boundary.

    Parameters
    ----------
    distance : float
        Distance of the estimate from the boundary (>= 0).
    half_width : float
        Current distance of the bound from the estimate (> 0); it shrinks as
        ``1 / sqrt(f)`` when both samples grow by ``f``.

    Returns
    -------
    float
        ``(half_width / distance) ** 2``, at least 1; +inf when the estimate sits on the
        boundary.
    """
    if half_width <= 0:
        return 1.0
    if distance <= 0:
        return math.inf
    ratio = half_width / distance
    if ratio > _MAX_SCALE:  # also keeps the square from overflowing
        return math.inf
    return max(1.0, ratio * ratio)
