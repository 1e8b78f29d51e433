"""What the tests that check LSTM options against a time loop written from the equations
share (test_lstm_ablations, test_layer_norm_lstm): float64 sizes and inputs, layers with
wide random parameters, and the loop that stacks layers and directions as torch does around
a test's own step function."""

from __future__ import annotations

import torch
from torch import nn

# T time, B batch, I input size, H hidden size (I != H, so a transposed block cannot pass)
T, B, I, H = 5, 3, 2, 4
LENGTHS = [5, 2, 4]  # unsorted on purpose: packing reorders the batch
F64 = dict(rtol=1e-10, atol=1e-10)


def randomised(layer: nn.Module, seed: int = 0) -> nn.Module:
    """``layer`` with every parameter redrawn from U(-0.8, 0.8), wider than the default, so
    every weight moves the outputs; float64."""
    layer = layer.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype) * 1.6 - 0.8)
    return layer


def inputs(seed=1):
    """x (T, B, I), float64."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, I, generator=generator, dtype=torch.float64)


def run_stacked(layer, x, lengths, step, initial):
    """Every layer and direction of lstmkit ``layer``, run by ``step(x_t, state, weights)``
    -> new state (state[0] is h_t), with torch's stacking: layer k+1 reads the concatenated
    directions of layer k, the reverse direction runs from each batch's last step to its
    first. Past a sequence's length the state stays and the output is 0. ``initial``: the
    state tensors, each (L*D, B, size). Returns the output (T, B, D*R) and final states."""
    steps = x.shape[0]
    valid = torch.arange(steps)[:, None] < torch.as_tensor(lengths)[None, :]  # (T, B)
    finals, inputs = [], x
    for k in range(layer.num_layers):
        outputs = []
        for d in range(layer.num_directions):
            index = k * layer.num_directions + d
            state = tuple(s[index] for s in initial)
            weights = layer.layer_weights(k, d)
            out = [None] * steps
            for t in reversed(range(steps)) if d == 1 else range(steps):
                new = step(inputs[t], state, weights)
                keep = valid[t][:, None]  # (B, 1)
                state = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
                out[t] = torch.where(keep, state[0], torch.zeros_like(state[0]))
            outputs.append(torch.stack(out))
            finals.append(state)
        inputs = torch.cat(outputs, dim=-1)
    return inputs, tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
