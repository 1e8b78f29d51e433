"""The memory-joined stacks on the fused backend: the depth-gated LSTM (Yao et al. 2015) and
the 2-D Grid LSTM (Kalchbrenner et al. 2015), whose C++ kernels (fused_cpu/stacks.cpp) run
one layer per call, against each layer's reference loop on outputs, final states and every
gradient (input, hx, every parameter) under random upstream gradients, at batch 1 (the
kernels' own products) and batch 6 (ATen's GEMM), with lengths=, 2 and 3 layers and each
option; finite differences on the kernels; traces; bfloat16 against float32; dropout; and
the ``backend`` keyword (what it refuses, what ``auto`` takes). The Triton kernels
(fused_triton/stacks.py) are checked the same way on CPU tensors under Triton's
interpreter, and which kernels each device gets.

The reference loops are checked in tests/test_depth_gated.py and tests/test_grid_lstm.py
against the papers' equations written out in those tests, torch.nn.LSTM (a shut depth
gate; the Stacked LSTM) and torch.nn.LSTMCell; these tests check that the kernels'
hand-written forward and backward passes agree with them.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, outputs_and_grads, products_through_aten
from torch.autograd import gradcheck
from torch.func import functional_call
from triton_on_cpu import lay_out

from lstmkit.layers import _memory_stack
from lstmkit.layers.backends import Backend, fused_cpu, fused_triton
from lstmkit.layers.backends.fused_cpu import stacks
from lstmkit.layers.backends.fused_triton import stacks as triton_stacks
from lstmkit.layers.depth_gated import DepthGatedLSTM
from lstmkit.layers.grid_lstm import GridLSTM

I, T = 3, 6
LENGTHS = [4, 6, 2, 5, 3, 1]  # batch 1 ends early too: the masked path on the small products

# id: (layer class, its options); every option of each family
CASES = {
    "depth-gated": (DepthGatedLSTM, {}),
    "depth-gated-nobias": (DepthGatedLSTM, dict(bias=False)),
    "grid": (GridLSTM, {}),
    "grid-nobias": (GridLSTM, dict(bias=False)),
    "grid-tied": (GridLSTM, dict(tied=True)),
    "grid-printed-form": (GridLSTM, dict(output_form="tanh(o*m)")),
    "grid-tied-printed-form": (GridLSTM, dict(tied=True, output_form="tanh(o*m)")),
    "grid-stacked": (GridLSTM, dict(depth_lstm=False)),
    "grid-stacked-printed-form": (GridLSTM, dict(depth_lstm=False, output_form="tanh(o*m)")),
}
# hidden size, layers, lengths or full; H21 fills a SIMD vector or two of the rows'
# arithmetic and leaves a remainder (common.h's for_lanes), which H of 4 and 5 never reach in
# float32
SHAPES = {
    "H5-L2-full": (5, 2, False),
    "H4-L3-lengths": (4, 3, True),
    "H21-L2-lengths": (21, 2, True),
}
# batch 1: the kernels' own products (vec_mat); batch 6: ATen's GEMM, sent there by
# LSTMKIT_NO_VEC_MAT (vec_mat would take it too at these sizes)
BATCHES = {"B1": 1, "B6": 6}
GRID = list(itertools.product(CASES, SHAPES, BATCHES))


def _pair(case: str, hidden: int, layers: int, dtype=torch.float64, **extra):
    """A reference layer and a fused one with the same weights."""
    cls, options = CASES[case]
    torch.manual_seed(0)
    reference = cls(I, hidden, layers, backend="reference", **options, **extra).to(dtype)
    ours = cls(I, hidden, layers, backend="fused", **options, **extra).to(dtype)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layers: int, hidden: int, batch: int, dtype, seed: int = 1):
    """x and a random hx = (h_0, c_0), all requiring gradients."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, batch, I, generator=gen, dtype=dtype)
    h0 = torch.randn(layers, batch, hidden, generator=gen, dtype=dtype)
    c0 = torch.randn(layers, batch, hidden, generator=gen, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, h0, c0)]


