"""Rolling-origin backtests: lstmkit cells and the baselines on the same folds.

At each cut-off (:func:`lstmkit.forecast.folds.rolling_origins`) every method sees the
series up to the cut-off and nothing after it, forecasts the next ``horizon`` steps, and is
scored against them with MAE, RMSE, sMAPE and MASE (scaled on that fold's own history).
The lstmkit forecasters are fitted afresh at each cut-off, their scalers included. Every
method's central interval at the cells' nominal level (quantiles 0.1 to 0.9: 80%) is scored
by its coverage: the cells' from their outer quantiles, the baselines' from statsmodels
(ETS, ARIMA) or the normal formulas (naive, seasonal naive).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstmkit._atomic import write_atomic
from lstmkit.forecast.api import Forecaster, forecast_quantiles
from lstmkit.forecast.baselines import BASELINES
from lstmkit.forecast.folds import backtest_baselines, rolling_origins
from lstmkit.forecast.metrics import METRICS, coverage, score
from lstmkit.forecast.series import TimeSeries
from lstmkit.progress import Progress

POINT_METRICS = tuple(METRICS)


def min_train(horizon: int, season: int | None) -> int:
    """The shortest history a fold may have: four horizons, and three seasons where there
    is a season, so that every method (seasonal ARIMA and ETS included) can fit."""
    return max(4 * horizon, 3 * season if season else 0)


@dataclass
class Backtest:
    """Every fold's scores, and the last fold's forecasts for the plot."""

    horizon: int
    season: int | None
    interval: str
    """The interval every method gives, e.g. "0.1-0.9 quantiles (80%)"."""
    records: list[dict] = field(default_factory=list)
    last_fold: dict = field(default_factory=dict)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.records))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per method, the mean of each metric over every fold of every series."""
        out = {}
        for method in self.methods():
            rows = [r for r in self.records if r["method"] == method]
            means = {m: float(np.mean([r[m] for r in rows])) for m in POINT_METRICS}
            covered = [r["coverage"] for r in rows if "coverage" in r]
            if covered:  # folds whose history was too short for an interval have none
                means["coverage"] = float(np.mean(covered))
            means["seconds"] = float(np.mean([r["seconds"] for r in rows]))
            out[method] = means
        return out

    def table(self) -> str:
        """The summary as aligned text; the best mean of each point metric is starred."""
        summary = self.summary()
        best = {m: min(s[m] for s in summary.values()) for m in POINT_METRICS}
        folds = len({(r["series"], r["cutoff"]) for r in self.records})
        lines = [
            f"{folds} folds, horizon {self.horizon}, season {self.season}; means over the "
            "folds (* best)",
            f"{'method':<16}{'MAE':>11} {'RMSE':>11} {'sMAPE %':>11} {'MASE':>11} "
            f"{'coverage':>9} {'s/fit':>7}",
        ]
        for method, s in summary.items():
            # a space between columns, however long a number in scientific notation gets
            cells = " ".join(
                f"{s[m]:.4g}{'*' if s[m] == best[m] else ' '}".rjust(11) for m in POINT_METRICS
            )
            cover = f"{s['coverage']:.0%}" if "coverage" in s else "-"
            lines.append(f"{method:<16}{cells} {cover:>9} {s['seconds']:>7.2f}")
        lines.append(f"coverage: the share of actual values inside each method's {self.interval}")
        return "\n".join(lines)

    def write(self, out: Path, *, title: str = "") -> list[Path]:
        """backtest.json (every record and the summary) and backtest.png (the last fold)."""
        from lstmkit.plots import plot_forecast

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        data = {
            "horizon": self.horizon,
            "season": self.season,
            "interval": self.interval,
            "summary": self.summary(),
            "records": self.records,
        }
        write_atomic(out / "backtest.json", (json.dumps(data, indent=2) + "\n").encode())
        f = self.last_fold
        interval = None
        if f.get("interval"):
            name, lower, upper = f["interval"]
            interval = (f["times"], lower, upper, f"{name}: {self.interval}")
        paths = plot_forecast(
            (f["history_times"], f["history"]),
            {m: (f["times"], v) for m, v in f["forecasts"].items()},
            out / "backtest.png",
            interval=interval,
            actual=(f["times"], f["actual"]),
            title=title or f"{f['series']}: last fold",
        )
        return [out / "backtest.json", *paths]


