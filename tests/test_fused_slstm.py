"""The sLSTM (Beck et al. 2024, Sec. 2.2) on the fused backend: the C++ CPU kernels and the
Triton kernels (under Triton's CPU interpreter) against the reference loop, on outputs, all
four final states (h, c, n, m) and every gradient (input, each initial state, every
parameter) under random upstream gradients, over heads, both forget gates, the stabilised
and the plain form, with and without biases, at batch 1 (the C++ kernels' own products) and
batch 6 (ATen's: bmm over several heads, the GEMM for one), lengths, bidirectional and
stacked; finite differences on the C++ kernels; the max's gradient on an exact tie and the
first step from the zero state; bfloat16 against float32; traces; and which backend runs
what.

The reference loop is lstmkit.cellmath.slstm's step under autograd, which tests/test_slstm.py
checks against loops of the paper's equations, a log-space evaluation and finite
differences; these tests check that the kernels' hand-written passes agree with it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import (
    TOLERANCE,
    assert_close_all,
    outputs_and_grads,
    products_through_aten,
    random_loss,
)
from torch.autograd import gradcheck
from triton_on_cpu import (  # noqa: F401 (a fixture)
    STREAMED_SHAPES,
    TRITON_SHAPES,
    triton_on_the_cpu,
    triton_shape,
)

from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.layers.backends import Backend, choose_backend, fused_triton
from lstmkit.layers.backends.fused_triton import slstm as slstm_triton
from lstmkit.layers.slstm import SLSTM

I, T = 4, 6
# batch 1 ends early too, so the masked path also runs on the kernels' small-batch products
LENGTHS = [4, 6, 2, 5, 3, 1]

# id: the layer's options (H = 6 in the CPU grid, so 1, 2 and 3 heads divide it)
CELLS = {
    "sigmoid": {},
    "exp": dict(forget_activation="exp"),
    "plain-sigmoid": dict(stabilized=False),
    "plain-exp-heads2": dict(stabilized=False, forget_activation="exp", num_heads=2),
    "heads3-nobias": dict(num_heads=3, bias=False),
    "exp-heads2-nobias": dict(forget_activation="exp", num_heads=2, bias=False),
}
# hidden size, layers, lengths or full, uni- or bidirectional; H42 (heads of 42, 21 or 14)
# fills SIMD vectors of the rows' arithmetic and leaves a remainder (common.h's for_lanes),
# which H = 6 never does in float32
SHAPES = {
    "H6-L1-full-uni": (6, 1, False, False),
    "H6-L2-lengths-bi": (6, 2, True, True),
    "H42-L1-lengths-bi": (42, 1, True, True),
}
# batch 1 takes the kernels' own products (vec_mat; kSmallBatch = 4); batch 6 ATen's: its
# bmm over several heads, and for one head, whose product takes the other kernels' rule
# (step_operand), the GEMM (LSTMKIT_NO_VEC_MAT: at this size vec_mat would take it too)
BATCHES = {"B1": 1, "B6": 6}
CPU_GRID = list(itertools.product(CELLS, SHAPES, BATCHES))


def _pair(options: dict, hidden: int, layers: int, bidirectional: bool, dtype=torch.float32):
    """A reference layer and a fused one with the same weights."""
    make = lambda backend: SLSTM(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **options
    ).to(dtype)
    reference, ours = make("reference"), make("fused")
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layer, batch: int, dtype, seed: int = 1):
    """x and a random initial (h, c, n, m), all requiring gradients; n0 > 0."""
    gen = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * layer.num_directions
    shape = (stacked, batch, layer.family.hidden_size)
    x = torch.randn(T, batch, I, generator=gen, dtype=dtype)
    h0, c0, m0 = (torch.randn(shape, generator=gen, dtype=dtype) for _ in range(3))
    n0 = torch.rand(shape, generator=gen, dtype=dtype) + 0.5
    return [t.requires_grad_(True) for t in (x, h0, c0, n0, m0)]


def _run(layer, x, state, lengths):
    return outputs_and_grads(layer, x, tuple(state), lengths)


def _lengths(use_lengths: bool, batch: int):
    return torch.tensor(LENGTHS[:batch]) if use_lengths else None


# -- the C++ CPU kernels -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("cell", "shape", "batch"), CPU_GRID, ids=["-".join(c) for c in CPU_GRID])
def test_cpu_kernels_match_reference(cell, shape, batch, dtype, monkeypatch):
    if batch == "B6":
        products_through_aten(monkeypatch)
    hidden, layers, use_lengths, bidirectional = SHAPES[shape]
    reference, ours = _pair(CELLS[cell], hidden, layers, bidirectional, dtype)
    x, *state = _inputs(reference, BATCHES[batch], dtype)
    lengths = _lengths(use_lengths, BATCHES[batch])
    mine, theirs = _run(ours, x, state, lengths), _run(reference, x, state, lengths)
    _assert_agree(mine, theirs, dtype, cell, f"fused vs reference, {cell} {shape} {batch}")


def _assert_agree(mine, theirs, dtype, cell: str, what: str) -> None:
    if dtype == torch.float32 and cell.startswith("plain"):
        # the plain form's c and n grow as exp of the summed gate inputs, and the gradients
        # through h = o c / n cancel terms of that size: float32's rounding shows at up to
        # ~3e-5 relative here (in float64 the same cells agree to 1e-10)
        for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            torch.testing.assert_close(a, b, rtol=5e-4, atol=5e-4, msg=f"{what}[{k}]")
        return
    assert_close_all(mine, theirs, dtype, what)


GRADCHECK_CELLS = ["sigmoid", "exp", "plain-sigmoid", "plain-exp-heads2", "heads3-nobias"]


@pytest.mark.parametrize("cell", GRADCHECK_CELLS)
def test_cpu_kernels_gradcheck(cell):
    """Finite differences in float64 against the kernels' hand-written backward, through all
    four initial states; bidirectional, with one sequence ending early. Random data has no
    ties in the max, where the stabilised form is not differentiable."""
    layer = SLSTM(2, 3 if "heads3" in cell else 4, bidirectional=True, backend="fused",
                  **CELLS[cell]).double()  # fmt: skip
    names = [n for n, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    hidden = layer.family.hidden_size
    x = torch.randn(4, 2, 2, generator=gen, dtype=torch.float64)
    h0, c0, m0 = (torch.randn(2, 2, hidden, generator=gen, dtype=torch.float64) for _ in range(3))
    n0 = torch.rand(2, 2, hidden, generator=gen, dtype=torch.float64) + 0.5
    inputs = [t.requires_grad_(True) for t in (x, h0, c0, n0, m0)]

    def run(x, h0, c0, n0, m0, *params):
        parameters = dict(zip(names, params, strict=True))
        output, final = torch.func.functional_call(
            layer, parameters, (x, (h0, c0, n0, m0)), {"lengths": [4, 3]}
        )
        return output, *final

    assert gradcheck(run, (*inputs, *layer.parameters()), eps=1e-6, atol=1e-6)


def _tied_layer(dtype=torch.float64) -> SLSTM:
    """An exponential-forget sLSTM whose input and forget gates get bit-identical
    pre-activations at the first step from the zero state: the same rows of weight_ih and
    the same biases, all multiples of 1/8 (as is x below), so every product and sum is exact
    whatever the order of summation. Then log f_1 + m_0 = f~_1 = i~_1: a tie in the max.
    The recurrent blocks of i and f differ, so later steps do not tie."""
    layer = SLSTM(I, 4, num_heads=2, forget_activation="exp", backend="reference").to(dtype)
    gen = torch.Generator().manual_seed(5)
    dyadic = lambda *shape: torch.randint(-8, 9, shape, generator=gen).to(dtype) / 8  # noqa: E731
    with torch.no_grad():
        w_ih = dyadic(16, I)
        w_ih[4:8] = w_ih[0:4]  # f's rows are i's
        layer.weight_ih_l0.copy_(w_ih)
        b_ih, b_hh = dyadic(16), dyadic(16)
        b_ih[4:8], b_hh[4:8] = b_ih[0:4], b_hh[0:4]
        layer.bias_ih_l0.copy_(b_ih)
        layer.bias_hh_l0.copy_(b_hh)
    return layer


def test_cpu_kernels_split_the_max_gradient_on_a_tie_as_the_reference():
    """At a tie of log f_t + m_{t-1} and i~_t the max is not differentiable; the reference
    (torch.maximum under autograd) gives each side half of m_t's gradient, and that split
    changes the gradients of i~ and f~ (their sum is the same either way), so the kernels
    must make the same choice. Upstream gradients reach all four final states."""
    reference = _tied_layer()
    ours = _tied_layer()
    ours.load_state_dict(reference.state_dict())
    ours.backend = "fused"
    gen = torch.Generator().manual_seed(6)
    x = (torch.randint(-8, 9, (3, 2, I), generator=gen).double() / 8).requires_grad_(True)
    # the tie is there, exactly, in what the reference computes
    pre = torch.nn.functional.linear(x[0], reference.weight_ih_l0, reference.bias_ih_l0)
    pre = pre + reference.bias_hh_l0
    assert torch.equal(pre[:, 0:4], pre[:, 4:8])
    results = []
    for layer in (ours, reference):
        output, final = layer(x)
        values = [output, *final]
        params = list(layer.parameters())
        results.append([*values, *torch.autograd.grad(random_loss(values, 4), [x, *params])])
    assert_close_all(*results, torch.float64, "fused vs reference on a tie")


@pytest.mark.parametrize("cell", ["sigmoid", "exp", "plain-sigmoid", "plain-exp-heads2"])
def test_cpu_kernels_first_step_from_the_zero_state(cell):
    """One step from zeros (hx=None): m_1 = max(log f_1, i~_1) with c_0 = n_0 = 0, so
    c_1 / n_1 = z_1 and the forget path carries nothing but m's own gradient; every gradient,
    the final m's included, as the reference's."""
    reference, ours = _pair(CELLS[cell], 6, 1, False, torch.float64)
    x = torch.randn(1, 3, I, dtype=torch.float64, requires_grad=True)
    results = []
    for layer in (ours, reference):
        output, final = layer(x)
        values = [output, *final]
        params = list(layer.parameters())
        results.append([*values, *torch.autograd.grad(random_loss(values, 7), [x, *params])])
    assert_close_all(*results, torch.float64, f"first step, {cell}")


@pytest.mark.parametrize("hidden", [6, 42], ids=["H6", "H42"])  # H42: SIMD lanes and a rest
@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("cell", ["sigmoid", "plain-exp-heads2"])
def test_cpu_kernels_bfloat16_follow_float32(cell, batch, hidden):
    """The kernels compute in float32 and round on store, so on the same (rounded) weights
    and inputs they follow the float32 reference within bfloat16's 8 bits."""
    reference, ours = _pair(CELLS[cell], hidden, 2, True)
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
@pytest.mark.parametrize("cell", ["sigmoid", "plain-exp-heads2"])
def test_cpu_traces_match_the_reference(cell, batch):
    """The family's eight named quantities with the same values, zeros past each sequence's
    end."""
    reference, ours = _pair(CELLS[cell], 6, 1, True, torch.float64)
    x = torch.randn(T, batch, I, dtype=torch.float64)
    lengths = _lengths(True, batch)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float64])


