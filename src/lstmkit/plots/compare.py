"""The figures of ``lstmkit compare``, after Greff et al. (2015, "LSTM: A Search Space
Odyssey"): the metric per cell (their Fig. 3) and the metric against the learning rate
(their Fig. 4's idea, one panel per cell).

- :func:`plot_metric_by_cell`: one column per cell; every run of every setting as a light
  grey dot, the best setting's seeds as a box with their dots on top. The grey cloud shows
  how forgiving the cell is of its hyperparameters, the box what it reaches when tuned.
- :func:`plot_metric_by_lr`: one small panel per cell, every run's metric against its
  learning rate (log axis), the marker's colour the hidden size; the paired design means
  every panel has its points at the same rates.

A diverged run (infinite metric) cannot be placed on the axis; it is left out, and the
figure's title says how many were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from lstmkit.plots._figure import Paths, save

if TYPE_CHECKING:  # only the types: the plots sit below the experiments
    from lstmkit.experiments.compare import CellSummary, CompareRun

DPI = 120
_JITTER = 0.12  # half-width of the grey cloud around each cell's column


def _jitter(count: int) -> list[float]:
    """Evenly spread offsets in [-_JITTER, _JITTER]: the same picture every time."""
    if count == 1:
        return [0.0]
    return [-_JITTER + 2 * _JITTER * k / (count - 1) for k in range(count)]


def _heading(title: str, runs: Sequence[CompareRun]) -> str:
    """The title broken at its semicolons (the task, then the metric), and how many
    diverged runs could not be drawn."""
    diverged = sum(1 for r in runs if not math.isfinite(r.metric))
    if diverged:
        title += f"; {diverged} diverged run(s) not shown"
    return title.replace("; ", "\n")


def _log_scale_if_wide(ax, values: Sequence[float]) -> None:
    """A log axis when the finite values span more than a factor of 20 (a diverged cell's
    thousands of bits beside everyone's 2 to 5 would flatten a linear axis)."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) > 20 * min(finite):
        ax.set_yscale("log")


def plot_metric_by_cell(
    summaries: Sequence[CellSummary],
    runs: Sequence[CompareRun],
    metric: str,
    title: str,
    path: Paths,
) -> list[Path]:
    """The metric per cell: all runs in grey, the best setting's seeds as a box and dots;
    written to ``path`` (PNG or SVG by suffix, or a list of paths)."""
    cells = [s.cell for s in summaries]
    fig = Figure(figsize=(max(6.0, 0.6 * len(cells) + 2), 4.5), layout="tight")
    ax = fig.subplots()
    best_values = []
    for x, summary in enumerate(summaries):
        mine = [r for r in runs if r.cell == summary.cell and math.isfinite(r.metric)]
        everything = sorted(r.metric for r in mine)
        ax.scatter(
            [x + d for d in _jitter(len(everything))] if everything else [],
            everything,
            s=10,
            color="0.75",
            zorder=1,
            label="every setting" if x == 0 else None,
        )
        best = [r.metric for r in mine if r.trial == summary.best_trial]
        best_values.append(best)
        ax.scatter(
            [x] * len(best),
            best,
            s=18,
            color="C0",
            zorder=3,
            label="best setting's seeds" if x == 0 else None,
        )
    ax.boxplot(
        best_values,
        positions=range(len(cells)),
        widths=0.5,
        showfliers=False,
        medianprops={"color": "C1", "linewidth": 2},
        zorder=2,
    )
    ax.set_xticks(range(len(cells)), cells, rotation=45, ha="right")
    _log_scale_if_wide(ax, [r.metric for r in runs])
    ax.set_ylabel(metric)
    ax.set_title(_heading(title, runs), fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path, dpi=DPI)


def plot_metric_by_lr(
    cells: Sequence[str],
    runs: Sequence[CompareRun],
    metric: str,
    title: str,
    path: Paths,
) -> list[Path]:
    """One panel per cell: every run's metric against its learning rate (log axis), the
    colour the hidden size; written to ``path`` (PNG or SVG by suffix, or a list of
    paths)."""
    columns = min(len(cells), 6)
    rows = math.ceil(len(cells) / columns)
    fig = Figure(figsize=(2.6 * columns + 0.8, 2.4 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    hiddens = sorted({r.hidden for r in runs})
    colors = {h: f"C{k % 10}" for k, h in enumerate(hiddens)}
    for k, ax in enumerate(axes.flat):
        if k >= len(cells):
            ax.set_visible(False)
            continue
        mine = [r for r in runs if r.cell == cells[k] and math.isfinite(r.metric)]
        for h in hiddens:
            points = [r for r in mine if r.hidden == h]
            ax.scatter(
                [r.lr for r in points],
                [r.metric for r in points],
                s=14,
                color=colors[h],
                label=f"H={h}" if k == 0 else None,
            )
        ax.set_xscale("log")
        _log_scale_if_wide(ax, [r.metric for r in runs])  # shared axes: every run decides
        ax.set_title(cells[k], fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("learning rate (log)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(metric.split(" (")[0], fontsize=8)  # the title names it in full
    fig.legend(loc="outside lower center", fontsize=8, ncols=len(hiddens), title="hidden size")
    fig.suptitle(_heading(title, runs), fontsize=9)
    return save(fig, path, dpi=DPI)
