"""The Clockwork RNN (Koutník et al. 2014, Sec. 3) on the fused backend: the C++ CPU kernels
and the Triton kernels (under Triton's CPU interpreter) against the reference loop, on
outputs, final states (h and the clock) and every gradient (input, initial h, parameters)
under random upstream gradients, at batch 1 (the C++ kernels' per-module products) and
batch 6 (ATen's GEMM over the running modules), with clocks shared by every row and clocks
that differ per row, the paper's periods and custom ones, lengths, bidirectional and two
layers; the masked entries of W_H get exactly zero gradient and never act; a state carried
over two calls equals one call; finite differences on the C++ kernels; bfloat16 against
float32; traces; and which backend runs what.

The reference loop is lstmkit.cellmath.clockwork's step under autograd, which
tests/test_clockwork.py checks against a loop of the paper's equations, torch.nn.RNN (one
module of period 1; every module running) and finite differences; these tests check that
the kernels' hand-written forward and backward passes, and their skipping of the modules
that do not run, agree with it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, outputs_and_grads, random_loss
from torch.autograd import gradcheck
from triton_on_cpu import (  # noqa: F401 (a fixture)
    STREAMED_SHAPES,
    TRITON_SHAPES,
    triton_on_the_cpu,
    triton_shape,
)

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.layers.backends import Backend, choose_backend, fused_triton
from lstmkit.layers.clockwork import ClockworkRNN

I, T = 4, 7
# batch 1 ends early too, so the masked path also runs on the kernels' per-module products
LENGTHS = [5, 7, 2, 6, 3, 1]

# id: the layer's options. Periods 1, 2, 4 run nested modules (a module runs whenever a
# slower one does); 2, 3, 5 do not, and with period 2 first some steps run no module at all.
CELLS = {
    "exp3": dict(num_modules=3),
    "periods-2-3-5": dict(periods=(2, 3, 5)),
    "exp3-nobias": dict(num_modules=3, bias=False),
}
# hidden size, layers, lengths or full, uni- or bidirectional (H 6: 2 units a module, the
# kernels' one-value-at-a-time remainders; H 48: 16, AVX-512's float32 vector; H 63: 21, a
# vector or two and a remainder in every build)
SHAPES = {
    "H6-L1-full-uni": (6, 1, False, False),
    "H6-L2-lengths-bi": (6, 2, True, True),
    "H48-L1-lengths-uni": (48, 1, True, False),
    "H63-L1-lengths-bi": (63, 1, True, True),
}
# batch 1 takes the per-module products (kSmallBatch = 4); batch 6 ATen's GEMM
BATCHES = {"B1": 1, "B6": 6}
# every row starts at clock 0 (the rows share the schedule), or at clocks of its own
CLOCKS = ["clock-zero", "clock-per-row"]
CPU_GRID = list(itertools.product(CELLS, SHAPES, BATCHES, CLOCKS))


def _pair(cell: str, hidden: int, layers: int, bidirectional: bool, dtype=torch.float32):
    """A reference layer and a fused one with the same weights."""
    make = lambda backend: ClockworkRNN(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **CELLS[cell]
    ).to(dtype)
    reference, ours = make("reference"), make("fused")
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layer, batch: int, dtype, clocks: str = "clock-per-row", seed: int = 1):
    """x and h0, requiring gradients, and the initial clock (no gradient: the schedule is
    not differentiable)."""
    gen = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    x = torch.randn(T, batch, I, generator=gen, dtype=dtype)
    h0 = torch.randn(stacked, batch, layer.family.hidden_size, generator=gen, dtype=dtype)
    if clocks == "clock-zero":
        clock0 = torch.zeros(stacked, batch, 1, dtype=dtype)
    else:  # whole numbers past the cycle too: the kernels count them modulo lcm(periods)
        clock0 = torch.randint(0, 70, (stacked, batch, 1), generator=gen).to(dtype)
    return x.requires_grad_(True), h0.requires_grad_(True), clock0


def _run(layer, x, h0, clock0, lengths):
    return outputs_and_grads(layer, x, (h0, clock0), lengths)


def _lengths(use_lengths: bool, batch: int):
    return torch.tensor(LENGTHS[:batch]) if use_lengths else None


# -- the C++ CPU kernels -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("cell", "shape", "batch", "clocks"), CPU_GRID, ids=["-".join(c) for c in CPU_GRID]
)
def test_cpu_kernels_match_reference(cell, shape, batch, clocks, dtype):
    hidden, layers, use_lengths, bidirectional = SHAPES[shape]
    reference, ours = _pair(cell, hidden, layers, bidirectional, dtype)
    x, h0, clock0 = _inputs(reference, BATCHES[batch], dtype, clocks)
    lengths = _lengths(use_lengths, BATCHES[batch])
    mine, theirs = _run(ours, x, h0, clock0, lengths), _run(reference, x, h0, clock0, lengths)
    assert torch.equal(mine[2], theirs[2]), "the final clocks differ"
    assert_close_all(mine, theirs, dtype, f"fused vs reference, {cell} {shape} {batch} {clocks}")


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
def test_masked_entries_of_w_h_get_exactly_zero_gradient_and_do_not_act(batch):
    """Below the diagonal blocks W_H is masked (slower modules feed faster ones only): those
    entries of ``weight_hh`` change nothing when set, and get a gradient of exactly 0."""
    layer = ClockworkRNN(I, 6, num_modules=3, backend="fused", dtype=torch.float64)
    masked = ~layer.family.connected(layer.weight_hh_l0)
    assert masked.sum() == 3 * 2 * 2  # g(g-1)/2 blocks of k x k
    x, h0, clock0 = _inputs(layer, batch, torch.float64)
    before, (h_before, _) = layer(x, (h0, clock0), lengths=_lengths(True, batch))
    with torch.no_grad():
        layer.weight_hh_l0[masked] = 5.0
    after, (h_after, _) = layer(x, (h0, clock0), lengths=_lengths(True, batch))
    assert torch.equal(before, after) and torch.equal(h_before, h_after)
    random_loss([after, h_after], seed=4).backward()
    grad = layer.weight_hh_l0.grad
    assert (grad[masked] == 0).all()
    assert (grad[~masked] != 0).all()  # the test can see a gradient where one flows


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("cell", ["exp3", "periods-2-3-5"])
def test_a_state_carried_over_two_calls_equals_one_call(cell, batch):
    """The clock in the state continues the schedule where the first call stopped."""
    _, layer = _pair(cell, 6, 2, False, torch.float64)  # a reverse direction reads ahead
    x, h0, clock0 = _inputs(layer, batch, torch.float64)
    whole, (h_n, clock_n) = layer(x, (h0, clock0))
    first, state = layer(x[:3], (h0, clock0))
    second, (h_2, clock_2) = layer(x[3:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, **TOLERANCE[torch.float64])
    torch.testing.assert_close(h_2, h_n, **TOLERANCE[torch.float64])
    assert torch.equal(clock_2, clock_n)
    cycle = layer.family.cycle
    assert torch.equal(clock_n, torch.remainder(clock0 + T, cycle))


@pytest.mark.parametrize("cell", ["exp3", "periods-2-3-5"])
def test_cpu_kernels_gradcheck(cell):
    """Finite differences in float64 against the kernels' hand-written backward, the initial
    state included, with lengths and clocks that differ per row. Batch 2: the kernels' own
    products (ATen's GEMM path is covered by the float64 comparisons at batch 6)."""
    layer = ClockworkRNN(2, 6, bidirectional=True, backend="fused", **CELLS[cell]).double()
    names = [n for n, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    clock0 = torch.tensor([[[0.0], [3.0]], [[1.0], [0.0]]], dtype=torch.float64)
    lengths = [5, 3]

    def run(x, h0, *params):
        parameters = dict(zip(names, params, strict=True))
        output, (h_n, _) = torch.func.functional_call(
            layer, parameters, (x, (h0, clock0)), {"lengths": lengths}
        )
        return output, h_n

    assert gradcheck(run, (x, h0, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
def test_cpu_kernels_bfloat16_follow_float32(batch):
    """The kernels compute in float32 and round on store, so on the same (rounded) weights
    and inputs they follow the float32 reference within bfloat16's 8 bits; the clock
    (lcm 4) counts exactly in bfloat16."""
    reference, ours = _pair("exp3", 6, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, batch, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine, (_, clock) = ours(x.requires_grad_(True))
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    assert clock.dtype == torch.bfloat16 and (clock == T % 4).all()
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


def test_cpu_kernels_refuse_a_clock_dtype_that_cannot_count_the_cycle():
    """bfloat16 counts exactly to 256; periods with lcm 3 * 5 * 7 * 11 = 1155 are refused
    with the reference's own message, not counted wrongly."""
    layer = ClockworkRNN(I, 4, periods=(3, 5, 7, 11), backend="fused").to(torch.bfloat16)
    with pytest.raises(ValueError, match="cannot count exactly"):
        layer(torch.randn(T, 1, I, dtype=torch.bfloat16))


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
def test_cpu_traces_match_the_reference(batch):
    """``hidden`` and ``active`` with the reference's values, zeros past each sequence's end."""
    reference, ours = _pair("periods-2-3-5", 6, 1, True, torch.float64)
    x, h0, clock0 = _inputs(reference, batch, torch.float64)
    lengths = _lengths(True, batch)
    mine = ours(x, (h0, clock0), lengths=lengths, return_trace=True)[2]
    theirs = reference(x, (h0, clock0), lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names == ("hidden", "active")
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float64])


# -- which backend runs what ---------------------------------------------------------------


def test_auto_runs_it_on_the_fused_kernels_on_the_cpu():
    family = ClockworkFamily(6, periods=(2, 3, 5))
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.FUSED
    # a traced call takes the reference, whose traces are differentiable
    assert choose_backend(Backend.AUTO, family, tracing=True) is Backend.REFERENCE
    # off the CPU auto does not take the Triton kernels (unmeasured on a GPU), and torch
    # has no Clockwork RNN: the reference loop runs it
    assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.REFERENCE
    assert ClockworkRNN(I, 6, num_modules=3).backend is Backend.AUTO
    assert ClockworkRNN(I, 6, num_modules=3, backend="fused").backend is Backend.FUSED


def test_auto_gives_the_reference_result_on_the_cpu():
    reference, _ = _pair("exp3", 6, 2, True, torch.float64)
    auto = ClockworkRNN(I, 6, 2, bidirectional=True, num_modules=3, dtype=torch.float64)
    auto.load_state_dict(reference.state_dict())
    x, h0, clock0 = _inputs(reference, 2, torch.float64)
    mine, theirs = _run(auto, x, h0, clock0, None), _run(reference, x, h0, clock0, None)
    assert_close_all(mine, theirs, torch.float64, "auto vs reference")


@pytest.mark.parametrize("backend", ["torch", "manual"])
def test_the_other_fast_backends_still_refuse_it(backend):
    needle = "do not have the clockwork cell"
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer: .*{needle}"):
        ClockworkRNN(I, 6, num_modules=3, backend=backend)


# -- the Triton kernels, under the interpreter ---------------------------------------------
#
# Set up by tests/triton_on_cpu.py (the fixture and the shapes): tiny sizes, float32,
# the kernels' widest dtype; W_H on chip and streamed. H 5, 20 and 40 are not multiples
# of 3 modules: those shapes take H 6, 18 and 39 (the split at 16 units then cuts a module
# in two; streamed, 39 leaves a partial third slice).

TRITON_HIDDEN = {5: 6, 20: 18, 40: 39}
TRITON_GRID = list(itertools.product(["exp3", "periods-2-3-5"], [*TRITON_SHAPES, *STREAMED_SHAPES]))


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize(("cell", "shape"), TRITON_GRID, ids=["-".join(c) for c in TRITON_GRID])
def test_triton_kernels_match_reference(cell, shape, monkeypatch):
    hidden, layers, use_lengths, bidirectional, _ = triton_shape(shape, monkeypatch)
    reference, ours = _pair(cell, TRITON_HIDDEN[hidden], layers, bidirectional)
    x, h0, clock0 = _inputs(reference, 3, torch.float32)
    lengths = _lengths(use_lengths, 3)
    mine, theirs = _run(ours, x, h0, clock0, lengths), _run(reference, x, h0, clock0, lengths)
    assert torch.equal(mine[2], theirs[2]), "the final clocks differ"
    assert_close_all(mine, theirs, torch.float32, f"triton vs reference, {cell} {shape}")


@pytest.mark.usefixtures("triton_on_the_cpu")
def test_triton_kernels_bfloat16_follow_float32(monkeypatch):
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    reference, ours = _pair("exp3", 18, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, 3, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())


@pytest.mark.usefixtures("triton_on_the_cpu")
def test_triton_traces_match_the_reference():
    reference, ours = _pair("periods-2-3-5", 6, 1, True)
    x, h0, clock0 = _inputs(reference, 3, torch.float32)
    lengths = _lengths(True, 3)
    mine = ours(x, (h0, clock0), lengths=lengths, return_trace=True)[2]
    theirs = reference(x, (h0, clock0), lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float32])
