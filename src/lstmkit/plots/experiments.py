"""The memory experiments' figures: success against lag (``lstmkit horizon``) and the
gradient's norm back through time (``lstmkit gradients``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from lstmkit.plots._figure import Paths, save

if TYPE_CHECKING:  # only the types: the plots sit below the experiments' training
    from lstmkit.experiments.gradients import GradientProfile
    from lstmkit.experiments.horizon import CellHorizon

DPI = 120


def plot_horizon(
    horizons: Sequence[CellHorizon], task: str, budget: str, path: Paths
) -> list[Path]:
    """Success against lag, one line per cell, log-scaled lag axis; written to ``path``
    (PNG or SVG by suffix, or a list of paths)."""
    fig = Figure(figsize=(7, 4.2), layout="tight")
    ax = fig.subplots()
    for h in horizons:
        lags = sorted(h.success)
        ax.plot(lags, [h.success[lag] for lag in lags], marker="o", label=f"{h.cell} ({h.horizon})")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("lag T (log scale)")
    ax.set_ylabel("fraction of seeds that solved it")
    ax.set_title(f"Memory horizon on '{task}' ({budget})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="cell (horizon)", fontsize=8)
    return save(fig, path, dpi=DPI)


def _positive(values: Sequence[float]) -> list[float]:
    """Zeros (dL/dc at the target step itself, float32 underflow) as gaps: log axes cannot
    show them, and a line diving off the bottom would look like a measurement."""
    return [v if v > 0 else math.nan for v in values]


def plot_gradients(
    panels: Sequence[tuple[str, Sequence[GradientProfile]]], title: str, path: Paths
) -> list[Path]:
    """One panel per (label, profiles): ||dL/dh_t|| (solid) and ||dL/dc_t|| (dashed, LSTMs)
    against distance back in time, log-scaled norms; written to ``path`` (PNG or SVG by
    suffix, or a list of paths)."""
    fig = Figure(figsize=(6 * len(panels), 4.2), layout="tight")
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (label, profiles) in zip(axes[0], panels, strict=True):
        for i, profile in enumerate(profiles):
            color = f"C{i}"
            ax.plot(_positive(profile.hidden), color=color, label=f"{profile.cell}: dL/dh")
            if profile.cell_state is not None:
                ax.plot(
                    _positive(profile.cell_state),
                    color=color,
                    ls="--",
                    label=f"{profile.cell}: dL/dc",
                )
        ax.set_yscale("log")
        ax.set_xlabel("steps back from the target")
        ax.set_ylabel("mean gradient norm (log scale)")
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    return save(fig, path, dpi=DPI)
