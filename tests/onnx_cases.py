"""The sizes, inputs and comparisons the ONNX oracle tests share (test_onnx_oracle,
test_gru_variants): lstmkit's side of each comparison. The ONNX side is onnx_graphs.py."""

from __future__ import annotations

import numpy as np
import torch
from onnx_graphs import padded
from torch.nn.utils.rnn import pack_padded_sequence

# T time, B batch, I input size, H hidden size (I != H, so a transposed block cannot pass)
T, B, I, H = 6, 4, 3, 5
# Every sequence shorter than T, unsorted (so packing reorders the batch), one of length 1.
LENGTHS = (5, 1, 3, 4)
# float32 throughout; the two implementations agree to within 5e-7 on these sizes.
ATOL = RTOL = 1e-5


def make_inputs(layer, with_state: bool):
    """x (T, B, I), and the initial state as the layer takes it (None for zeros)."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, I, generator=generator)
    if not with_state:
        return x, None
    stacked = layer.num_layers * layer.num_directions
    states = tuple(
        0.5 * torch.randn(stacked, B, H, generator=generator) for _ in layer.family.state_sizes
    )  # each (L*D, B, H)
    return x, states if len(states) > 1 else states[0]


def lstmkit_forward(layer, x, hx, lengths_mode: str):
    """lstmkit's output (T, B, D*H) and final states (each (L*D, B, H)) as arrays, the
    sequence lengths given as ``lengths=`` beside the padded batch or as a PackedSequence."""
    lengths = torch.tensor(LENGTHS)
    with torch.no_grad():
        if lengths_mode == "packed":
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            output, state = layer(packed, hx)
        elif lengths_mode == "lengths":
            output, state = layer(x, hx, lengths=lengths)
        else:
            output, state = layer(x, hx)
    state = state if isinstance(state, tuple) else (state,)
    return padded(output, T).numpy(), tuple(s.numpy() for s in state)


def assert_matches(actual, expected):
    (out, states), (out_onnx, states_onnx) = actual, expected
    np.testing.assert_allclose(out, out_onnx, rtol=RTOL, atol=ATOL, err_msg="output")
    names = ("h_n", "c_n")[: len(states)]
    for name, s, s_onnx in zip(names, states, states_onnx, strict=True):
        np.testing.assert_allclose(s, s_onnx, rtol=RTOL, atol=ATOL, err_msg=name)


def max_difference(actual, expected) -> float:
    (out, states), (out_onnx, states_onnx) = actual, expected
    pairs = [(out, out_onnx), *zip(states, states_onnx, strict=True)]
    return max(float(np.abs(a - b).max()) for a, b in pairs)
