"""The forecasting figure: the history, the actual future where it is known, each method's
forecast, and the network's prediction interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lstmkit.plots._figure import Paths, save


def plot_forecast(
    history: tuple[Sequence, np.ndarray],
    forecasts: Mapping[str, tuple[Sequence, np.ndarray]],
    path: Paths,
    *,
    interval: tuple[Sequence, np.ndarray, np.ndarray, str] | None = None,
    actual: tuple[Sequence, np.ndarray] | None = None,
    title: str = "",
    units: str = "",
) -> list[Path]:
    """``history`` and ``actual`` as (times, values); ``forecasts`` name -> (times,
    values); ``interval`` (times, lower, upper, label) shaded. PNG or SVG by suffix."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(history[0], history[1], color="black", lw=1.2, label="history")
    if actual is not None:
        ax.plot(actual[0], actual[1], color="black", lw=1.2, ls="--", label="actual")
    if interval is not None:
        times, lower, upper, label = interval
        ax.fill_between(times, lower, upper, color="C0", alpha=0.2, label=label)
    for k, (name, (times, values)) in enumerate(forecasts.items()):
        ax.plot(times, values, color=f"C{k}", lw=1.6, marker="." if len(values) < 40 else None,
                label=name)  # fmt: skip
    ax.set_ylabel(units)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)