def backtest(
    series: Sequence[TimeSeries],
    horizon: int,
    season: int | None,
    folds: int,
    models: Mapping[str, Forecaster],
    *,
    baselines: Mapping = BASELINES,
    progress: bool = True,
) -> Backtest:
    """Score ``models`` (lstmkit forecasters, fitted afresh per fold) and ``baselines``
    (:func:`lstmkit.forecast.folds.backtest_baselines`) on ``folds`` rolling origins of
    every series; the last fold of the first series is kept for the plot."""
    levels = next(iter(models.values())).network["quantiles"] if models else (0.1, 0.9)
    share = round(levels[-1] - levels[0], 6)  # the nominal level, e.g. 0.8
    result = Backtest(horizon, season, f"{levels[0]:g}-{levels[-1]:g} quantiles ({share:.0%})")
    cutoffs = {
        s.name: rolling_origins(len(s), horizon, folds, min_train=min_train(horizon, season))
        for s in series
    }
    total = sum(map(len, cutoffs.values())) * (len(models) + len(baselines))
    with Progress(total=total, desc="backtest", disable=not progress) as bar:
        for s in series:
            # the baselines' intervals at the cells' nominal level, so coverages compare
            made = backtest_baselines(
                s.values, horizon, season, cutoffs[s.name], baselines, level=share
            )
            for r in made:
                result.records.append(
                    {
                        "series": s.name,
                        "fold": r.fold,
                        "cutoff": r.cutoff,
                        "method": r.method,
                        **r.metrics,
                        "model": r.model,
                        "seconds": r.seconds,
                    }
                )
            bar.update(len(made))
            for fold, cutoff in enumerate(cutoffs[s.name]):
                forecasts = {r.method: r.forecast for r in made if r.cutoff == cutoff}
                interval = _fit_cells(
                    s, fold, cutoff, horizon, season, models, result, forecasts, bar
                )
                if s is series[0] and cutoff == cutoffs[s.name][-1]:
                    result.last_fold = _last_fold(s, cutoff, horizon, forecasts, interval)
    return result


def _fit_cells(s, fold, cutoff, horizon, season, models, result, forecasts, bar):
    """Fit every lstmkit cell on the history before ``cutoff`` and score it; each cell's
    median goes into ``forecasts``; returns the first cell's interval (name, lower, upper)."""
    history, actual = s.values[:cutoff], s.values[cutoff : cutoff + horizon]
    interval = None
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(s.head(cutoff))
        q = forecast_quantiles(
            model.net, model.series[0], model.scalers[0], horizon, model.corrections
        )
        seconds = time.perf_counter() - start
        forecast = q[:, model.net.config.median_index]
        result.records.append(
            {
                "series": s.name,
                "fold": fold,
                "cutoff": cutoff,
                "method": name,
                **score(actual, forecast, history, season),
                "coverage": coverage(actual, q[:, 0], q[:, -1]),
                "seconds": seconds,
            }
        )
        forecasts[name] = forecast
        interval = interval or (name, q[:, 0], q[:, -1])
        bar.update()
    return interval


def _last_fold(s: TimeSeries, cutoff: int, horizon: int, forecasts: dict, interval) -> dict:
    shown = max(0, cutoff - 5 * horizon)  # enough history to see the pattern
    return {
        "series": s.name,
        "history_times": s.index[shown:cutoff],
        "history": s.values[shown:cutoff],
        "times": s.index[cutoff : cutoff + horizon],
        "actual": s.values[cutoff : cutoff + horizon],
        "forecasts": forecasts,
        "interval": interval,
    }
