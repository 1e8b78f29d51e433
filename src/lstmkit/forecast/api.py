"""The forecaster as a Python object, in the manner of Darts and scikit-learn:

    from lstmkit.forecast import Forecaster
    model = Forecaster(horizon=12, season=12, cell="lstm").fit(series)  # a pandas Series
    model.predict()            # DataFrame: series, time, forecast, lower, upper, q0.1, ...
    Forecaster(horizon=12).fit(series, run="runs/air")   # saved and checkpointed as it trains
    Forecaster.load("runs/air").predict(6)                # later, or elsewhere

``fit`` takes a pandas Series (its index is the time), a DataFrame (``target=`` the column,
``covariates=`` more columns, ``series_id=`` a column that splits it into many series), a
list or dict of Series (many series, one global model), or lstmkit TimeSeries. The data
checks and repairs are :mod:`lstmkit.forecast.data`'s.

Covariates are read over the input window only (past covariates): a forecast needs no
future values of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lstmkit._checks import check_positive_int
from lstmkit.forecast import checkpoint as ckpt
from lstmkit.forecast.calibrate import corrections, holdout
from lstmkit.forecast.data import from_pandas
from lstmkit.forecast.model import ForecastConfig, ForecastNet
from lstmkit.forecast.series import DataError, TimeSeries
from lstmkit.forecast.train import FitConfig, fit_network
from lstmkit.forecast.windows import (
    SeriesScalers,
    fit_scalers,
    last_window,
    windows,
)


def default_input_len(series: Sequence[TimeSeries], horizon: int, season: int | None) -> int:
    """Two seasons of the past, or two horizons without a season; shortened so that the
    shortest series still gives ``horizon`` training windows."""
    wanted = max(2 * season if season else 2 * horizon, horizon)
    shortest = min(len(s) for s in series)
    fits = shortest - 2 * horizon + 1  # windows = n - L - H + 1 >= H
    if fits < 2:
        name = min(series, key=len).name
        raise DataError(
            f"series {name!r} has {shortest} steps: too short to learn a horizon of {horizon} "
            f"(it needs at least {2 * horizon + 1}); use a shorter --horizon or more data"
        )
    return min(wanted, fits)


def as_series(data, **options) -> list[TimeSeries]:
    """``data`` as checked TimeSeries (see the module doc)."""
    if isinstance(data, TimeSeries):
        return [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(s, TimeSeries) for s in data):
        return list(data)
    return from_pandas(data, **options)


@torch.no_grad()
def forecast_quantiles(
    net: ForecastNet,
    series: TimeSeries,
    scalers: SeriesScalers,
    horizon: int,
    corrections: Sequence[float] | None = None,
) -> np.ndarray:
    """(horizon, Q) quantile forecasts after the end of ``series``, in its own units; the
    outermost two moved out by ``corrections`` (scaled units, per step) when given."""
    window = torch.from_numpy(last_window(series, scalers, net.config.input_len))
    scaled = net(window)[0, :horizon]  # (h, Q)
    q = torch.sort(scaled, dim=-1).values.numpy()  # quantiles never cross
    if corrections is not None:
        shift = np.asarray(corrections[:horizon])
        middle = q[:, net.config.median_index]
        # a negative correction narrows the interval, but never past the median
        q[:, 0] = np.minimum(q[:, 0] - shift, middle)
        q[:, -1] = np.maximum(q[:, -1] + shift, middle)
    return scalers.target.inverse(q)


class Forecaster:
    """An LSTM (or any lstmkit cell) forecaster: ``fit`` then ``predict``."""

    def __init__(
        self,
        horizon: int,
        *,
        season: int | None = None,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        input_len: int | None = None,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        dropout: float = 0.0,
        steps: int = 800,
        batch_size: int = 64,
        learning_rate: float = 3e-3,
        seed: int = 0,
        calibrate: bool = True,
    ) -> None:
        check_positive_int(horizon, "horizon")
        if season is not None:
            check_positive_int(season, "season")
        if input_len is not None:
            check_positive_int(input_len, "input_len")
        self.horizon, self.season, self.input_len = horizon, season, input_len
        # checked now, so that a bad option fails before any data is read
        self.network = dict(
            cell=cell,
            hidden_size=hidden_size,
            num_layers=num_layers,
            quantiles=tuple(quantiles),
            dropout=dropout,
        )
        ForecastConfig(horizon, input_len or 1, **self.network)
        self.fit_config = FitConfig(
            steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed
        )
        self.calibrate = calibrate
        self.corrections: tuple[float, ...] | None = None
        """The interval's conformal corrections (lstmkit.forecast.calibrate), or None."""
        self.net: ForecastNet | None = None
        self.series: list[TimeSeries] = []
        self.scalers: list[SeriesScalers] = []
        self.losses: list[float] = []

    # -- fitting --------------------------------------------------------------------------

    def fit(
        self,
        data,
        *,
        target: str | None = None,
        covariates: Sequence[str] = (),
        series_id: str | None = None,
        fill: str | None = None,
        run: str | Path | None = None,
        source: dict | None = None,
        progress: bool = False,
    ) -> Forecaster:
        """Fit on ``data`` (every value of it: pass only the training part); with ``run``,
        save the run folder and checkpoints there as training goes."""
        options = dict(target=target, covariates=tuple(covariates), series_id=series_id, fill=fill)
        series = as_series(data, **{k: v for k, v in options.items() if v})
        input_len = self.input_len or default_input_len(series, self.horizon, self.season)
        widths = {0 if s.covariates is None else s.covariates.shape[1] for s in series}
        if len(widths) != 1:
            raise DataError("every series must have the same covariates")
        config = ForecastConfig(self.horizon, input_len, features=1 + widths.pop(), **self.network)
        scalers = [fit_scalers(s) for s in series]
        pairs = _window_pairs(series, scalers, config)  # checks each series is long enough
        self.corrections = self._calibration(pairs, config, progress) if self.calibrate else None
        if run is not None:
            record = ckpt.ForecastRun(
                config,
                self.fit_config.to_json(),
                self.season,
                source or {"from": "python"},
                tuple(series),
                tuple(scalers),
                self.corrections,
            )
            ckpt.save_run(Path(run), record)
        self._train(series, scalers, pairs, config, run, resume=False, progress=progress)
        return self

    def _calibration(self, pairs, config: ForecastConfig, progress: bool):
        """Conformal corrections from a network fitted without each series' last windows
        (:mod:`lstmkit.forecast.calibrate`); None when a series is too short to spare them."""
        splits = [holdout(len(x), config.horizon) for x, _ in pairs]
        if any(split is None for split in splits):
            return None
        train = [(x[:end], y[:end]) for (x, y), (end, _) in zip(pairs, splits, strict=True)]
        held = [(x[start:], y[start:]) for (x, y), (_, start) in zip(pairs, splits, strict=True)]
        net, _ = fit_network(
            np.concatenate([x for x, _ in train]),
            np.concatenate([y for _, y in train]),
            config,
            self.fit_config,
            progress=progress,
            desc="calibrate",
        )
        found = corrections(
            net, np.concatenate([x for x, _ in held]), np.concatenate([y for _, y in held])
        )
        return tuple(float(v) for v in found)

    def _train(self, series, scalers, pairs, config, run, *, resume: bool, progress: bool):
        x = np.concatenate([p[0] for p in pairs])
        y = np.concatenate([p[1] for p in pairs])
        self.net, self.losses = fit_network(
            x, y, config, self.fit_config, run=run, resume=resume, progress=progress
        )
        self.series, self.scalers = list(series), list(scalers)

    # -- predicting -----------------------------------------------------------------------

    def predict(self, horizon: int | None = None) -> pd.DataFrame:
        """The forecast of every series after its end: one row per series and step, with
        the median as ``forecast``, the outermost quantiles as ``lower`` and ``upper``
        (calibrated, see :mod:`lstmkit.forecast.calibrate`), and every quantile as
        ``q<level>`` (the outer two calibrated as well)."""
        if self.net is None:
            raise ValueError("predict needs a fitted forecaster: call fit() or load() first")
        trained = self.net.config.horizon
        horizon = trained if horizon is None else horizon
        check_positive_int(horizon, "horizon")
        if horizon > trained:
            raise ValueError(
                f"the model forecasts at most {trained} steps (it was fitted with horizon "
                f"{trained}); got a horizon of {horizon}: fit again with a longer one"
            )
        frames = []
        for s, sc in zip(self.series, self.scalers, strict=True):
            q = forecast_quantiles(self.net, s, sc, horizon, self.corrections)  # (h, Q)
            frame = pd.DataFrame({"series": s.name, "time": s.future_index(horizon)})
            frame["step"] = np.arange(1, horizon + 1)
            frame["forecast"] = q[:, self.net.config.median_index]
            frame["lower"], frame["upper"] = q[:, 0], q[:, -1]
            for k, level in enumerate(self.net.config.quantiles):
                frame[f"q{level:g}"] = q[:, k]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    # -- saving and loading ---------------------------------------------------------------

    @classmethod
    def load(cls, run: str | Path) -> Forecaster:
        """The forecaster saved in run folder ``run``."""
        record = ckpt.load_run(Path(run))
        model = cls._from_record(record)
        net = ForecastNet(record.model)
        ckpt.load_weights(net, ckpt.checkpoint_dir(Path(run)) / ckpt.MODEL_FILE)
        model.net = net.eval()
        return model

    @classmethod
    def resume(cls, run: str | Path, *, progress: bool = False) -> Forecaster:
        """Continue the fit saved in ``run`` exactly where its last checkpoint stopped."""
        record = ckpt.load_run(Path(run))
        model = cls._from_record(record)
        pairs = _window_pairs(record.series, record.scalers, record.model)
        model._train(
            record.series,
            record.scalers,
            pairs,
            record.model,
            Path(run),
            resume=True,
            progress=progress,
        )
        return model

    @classmethod
    def _from_record(cls, record: ckpt.ForecastRun) -> Forecaster:
        c, f = record.model, FitConfig.from_json(record.fit)
        model = cls(
            c.horizon,
            season=record.season,
            cell=c.cell,
            hidden_size=c.hidden_size,
            num_layers=c.num_layers,
            input_len=c.input_len,
            quantiles=c.quantiles,
            dropout=c.dropout,
            steps=f.steps,
            batch_size=f.batch_size,
            learning_rate=f.learning_rate,
            seed=f.seed,
        )
        model.fit_config = f
        model.series, model.scalers = list(record.series), list(record.scalers)
        model.corrections = record.corrections
        model.calibrate = record.corrections is not None
        return model


def _window_pairs(series, scalers, config: ForecastConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each series' training windows (inputs, targets)."""
    return [
        windows(s, sc, config.input_len, config.horizon)
        for s, sc in zip(series, scalers, strict=True)
    ]
