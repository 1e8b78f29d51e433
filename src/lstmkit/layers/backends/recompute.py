"""Recomputation: trade time for memory in the backward pass, for any backend that runs one
direction at a time.

The steps of a direction are cut into chunks of ``every`` steps. Each chunk runs under
``torch.utils.checkpoint`` (non-reentrant), which keeps only what goes into the chunk (its
slice of the input, the state it starts from, the weights) and throws away what the chunk's
backward would read; the backward reruns the chunk's forward to get it back. So the
activations kept for the backward shrink from T steps' worth to the T/every chunk-start
states, at the cost of a second forward pass. A reversed direction runs its chunks last to
first, carrying the state the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from lstmkit.cellmath.family import CellFamily, Weights


def run_direction(
    direction_fn: Callable,
    every: int,
    family: CellFamily,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Weights,
    mask: Tensor | None,
    reverse: bool,
    record: bool,
) -> tuple[Tensor, tuple[Tensor, ...], None]:
    """``direction_fn``'s contract, in checkpointed chunks; no traces (they would be the very
    activations this drops), so the layer does not come here for a traced call."""
    if record:
        raise ValueError("recomputation keeps no trace; run traced calls without it")
    starts = list(range(0, x.shape[0], every))
    outputs: dict[int, Tensor] = {}
    for start in reversed(starts) if reverse else starts:
        piece = slice(start, start + every)
        outputs[start], state = checkpoint(
            _chunk, direction_fn, family, x[piece], state, weights,
            None if mask is None else mask[piece], reverse, use_reentrant=False,
        )  # fmt: skip
    return torch.cat([outputs[start] for start in starts]), state, None


def _chunk(direction_fn, family, x, state, weights, mask, reverse):
    output, final, _ = direction_fn(family, x, state, weights, mask, reverse, False)
    return output, final


__all__ = ["run_direction"]
