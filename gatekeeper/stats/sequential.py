"""Error spending over the repeated looks of an analysis.

A controller asks for a verdict at every interval. Testing each look at the full alpha
inflates the false-FAIL rate of the analysis; here each look gets a share of alpha so
that the shares sum to at most alpha over any number of looks (a Bonferroni spending
function, valid whatever the dependence between looks; Lan and DeMets, Biometrika 70(3),
1983, describe the general spending approach). With ``planned`` looks, half of alpha is
spread evenly over them and the other half over any extension as ``6 / (pi^2 j^2)``;
without a plan, all of alpha is spread as ``6 / (pi^2 k^2)``.

The server keeps no state: each call carries its cumulative data and its Look.
"""

from __future__ import annotations

import math

_BASEL = 6.0 / math.pi**2


def look_alpha(*, alpha: float, index: int, planned: int) -> float:
    """The share of ``alpha`` that look ``index`` (1-based) may spend.

    Parameters
    ----------
    alpha : float
        False-FAIL rate of the whole analysis, in (0, 1).
    index : int
        1-based look; >= 1.
    planned : int
        Looks planned (0: unknown).

    Returns
    -------
    float
        The per-look level; the levels of looks 1, 2, ... sum to at most ``alpha``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if index < 1:
        raise ValueError(f"index must be >= 1, got {index!r}")
    if planned < 0:
        raise ValueError(f"planned must be >= 0, got {planned!r}")
    if planned == 0:
        return alpha * _BASEL / index**2
    if index <= planned:
        return 0.5 * alpha / planned
    return 0.5 * alpha * _BASEL / (index - planned) ** 2