# -- which backend runs what ---------------------------------------------------------------

FAMILIES = {
    "default": SLSTMFamily(4),
    "every-option": SLSTMFamily(4, num_heads=2, forget_activation="exp", stabilized=False),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_auto_runs_the_slstm_on_the_fused_kernels_on_the_cpu(family):
    family = FAMILIES[family]
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.FUSED
    # a traced call takes the reference, whose traces are differentiable
    assert choose_backend(Backend.AUTO, family, tracing=True) is Backend.REFERENCE
    # off the CPU auto does not take the Triton kernels (unmeasured on a GPU)
    assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.REFERENCE
    assert SLSTM(I, 4, backend="fused").backend is Backend.FUSED


@pytest.mark.parametrize("backend", ["torch", "manual"])
def test_the_other_fast_backends_still_refuse_it(backend):
    needle = "do not have the slstm cell"
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer: .*{needle}"):
        SLSTM(I, 4, backend=backend)


# -- the Triton kernels, under the interpreter ---------------------------------------------
#
# Set up by tests/triton_on_cpu.py (the fixture and the shapes: H5 in one program, H20 split
# over two programs of 16 units; and R streamed, split at H20 and in one program at H40).
# 5 heads divide each; 2 heads of 10 units at H20 put one head across the two programs
# (streamed, the second program reads that head's columns only).

TRITON_CELLS = {
    "sigmoid": ({}, None),
    "plain-exp": (dict(stabilized=False, forget_activation="exp"), None),
    "exp-heads5-nobias": (dict(forget_activation="exp", num_heads=5, bias=False), None),
    "plain-sigmoid-heads2": (
        dict(stabilized=False, num_heads=2),
        ("H20-L2-lengths-bi-split", "H20-L2-lengths-bi-split-streamed"),
    ),
}
TRITON_GRID = [
    (cell, shape)
    for cell, shape in itertools.product(TRITON_CELLS, [*TRITON_SHAPES, *STREAMED_SHAPES])
    if TRITON_CELLS[cell][1] is None or shape in TRITON_CELLS[cell][1]
]


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize(("cell", "shape"), TRITON_GRID, ids=["-".join(c) for c in TRITON_GRID])
def test_triton_kernels_match_reference(cell, shape, monkeypatch):
    hidden, layers, use_lengths, bidirectional, _ = triton_shape(shape, monkeypatch)
    reference, ours = _pair(TRITON_CELLS[cell][0], hidden, layers, bidirectional)
    x, *state = _inputs(reference, 3, torch.float32)
    lengths = _lengths(use_lengths, 3)
    mine, theirs = _run(ours, x, state, lengths), _run(reference, x, state, lengths)
    _assert_agree(mine, theirs, torch.float32, cell, f"triton vs reference, {cell} {shape}")


# (heads, units per program) at H = 40, and the rows of R each program reads (from the first
# row of its first unit's head to the end of its last unit's head), padded to BLOCK_S
HEAD_SPANS = {
    "heads4": (4, 16),  # heads of 10: rows 0-20, 10-40, 30-40; BLOCK_S 32 of 64
    "heads8": (8, 16),  # heads of 5: rows 0-20, 15-35, 30-40; BLOCK_S 32
    "heads2": (2, 32),  # heads of 20: rows 0-40, 20-40; BLOCK_S 64, all of H: both from row 0
}


def test_each_program_reads_only_its_units_heads_rows():
    """_heads_span: the widest span of whole heads any program's units touch, padded to a
    power of two; a single head (or a program holding every unit) spans all of H, as a
    dense tile would."""
    assert [slstm_triton._heads_span(40, 10)(units) for units in (8, 16, 64)] == [32, 32, 64]
    assert slstm_triton._heads_span(40, 5)(16) == 32
    assert slstm_triton._heads_span(40, 20)(32) == 64
    assert slstm_triton._heads_span(24, 6)(8) == 16  # rows 0-12, 6-18, 12-24
    assert slstm_triton._heads_span(768, 192)(64) == 256  # 64 divides 192: one head each
    assert slstm_triton._heads_span(768, 192)(256) == 512  # two heads at most: 384 rows
    assert slstm_triton._heads_span(768, 768)(16) == 1024  # one head: dense


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("case", list(HEAD_SPANS))
def test_triton_kernels_read_their_heads_span_only(case, monkeypatch):
    """At H = 40 split over programs, each program's products reduce over its heads' rows
    from a head boundary that need not be its first unit: outputs, states and every
    gradient against the reference, with lengths, in float32."""
    heads, units = HEAD_SPANS[case]
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", units)
    reference, ours = _pair(dict(num_heads=heads), 40, 1, False)
    x, *state = _inputs(reference, 3, torch.float32)
    lengths = _lengths(True, 3)
    mine, theirs = _run(ours, x, state, lengths), _run(reference, x, state, lengths)
    _assert_agree(mine, theirs, torch.float32, case, f"triton vs reference, {case}")


def test_on_an_h100_several_heads_give_a_program_more_units(monkeypatch):
    """FlashRNN's size: with one head the sLSTM is laid out as the LSTM (16 units a
    program, R's rows padded to 1,024); with 4 heads of 192 a program needs 256 rows, and
    the same on-chip budget holds 64 units in bfloat16 (12 programs), and 32 in float32,
    which a single head streams."""
    monkeypatch.setattr(fused_triton, "gpu_limits", lambda device: fused_triton.H100_LIMITS)
    cuda = torch.device("cuda")
    one_head, dense = slstm_triton._layout(16, 768, 768, torch.bfloat16, cuda)
    assert (one_head.block_h, one_head.hidden_blocks, one_head.streamed_k, dense) == (
        16, 48, None, 1024)  # fmt: skip
    heads, span = slstm_triton._layout(16, 768, 192, torch.bfloat16, cuda)
    assert (heads.block_h, heads.hidden_blocks, heads.streamed_k, span) == (64, 12, None, 256)
    assert heads.shared < one_head.shared
    heads32, span32 = slstm_triton._layout(16, 768, 192, torch.float32, cuda)
    assert (heads32.block_h, heads32.streamed_k, span32) == (32, None, 256)
    assert slstm_triton._layout(16, 768, 768, torch.float32, cuda)[0].streamed_k == 256


@pytest.mark.usefixtures("triton_on_the_cpu")
def test_triton_kernels_split_the_max_gradient_on_a_tie_as_the_reference():
    reference = _tied_layer(torch.float32)
    ours = _tied_layer(torch.float32)
    ours.load_state_dict(reference.state_dict())
    ours.backend = "fused"
    gen = torch.Generator().manual_seed(6)
    x = (torch.randint(-8, 9, (3, 2, I), generator=gen).float() / 8).requires_grad_(True)
    results = []
    for layer in (ours, reference):
        output, final = layer(x)
        values = [output, *final]
        params = list(layer.parameters())
        results.append([*values, *torch.autograd.grad(random_loss(values, 4), [x, *params])])
    assert_close_all(*results, torch.float32, "triton vs reference on a tie")


@pytest.mark.usefixtures("triton_on_the_cpu")
def test_triton_kernels_bfloat16_follow_float32(monkeypatch):
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    reference, ours = _pair(dict(num_heads=2), 20, 1, True)
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
    reference, ours = _pair(dict(num_heads=5), 5, 1, True)
    x = torch.randn(T, 3, I)
    lengths = _lengths(True, 3)
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float32])
