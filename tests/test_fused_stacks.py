"""The memory-joined stacks on the fused backend: the depth-gated LSTM (Yao et al. 2015) and
the 2-D Grid LSTM (Kalchbrenner et al. 2015), whose C++ kernels (fused_cpu/stacks.cpp) run
one layer per call, against each layer's reference loop on outputs, final states and every
gradient (input, hx, every parameter) under random upstream gradients, at batch 1 (the
kernels' own products) and batch 6 (ATen's GEMM), with lengths=, 2 and 3 layers and each
option; finite differences on the kernels; traces; bfloat16 against float32; dropout; and
the ``backend`` keyword (what it refuses, what ``auto`` takes).

The reference loops are checked in tests/test_depth_gated.py and tests/test_grid_lstm.py
against the papers' equations written out in those tests, torch.nn.LSTM (a shut depth
gate; the Stacked LSTM) and torch.nn.LSTMCell; these tests check that the kernels'
hand-written forward and backward passes agree with them.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, random_loss
from torch.autograd import gradcheck
from torch.func import functional_call

from lstmkit.layers import _memory_stack
from lstmkit.layers.backends import fused_cpu
from lstmkit.layers.backends.fused_cpu import stacks
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
# hidden size, layers, lengths or full
SHAPES = {"H5-L2-full": (5, 2, False), "H4-L3-lengths": (4, 3, True)}
BATCHES = {"B1": 1, "B6": 6}  # kSmallBatch = 4: the kernels' own products, then ATen's GEMM
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
    """Output and final states, then the gradients of x, h_0, c_0 and every parameter."""
    output, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
    values = [output, h_n, c_n]
    grads = torch.autograd.grad(random_loss(values, seed=3), [x, h0, c0, *layer.parameters()])
    return [*values, *grads]


def _lengths(use: bool, batch: int):
    return torch.tensor(LENGTHS[:batch]) if use else None


# -- the C++ kernels against the reference loops ---------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("case", "shape", "batch"), GRID, ids=["-".join(c) for c in GRID])
def test_cpu_kernels_match_reference(case, shape, batch, dtype):
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


@pytest.mark.parametrize("batch", [1, 6], ids=["B1", "B6"])
@pytest.mark.parametrize("case", ["depth-gated", "grid"])
def test_cpu_kernels_bfloat16_follow_float32(case, batch):
    """The kernels compute in float32 and round on store: on the same (rounded) weights and
    inputs they follow the float32 reference within bfloat16's 8 bits."""
    reference, ours = _pair(case, 6, 2, torch.float32)
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
    monkeypatch.setattr(_memory_stack, "_warned_unavailable", False)
    made = LAYERS[layer](I, 4, 2)
    x = torch.randn(T, 2, I)
    with pytest.warns(RuntimeWarning, match="no compiler here; backend='auto' runs"):
        made(x)
    made(x)  # no second warning (pytest would not fail on one; the flag says it)
    assert _memory_stack._warned_unavailable and not calls
