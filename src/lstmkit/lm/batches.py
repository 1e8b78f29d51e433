"""Token ids laid out for truncated backpropagation through time.

The corpus is one long sequence of N ids. It is cut into B equal streams (rows) that are
read side by side, T steps at a time (char-rnn's layout, and PyTorch's word-language-model
example's):

    ids  a b c d e f g h i j k l m n o p q r s t u v w x   (N = 24, B = 3, T = 3)
    row 0: a b c | d e f | g     targets: b c d | e f g
    row 1: h i j | k l m | n              i j k | l m n
    row 2: o p q | r s t | u              p q r | s t u
           batch 0  batch 1

Row r of batch k+1 continues row r of batch k, so the hidden state the model ends batch k
with is the right state to start batch k+1 with: training carries it across batches
(detached) and sees dependencies longer than T. Each epoch starts its rows ``offset``
tokens later, offset drawn from [0, T) by a generator seeded with (seed, epoch), so the
cuts between batches fall elsewhere every epoch; epoch 0 starts at 0. A batch is fully
determined by (epoch, index): that pair is all a checkpoint needs to resume the data.

Distributed training gives each of W processes the rows ``rank * B/W`` to
``(rank + 1) * B/W``: together they read exactly the batch one process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class CorpusTooShortError(ValueError):
    """The text has fewer tokens than one batch needs."""


@dataclass(frozen=True)
class StreamBatches:
    """Batches (inputs, targets), each (rows, T), of one epoch after another."""

    ids: Tensor
    """(N,) int64 token ids of the whole training text."""
    batch_size: int
    seq_len: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.batch_size % self.world_size:
            raise ValueError(
                f"batch size {self.batch_size} must be divisible by the {self.world_size} "
                "processes that share it"
            )
        needed = self.batch_size * self.seq_len + self.seq_len
        if self.ids.numel() < needed:
            raise CorpusTooShortError(
                f"the training text has {self.ids.numel():,} tokens, fewer than one batch of "
                f"{self.batch_size} x {self.seq_len} needs ({needed:,}); use a longer text or "
                "a smaller --batch-size or --seq-len"
            )

    def offset(self, epoch: int) -> int:
        """Where epoch ``epoch``'s rows start: 0, then a seeded draw from [0, T)."""
        if epoch == 0:
            return 0
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return int(torch.randint(self.seq_len, (1,), generator=g))

    def batches_per_epoch(self, epoch: int) -> int:
        row_length = (self.ids.numel() - self.offset(epoch) - 1) // self.batch_size
        return row_length // self.seq_len

    def batch(self, epoch: int, index: int) -> tuple[Tensor, Tensor]:
        """Inputs and targets (B / world_size, T) of batch ``index`` of ``epoch``."""
        count = self.batches_per_epoch(epoch)
        if not 0 <= index < count:
            raise IndexError(f"epoch {epoch} has {count} batches, asked for batch {index}")
        start = self.offset(epoch)
        row_length = (self.ids.numel() - start - 1) // self.batch_size
        inputs = self.ids[start : start + self.batch_size * row_length]
        targets = self.ids[start + 1 : start + 1 + self.batch_size * row_length]
        rows = self.batch_size // self.world_size
        mine = slice(self.rank * rows, (self.rank + 1) * rows)
        cols = slice(index * self.seq_len, (index + 1) * self.seq_len)
        x = inputs.view(self.batch_size, row_length)[mine, cols]  # (B/W, T)
        y = targets.view(self.batch_size, row_length)[mine, cols]
        return x, y


def evaluation_chunks(ids: Tensor, batch_size: int, seq_len: int):
    """Yield (inputs, targets) chunks that cover every token of ``ids`` but the first as a
    target exactly once, as ``(inputs, targets, is_tail)``: ``min(batch_size, N - 1)``
    streams read side by side, T steps at a time, the last chunk shorter; then the leftover
    tail (fewer tokens than there are streams) as one single-row chunk with ``is_tail``
    True. The tail starts where the last stream ends, so the caller carries the state across
    chunks and continues the tail from the last row's state."""
    n = ids.numel() - 1
    if n < 1:
        return
    rows = min(batch_size, n)
    row_length = n // rows
    inputs = ids[: rows * row_length].view(rows, row_length)
    targets = ids[1 : rows * row_length + 1].view(rows, row_length)
    for start in range(0, row_length, seq_len):
        yield inputs[:, start : start + seq_len], targets[:, start : start + seq_len], False
    tail = rows * row_length
    if tail < n:
        yield ids[tail:n].view(1, -1), ids[tail + 1 : n + 1].view(1, -1), True
