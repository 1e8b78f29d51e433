"""minGRU and minLSTM on the fused backend: the C++ CPU kernels and the Triton kernels (under
Triton's CPU interpreter) against the step loop of the reference backend, on outputs, final
states and every gradient (input, initial state, parameters) under random upstream gradients,
at batch 1 and batch 6, with and without biases, lengths and both directions; finite
differences on the C++ kernels; bfloat16 against float32; traces; a long sequence; and which
backend runs what.

The step loop is lstmkit.cellmath.minrnn's step under autograd (``mode="sequential"``),
which tests/test_minrnn.py checks against the paper's equations written out and against the
log-space parallel scan; these tests check the kernels' hand-written forward and backward
passes against it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, outputs_and_grads
from torch.autograd import gradcheck
from triton_on_cpu import triton_on_the_cpu  # noqa: F401 (a fixture)

from lstmkit.cellmath.minrnn import MinGRUFamily, MinLSTMFamily
from lstmkit.layers.backends import Backend, choose_backend
from lstmkit.layers.minrnn import MinGRU, MinLSTM

I, T = 4, 6
LENGTHS = [4, 6, 2, 5, 3, 1]

# id: (layer class, its options)
CELLS = {
    "mingru": (MinGRU, {}),
    "mingru-nobias": (MinGRU, dict(bias=False)),
    "minlstm": (MinLSTM, {}),
    "minlstm-nobias": (MinLSTM, dict(bias=False)),
}
# hidden size, layers, lengths or full, uni- or bidirectional (H 5 and 6 reach only the
# kernels' one-value-at-a-time remainder; H 21 a SIMD vector or two and a remainder)
SHAPES = {
    "H5-L1-full-uni": (5, 1, False, False),
    "H6-L2-lengths-bi": (6, 2, True, True),
    "H21-L1-lengths-bi": (21, 1, True, True),
}
BATCHES = {"B1": 1, "B6": 6}
CPU_GRID = list(itertools.product(CELLS, SHAPES, BATCHES))


def _pair(cell: str, hidden: int, layers: int, bidirectional: bool, dtype=torch.float32):
    """The reference step loop and a fused layer with the same weights."""
    cls, options = CELLS[cell]
    reference = cls(
        I, hidden, layers, bidirectional=bidirectional, backend="reference", mode="sequential",
        **options,
    ).to(dtype)  # fmt: skip
    ours = cls(I, hidden, layers, bidirectional=bidirectional, backend="fused", **options)
    ours = ours.to(dtype)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layer, batch: int, dtype, steps: int = T, seed: int = 1):
    """x and a random initial state h0 (of either sign), both requiring gradients."""
    gen = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    x = torch.randn(steps, batch, I, generator=gen, dtype=dtype)
    h0 = torch.randn(stacked, batch, layer.family.hidden_size, generator=gen, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, h0)]


def _run(layer, x, h0, lengths):
    return outputs_and_grads(layer, x, (h0,), lengths)


def _lengths(use_lengths: bool, batch: int):
    return torch.tensor(LENGTHS[:batch]) if use_lengths else None


# -- the C++ CPU kernels -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("cell", "shape", "batch"), CPU_GRID, ids=["-".join(c) for c in CPU_GRID])
def test_cpu_kernels_match_reference(cell, shape, batch, dtype):
    hidden, layers, use_lengths, bidirectional = SHAPES[shape]
    reference, ours = _pair(cell, hidden, layers, bidirectional, dtype)
    x, h0 = _inputs(reference, BATCHES[batch], dtype)
    lengths = _lengths(use_lengths, BATCHES[batch])
    mine, theirs = _run(ours, x, h0, lengths), _run(reference, x, h0, lengths)
    assert_close_all(mine, theirs, dtype, f"fused vs reference, {cell} {shape} {batch}")


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_cpu_kernels_gradcheck(cell):
    """Finite differences in float64 against the hand-written backward, the initial state
    and a sequence that ends early included; the candidate's two branches (k >= 0 and
    k < 0) both occur with these random pre-activations."""
    cls, options = CELLS[cell]
    layer = cls(2, 3, bidirectional=True, backend="fused", **options).double()
    names = [n for n, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def run(x, h0, *params):
        parameters = dict(zip(names, params, strict=True))
        return torch.func.functional_call(layer, parameters, (x, h0), {"lengths": [4, 3]})

    assert gradcheck(run, (x, h0, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_long_sequence_matches_the_parallel_scan(cell):
    """T = 3,000 in float64: the fused loop against the log-space parallel scan (the
    reference's default mode), which tests/test_minrnn.py checks against the step loop."""
    cls, _ = CELLS[cell]
    scan = cls(I, 8, backend="reference").double()
    ours = cls(I, 8, backend="fused").double()
    ours.load_state_dict(scan.state_dict())
    x, h0 = _inputs(scan, 2, torch.float64, steps=3000)
    mine, theirs = _run(ours, x, h0, None), _run(scan, x, h0, None)
    # the scan's gradients lose digits with the length (cellmath.minrnn, "Precision"): the
    # loop's error is float64's few ulps, the scan's up to about 1e-9 of the largest entry
    for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        error = (a - b).abs().max() / b.abs().max()
        assert error < 1e-8, f"fused vs parallel scan, {cell} T=3000 [{k}]: {error:.1e}"


@pytest.mark.parametrize("hidden", [6, 21], ids=["H6", "H21"])
@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_cpu_kernels_bfloat16_follow_float32(cell, batch, hidden):
    """The kernels compute in float32 and round on store, so on the same (rounded) weights
    and inputs they follow the float32 reference within bfloat16's 8 bits."""
    reference, ours = _pair(cell, hidden, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, batch, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_cpu_traces_match_the_reference(cell, batch):
    """The same named quantities (minGRU's update, candidate, hidden; minLSTM's normalised
    forget and input, candidate, hidden) with the same values, zeros past each end."""
    reference, ours = _pair(cell, 5, 1, True, torch.float64)
    x = torch.randn(T, batch, I, dtype=torch.float64)
    lengths = _lengths(True, batch)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float64])


