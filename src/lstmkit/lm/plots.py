"""The loss-curve plot of a training run, drawn from its metrics records."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed or wanted
import matplotlib.pyplot as plt

from lstmkit.lm.checkpoint import write_atomic


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
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(Path(path), buffer.getvalue())