def _run(layer, x, h0, c0, lengths):
    return outputs_and_grads(layer, x, (h0, c0), lengths)


def _lengths(use: bool, batch: int):
    return torch.tensor(LENGTHS[:batch]) if use else None


# -- the C++ kernels against the reference loops ---------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("case", "shape", "batch"), GRID, ids=["-".join(c) for c in GRID])
def test_cpu_kernels_match_reference(case, shape, batch, dtype, monkeypatch):
    if batch == "B6":
        products_through_aten(monkeypatch)
    hidden, layers, use_lengths = SHAPES[shape]
    reference, ours = _pair(case, hidden, layers, dtype)
    x, h0, c0 = _inputs(layers, hidden, BATCHES[batch], dtype)
    lengths = _lengths(use_lengths, BATCHES[batch])
    mine, theirs = _run(ours, x, h0, c0, lengths), _run(reference, x, h0, c0, lengths)
    assert_close_all(mine, theirs, dtype, f"fused vs reference, {case} {shape} {batch}")


GRADCHECK_CASES = ["depth-gated", "depth-gated-nobias", "grid", "grid-tied-printed-form",
                   "grid-stacked"]  # fmt: skip


@pytest.mark.parametrize("case", GRADCHECK_CASES)
def test_cpu_kernels_gradcheck(case):
    """Finite differences in float64 against the kernels' hand-written backward: input,
    hx and every parameter, two layers, one sequence ending early."""
    cls, options = CASES[case]
    torch.manual_seed(0)
    layer = cls(2, 3, 2, backend="fused", **options).double()
    names = [n for n, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def run(x, h0, c0, *params):
        parameters = dict(zip(names, params, strict=True))
        out, (h, c) = functional_call(layer, parameters, (x, (h0, c0)), {"lengths": [4, 3]})
        return out, h, c

    assert gradcheck(run, (x, h0, c0, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("case", ["depth-gated", "grid", "grid-printed-form", "grid-stacked"])
def test_cpu_traces_match_the_reference(case, batch):
    """The same names and values, zeros past each sequence's end; the fused ones detached."""
    reference, ours = _pair(case, 4, 3)
    x = torch.randn(T, batch, I, dtype=torch.float64)
    lengths = _lengths(True, batch)
    *_, mine = ours(x, lengths=lengths, return_trace=True)
    *_, theirs = reference(x, lengths=lengths, return_trace=True)
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        assert not mine[name].requires_grad, name
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float64])


@pytest.mark.parametrize("hidden", [6, 21], ids=["H6", "H21"])  # H21: SIMD lanes and a rest
@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("case", ["depth-gated", "grid"])
def test_cpu_kernels_bfloat16_follow_float32(case, batch, hidden):
    """The kernels compute in float32 and round on store: on the same (rounded) weights and
    inputs they follow the float32 reference within bfloat16's 8 bits."""
    reference, ours = _pair(case, hidden, 2, torch.float32)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, batch, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


def test_depth_gated_dropout_draws_the_references_masks():
    """Both backends drop each layer's whole output (T, B, H) at once, so under one seed they
    draw the same masks and agree, gradients included."""
    reference, ours = _pair("depth-gated", 5, 3, dropout=0.5)
    x, h0, c0 = _inputs(3, 5, 6, torch.float64)
    lengths = _lengths(True, 6)
    torch.manual_seed(7)
    theirs = _run(reference, x, h0, c0, lengths)
    torch.manual_seed(7)
    mine = _run(ours, x, h0, c0, lengths)
    assert_close_all(mine, theirs, torch.float64, "depth-gated with dropout")


def test_grid_dropout_is_fresh_in_training_and_off_in_eval():
    """The grid's reference loop drops each block's eta step by step, the fused backend each
    layer's at once: other random numbers, so here only what both must do."""
    reference, ours = _pair("grid", 5, 3, dropout=0.5)
    x = torch.randn(T, 2, I, dtype=torch.float64)
    assert not torch.equal(ours(x)[0], ours(x)[0])
    reference.eval(), ours.eval()
    torch.testing.assert_close(ours(x)[0], reference(x)[0], **TOLERANCE[torch.float64])


def test_a_break_in_the_kernels_fails_these_tests(monkeypatch):
    """These comparisons can fail: with the depth gate's lower-cell gradient dropped (what a
    kernel forgetting it would return), the input's gradient disagrees."""
    original = stacks._DepthGatedFunction.backward

    def broken(ctx, *grads):
        result = list(original(ctx, *grads))
        if result[3] is not None:
            result[3] = torch.zeros_like(result[3])
        return tuple(result)

    monkeypatch.setattr(stacks._DepthGatedFunction, "backward", staticmethod(broken))
    reference, ours = _pair("depth-gated", 4, 2)
    x, h0, c0 = _inputs(2, 4, 1, torch.float64)
    mine, theirs = _run(ours, x, h0, c0, None), _run(reference, x, h0, c0, None)
    with pytest.raises(AssertionError):
        assert_close_all(mine, theirs, torch.float64, "broken on purpose")


# -- the backend keyword ---------------------------------------------------------------------

LAYERS = {"depth-gated": DepthGatedLSTM, "grid": GridLSTM}


@pytest.mark.parametrize(
    ("backend", "needle"),
    [
        ("torch", "torch's fused kernels have no memory-joined stacks"),
        ("manual", "the manual backend's loops run the LSTM family only"),
    ],
)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_backend_refuses_torch_and_manual(layer, backend, needle):
    with pytest.raises(ValueError, match=rf"backend='{backend}' cannot run this layer: {needle}; "
                       r"it takes 'reference', 'fused', 'auto'"):  # fmt: skip
        LAYERS[layer](I, 4, 2, backend=backend)
    made = LAYERS[layer](I, 4, 2)
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer"):
        made.backend = backend  # the setter checks too
    with pytest.raises(ValueError, match=r"backend must be one of .* got 'cuda'"):
        LAYERS[layer](I, 4, backend="cuda")


@pytest.mark.parametrize("layer", list(LAYERS))
def test_backend_in_repr_when_not_auto(layer):
    assert "backend" not in repr(LAYERS[layer](I, 4, 2))
    assert "backend='fused'" in repr(LAYERS[layer](I, 4, 2, backend="fused"))
    assert "backend='reference'" in repr(LAYERS[layer](I, 4, 2, backend="reference"))


@pytest.mark.parametrize("layer", list(LAYERS))
def test_fused_refuses_what_it_has_no_kernels_for(layer):
    made = LAYERS[layer](I, 4, 2, backend="fused").half()
    with pytest.raises(ValueError, match=r"runs float32, float64 and bfloat16, got torch.float16"):
        made(torch.randn(T, 2, I).half())


def _spy(monkeypatch):
    """Counts the fused kernels' layer calls."""
    calls = []
    for name in ("run_depth_gated_layer", "run_grid_layer"):
        original = getattr(stacks, name)

        def counted(*args, _original=original, **kwargs):
            calls.append(1)
            return _original(*args, **kwargs)

        monkeypatch.setattr(stacks, name, counted)
    return calls


@pytest.mark.parametrize("layer", list(LAYERS))
def test_auto_takes_the_fused_kernels_on_the_cpu(layer, monkeypatch):
    calls = _spy(monkeypatch)
    torch.manual_seed(0)
    made = LAYERS[layer](I, 4, 2).double()
    x = torch.randn(T, 2, I, dtype=torch.float64)
    out = made(x)[0]
    assert len(calls) == 2  # one per layer
    made.backend = "reference"
    torch.testing.assert_close(out, made(x)[0], **TOLERANCE[torch.float64])
    assert len(calls) == 2
    # a traced call takes the reference loop, whose traces are differentiable
    made.backend = "auto"
    trace = made(x, return_trace=True)[2]
    assert len(calls) == 2 and trace["hidden"].requires_grad
    # float16: no kernels, the reference loop
    made.half()(x.half())
    assert len(calls) == 2


@pytest.mark.parametrize("layer", list(LAYERS))
def test_auto_falls_back_and_warns_once_without_the_kernels(layer, monkeypatch):
    calls = _spy(monkeypatch)
    monkeypatch.setattr(fused_cpu, "unavailable_reason", lambda kernel_file: "no compiler here")
    monkeypatch.setattr(fused_cpu, "_warned_unavailable", set())
    made = LAYERS[layer](I, 4, 2)
    x = torch.randn(T, 2, I)
    with pytest.warns(RuntimeWarning, match="no compiler here; backend='auto' runs") as w:
        made(x)
    assert w[0].filename == __file__  # the user's line, not lstmkit's or nn.Module's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        made(x)
    assert fused_cpu._warned_unavailable == {stacks.KERNEL_FILE} and not calls


# -- the Triton kernels, under the interpreter -----------------------------------------------
#
# fused_triton/stacks.py's kernels run CPU tensors under TRITON_INTERPRET=1 when the layers'
# choice of kernels by device (_memory_stack.stack_kernels) is swapped: tiny sizes, float32,
# the kernels' widest dtype. The interpreter runs one program (all units) unless
# FORCE_BLOCK_H splits the units, which then run a launch per step.

TRITON_T = 4
TRITON_LENGTHS = [3, 4, 2]
TRITON_CASES = ["depth-gated", "grid", "grid-tied-printed-form", "grid-stacked",
                "grid-stacked-printed-form"]  # fmt: skip
# hidden size, lengths or full, units per program (None: one program; 16: two programs)
TRITON_SHAPES = {"H5-L2-full-one-program": (5, False, None), "H20-L2-lengths-split": (20, True, 16)}
TRITON_GRID = list(itertools.product(TRITON_CASES, TRITON_SHAPES))


@pytest.fixture
def stacks_on_triton(monkeypatch):
    """The fused backend's CPU tensors go to the Triton kernels, interpreted, in the Triton
    kernels' dtypes; returns the device types the layers asked kernels for (one entry per
    fused layer call)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(_memory_stack, "_FUSED_DTYPES", fused_triton.DTYPES)
    asked = []

    def triton_kernels(device_type):
        asked.append(device_type)
        return triton_stacks

    monkeypatch.setattr(_memory_stack, "stack_kernels", triton_kernels)
    return asked


def _triton_inputs(layers: int, hidden: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(TRITON_T, 3, I, generator=gen, dtype=dtype)
    h0 = torch.randn(layers, 3, hidden, generator=gen, dtype=dtype)
    c0 = torch.randn(layers, 3, hidden, generator=gen, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, h0, c0)]


# W_hh streamed in slices of 16 columns, as where a program's rows of it do not fit on chip:
# H20 split, two slices (the second partial) over two programs; H40, three in one program
STREAMED_CASES = ["depth-gated", "grid", "grid-stacked-printed-form"]
STREAMED_SHAPES = {
    "H20-L2-lengths-split-streamed": (20, True, 16),
    "H40-L2-full-one-program-streamed": (40, False, None),
}
ALL_GRID = [*TRITON_GRID, *itertools.product(STREAMED_CASES, STREAMED_SHAPES)]


@pytest.mark.parametrize(("case", "shape"), ALL_GRID, ids=["-".join(c) for c in ALL_GRID])
def test_triton_kernels_match_reference(case, shape, stacks_on_triton, monkeypatch):
    hidden, use_lengths, block_h = {**TRITON_SHAPES, **STREAMED_SHAPES}[shape]
    lay_out(monkeypatch, block_h, shape in STREAMED_SHAPES)
    reference, ours = _pair(case, hidden, 2, torch.float32)
    x, h0, c0 = _triton_inputs(2, hidden)
    lengths = torch.tensor(TRITON_LENGTHS) if use_lengths else None
    mine, theirs = _run(ours, x, h0, c0, lengths), _run(reference, x, h0, c0, lengths)
    assert stacks_on_triton and set(stacks_on_triton) == {"cpu"}  # the Triton kernels ran
    assert_close_all(mine, theirs, torch.float32, f"triton vs reference, {case} {shape}")


LOW_PRECISION = [("depth-gated", torch.bfloat16), ("grid", torch.bfloat16),
                 ("grid-stacked", torch.bfloat16), ("depth-gated", torch.float16),
                 ("grid", torch.float16)]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "dtype"), LOW_PRECISION, ids=[f"{c}-{str(d)[6:]}" for c, d in LOW_PRECISION]
)
def test_triton_kernels_low_precision_follows_float32(case, dtype, stacks_on_triton, monkeypatch):
    """Split units; the kernels compute in float32 and round on store: on the same (rounded)
    weights and inputs they follow the float32 reference within the dtype's precision."""
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    reference, ours = _pair(case, 20, 2, torch.float32)
    ours = ours.to(dtype)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(TRITON_T, 3, I, generator=torch.Generator().manual_seed(2)).to(dtype)
    mine = ours(x.requires_grad_(True), lengths=TRITON_LENGTHS)[0]
    theirs = reference(x.detach().float(), lengths=TRITON_LENGTHS)[0]
    assert stacks_on_triton
    tolerance = 3e-2 if dtype == torch.bfloat16 else 3e-3
    torch.testing.assert_close(mine.float(), theirs, rtol=tolerance, atol=tolerance)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == dtype for p in ours.parameters())
    assert x.grad is not None and x.grad.dtype == dtype


