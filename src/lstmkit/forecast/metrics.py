r"""Forecast accuracy on plain NumPy arrays: the point metrics of the M4 competition and the
coverage of a prediction interval.

Notation: ``A`` the actual values and ``F`` the forecasts at the ``H`` test steps
``h = 1..H``; ``y`` the history (the training part) of length ``T``; ``m`` the seasonal
period (1 for none).

.. math::

    MAE   &= \frac{1}{H} \sum_h |A_h - F_h|

    RMSE  &= \sqrt{\frac{1}{H} \sum_h (A_h - F_h)^2}

    sMAPE &= \frac{100}{H} \sum_h \frac{2 |F_h - A_h|}{|A_h| + |F_h|}
             \quad \text{(percent, 0 to 200; a step with } A_h = F_h = 0 \text{ counts 0)}

    MASE  &= \frac{MAE}{\frac{1}{T - m} \sum_{t = m + 1}^{T} |y_t - y_{t - m}|}

sMAPE is the M4 competition's definition (Makridakis, Spiliotis & Assimakopoulos 2020, "The
M4 Competition: 100,000 time series and 61 forecasting methods", IJF 36(1)). Its absolute
values in the denominator keep it within 0..200 whatever the signs; the form Hyndman &
Koehler (2006) discuss, mean(200 |A - F| / (A + F)), can be negative or divide by zero
where the values can be negative or zero.

MASE is Hyndman & Koehler (2006), "Another look at measures of forecast accuracy", IJF
22(4): the MAE divided by the in-sample MAE of the naive forecast; with a season, the naive
forecast is the seasonal one (lag ``m``), as in the M4 competition.

Every function takes 1-D arrays of equal length with finite values and returns a Python
float; anything else raises ``ValueError`` (``TypeError`` for non-numbers) naming the
argument, what was expected and what was given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


def as_vector(values, name: str, owner: str) -> np.ndarray:
    """``values`` as a non-empty 1-D float64 array of finite numbers."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{owner}: {name} must be an array of numbers, got {type(values).__name__}"
        ) from None
    if array.ndim != 1:
        raise ValueError(f"{owner}: {name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{owner}: {name} is empty")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{owner}: {name} has {bad.size} non-finite value(s) (NaN or infinity), the "
            f"first at position {bad[0]}"
        )
    return array


def season_lag(season, owner: str) -> int:
    """The seasonal lag ``m``: ``season`` itself, or 1 when ``season`` is None (no season)."""
    if season is None:
        return 1
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ValueError(f"{owner}: season must be None or an integer >= 1, got {season!r}")
    return int(season)


def _pair(actual, forecast, owner: str, second: str = "forecast") -> tuple[np.ndarray, ...]:
    """``actual`` and the array it is compared with, checked to be the same length."""
    a = as_vector(actual, "actual", owner)
    f = as_vector(forecast, second, owner)
    if a.shape != f.shape:
        raise ValueError(
            f"{owner}: actual has {a.size} values but {second} has {f.size}; they must be "
            "the same test steps"
        )
    return a, f


def mae(actual, forecast) -> float:
    """Mean absolute error: mean |A - F|, in the series' units."""
    a, f = _pair(actual, forecast, "mae")
    return float(np.mean(np.abs(a - f)))


