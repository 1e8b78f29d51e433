"""Greff et al. (2015)'s ablations NIG, NOG, NIAF and NOAF on the fused backend: the C++ CPU
kernels and the Triton kernels (under Triton's CPU interpreter) against the reference loop,
alone and combined with each other and with peepholes, CIFG, NFG and the projection, on
outputs, final states and every gradient (input, initial state, parameters) under random
upstream gradients; finite differences on the C++ kernels; traces; and which backend runs
what (``auto`` takes the fused kernels on the CPU).

The reference loop is lstmkit.cellmath.lstm's step under autograd, which tests/
test_lstm_ablations.py checks against torch.nn.LSTM, onnxruntime and a loop of the paper's
equations; these tests check that the kernels' hand-written forward and backward passes
agree with it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import (
    LSTM_ABLATIONS,
    TOLERANCE,
    assert_close_all,
    outputs_and_grads,
    products_through_aten,
)
from torch.autograd import gradcheck
from triton_on_cpu import TRITON_SHAPES, triton_on_the_cpu  # noqa: F401 (a fixture)

import lstmkit
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.layers.backends import Backend, choose_backend, fused_triton

I, T, B = 4, 6, 3
LENGTHS = [6, 2, 5]

# hidden size, layers, lengths or full, uni- or bidirectional
SHAPES = {
    "H5-L1-full-uni": (5, 1, False, False),
    "H6-L2-lengths-bi": (6, 2, True, True),
}
CPU_GRID = list(itertools.product(LSTM_ABLATIONS, SHAPES))


def _pair(options: dict, hidden: int, layers: int, bidirectional: bool, dtype=torch.float32):
    """A reference layer and a fused one with the same weights, the same whichever tests ran
    before (seeded)."""
    torch.manual_seed(0)
    make = lambda backend: lstmkit.LSTM(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **options
    ).to(dtype)
    reference, ours = make("reference"), make("fused")
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layer, batch: int, dtype, seed: int = 1):
    """x and a random initial state (h0, c0), all requiring gradients."""
    gen = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    hidden, out_size = layer.family.hidden_size, layer.family.state_sizes[0]
    x = torch.randn(T, batch, I, generator=gen, dtype=dtype)
    h0 = torch.randn(stacked, batch, out_size, generator=gen, dtype=dtype)
    c0 = torch.randn(stacked, batch, hidden, generator=gen, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, h0, c0)]


def _run(layer, x, h0, c0, lengths):
    return outputs_and_grads(layer, x, (h0, c0), lengths)


def _compare(name: str, shape: str, dtype, batch: int = B) -> None:
    hidden, layers, use_lengths, bidirectional = SHAPES[shape]
    reference, ours = _pair(LSTM_ABLATIONS[name], hidden, layers, bidirectional, dtype)
    x, h0, c0 = _inputs(reference, batch, dtype)
    lengths = torch.tensor((LENGTHS * batch)[:batch]) if use_lengths else None
    mine, theirs = _run(ours, x, h0, c0, lengths), _run(reference, x, h0, c0, lengths)
    assert_close_all(mine, theirs, dtype, f"fused vs reference, {name} {shape}")


# -- the C++ CPU kernels -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "shape"), CPU_GRID, ids=["-".join(c) for c in CPU_GRID])
def test_cpu_kernels_match_reference(name, shape, dtype):
    _compare(name, shape, dtype)


@pytest.mark.parametrize("name", ["NIG", "NOG", "NIAF", "NOAF", "NOG-NIAF-peephole-proj"])
def test_cpu_kernels_past_the_small_batch_path_match_too(name, monkeypatch):
    """Batch 3 takes the kernels' own products (vec_mat); batch 6 goes through ATen's GEMM
    here (LSTMKIT_NO_VEC_MAT: at this size vec_mat would take it too)."""
    products_through_aten(monkeypatch)
    _compare(name, "H6-L2-lengths-bi", torch.float64, batch=6)


@pytest.mark.parametrize("name", ["NIG", "NOG", "NIAF", "NOAF", "CIFG-NOG-NIAF-NOAF-peephole"])
def test_cpu_kernels_gradcheck(name):
    """Finite differences in float64 against the kernels' hand-written backward."""
    layer = lstmkit.LSTM(2, 3, bidirectional=True, backend="fused", **LSTM_ABLATIONS[name]).double()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        output, (h, c) = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x,), {"lengths": [4, 3]}
        )
        return output, h, c

    assert gradcheck(run, (x, *layer.parameters()), eps=1e-6, atol=1e-6)


