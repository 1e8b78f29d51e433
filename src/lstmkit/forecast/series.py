"""The one shape every part of forecasting works on: a regular, complete time series.

A :class:`TimeSeries` has already passed every check (sorted, unique, regularly spaced
timestamps, no missing value, a numeric target): readers in :mod:`lstmkit.forecast.data`
build it or raise :class:`DataError` naming what is wrong, so the model, the baselines and
the backtest never meet a gap or a string.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class DataError(ValueError):
    """Data that cannot be forecast as it is; the message names the problem and, where
    there is one, the option that repairs it (e.g. ``--fill``)."""


@dataclass(frozen=True)
class TimeSeries:
    """One series: the target, its timestamps and optional covariates, all of length n."""

    name: str
    values: np.ndarray
    """(n,) float64, the target."""
    index: pd.Index
    """(n,) timestamps: a DatetimeIndex with a frequency, or a RangeIndex-like integer
    index (years, or plain steps) with ``freq`` None."""
    freq: str | None = None
    """The pandas frequency alias of a DatetimeIndex ("MS", "YS-JAN", "W-SAT", ...)."""
    covariates: np.ndarray | None = None
    """(n, k) float64 known-in-advance covariates, or None."""
    covariate_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = len(self.values)
        if len(self.index) != n:
            raise ValueError(f"{self.name}: {n} values but {len(self.index)} timestamps")
        if self.covariates is not None and self.covariates.shape != (n, len(self.covariate_names)):
            raise ValueError(
                f"{self.name}: covariates of shape {self.covariates.shape}, expected "
                f"({n}, {len(self.covariate_names)})"
            )

    def __len__(self) -> int:
        return len(self.values)

    def head(self, n: int) -> TimeSeries:
        """The first ``n`` steps (a backtest's training part)."""
        covariates = None if self.covariates is None else self.covariates[:n]
        return TimeSeries(
            self.name, self.values[:n], self.index[:n], self.freq, covariates, self.covariate_names
        )

    def future_index(self, horizon: int) -> pd.Index:
        """The ``horizon`` timestamps after the last one."""
        last = self.index[-1]
        if isinstance(self.index, pd.DatetimeIndex):
            return pd.date_range(last, periods=horizon + 1, freq=self.freq)[1:]
        step = self.index[-1] - self.index[-2] if len(self.index) > 1 else 1
        return pd.Index([last + step * (k + 1) for k in range(horizon)])