def rmse(actual, forecast) -> float:
    """Root mean squared error: sqrt(mean (A - F)^2), in the series' units."""
    a, f = _pair(actual, forecast, "rmse")
    return float(np.sqrt(np.mean((a - f) ** 2)))


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent (0..200): 100/H * sum 2|F - A| / (|A| + |F|).

    The M4 competition's definition (Makridakis et al. 2020); a step where both the
    actual and the forecast are 0 is a perfect forecast and counts 0 instead of 0/0.
    """
    a, f = _pair(actual, forecast, "smape")
    numerator = 2.0 * np.abs(f - a)
    denominator = np.abs(a) + np.abs(f)
    # denominator is 0 only where a = f = 0, where the numerator is 0 too
    terms = np.divide(numerator, denominator, out=np.zeros_like(a), where=denominator > 0)
    return float(100.0 * np.mean(terms))


def mase_scale(history, season: int | None = None) -> float:
    """MASE's denominator: the in-sample MAE of the seasonal naive forecast with lag ``m``
    (``m = season``, or 1 when ``season`` is None), 1/(T - m) * sum_{t>m} |y_t - y_{t-m}|.

    Raises ValueError when the history has no more than ``m`` values (no in-sample
    forecast to score) or when the scale is 0 (MASE would divide by zero).
    """
    m = season_lag(season, "mase")
    y = as_vector(history, "history", "mase")
    if y.size <= m:
        raise ValueError(
            f"mase: history has {y.size} value(s); the scale (the in-sample error of the "
            f"naive forecast with lag {m}) needs at least {m + 1}"
        )
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    if scale == 0.0:
        raise ValueError(
            f"mase: the scale is 0: every value of the history equals the one {m} step(s) "
            "before it (a constant or exactly repeating history), so MASE is undefined; "
            "use MAE or RMSE for this series"
        )
    return scale


def mase(actual, forecast, history, season: int | None = None) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): MAE divided by
    :func:`mase_scale` of ``history``. Below 1, the forecast's errors are smaller than the
    seasonal naive forecast's in-sample one-step errors; the M4 competition uses this scale."""
    a, f = _pair(actual, forecast, "mase")
    scale = mase_scale(history, season)
    return float(np.mean(np.abs(a - f)) / scale)


def _interval(lower, upper, owner: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``lower`` and ``upper`` of ``length`` values each, with lower <= upper everywhere."""
    lo = as_vector(lower, "lower", owner)
    hi = as_vector(upper, "upper", owner)
    for name, bound in (("lower", lo), ("upper", hi)):
        if bound.size != length:
            raise ValueError(f"{owner}: {name} has {bound.size} values, expected {length}")
    crossed = np.flatnonzero(lo > hi)
    if crossed.size:
        k = crossed[0]
        raise ValueError(
            f"{owner}: lower > upper at {crossed.size} step(s), the first at position {k} "
            f"({lo[k]:g} > {hi[k]:g})"
        )
    return lo, hi


def coverage(actual, lower, upper) -> float:
    """The fraction of actual values inside their interval, bounds included (0..1)."""
    a = as_vector(actual, "actual", "coverage")
    lo, hi = _interval(lower, upper, "coverage", a.size)
    return float(np.mean((lo <= a) & (a <= hi)))


def interval_width(lower, upper) -> float:
    """The mean width of the interval, mean(upper - lower), in the series' units."""
    lo = as_vector(lower, "lower", "interval_width")
    lo, hi = _interval(lo, upper, "interval_width", lo.size)
    return float(np.mean(hi - lo))


@dataclass(frozen=True)
class Metric:
    """A point metric: ``function(actual, forecast)``, or ``function(actual, forecast,
    history, season)`` when ``needs_history``."""

    name: str
    function: Callable[..., float]
    needs_history: bool
    """True for scaled metrics (MASE), whose scale comes from the training part."""
    unit: str
    """What the value is measured in, for table headers."""


METRICS: dict[str, Metric] = {
    "mae": Metric("mae", mae, needs_history=False, unit="series units"),
    "rmse": Metric("rmse", rmse, needs_history=False, unit="series units"),
    "smape": Metric("smape", smape, needs_history=False, unit="percent"),
    "mase": Metric("mase", mase, needs_history=True, unit="ratio to seasonal naive"),
}
"""The point metrics, in display order."""


def score(
    actual,
    forecast,
    history=None,
    season: int | None = None,
    *,
    metrics: Mapping[str, Metric] = METRICS,
) -> dict[str, float]:
    """Every metric of ``metrics`` for one forecast, by name. ``history`` is required when
    one of them needs it (MASE, scaled on ``history`` with lag ``season``)."""
    out = {}
    for name, metric in metrics.items():
        if not metric.needs_history:
            out[name] = metric.function(actual, forecast)
        elif history is None:
            raise ValueError(f"score: metric {name!r} needs the history, got history=None")
        else:
            out[name] = metric.function(actual, forecast, history, season)
    return out