# -- which backend runs what ---------------------------------------------------------------

FAMILIES = {"mingru": MinGRUFamily(4), "minlstm": MinLSTMFamily(4)}


@pytest.mark.parametrize("cell", list(FAMILIES))
def test_auto_runs_them_on_the_fused_kernels_on_the_cpu(cell):
    family = FAMILIES[cell]
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, family, tracing=True) is Backend.REFERENCE
    # off the CPU auto does not take the Triton kernels (unmeasured on a GPU): the reference
    # backend's parallel scan runs them there
    assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.REFERENCE


@pytest.mark.parametrize("backend", ["torch", "manual"])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_the_other_fast_backends_still_refuse_them(cell, backend):
    layer_cls, _ = CELLS[cell]
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer: .* {cell}"):
        layer_cls(I, 4, backend=backend)


# -- the Triton kernels, under the interpreter ---------------------------------------------

# hidden size, layers, lengths or full, direction, units per program (the grid's block: 256
# puts every unit in one program; 4 splits them, with a part-filled last program)
TRITON_SHAPES = {
    "H5-L1-full-uni-one-program": (5, 1, False, False, 256),
    "H6-L2-lengths-bi-split": (6, 2, True, True, 4),
}
TRITON_GRID = list(itertools.product(["mingru", "minlstm"], TRITON_SHAPES))


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize(("cell", "shape"), TRITON_GRID, ids=["-".join(c) for c in TRITON_GRID])
def test_triton_kernels_match_reference(cell, shape, monkeypatch):
    from lstmkit.layers.backends.fused_triton import minrnn

    hidden, layers, use_lengths, bidirectional, block = TRITON_SHAPES[shape]
    monkeypatch.setattr(minrnn, "BLOCK", block)
    reference, ours = _pair(cell, hidden, layers, bidirectional)
    x, h0 = _inputs(reference, 3, torch.float32)
    lengths = _lengths(use_lengths, 3)
    mine, theirs = _run(ours, x, h0, lengths), _run(reference, x, h0, lengths)
    assert_close_all(mine, theirs, torch.float32, f"triton vs reference, {cell} {shape}")


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_triton_kernels_bfloat16_follow_float32(cell):
    reference, ours = _pair(cell, 6, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, 3, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_triton_traces_match_the_reference(cell):
    reference, ours = _pair(cell, 5, 1, True)
    x = torch.randn(T, 3, I)
    lengths = _lengths(True, 3)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float32])
