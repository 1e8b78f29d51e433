"""lstmkit's LSTM, GRU and RNN checked against an oracle nobody here wrote: onnxruntime's LSTM,
GRU and RNN operators, fed lstmkit's weights in ONNX's layout (see onnx_graphs.py).

ONNX's LSTM has the variants torch lacks: peepholes (input P) and the coupled input-forget
gate (``input_forget=1``), so it checks lstmkit's variants as well as its plain cells. Its
``sequence_lens`` checks lstmkit's ``lengths=`` and PackedSequence paths, in both directions.

onnxruntime's CPU kernels for the three operators are float32 only (LSTM and GRU raise "does
not support double yet", RNN has no double kernel), so every comparison is in float32.
"""

import numpy as np
import pytest
import torch
from onnx_cases import (
    ATOL,
    LENGTHS,
    H,
    I,
    assert_matches,
    lstmkit_forward,
    make_inputs,
    max_difference,
)
from onnx_graphs import onnx_forward, onnx_weights

import lstmkit

CELLS = {  # id: (layer class, keyword arguments)
    "lstm": (lstmkit.LSTM, {}),
    "lstm-peephole": (lstmkit.LSTM, {"peephole": True}),
    "lstm-coupled": (lstmkit.LSTM, {"coupled": True}),
    "lstm-peephole-coupled": (lstmkit.LSTM, {"peephole": True, "coupled": True}),
    "gru": (lstmkit.GRU, {}),
    "rnn-tanh": (lstmkit.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (lstmkit.RNN, {"nonlinearity": "relu"}),
}
# The reference backend for every cell; "auto" too where it runs torch's fused kernels.
CELL_BACKENDS = [(cell, "reference") for cell in CELLS] + [
    (cell, "auto") for cell in ("lstm", "gru", "rnn-tanh", "rnn-relu")
]
CELL_BACKEND_IDS = [f"{cell}-{backend}" for cell, backend in CELL_BACKENDS]


def make_layer(cell, backend="reference", *, bidirectional=False, num_layers=1, bias=True):
    """A seeded layer whose parameters are redrawn from U(-0.8, 0.8): wider than the default
    U(-1/sqrt(H), 1/sqrt(H)), so every weight, peephole included, moves the outputs."""
    cls, kwargs = CELLS[cell]
    layer = cls(I, H, num_layers, bias=bias, bidirectional=bidirectional, backend=backend, **kwargs)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-0.8, 0.8, generator=generator)
    return layer


def run_both(layer, with_state, lengths_mode, **onnx_options):
    x, hx = make_inputs(layer, with_state)
    lengths = None if lengths_mode == "full" else torch.tensor(LENGTHS)
    filler = np.random.default_rng(2)  # for the coupled LSTM's unused forget slot
    expected = onnx_forward(layer, x, hx, lengths, filler=filler, **onnx_options)
    return lstmkit_forward(layer, x, hx, lengths_mode), expected


@pytest.mark.parametrize("lengths_mode", ["full", "lengths", "packed"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize(("cell", "backend"), CELL_BACKENDS, ids=CELL_BACKEND_IDS)
def test_layer_matches_onnx(cell, backend, bidirectional, with_state, lengths_mode):
    layer = make_layer(cell, backend, bidirectional=bidirectional)
    assert_matches(*run_both(layer, with_state, lengths_mode))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize(("cell", "backend"), CELL_BACKENDS, ids=CELL_BACKEND_IDS)
def test_two_layers_match_chained_onnx(cell, backend, bidirectional):
    """lstmkit's second layer reads the first's output (T, B, D*H); ONNX's operators are one
    layer each, so the graph chains two nodes through a Transpose and a Reshape."""
    layer = make_layer(cell, backend, bidirectional=bidirectional, num_layers=2)
    assert_matches(*run_both(layer, True, "lengths"))


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole-coupled", "gru", "rnn-relu"])
def test_without_bias_matches_onnx(cell):
    """bias=False: ONNX's B is left out, which the operator reads as zeros."""
    layer = make_layer(cell, bias=False, bidirectional=True)
    assert "B" not in onnx_weights(layer, 0, np.random.default_rng(0))
    assert_matches(*run_both(layer, True, "lengths"))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["lstm-coupled", "lstm-peephole-coupled"])
def test_onnx_ignores_the_coupled_forget_slot(cell, bidirectional):
    """With input_forget=1 ONNX keeps a forget-gate slot in W, R, B and P that the coupled
    cell does not use: two different random fillings must give the same results, bit for bit.
    (test_layer_matches_onnx shows that either filling agrees with lstmkit.)"""
    layer = make_layer(cell, bidirectional=bidirectional)
    x, hx = make_inputs(layer, True)
    lengths = torch.tensor(LENGTHS)
    fillings = [np.random.default_rng(seed) for seed in (3, 4)]
    f_block = slice(2 * H, 3 * H)  # ONNX's blocks are i, o, f, c
    slots = [onnx_weights(layer, 0, np.random.default_rng(seed))["W"] for seed in (3, 4)]
    assert not np.allclose(slots[0][:, f_block], slots[1][:, f_block])

    first, second = (onnx_forward(layer, x, hx, lengths, filler=f) for f in fillings)
    np.testing.assert_array_equal(first[0], second[0])
    for s_first, s_second in zip(first[1], second[1], strict=True):
        np.testing.assert_array_equal(s_first, s_second)


# Negative controls: each gives ONNX a wrong mapping or a wrong attribute, and the comparison
# must then fail by far more than its tolerance, which shows that the passing tests above
# depend on what they claim to check.
NEGATIVE_CONTROLS = {
    # id: (cell, ONNX options that break the mapping)
    "peephole-without-P": ("lstm-peephole", {"leave_out": ("P",)}),
    "peephole-coupled-without-P": ("lstm-peephole-coupled", {"leave_out": ("P",)}),
    "coupled-with-input_forget=0": ("lstm-coupled", {"input_forget": 0}),
    "lstm-without-B": ("lstm", {"leave_out": ("B",)}),
    "gru-with-linear_before_reset=0": ("gru", {"linear_before_reset": 0}),
    "rnn-relu-run-as-tanh": ("rnn-relu", {"activations": ["Tanh", "Tanh"]}),
}


@pytest.mark.parametrize("control", NEGATIVE_CONTROLS)
def test_negative_control_fails(control):
    cell, onnx_options = NEGATIVE_CONTROLS[control]
    layer = make_layer(cell, bidirectional=True)
    actual, expected = run_both(layer, True, "lengths", **onnx_options)
    assert max_difference(actual, expected) > 100 * ATOL
    with pytest.raises(AssertionError):
        assert_matches(actual, expected)
