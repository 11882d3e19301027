"""Preprocessing of VALUES samples: NaN policy and outlier removal.

Counts (RATIO, HISTOGRAM) are never preprocessed here: non-finite or negative counts are
bad input, rejected before the judge sees them.
"""

from __future__ import annotations

import numpy as np

from gatekeeper.stats.model import BoolArray, FloatArray, NanStrategy, OutlierStrategy


def apply_nan_strategy(
    values: FloatArray, *, strategy: NanStrategy, replacement: float = 0.0
) -> FloatArray:
    """Remove NaN points, or replace them by ``replacement``.

    Parameters
    ----------
    values : ndarray
        Samples; may hold NaN.
    strategy : NanStrategy
        ``REMOVE`` drops NaN points (the default of the judge); ``REPLACE`` substitutes
        ``replacement``, as Kayenta's NaN strategy "replace" does with 0.
    replacement : float
        The value NaN becomes with ``REPLACE``.

    Returns
    -------
    ndarray
        A new array without NaN.
    """
    nan = np.isnan(values)
    if not nan.any():
        return values
    if strategy is NanStrategy.REMOVE:
        return values[~nan]
    replaced: FloatArray = np.where(nan, replacement, values)
    return replaced


def percentile_r7(values: FloatArray, q: float) -> float:
    """Sample quantile by linear interpolation of order statistics (Hyndman and Fan type 7).

    Parameters
    ----------
    values : ndarray
        Samples, not empty.
    q : float
        Probability in [0, 1].

    Returns
    -------
    float
        The quantile, as R's ``quantile(type = 7)`` and numpy's default ``linear`` method.

    References
    ----------
    R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages", The American
    Statistician 50(4), 1996.
    """
    return float(np.quantile(values, q, method="linear"))


def iqr_outliers(values: FloatArray, *, factor: float) -> BoolArray:
    """Mask of points outside Tukey's fences ``[Q1 - factor*IQR, Q3 + factor*IQR]``.

    Parameters
    ----------
    values : ndarray
        Samples without NaN.
    factor : float
        Fence factor, > 0 (Tukey's 1.5 for "outside", 3 for "far out").

    Returns
    -------
    ndarray of bool
        True where the point is an outlier.

    References
    ----------
    J. W. Tukey, Exploratory Data Analysis, Addison-Wesley, 1977. Quartiles are the type 7
    sample quantiles, as in Kayenta's IQR detector.
    """
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    q1, q3 = np.quantile(values, [0.25, 0.75], method="linear")
    spread = q3 - q1
    outside: BoolArray = (values < q1 - factor * spread) | (values > q3 + factor * spread)
    return outside


def ksigma_outliers(values: FloatArray, *, k: float) -> BoolArray:
    """Mask of points more than ``k`` standard deviations from the mean.

    Parameters
    ----------
    values : ndarray
        Samples without NaN.
    k : float
        Number of standard deviations, > 0.

    Returns
    -------
    ndarray of bool
        True where ``|x - mean| > k * sd`` (population standard deviation, as Kayenta's
        KSigma detector).
    """
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k!r}")
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    deviation = np.abs(values - values.mean())
    outside: BoolArray = deviation > k * values.std()
    return outside


def remove_outliers(values: FloatArray, *, strategy: OutlierStrategy, factor: float) -> FloatArray:
    """Drop the outliers that ``strategy`` finds (``NONE`` keeps every point).

    Parameters
    ----------
    values : ndarray
        Samples without NaN.
    strategy : OutlierStrategy
        ``NONE``, ``IQR`` (Tukey's fences with ``factor``) or ``KSIGMA`` (``factor`` = k).
    factor : float
        Fence factor or k.

    Returns
    -------
    ndarray
        The points that are not outliers.
    """
    if strategy is OutlierStrategy.NONE:
        return values
    if strategy is OutlierStrategy.IQR:
        return values[~iqr_outliers(values, factor=factor)]
    return values[~ksigma_outliers(values, k=factor)]
