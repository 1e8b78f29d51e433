"""Rolling-origin evaluation: forecast from several cut-offs of one series and score each
forecast on the values that follow it (Tashman 2000, "Out-of-sample tests of forecasting
accuracy: an analysis and review", IJF 16(4); Hyndman & Athanasopoulos, FPP3, Section 5.10,
"time series cross-validation").

Fold ``k`` trains on ``values[:cutoffs[k]]`` and is tested on
``values[cutoffs[k] : cutoffs[k] + horizon]``. With the default step (one horizon), the
test windows tile the end of the series without overlapping::

    n = 20, horizon = 3, folds = 3:   cut-offs [11, 14, 17]
    fold 0   train [0, 11)   test [11, 14)
    fold 1   train [0, 14)   test [14, 17)
    fold 2   train [0, 17)   test [17, 20)     the last fold ends at n
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lstmkit.forecast.baselines import BASELINES, DEFAULT_LEVEL, Baseline
from lstmkit.forecast.metrics import as_vector, coverage, interval_width, score


def _positive(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def rolling_origins(
    n: int, horizon: int, folds: int, *, step: int | None = None, min_train: int
) -> list[int]:
    """The cut-offs (training lengths) of ``folds`` rolling origins, oldest first.

    The last fold's test window ends at ``n``; consecutive cut-offs are ``step`` apart
    (default ``horizon``: adjacent, non-overlapping test windows; a smaller step overlaps
    them). Raises ValueError when the first fold would train on fewer than ``min_train``
    values, that is when n < min_train + horizon + step * (folds - 1).
    """
    owner = "rolling_origins"
    n = _positive(n, "n", owner)
    horizon = _positive(horizon, "horizon", owner)
    folds = _positive(folds, "folds", owner)
    step = horizon if step is None else _positive(step, "step", owner)
    min_train = _positive(min_train, "min_train", owner)
    first = n - horizon - step * (folds - 1)
    if first < min_train:
        needed = min_train + horizon + step * (folds - 1)
        raise ValueError(
            f"{owner}: a series of {n} values is too short for {folds} fold(s) of horizon "
            f"{horizon}, {step} step(s) apart, each training on at least {min_train} values: "
            f"that needs min_train + horizon + step * (folds - 1) = {min_train} + {horizon} "
            f"+ {step} * {folds - 1} = {needed} values"
        )
    return [first + step * k for k in range(folds)]


@dataclass(frozen=True)
class BacktestRecord:
    """One baseline's forecast at one fold, and its scores."""

    fold: int
    """The fold's position, 0 for the oldest cut-off."""
    cutoff: int
    """The training length: the forecast starts at ``values[cutoff]``."""
    method: str
    """The baseline's name in the registry."""
    metrics: dict[str, float]
    """MAE, RMSE, sMAPE and MASE (scaled on this fold's history); ``coverage`` and
    ``interval_width`` as well when the forecast has an interval."""
    forecast: np.ndarray
    """(horizon,) point forecasts."""
    lower: np.ndarray | None
    upper: np.ndarray | None
    model: str
    """The model the baseline used at this fold, e.g. "ARIMA(0,1,1)(0,1,1)[12]"."""
    fallback: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0
    """Wall-clock time of the fit and forecast."""


def _check_cutoffs(cutoffs: Sequence[int], n: int, horizon: int) -> list[int]:
    """Cut-offs that leave a history and a full test window inside the series."""
    checked = []
    for cutoff in cutoffs:
        cutoff = _positive(cutoff, "every cut-off", "backtest_baselines")
        if cutoff + horizon > n:
            raise ValueError(
                f"backtest_baselines: cut-off {cutoff} plus horizon {horizon} runs past the "
                f"end of the series ({n} values); the largest cut-off is {n - horizon}"
            )
        checked.append(cutoff)
    return checked


def backtest_baselines(
    values,
    horizon: int,
    season: int | None,
    cutoffs: Sequence[int],
    baselines: Mapping[str, Baseline] = BASELINES,
    *,
    level: float = DEFAULT_LEVEL,
) -> list[BacktestRecord]:
    """Every baseline at every cut-off, scored on the ``horizon`` values that follow it.

    Records come fold by fold, the baselines in registry order within a fold. MASE is
    scaled on each fold's own history, so it needs more than ``season`` values of it
    (ValueError otherwise; :func:`lstmkit.forecast.metrics.mase_scale`).
    """
    y = as_vector(values, "values", "backtest_baselines")
    horizon = _positive(horizon, "horizon", "backtest_baselines")
    records = []
    for fold, cutoff in enumerate(_check_cutoffs(cutoffs, len(y), horizon)):
        history, actual = y[:cutoff], y[cutoff : cutoff + horizon]
        for name, baseline in baselines.items():
            start = time.perf_counter()
            result = baseline.forecast(history, horizon, season, level=level)
            seconds = time.perf_counter() - start
            metrics = score(actual, result.mean, history, season)
            if result.lower is not None:
                metrics["coverage"] = coverage(actual, result.lower, result.upper)
                metrics["interval_width"] = interval_width(result.lower, result.upper)
            record = BacktestRecord(
                fold=fold,
                cutoff=cutoff,
                method=name,
                metrics=metrics,
                forecast=result.mean,
                lower=result.lower,
                upper=result.upper,
                model=result.model,
                fallback=result.fallback,
                notes=result.notes,
                seconds=seconds,
            )
            records.append(record)
    return records
