"""How well a language model predicts a text: mean loss per token, in nats, and what it
means per level: bits per character (loss / ln 2) for character models, perplexity
(exp(loss)) for word models.

Every token after the first is predicted once, from all the text before it in its stream
(:func:`lstmkit.lm.batches.evaluation_chunks`), with the model in eval mode (no dropout).
Tokens the vocabulary lacks count as UNK: the model pays for them its probability of UNK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.lm.batches import evaluation_chunks
from lstmkit.lm.model import map_state


@dataclass(frozen=True)
class Evaluation:
    loss: float
    """Mean negative log-likelihood per predicted token, in nats."""
    tokens: int
    """Tokens predicted."""
    level: str
    """'char' or 'word'."""

    @property
    def bits_per_token(self) -> float:
        return self.loss / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 700.0))  # exp overflows a float past ~709

    def to_json(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"loss": self.loss, "tokens": self.tokens}
        if self.level == "char":
            out["bpc"] = self.bits_per_token
        else:
            out["perplexity"] = self.perplexity
        return out

    def summary(self) -> str:
        """'loss 1.234, 1.780 bits per character (299,000 tokens)' or '... perplexity 5.6'."""
        measure = (
            f"{self.bits_per_token:.3f} bits per character"
            if self.level == "char"
            else f"perplexity {self.perplexity:.2f}"
        )
        return f"loss {self.loss:.4f}, {measure} ({self.tokens:,} tokens)"


@torch.no_grad()
def evaluate_ids(
    model: nn.Module,
    ids: Tensor,
    level: str,
    *,
    batch_size: int = 16,
    seq_len: int = 256,
    max_tokens: int | None = None,
) -> Evaluation:
    """The model's loss on ``ids`` (N,), or on its first ``max_tokens + 1`` ids."""
    if max_tokens is not None:
        ids = ids[: max_tokens + 1]
    if ids.numel() < 2:
        raise ValueError(f"evaluation needs at least 2 tokens, got {ids.numel()}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    try:
        for inputs, targets, is_tail in evaluation_chunks(ids, batch_size, seq_len):
            if is_tail and state is not None:
                state = map_state(state, lambda t: t[:, -1:])  # the last stream's
            logits, state = model(inputs.to(device), state)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(),
                targets.to(device).reshape(-1),
                reduction="sum",
            )
            total += loss.item()
            count += targets.numel()
    finally:
        model.train(was_training)
    return Evaluation(total / count, count, level)
