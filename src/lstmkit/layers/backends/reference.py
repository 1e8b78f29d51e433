"""The reference backend: lstmkit's own time loop in plain PyTorch, for every cell family.

One function per level: :func:`run_direction` loops one layer in one direction over time,
:func:`run_layers` stacks layers and directions. Autograd differentiates the loop. Legend:
T time, B batch, I input size, G gate blocks, H hidden size, R state[0] (output) size,
L layers, D directions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import CellFamily, Weights
from lstmkit.layers.regularize import LoopNoise


def run_direction(
    family: CellFamily,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Weights,
    mask: Tensor | None,
    reverse: bool,
    record: bool,
) -> tuple[Tensor, tuple[Tensor, ...], dict[str, Tensor] | None]:
    """One layer, one direction. x (T, B, I); mask (T, B, 1) or None.

    Returns the outputs (T, B, R), the final state and, when ``record``, each named
    quantity stacked over time (T, B, size) in input order.
    """
    steps = x.shape[0]
    # what the steps derive from the parameters alone (the Clockwork RNN's masked W_H),
    # formed once here: formed inside the step, autograd would keep a copy per step
    prepare = getattr(family, "loop_weights", None)
    if prepare is not None:
        weights = prepare(weights)
    # The input projection does not depend on the recurrence: one product for all steps.
    # unbind, not x_gates[t]: the backward of indexing writes each step's gradient into a
    # fresh (T, B, G*H) tensor of zeros, T times over; unbind's backward stacks them once.
    x_gates = F.linear(x, weights["weight_ih"], weights.get("bias_ih")).unbind(0)  # T x (B, G*H)
    outputs: list[Tensor | None] = [None] * steps
    recorded: list[dict[str, Tensor] | None] = [None] * steps
    for t in reversed(range(steps)) if reverse else range(steps):
        new_state, values = family.step(x_gates[t], state, weights)
        if mask is not None:  # past a sequence's end its state stays as it was
            new_state = tuple(
                torch.where(mask[t], n, s) for n, s in zip(new_state, state, strict=True)
            )
        state = new_state
        outputs[t] = state[0]
        if record:
            recorded[t] = values

    output = torch.stack(outputs)  # (T, B, R)
    if mask is not None:
        output = output.masked_fill(~mask, 0.0)
    if not record:
        return output, state, None
    trace = {name: torch.stack([r[name] for r in recorded]) for name in family.trace_names}
    if mask is not None:
        trace = {name: v.masked_fill(~mask, 0.0) for name, v in trace.items()}
    return output, state, trace


def run_layers(
    family: CellFamily,
    x: Tensor,
    initial: tuple[Tensor, ...],
    weights: list[list[Weights]],
    mask: Tensor | None,
    dropout: float,
    record: bool,
    direction_fn: Callable = run_direction,
    noise: LoopNoise | None = None,
) -> tuple[Tensor, tuple[Tensor, ...], dict[str, Tensor] | None]:
    """Every layer and direction. x (T, B, I); initial states (L*D, B, size);
    ``weights[layer][direction]``. Dropout (already zero unless training) applies to every
    layer's output but the last, as in torch.nn.LSTM. ``direction_fn`` runs one layer in one
    direction: this module's loop, or another backend's with the same contract.

    ``noise``: recurrent dropout and zoneout (:mod:`lstmkit.layers.regularize`). Each layer
    and direction then runs the family wrapped with its own noise, its recurrent dropout
    mask drawn here, once for the sequence, before its loop starts; zoneout's masks are
    drawn by the wrapped step, fresh each step. Only a loop that calls ``family.step`` each
    step applies them: this module's (alone or under recomputation), never a fused kernel.

    Returns the last layer's output (T, B, D*R), the final states (L*D, B, size) and, when
    ``record``, the trace tensors (L, D, B, T, size).
    """
    finals: list[tuple[Tensor, ...]] = []
    layer_traces: list[list[dict[str, Tensor]]] = []
    num_layers = len(weights)
    for layer, directions in enumerate(weights):
        outputs, traces = [], []
        for direction, w in enumerate(directions):
            index = layer * len(directions) + direction
            start = tuple(s[index] for s in initial)
            cell = family if noise is None else noise.for_direction(family, x.shape[1], x)
            out, final, trace = direction_fn(
                cell, x, start, w, mask, reverse=direction == 1, record=record
            )
            outputs.append(out)
            finals.append(final)
            traces.append(trace)
        x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (T, B, D*R)
        if dropout > 0 and layer < num_layers - 1:
            x = F.dropout(x, dropout, training=True)
        layer_traces.append(traces)

    final_states = tuple(
        torch.stack(parts) for parts in zip(*finals, strict=True)
    )  # each (L*D, B, size)
    if not record:
        return x, final_states, None
    stacked = {
        name: torch.stack(
            [torch.stack([t[name] for t in traces]) for traces in layer_traces]
        ).transpose(2, 3)  # (L, D, T, B, size) -> (L, D, B, T, size)
        for name in family.trace_names
    }
    return x, final_states, stacked
