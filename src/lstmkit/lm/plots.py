"""The plots of the language-model commands: a run's loss curves (from its metrics
records) and the France probes' accuracy and confidence against distance."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed or wanted
import matplotlib.pyplot as plt

from lstmkit.lm.checkpoint import write_atomic
from lstmkit.lm.facts import FactScore


def plot_losses(records: Sequence[dict], path: Path, level: str, title: str = "") -> None:
    """Training loss (every logged step) and validation loss (every evaluation) against
    tokens seen, in bits per character for character models and nats per word otherwise;
    written atomically to ``path`` as PNG."""
    scale = 1 / math.log(2) if level == "char" else 1.0
    unit = "bits per character" if level == "char" else "loss per word (nats)"
    train = [(r["tokens"], r["train_loss"] * scale) for r in records if "train_loss" in r]
    evals = [r for r in records if "valid_loss" in r]
    whole = max((r["valid_tokens"] for r in evals), default=0)
    # interim evaluations read the text's beginning, the final one all of it: two series
    valid = [(r["tokens"], r["valid_loss"] * scale) for r in evals if r["valid_tokens"] < whole]
    final = [(r["tokens"], r["valid_loss"] * scale) for r in evals if r["valid_tokens"] == whole]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), lw=1, alpha=0.8, label="training (batch)")
    if valid:
        ax.plot(*zip(*valid, strict=True), "o-", lw=1.5, label="validation (its beginning)")
    if final:
        ax.plot(*zip(*final, strict=True), "*", ms=12, label="validation (all of it)")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel(unit)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    _write_png(fig, path)


def plot_fact_curves(curves: dict[str, Sequence[FactScore]], path: Path) -> None:
    """Accuracy and confidence against distance, one line per model, as a PNG."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
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
    _write_png(fig, path)


def _write_png(fig, path: Path) -> None:
    """Save ``fig`` to ``path`` as PNG, atomically, and free it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(Path(path), buffer.getvalue())