@pytest.mark.parametrize("case", ["depth-gated", "grid-printed-form", "grid-stacked"])
def test_triton_traces_match_the_reference(case, stacks_on_triton):
    reference, ours = _pair(case, 5, 2, torch.float32)
    x = torch.randn(TRITON_T, 3, I)
    *_, mine = ours(x, lengths=TRITON_LENGTHS, return_trace=True)
    *_, theirs = reference(x, lengths=TRITON_LENGTHS, return_trace=True)
    assert stacks_on_triton
    assert mine.names == theirs.names == ours.family.trace_names
    for name in theirs.names:
        assert not mine[name].requires_grad, name
        torch.testing.assert_close(mine[name], theirs[name], **TOLERANCE[torch.float32])


def test_the_kernels_are_chosen_by_device():
    assert _memory_stack.stack_kernels("cpu") is stacks
    assert _memory_stack.stack_kernels("cuda") is triton_stacks


@pytest.mark.parametrize("layer", list(LAYERS))
def test_fused_takes_cuda_tensors_and_auto_leaves_them_to_the_reference(layer, monkeypatch):
    """What each backend does with CUDA tensors (asked directly: no GPU here). An explicit
    "fused" runs the Triton kernels in their dtypes; "auto" keeps the reference loop, as
    for every cell whose Triton kernels are unmeasured on a GPU."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    fused = LAYERS[layer](I, 4, 2, backend="fused")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        assert fused.resolve_backend(False, "cuda", dtype) is Backend.FUSED
        assert fused.resolve_backend(True, "cuda", dtype) is Backend.FUSED  # traced too
    auto = LAYERS[layer](I, 4, 2)
    assert auto.resolve_backend(False, "cuda", torch.float32) is Backend.REFERENCE
    with pytest.raises(ValueError, match=r"backend='fused' runs float16, bfloat16, float32 on "
                       r"'cuda' tensors .* got torch.float64; use backend='auto'"):  # fmt: skip
        fused.resolve_backend(False, "cuda", torch.float64)
    with pytest.raises(ValueError, match=r"cannot run 'mps' tensors here: the Triton kernels "
                       r"run CUDA tensors, not 'mps' ones"):  # fmt: skip
        fused.resolve_backend(False, "mps", torch.float32)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(ValueError, match=r"cannot run 'cuda' tensors here: TRITON_INTERPRET"):
        fused.resolve_backend(False, "cuda", torch.float32)