def test_cpu_kernels_bfloat16_follow_float32():
    """The kernels compute in float32 and round on store (test_fused_cpu.py's bfloat16
    check, on an ablation with every gate branch that changed: no i, no o, no tanh)."""
    reference, ours = _pair(LSTM_ABLATIONS["NIG-NOAF-proj"], 6, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())


@pytest.mark.parametrize("name", ["NIG-peephole", "NOG", "NIAF-NOAF", "NIG-NFG-NOG"])
def test_cpu_traces_match_the_reference(name):
    """The same named quantities (a gate without a block is not reported, as the
    reference's step does not report it) with the same values."""
    reference, ours = _pair(LSTM_ABLATIONS[name], 5, 1, True, torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor(LENGTHS)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names
    for trace_name in theirs.names:
        torch.testing.assert_close(mine[trace_name], theirs[trace_name], **TOLERANCE[torch.float64])


# -- which backend runs what ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(LSTM_ABLATIONS))
def test_auto_runs_the_ablations_on_the_fused_kernels_on_the_cpu(name):
    family = LSTMFamily(4, **LSTM_ABLATIONS[name])
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.FUSED
    # off the CPU auto does not take the Triton kernels (unmeasured on a GPU), and the
    # manual backend has no ablations: the reference loop runs them
    assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.REFERENCE
    with pytest.raises(ValueError, match="the manual backend's loops have no"):
        lstmkit.LSTM(I, 4, backend="manual", **LSTM_ABLATIONS[name])
    with pytest.raises(ValueError, match="torch's fused kernels have no"):
        lstmkit.LSTM(I, 4, backend="torch", **LSTM_ABLATIONS[name])


# -- the Triton kernels, under the interpreter ---------------------------------------------
#
# Set up by tests/triton_on_cpu.py (the fixture and the shapes): tiny sizes, float32,
# the kernels' widest dtype.

TRITON_CASES = [
    "NIG", "NOG", "NIAF", "NOAF", "NIG-NOG-peephole", "NIG-NFG-NOG",
    "CIFG-NOG-NIAF-NOAF-peephole", "NOG-NIAF-peephole-proj",
]  # fmt: skip
TRITON_GRID = list(itertools.product(TRITON_CASES, TRITON_SHAPES))


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize(("name", "shape"), TRITON_GRID, ids=["-".join(c) for c in TRITON_GRID])
def test_triton_kernels_match_reference(name, shape, monkeypatch):
    hidden, layers, use_lengths, bidirectional, block_h = TRITON_SHAPES[shape]
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", block_h)
    reference, ours = _pair(LSTM_ABLATIONS[name], hidden, layers, bidirectional)
    x, h0, c0 = _inputs(reference, B, torch.float32)
    lengths = torch.tensor(LENGTHS) if use_lengths else None
    mine, theirs = _run(ours, x, h0, c0, lengths), _run(reference, x, h0, c0, lengths)
    assert_close_all(mine, theirs, torch.float32, f"triton vs reference, {name} {shape}")


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("name", ["NIG-peephole", "NOG", "NIAF-NOAF"])
def test_triton_traces_match_the_reference(name):
    reference, ours = _pair(LSTM_ABLATIONS[name], 5, 1, True)
    x = torch.randn(T, B, I)
    lengths = torch.tensor(LENGTHS)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names
    for trace_name in theirs.names:
        torch.testing.assert_close(mine[trace_name], theirs[trace_name], **TOLERANCE[torch.float32])
