"""A forecaster's run folder: everything ``lstmkit forecast predict RUN`` needs, with no
other input, in JSON and safetensors (never pickle), written atomically.

    RUN/
      config.json     format, the network's config, the fit settings, the season, where the
                      data came from, the interval's calibration, and every series as
                      fitted: timestamps, values, covariates and its scalers (so that
                      predict reads the last window and the plots draw the history)
      checkpoint/     model.safetensors, trainer.safetensors, trainer.json
                      (lstmkit.checkpoints: atomic swap, exact resume)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from lstmkit import checkpoints
from lstmkit.checkpoints import (
    MODEL_FILE,
    CheckpointError,
    load_trainer,
    read_config,
    read_tensors,
    write_json_atomic,
)
from lstmkit.forecast.model import ForecastConfig
from lstmkit.forecast.series import TimeSeries
from lstmkit.forecast.windows import SeriesScalers

FORMAT = "lstmkit-forecast/1"
CONFIG = "config.json"
MADE_BY = "'lstmkit forecast fit'"

__all__ = ["MODEL_FILE", "CheckpointError", "load_trainer"]  # used from here by forecast.train


@dataclass(frozen=True)
class ForecastRun:
    """What config.json holds."""

    model: ForecastConfig
    fit: dict
    """The fit settings (lstmkit.forecast.train.FitConfig's fields)."""
    season: int | None
    source: dict
    """Where the data came from: the name or path and the options that read it."""
    series: tuple[TimeSeries, ...]
    scalers: tuple[SeriesScalers, ...]
    corrections: tuple[float, ...] | None = None
    """The interval's conformal corrections per horizon step (scaled units), or None."""


def series_to_json(s: TimeSeries) -> dict:
    dated = isinstance(s.index, pd.DatetimeIndex)
    return {
        "name": s.name,
        "freq": s.freq,
        "index": [t.isoformat() for t in s.index] if dated else [int(t) for t in s.index],
        "dated": dated,
        "values": s.values.tolist(),
        "covariates": None if s.covariates is None else s.covariates.tolist(),
        "covariate_names": list(s.covariate_names),
    }


def series_from_json(data: dict) -> TimeSeries:
    if data["dated"]:
        index = pd.DatetimeIndex(data["index"], freq=data["freq"])
    else:
        index = pd.Index(data["index"])
    covariates = data["covariates"]
    if covariates is not None:
        covariates = np.asarray(covariates, dtype=np.float64)
    return TimeSeries(
        data["name"],
        np.asarray(data["values"], dtype=np.float64),
        index,
        data["freq"],
        covariates,
        tuple(data["covariate_names"]),
    )


def save_run(run: Path, config: ForecastRun) -> None:
    Path(run).mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        Path(run) / CONFIG,
        {
            "format": FORMAT,
            "model": config.model.to_json(),
            "fit": config.fit,
            "season": config.season,
            "source": config.source,
            "calibration": None if config.corrections is None else list(config.corrections),
            "series": [
                {**series_to_json(s), "scalers": sc.to_json()}
                for s, sc in zip(config.series, config.scalers, strict=True)
            ],
        },
    )


def load_run(run: Path) -> ForecastRun:
    data = read_config(run, CONFIG, FORMAT, MADE_BY)
    path = Path(run) / CONFIG
    try:
        series = tuple(series_from_json(s) for s in data["series"])
        scalers = tuple(SeriesScalers.from_json(s["scalers"]) for s in data["series"])
        return ForecastRun(
            ForecastConfig.from_json(data["model"]),
            dict(data["fit"]),
            data["season"],
            dict(data["source"]),
            series,
            scalers,
            None if data.get("calibration") is None else tuple(map(float, data["calibration"])),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: damaged or from another version ({err})") from None


def save_checkpoint(run: Path, weights, trainer, trainer_json: dict) -> None:
    checkpoints.save_checkpoint(run, weights, trainer, trainer_json, format=FORMAT)


def checkpoint_dir(run: Path) -> Path:
    return checkpoints.checkpoint_dir(run, MADE_BY)


def load_weights(net: nn.Module, path: Path) -> None:
    """Load ``path`` into ``net``; CheckpointError naming what does not fit."""
    weights = read_tensors(path)
    expected = net.state_dict()
    wrong = sorted(set(weights) ^ set(expected)) + [
        k for k in expected if k in weights and weights[k].shape != expected[k].shape
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: the weights do not fit the run's config.json (from another model?): "
            f"{', '.join(wrong[:3])}"
        )
    net.load_state_dict(weights)
