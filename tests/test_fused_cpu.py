"""The fused CPU backend against the reference loop: outputs, final states, every gradient
under random upstream gradients, and traces, over layers, directions, lengths, options and
dtypes; long sequences; state carried across calls; and what happens without a compiler.

The kernels are built on first use; these tests need a C++ compiler, as the README's set-up
provides, and fail rather than skip without one.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from helpers import (
    LAYER_CASES,
    TOLERANCE,
    assert_close_all,
    products_through_aten,
    random_loss,
)
from torch.autograd import gradcheck

import lstmkit
from lstmkit.bench.memory import saved_activation_bytes
from lstmkit.cellmath import GRUFamily, LSTMFamily
from lstmkit.layers.backends import Backend, choose_backend, fused_cpu

I, T, B = 4, 7, 3
LENGTHS = [7, 2, 5]
BF16_TOLERANCE = dict(rtol=3e-2, atol=3e-2)

SHAPES = {"H5-L1": (5, 1), "H9-L2": (9, 2)}
GRID = list(itertools.product(LAYER_CASES, SHAPES, ["full", "lengths"], ["uni", "bi"]))


def _pair(family: str, shape: str, bidirectional: bool, dtype):
    cls, options = LAYER_CASES[family]
    hidden, layers = SHAPES[shape]
    make = lambda backend: cls(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **options
    ).to(dtype)
    reference, fused = make("reference"), make("fused")
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def _run(layer, x, lengths):
    output, state = layer(x, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    values = [output, *states]
    inputs = [x, *layer.parameters()]
    return [*values, *torch.autograd.grad(random_loss(values, seed=3), inputs)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("family", "shape", "lengths", "direction"), GRID, ids=["-".join(case) for case in GRID]
)
def test_fused_matches_reference(family, shape, lengths, direction, dtype):
    reference, fused = _pair(family, shape, direction == "bi", dtype)
    x = torch.randn(T, B, I, dtype=dtype, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    lens = torch.tensor(LENGTHS) if lengths == "lengths" else None
    ours, theirs = _run(fused, x, lens), _run(reference, x, lens)
    assert_close_all(ours, theirs, dtype, f"fused vs reference, {family}")


@pytest.mark.parametrize("family", list(LAYER_CASES))
def test_batches_past_the_small_batch_path_match_too(family, monkeypatch):
    """The grid above runs batch 3, which the kernels' own small-batch products take
    (common.h's vec_mat); batch 6 goes through ATen's GEMM here (LSTMKIT_NO_VEC_MAT: at
    this size vec_mat would take it too)."""
    products_through_aten(monkeypatch)
    reference, fused = _pair(family, "H9-L2", True, torch.float64)
    x = torch.randn(T, 6, I, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([7, 2, 5, 7, 1, 6])
    ours, theirs = _run(fused, x, lens), _run(reference, x, lens)
    assert_close_all(ours, theirs, torch.float64, f"fused vs reference at batch 6, {family}")


@pytest.mark.parametrize("family", ["lstm-plain", "lstm-peephole-coupled", "gru", "rnn-tanh"])
def test_bfloat16_follows_float32(family):
    """bfloat16 keeps 8 bits of mantissa: the kernels compute in float32 and round on store,
    so they follow the float32 reference run on the same (rounded) weights and inputs."""
    reference, fused = _pair(family, "H9-L2", True, torch.float32)
    fused = fused.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in fused.state_dict().items()})
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    ours = fused(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(ours.float(), theirs, **BF16_TOLERANCE)
    ours.float().pow(2).sum().backward()  # the backward runs in bfloat16 too
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in fused.parameters())


@pytest.mark.parametrize("family", ["lstm-peephole", "lstm-coupled", "gru", "rnn-relu"])
def test_gradcheck(family):
    cls, options = LAYER_CASES[family]
    layer = cls(2, 3, bidirectional=True, backend="fused", **options).double()
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 3])

    def run(x, *params):
        with torch.nn.utils.stateless._reparametrize_module(
            layer, dict(zip([n for n, _ in layer.named_parameters()], params, strict=True))
        ):
            output, state = layer(x, lengths=lengths)
        return (output, *(state if isinstance(state, tuple) else (state,)))

    assert gradcheck(run, (x, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", ["lstm-peephole-coupled", "lstm-proj", "gru", "rnn-tanh"])
def test_traces_match_the_reference(family):
    reference, fused = _pair(family, "H5-L1", True, torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor(LENGTHS)
    ours = fused(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert ours.names == theirs.names
    assert not ours["hidden"].requires_grad  # detached: the reference's are differentiable
    for name in theirs.names:
        torch.testing.assert_close(ours[name], theirs[name], **TOLERANCE[torch.float64])


def test_a_long_sequence_in_pieces_equals_one_call():
    """T = 10,000 in one call, in four calls carrying the state, and on the reference loop."""
    torch.manual_seed(0)
    reference = lstmkit.LSTM(3, 8, peephole=True, backend="reference").double()
    fused = lstmkit.LSTM(3, 8, peephole=True, backend="fused").double()
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(10_000, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        whole, (h, c) = fused(x)
        state, pieces = None, []
        for part in x.split(2_500):
            out, state = fused(part, state)
            pieces.append(out)
        expected, (h_ref, c_ref) = reference(x)
    torch.testing.assert_close(torch.cat(pieces), whole, rtol=0, atol=0)
    torch.testing.assert_close(state, (h, c), rtol=0, atol=0)
    torch.testing.assert_close(whole, expected, **TOLERANCE[torch.float64])
    torch.testing.assert_close((h, c), (h_ref, c_ref), **TOLERANCE[torch.float64])


def test_auto_runs_the_variants_on_the_fused_kernels():
    assert choose_backend(Backend.AUTO, LSTMFamily(4, peephole=True), False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, LSTMFamily(4), tracing=True) is Backend.REFERENCE
    assert choose_backend(Backend.AUTO, LSTMFamily(4), tracing=False) is Backend.TORCH
    assert (
        choose_backend(Backend.AUTO, LSTMFamily(4, peephole=True), False, "cuda") is Backend.MANUAL
    )
    # CUDA tensors go to the Triton kernels; a device with neither is refused up front
    assert choose_backend(Backend.FUSED, LSTMFamily(4), False, "cuda") is Backend.FUSED
    with pytest.raises(ValueError, match="cannot run 'mps' tensors here: the Triton kernels"):
        choose_backend(Backend.FUSED, LSTMFamily(4), False, "mps")


@pytest.fixture
def no_compiler(monkeypatch):
    """The fused kernels as on a machine where they cannot be built."""
    monkeypatch.setenv("LSTMKIT_NO_FUSED", "1")
    monkeypatch.setattr(fused_cpu, "_warned_unavailable", set())
    fused_cpu._load.cache_clear()
    yield
    monkeypatch.delenv("LSTMKIT_NO_FUSED")
    fused_cpu._load.cache_clear()


def test_without_the_kernels_auto_warns_once_and_falls_back(no_compiler):
    layer = lstmkit.LSTM(I, 5, peephole=True)
    x = torch.randn(T, B, I)
    with pytest.warns(RuntimeWarning, match="LSTMKIT_NO_FUSED is set; backend='auto' falls") as w:
        layer(x)
    assert w[0].filename == __file__  # the user's line, not lstmkit's or nn.Module's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call must not warn again
        assert choose_backend(Backend.AUTO, layer.family, False) is Backend.MANUAL
        assert choose_backend(Backend.AUTO, GRUFamily(4), False) is Backend.TORCH
        layer(x)


def test_without_the_kernels_an_explicit_choice_says_why(no_compiler):
    layer = lstmkit.GRU(I, 5, backend="fused")
    with pytest.raises(fused_cpu.FusedUnavailable, match="unavailable: LSTMKIT_NO_FUSED is set"):
        layer(torch.randn(T, B, I))


@pytest.mark.parametrize("family", ["lstm-peephole", "lstm-coupled", "gru", "rnn-tanh"])
def test_the_kernels_keep_no_more_for_the_backward_than_torch_lstm(family):
    """The issue's memory target, counted by autograd's saved-tensor hook for both."""
    cls, options = LAYER_CASES[family]
    x = torch.randn(20, 8, 16, requires_grad=True)
    ours = cls(16, 32, backend="fused", **options)
    theirs = torch.nn.LSTM(16, 32)
    kept = {
        name: saved_activation_bytes(lambda x, m=m: m(x)[0], x, m.parameters())
        for name, m in [("ours", ours), ("torch", theirs)]
    }
    assert 0 < kept["ours"] <= kept["torch"], kept
