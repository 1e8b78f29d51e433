"""From series to training examples: scaling fitted on the training part only, and windows.

A window is ``input_len`` consecutive steps of the past (the scaled target and the scaled
covariates, one feature each) and the ``horizon`` scaled target values that follow it:

    features  x[t - L + 1 .. t]   (L = input_len, F = 1 + covariates)   ->  (L, F)
    target    y[t + 1 .. t + H]   (H = horizon)                           ->  (H,)

Leakage: :func:`fit_scalers` sees only the values it is given, and :func:`windows` only
builds windows whose targets end inside the series it is given; a forecaster fitted on
``series.head(cutoff)`` therefore never sees a value at or after ``cutoff`` (the backtest
relies on this, and tests/test_forecast_model.py checks it by poisoning the future).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmkit.forecast.series import DataError, TimeSeries


@dataclass(frozen=True)
class Scaler:
    """z = (x - mean) / scale, fitted on one training part."""

    mean: float
    scale: float

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        values = np.asarray(values, dtype=np.float64)
        std = float(values.std())
        # a constant series has no spread to divide by; its level still needs removing
        return cls(float(values.mean()), std if std > 0 else 1.0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.scale + self.mean

    def to_json(self) -> list[float]:
        return [self.mean, self.scale]

    @classmethod
    def from_json(cls, data: object) -> Scaler:
        if not (isinstance(data, list) and len(data) == 2 and data[1] != 0):
            raise ValueError(f"a scaler is [mean, nonzero scale], got {data!r}")
        return cls(float(data[0]), float(data[1]))


@dataclass(frozen=True)
class SeriesScalers:
    """The target's scaler and one per covariate, for one series."""

    target: Scaler
    covariates: tuple[Scaler, ...] = ()

    def features(self, series: TimeSeries) -> np.ndarray:
        """(n, F) float32: the scaled target, then the scaled covariates."""
        columns = [self.target.transform(series.values)]
        if series.covariates is not None:
            columns += [s.transform(series.covariates[:, k]) for k, s in enumerate(self.covariates)]
        return np.stack(columns, axis=1).astype(np.float32)

    def to_json(self) -> dict:
        return {
            "target": self.target.to_json(),
            "covariates": [s.to_json() for s in self.covariates],
        }

    @classmethod
    def from_json(cls, data: dict) -> SeriesScalers:
        return cls(
            Scaler.from_json(data["target"]),
            tuple(Scaler.from_json(c) for c in data.get("covariates", [])),
        )


def fit_scalers(series: TimeSeries) -> SeriesScalers:
    """Scalers fitted on every value of ``series`` (pass only the training part)."""
    covariates = ()
    if series.covariates is not None:
        covariates = tuple(Scaler.fit(column) for column in series.covariates.T)
    return SeriesScalers(Scaler.fit(series.values), covariates)


def check_length(series: TimeSeries, input_len: int, horizon: int) -> None:
    """DataError when ``series`` cannot give one window of ``input_len`` + ``horizon``."""
    if len(series) < input_len + horizon:
        raise DataError(
            f"series {series.name!r} has {len(series)} steps, shorter than the window "
            f"({input_len}) plus the horizon ({horizon}); use a shorter --input-len or "
            "--horizon, or more data"
        )


def windows(
    series: TimeSeries, scalers: SeriesScalers, input_len: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``series``: inputs (N, L, F) and targets (N, H), float32, scaled."""
    check_length(series, input_len, horizon)
    features = scalers.features(series)  # (n, F)
    target = features[:, 0]
    count = len(series) - input_len - horizon + 1
    starts = np.arange(count)
    x = features[starts[:, None] + np.arange(input_len)]  # (N, L, F)
    y = target[starts[:, None] + input_len + np.arange(horizon)]  # (N, H)
    return x, y


def last_window(series: TimeSeries, scalers: SeriesScalers, input_len: int) -> np.ndarray:
    """The final ``input_len`` steps as one input (1, L, F): what a forecast reads."""
    if len(series) < input_len:
        raise DataError(
            f"series {series.name!r} has {len(series)} steps; the model reads {input_len}"
        )
    return scalers.features(series)[-input_len:][None]
