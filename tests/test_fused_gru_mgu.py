"""Cho et al.'s GRU (``reset_after=False``) and the minimal gated unit (MGU) on the fused
backend: the C++ CPU kernels and the Triton kernels (under Triton's CPU interpreter) against
the reference loop, on outputs, final states and every gradient (input, initial state,
parameters) under random upstream gradients, at batch 1 (the C++ kernels' own products)
and batch 6 (ATen's GEMM), with and without biases; finite differences on the C++ kernels;
bfloat16 against float32; traces; and which backend runs what (``auto`` takes the fused
kernels on the CPU; torch's kernels still refuse both).

The reference loop is lstmkit.cellmath.gru's and lstmkit.cellmath.mgu's step under autograd,
which tests/test_gru_variants.py checks against onnxruntime's GRU operator (both reset
placements; the MGU as Cho et al.'s GRU with r = f and z = 1 - f), finite differences and
the equations written out; these tests check that the kernels' hand-written forward and
backward passes agree with it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, outputs_and_grads, products_through_aten
from torch.autograd import gradcheck
from triton_on_cpu import (  # noqa: F401 (a fixture)
    STREAMED_SHAPES,
    TRITON_SHAPES,
    triton_on_the_cpu,
    triton_shape,
)

import lstmkit
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.layers.backends import Backend, choose_backend, fused_triton
from lstmkit.layers.mgu import MGU

I, T = 4, 6
# batch 1 ends early too, so the masked path also runs on the kernels' small-batch products
LENGTHS = [4, 6, 2, 5, 3, 1]

# id: (layer class, its options)
CELLS = {
    "gru-cho": (lstmkit.GRU, dict(reset_after=False)),
    "gru-cho-nobias": (lstmkit.GRU, dict(reset_after=False, bias=False)),
    "mgu": (MGU, {}),
    "mgu-nobias": (MGU, dict(bias=False)),
}
# hidden size, layers, lengths or full, uni- or bidirectional
SHAPES = {
    "H5-L1-full-uni": (5, 1, False, False),
    "H6-L2-lengths-bi": (6, 2, True, True),
}
# batch 1 takes kernels.cpp's own products (vec_mat); batch 6 ATen's GEMM, sent there by
# LSTMKIT_NO_VEC_MAT (vec_mat would take it too at these sizes)
BATCHES = {"B1": 1, "B6": 6}
CPU_GRID = list(itertools.product(CELLS, SHAPES, BATCHES))


def _pair(cell: str, hidden: int, layers: int, bidirectional: bool, dtype=torch.float32):
    """A reference layer and a fused one with the same weights."""
    cls, options = CELLS[cell]
    make = lambda backend: cls(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **options
    ).to(dtype)
    reference, ours = make("reference"), make("fused")
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layer, batch: int, dtype, seed: int = 1):
    """x and a random initial state h0, both requiring gradients."""
    gen = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    x = torch.randn(T, batch, I, generator=gen, dtype=dtype)
    h0 = torch.randn(stacked, batch, layer.family.hidden_size, generator=gen, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, h0)]


def _run(layer, x, h0, lengths):
    return outputs_and_grads(layer, x, (h0,), lengths)


def _lengths(use_lengths: bool, batch: int):
    return torch.tensor(LENGTHS[:batch]) if use_lengths else None


# -- the C++ CPU kernels -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("cell", "shape", "batch"), CPU_GRID, ids=["-".join(c) for c in CPU_GRID])
def test_cpu_kernels_match_reference(cell, shape, batch, dtype, monkeypatch):
    if batch == "B6":
        products_through_aten(monkeypatch)
    hidden, layers, use_lengths, bidirectional = SHAPES[shape]
    reference, ours = _pair(cell, hidden, layers, bidirectional, dtype)
    x, h0 = _inputs(reference, BATCHES[batch], dtype)
    lengths = _lengths(use_lengths, BATCHES[batch])
    mine, theirs = _run(ours, x, h0, lengths), _run(reference, x, h0, lengths)
    assert_close_all(mine, theirs, dtype, f"fused vs reference, {cell} {shape} {batch}")


@pytest.mark.parametrize("cell", list(CELLS))
def test_cpu_kernels_gradcheck(cell):
    """Finite differences in float64 against the kernels' hand-written backward, the
    initial state included. Batch 2 (the kernels' own products): ATen's GEMM path, which
    the float64 comparisons above cover at batch 6, takes hundreds of GEMM calls here, slow
    on a loaded machine where OpenMP's threads wait for each other."""
    batch = 2
    cls, options = CELLS[cell]
    layer = cls(2, 3, bidirectional=True, backend="fused", **options).double()
    names = [n for n, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, batch, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, batch, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    lengths = [4, 3]

    def run(x, h0, *params):
        parameters = dict(zip(names, params, strict=True))
        return torch.func.functional_call(layer, parameters, (x, h0), {"lengths": lengths})

    assert gradcheck(run, (x, h0, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("cell", ["gru-cho", "mgu"])
def test_cpu_kernels_bfloat16_follow_float32(cell, batch):
    """The kernels compute in float32 and round on store, so on the same (rounded) weights
    and inputs they follow the float32 reference within bfloat16's 8 bits."""
    reference, ours = _pair(cell, 6, 2, True)
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
@pytest.mark.parametrize("cell", ["gru-cho", "mgu"])
def test_cpu_traces_match_the_reference(cell, batch):
    """The same named quantities (the GRU's reset, update, candidate, hidden; the MGU's
    forget, candidate, hidden) with the same values, zeros past each sequence's end."""
    reference, ours = _pair(cell, 5, 1, True, torch.float64)
    x = torch.randn(T, batch, I, dtype=torch.float64)
    lengths = _lengths(True, batch)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float64])


# -- which backend runs what ---------------------------------------------------------------

FAMILIES = {"gru-cho": GRUFamily(4, reset_after=False), "mgu": MGUFamily(4)}


@pytest.mark.parametrize("cell", list(FAMILIES))
def test_auto_runs_them_on_the_fused_kernels_on_the_cpu(cell):
    family = FAMILIES[cell]
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.FUSED
    # a traced call takes the reference, whose traces are differentiable
    assert choose_backend(Backend.AUTO, family, tracing=True) is Backend.REFERENCE
    # off the CPU auto does not take the Triton kernels (unmeasured on a GPU), and torch
    # has neither cell: the reference loop runs them
    assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.REFERENCE
    layer_cls, options = CELLS[cell]
    assert layer_cls(I, 4, **options).backend is Backend.AUTO
    assert layer_cls(I, 4, backend="fused", **options).backend is Backend.FUSED


@pytest.mark.parametrize(
    ("cell", "backend", "needle"),
    [
        ("gru-cho", "torch", "torch's fused kernels have no reset_after=False"),
        ("mgu", "torch", "torch's fused kernels do not have the mgu cell"),
        ("gru-cho", "manual", "the manual backend's loops do not have the gru cell"),
        ("mgu", "manual", "the manual backend's loops do not have the mgu cell"),
    ],
    ids=["torch-gru-cho", "torch-mgu", "manual-gru-cho", "manual-mgu"],
)
def test_the_other_fast_backends_still_refuse_them(cell, backend, needle):
    layer_cls, options = CELLS[cell]
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer: {needle}"):
        layer_cls(I, 4, backend=backend, **options)


# -- the Triton kernels, under the interpreter ---------------------------------------------
#
# Set up by tests/triton_on_cpu.py (the fixture and the shapes): tiny sizes, float32,
# the kernels' widest dtype; W_hh on chip and streamed.

TRITON_GRID = list(itertools.product(CELLS, [*TRITON_SHAPES, *STREAMED_SHAPES]))


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize(("cell", "shape"), TRITON_GRID, ids=["-".join(c) for c in TRITON_GRID])
def test_triton_kernels_match_reference(cell, shape, monkeypatch):
    hidden, layers, use_lengths, bidirectional, _ = triton_shape(shape, monkeypatch)
    reference, ours = _pair(cell, hidden, layers, bidirectional)
    x, h0 = _inputs(reference, 3, torch.float32)
    lengths = _lengths(use_lengths, 3)
    mine, theirs = _run(ours, x, h0, lengths), _run(reference, x, h0, lengths)
    assert_close_all(mine, theirs, torch.float32, f"triton vs reference, {cell} {shape}")


def test_the_split_runs_two_launches_a_step_and_one_program_one_launch(monkeypatch):
    """The candidate's product reads r h_{t-1} of every unit: with the units split, each
    phase of a step is a launch of its own; one program runs both phases in one launch."""
    from lstmkit.layers.backends.fused_triton.gru import _phases

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    split = fused_triton.plan(3, 20, 3, torch.float32, torch.device("cpu"))
    assert (split.grid, split.persistent) == ((1, 2), False)
    assert _phases(split, "GATES", "CANDIDATE") == [
        dict(GATES=True, CANDIDATE=False),
        dict(GATES=False, CANDIDATE=True),
    ]
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", None)
    whole = fused_triton.plan(3, 20, 3, torch.float32, torch.device("cpu"))
    assert (whole.grid, whole.persistent) == ((1, 1), True)
    assert _phases(whole, "CANDIDATE", "GATES") == [dict(CANDIDATE=True, GATES=True)]


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("cell", ["gru-cho", "mgu"])
def test_triton_kernels_bfloat16_follow_float32(cell, monkeypatch):
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    reference, ours = _pair(cell, 20, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, 3, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("cell", ["gru-cho", "mgu"])
def test_triton_traces_match_the_reference(cell):
    reference, ours = _pair(cell, 5, 1, True)
    x = torch.randn(T, 3, I)
    lengths = _lengths(True, 3)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float32])
