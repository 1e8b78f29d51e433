"""A language model's training curves, from the records of its run's metrics.jsonl."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from lstmkit.plots._figure import Paths, save


def plot_losses(records: Sequence[dict], path: Paths, level: str, title: str = "") -> list[Path]:
    """Training loss (every logged step) and validation loss (every evaluation) against
    tokens seen, in bits per character for character models and nats per word otherwise;
    written atomically to ``path`` (PNG or SVG by suffix, or a list of paths)."""
    scale = 1 / math.log(2) if level == "char" else 1.0
    unit = "bits per character" if level == "char" else "loss per word (nats)"
    train = [(r["tokens"], r["train_loss"] * scale) for r in records if "train_loss" in r]
    evals = [r for r in records if "valid_loss" in r]
    whole = max((r["valid_tokens"] for r in evals), default=0)
    # interim evaluations read the text's beginning, the final one all of it: two series
    valid = [(r["tokens"], r["valid_loss"] * scale) for r in evals if r["valid_tokens"] < whole]
    final = [(r["tokens"], r["valid_loss"] * scale) for r in evals if r["valid_tokens"] == whole]
    fig = Figure(figsize=(7, 4), layout="tight")
    ax = fig.subplots()
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
    if train or evals:  # a legend of nothing only earns a warning
        ax.legend()
    return save(fig, path)
