"""Layers under ``torch.autocast``: a float32 layer runs wholly in autocast's lower dtype,
as torch.nn.LSTM does, and its float32 parameters get float32 gradients.

The oracle is the same layer on the same backend converted to bfloat16
(``layer.to(torch.bfloat16)``) and fed the rounded input: autocast must give exactly its
outputs, and gradients equal to its bfloat16 gradients. How close bfloat16 itself comes to
float32 is the kernels' tests' business (``test_fused_cpu.py``, ``test_fused_triton.py``).
"""

from __future__ import annotations

import pytest
import torch
from helpers import LAYER_CASES, random_loss
from torch.nn.utils.rnn import pack_padded_sequence

from lstmkit.layers.backends import Backend, unsupported_reason
from lstmkit.layers.depth_gated import DepthGatedLSTM
from lstmkit.layers.grid_lstm import GridLSTM

I, T, B, H = 4, 6, 3, 5
CASES = [
    (family, backend)
    for family in ("lstm-plain", "lstm-peephole-coupled", "lstm-proj", "gru", "rnn-tanh")
    for backend in ("reference", "fused", "torch", "manual")
    if unsupported_reason(
        Backend(backend), LAYER_CASES[family][0](I, H, **LAYER_CASES[family][1]).family
    )
    is None
]


def _pair(family: str, backend: str):
    cls, options = LAYER_CASES[family]
    torch.manual_seed(0)
    layer = cls(I, H, num_layers=2, bidirectional=True, backend=backend, **options)
    lowered = cls(I, H, num_layers=2, bidirectional=True, backend=backend, **options)
    lowered.load_state_dict(layer.state_dict())
    return layer, lowered.to(torch.bfloat16)


@pytest.mark.parametrize(("family", "backend"), CASES, ids=["-".join(c) for c in CASES])
def test_autocast_runs_the_layer_in_bfloat16_with_float32_gradients(family, backend):
    layer, lowered = _pair(family, backend)
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, state = layer(x)
    states = list(state) if isinstance(state, tuple) else [state]
    assert all(t.dtype == torch.bfloat16 for t in (output, *states))
    expected_output, expected_state = lowered(x.bfloat16())
    expected_states = (
        list(expected_state) if isinstance(expected_state, tuple) else [expected_state]
    )
    for ours, theirs in zip([output, *states], [expected_output, *expected_states], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)

    ours_grads = torch.autograd.grad(
        random_loss([t.float() for t in (output, *states)], seed=3), list(layer.parameters())
    )
    theirs_grads = torch.autograd.grad(
        random_loss([t.float() for t in (expected_output, *expected_states)], seed=3),
        list(lowered.parameters()),
    )
    for ours, theirs in zip(ours_grads, theirs_grads, strict=True):
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, theirs.float(), rtol=0, atol=0)


def test_autocast_takes_an_initial_state_in_either_dtype_and_packed_input():
    layer, lowered = _pair("lstm-peephole-coupled", "fused")
    x = torch.randn(T, B, I)
    h0, c0 = torch.randn(4, B, H), torch.randn(4, B, H)
    lengths = torch.tensor([6, 2, 5])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    expected = lowered(packed.to(torch.bfloat16), (h0.bfloat16(), c0.bfloat16()))[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        from_float = layer(packed, (h0, c0))[0]
        from_lower = layer(packed.to(torch.bfloat16), (h0.bfloat16(), c0.bfloat16()))[0]
    for ours in (from_float, from_lower):
        assert ours.data.dtype == torch.bfloat16
        torch.testing.assert_close(ours.data, expected.data, rtol=0, atol=0)


def test_autocast_refuses_an_input_in_a_third_dtype_naming_both_it_takes():
    layer, _ = _pair("gru", "reference")
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(TypeError) as error:
        layer(torch.randn(T, B, I, dtype=torch.float64))
    assert "expected torch.float32 or torch.bfloat16" in str(error.value)


def test_a_float64_layer_is_left_alone_by_autocast():
    """autocast lowers float32 only, as torch's own ops do."""
    layer, _ = _pair("lstm-plain", "reference")
    layer = layer.double()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = layer(torch.randn(T, B, I, dtype=torch.float64))[0]
    assert output.dtype == torch.float64


STACKS = {"depth-gated": DepthGatedLSTM, "grid": GridLSTM}
STACK_CASES = [(stack, backend) for stack in STACKS for backend in ("reference", "fused")]


@pytest.mark.parametrize(("stack", "backend"), STACK_CASES, ids=["-".join(c) for c in STACK_CASES])
def test_autocast_runs_a_stack_in_bfloat16_with_float32_gradients(stack, backend):
    """The depth-gated and Grid LSTM stacks as the other layers, with a float32 initial
    state (taken in the parameters' dtype) and sequences that end early. Before, autocast
    lowered their input products alone: the fused kernels refused the mix and the
    reference loops answered in float32 (depth-gated) or bfloat16 (Grid)."""
    torch.manual_seed(0)
    layer = STACKS[stack](I, H, 2, backend=backend)
    lowered = STACKS[stack](I, H, 2, backend=backend)
    lowered.load_state_dict(layer.state_dict())
    lowered.to(torch.bfloat16)
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(1))
    h0, c0 = torch.randn(2, B, H), torch.randn(2, B, H)
    lengths = torch.tensor([6, 2, 5])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, state = layer(x, (h0, c0), lengths=lengths)
    expected_output, expected_state = lowered(
        x.bfloat16(), (h0.bfloat16(), c0.bfloat16()), lengths=lengths
    )
    ours, theirs = [output, *state], [expected_output, *expected_state]
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == torch.bfloat16
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ours_grads = torch.autograd.grad(
        random_loss([t.float() for t in ours], seed=3), list(layer.parameters())
    )
    theirs_grads = torch.autograd.grad(
        random_loss([t.float() for t in theirs], seed=3), list(lowered.parameters())
    )
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b.float(), rtol=0, atol=0)
