"""The France probes (lstmkit.lm.facts): accuracy and confidence against distance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from lstmkit.plots._figure import Paths, save

if TYPE_CHECKING:  # only the type: the plots sit below the language models' modules
    from lstmkit.lm.facts import FactScore


def plot_fact_curves(curves: dict[str, Sequence[FactScore]], path: Paths) -> list[Path]:
    """Accuracy and confidence against distance, one line per model; written to ``path``
    (PNG or SVG by suffix, or a list of paths)."""
    fig = Figure(figsize=(10, 4), layout="tight")
    axes = fig.subplots(1, 2, sharex=True)
    distances = sorted({s.distance for scores in curves.values() for s in scores})
    for label, scores in curves.items():
        x = [s.distance for s in scores]
        axes[0].plot(x, [s.accuracy for s in scores], "o-", label=label)
        axes[1].plot(x, [s.confidence for s in scores], "o-", label=label)
    for ax, name in zip(
        axes, ("accuracy (top word is right)", "confidence (P of the answer)"), strict=True
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(distances, [str(d) for d in distances])  # the distances, not powers of 2
        ax.minorticks_off()
        ax.set_xlabel("distance from the country to the answer (words)")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        ax.axhline(0.1, color="grey", lw=0.8, ls=":")  # chance among the ten languages
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle('"I grew up in France ... I speak fluent ___"')
    return save(fig, path)
