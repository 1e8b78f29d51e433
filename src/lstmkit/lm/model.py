"""The language model: embedding, a stack of any lstmkit recurrent layer, a softmax head.

    ids (B, T) -> embedding (B, T, E) -> dropout -> recurrent stack (B, T, H) -> dropout
        -> linear head (B, T, V) = logits of the next token at every step

Dropout follows Zaremba et al. (2014): on the embeddings, between the recurrent layers and
before the head, never on the recurrent connections. ``tie_weights`` shares the embedding
matrix with the head (Press & Wolf 2017; Inan et al. 2017), which needs E = H. The
resolved :class:`LMConfig` is saved beside the weights, so a checkpoint rebuilds its model
with no other input (see :mod:`lstmkit.lm.checkpoint`).

The model's state is a list with one entry, the stack's own state (``(h, c)`` for the
LSTMs, ``h`` for GRU and RNN, each (num_layers, B, H)): the shape the decoders in
:mod:`lstmkit.lm.decode` expect, with the batch on dim 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from lstmkit._dataclass_json import dataclass_from_json
from lstmkit.layers.named import MODERN_CELLS

LM_CELLS: tuple[str, ...] = tuple(MODERN_CELLS)


@dataclass(frozen=True)
class LMConfig:
    """Everything needed to rebuild a language model; saved as JSON beside its weights."""

    vocab_size: int
    """Tokens in the vocabulary, UNK included."""
    cell: str = "lstm"
    """Any modern lstmkit cell: lstm, gru, rnn, peephole, cifg, lstm-noforget."""
    hidden_size: int = 256
    """Units per recurrent layer."""
    num_layers: int = 2
    """Recurrent layers stacked."""
    embedding_size: int | None = None
    """Embedding width; None means hidden_size."""
    dropout: float = 0.0
    """Dropout on embeddings, between layers and before the head (0 turns it off)."""
    tie_weights: bool = False
    """Share the embedding matrix with the head; needs embedding_size == hidden_size."""
    forget_bias: float | None = 1.0
    """Initial forget-gate bias of the LSTMs (Jozefowicz et al. 2015); None keeps torch's."""

    def __post_init__(self) -> None:
        check_lm_config(self)

    @property
    def embedding_width(self) -> int:
        return self.hidden_size if self.embedding_size is None else self.embedding_size

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> LMConfig:
        """The config of :meth:`to_json`; unknown or missing keys raise ValueError."""
        if isinstance(data, dict) and "vocab_size" not in data:
            raise ValueError("the model config has no 'vocab_size'")
        return dataclass_from_json(cls, data, "model config")


def check_lm_config(config: LMConfig) -> None:
    """Raise ValueError naming the first field that is out of range."""

    def positive(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    positive("vocab_size", config.vocab_size)
    positive("hidden_size", config.hidden_size)
    positive("num_layers", config.num_layers)
    if config.embedding_size is not None:
        positive("embedding_size", config.embedding_size)
    if config.cell not in MODERN_CELLS:
        raise ValueError(f"unknown cell {config.cell!r}; expected one of {', '.join(LM_CELLS)}")
    if not (isinstance(config.dropout, int | float) and 0.0 <= config.dropout < 1.0):
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout!r}")
    if config.tie_weights and config.embedding_width != config.hidden_size:
        raise ValueError(
            f"tie_weights needs embedding_size == hidden_size, got {config.embedding_width} "
            f"and {config.hidden_size}"
        )
    bias = config.forget_bias
    if bias is not None and not (isinstance(bias, int | float) and math.isfinite(bias)):
        raise ValueError(f"forget_bias must be a finite number or None, got {bias!r}")


class LanguageModel(nn.Module):
    """Next-token logits from token ids; ``forward(ids, state=None) -> (logits, state)``."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        cell = MODERN_CELLS[config.cell]
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_width)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = cell.layer(
            config.embedding_width,
            config.hidden_size,
            config.forget_bias,
            num_layers=config.num_layers,
            dropout=config.dropout,
        )
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        self._init_embedding_and_head()
        if config.tie_weights:
            self.head.weight = self.embedding.weight

    def _init_embedding_and_head(self) -> None:
        # torch's N(0, 1) embedding makes the first logits of a tied head huge; a small
        # uniform range (as PyTorch's word-language-model example uses) starts near uniform.
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.uniform_(self.head.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: Tensor, state: list | None = None, *, return_trace: bool = False):
        """``(logits, state)``, plus the recurrent stack's :class:`~lstmkit.trace.Trace`
        when ``return_trace`` (what the explorer and the plots show)."""
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(
                f"LanguageModel expects int64 token ids of shape (batch, time), got "
                f"{ids.dtype} {tuple(ids.shape)}"
            )
        x = self.dropout(self.embedding(ids))  # (B, T, E)
        hx = None if state is None else state[0]
        y, hx, *trace = self.rnn(x, hx, return_trace=return_trace)  # (B, T, H)
        logits = self.head(self.dropout(y))  # (B, T, V)
        return (logits, [hx], *trace)


def map_state(state, fn):
    """``fn`` applied to every tensor of a state (a Tensor, or lists and tuples of them),
    the structure kept; None stays None."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(part, fn) for part in state)
    raise TypeError(
        f"a state must be a Tensor, or a list or tuple of them, got {type(state).__name__}"
    )


def detach_state(state: list | None) -> list | None:
    """The state cut from its graph: truncated BPTT carries values, not gradients."""
    return map_state(state, Tensor.detach)


def state_tensors(state: list | None) -> list[Tensor]:
    """The state's tensors in a fixed order (for saving in a checkpoint)."""
    if state is None:
        return []
    out: list[Tensor] = []
    for entry in state:
        out.extend([entry] if isinstance(entry, Tensor) else list(entry))
    return out


def state_from_tensors(config: LMConfig, tensors: list[Tensor]) -> list | None:
    """The inverse of :func:`state_tensors` for a model of ``config``."""
    if not tensors:
        return None
    count = MODERN_CELLS[config.cell].state_count
    if len(tensors) != count:
        raise ValueError(f"a {config.cell} state has {count} tensor(s), got {len(tensors)}")
    return [tuple(tensors)] if count > 1 else [tensors[0]]


def count_parameters(model: nn.Module) -> int:
    """Distinct trainable parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
