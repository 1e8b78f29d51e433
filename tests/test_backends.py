"""Every backend against the reference loop (autograd over the cell equations): outputs,
final states and all gradients under random upstream gradients; and the dispatch rules."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import LSTM_OPTIONS, assert_close_all, random_loss
from torch.autograd import gradcheck

import lstmkit
from lstmkit.cellmath import GRUFamily, LSTMFamily
from lstmkit.layers.backends import (
    FUSED_BFLOAT16_HIDDEN,
    FUSED_FLOAT32_HIDDEN,
    FUSED_FLOAT32_MAX_BATCH,
    Backend,
    choose_backend,
)

I, H, T, B, P = 3, 5, 6, 3, 2
LENGTHS = [6, 2, 4]

CASES = list(itertools.product(LSTM_OPTIONS, [0, P], [False, True], [False, True]))


def case_id(case):
    name, proj, lengths, bidirectional = case
    return f"{name}-P{proj}-{'lengths' if lengths else 'full'}-{'bi' if bidirectional else 'uni'}"


def run_with_grads(layer, x, state, lengths):
    out, (h, c) = layer(x, state, lengths=lengths)
    inputs = [x, *state, *layer.parameters()]
    return [out, h, c, *torch.autograd.grad(random_loss([out, h, c], seed=2), inputs)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_manual_matches_reference(case, dtype):
    name, proj, use_lengths, bidirectional = case
    options = dict(LSTM_OPTIONS[name], proj_size=proj, bidirectional=bidirectional)
    reference = lstmkit.LSTM(I, H, 2, backend="reference", **options).to(dtype)
    manual = lstmkit.LSTM(I, H, 2, backend="manual", **options).to(dtype)
    manual.load_state_dict(reference.state_dict())
    gen = torch.Generator().manual_seed(0)
    stacked = 2 * (2 if bidirectional else 1)
    x = torch.randn(T, B, I, generator=gen, dtype=dtype).requires_grad_(True)
    h0 = torch.randn(stacked, B, proj or H, generator=gen, dtype=dtype).requires_grad_(True)
    c0 = torch.randn(stacked, B, H, generator=gen, dtype=dtype).requires_grad_(True)
    lengths = LENGTHS if use_lengths else None
    ours = run_with_grads(manual, x, (h0, c0), lengths)
    theirs = run_with_grads(reference, x, (h0, c0), lengths)
    assert_close_all(ours, theirs, dtype, f"manual vs reference, {case_id(case)}")


def test_manual_handles_an_unused_output():
    """Only the final state feeds the loss: the output's gradient arrives as None."""
    lstm = lstmkit.LSTM(I, H, backend="manual", peephole=True).double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    _, (h, _) = lstm(x)
    (grad,) = torch.autograd.grad(h.sum(), [x])
    reference = lstmkit.LSTM(I, H, backend="reference", peephole=True).double()
    reference.load_state_dict(lstm.state_dict())
    _, (h_ref, _) = reference(x)
    (grad_ref,) = torch.autograd.grad(h_ref.sum(), [x])
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", list(LSTM_OPTIONS))
def test_manual_gradcheck(name):
    lstm = lstmkit.LSTM(
        2, 3, bidirectional=True, proj_size=2, backend="manual", **LSTM_OPTIONS[name]
    )
    lstm = lstm.double()
    names = [n for n, _ in lstm.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, h0, c0, *params):
        args = (x, (h0, c0))
        out, (h, c) = torch.func.functional_call(
            lstm, dict(zip(names, params, strict=True)), args, {"lengths": [4, 3]}
        )
        return out, h, c

    assert gradcheck(fn, (x, h0, c0, *lstm.parameters()), eps=1e-6, atol=1e-6)


def test_auto_picks_the_fastest_backend_that_can_run_the_layer():
    assert choose_backend(Backend.AUTO, LSTMFamily(4), tracing=False) is Backend.TORCH
    assert choose_backend(Backend.AUTO, LSTMFamily(4, proj_size=2), False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, LSTMFamily(4, peephole=True), False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, GRUFamily(4), tracing=False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, GRUFamily(4), False, "cuda") is Backend.TORCH
    assert choose_backend(Backend.AUTO, LSTMFamily(4), tracing=True) is Backend.REFERENCE


def test_auto_takes_the_fused_kernels_where_they_train_a_bfloat16_lstm_faster():
    """torch's LSTM kernel is the faster forward in every dtype measured and the faster
    forward+backward in float32 at the large size; in bfloat16 lstmkit's trains faster at
    H >= 512 or batch 1 (benchmarks/lstm_auto_grid.py, docs/performance.md)."""
    bf16, wide = torch.bfloat16, FUSED_BFLOAT16_HIDDEN
    family = LSTMFamily(wide)
    for batch in (None, 1, 64):
        assert choose_backend(
            Backend.AUTO, family, False, dtype=bf16, graph=True, batch=batch
        ) is Backend.FUSED  # fmt: skip
    assert choose_backend(Backend.AUTO, family, False, dtype=bf16) is Backend.TORCH
    assert choose_backend(Backend.AUTO, family, False, graph=True, batch=1) is Backend.TORCH
    assert choose_backend(
        Backend.AUTO, family, False, "cuda", dtype=bf16, graph=True, batch=1
    ) is Backend.TORCH  # fmt: skip
    narrow = LSTMFamily(wide - 1)
    for batch, expected in ((1, Backend.FUSED), (2, Backend.TORCH), (None, Backend.TORCH)):
        chosen = choose_backend(Backend.AUTO, narrow, False, dtype=bf16, graph=True, batch=batch)
        assert chosen is expected, batch
    assert choose_backend(Backend.AUTO, GRUFamily(4), False, dtype=bf16) is Backend.FUSED


def test_auto_takes_the_fused_kernels_where_they_train_a_float32_lstm_faster():
    """In float32 torch's kernel trains faster at the large size and most smaller H; lstmkit's
    at H >= 1024 with a batch of 16 or fewer (benchmarks/lstm_auto_grid.py --dtype float32)."""
    wide, few = LSTMFamily(FUSED_FLOAT32_HIDDEN), FUSED_FLOAT32_MAX_BATCH
    for batch in (1, few):
        assert choose_backend(Backend.AUTO, wide, False, graph=True, batch=batch) is Backend.FUSED
        assert choose_backend(Backend.AUTO, wide, False, batch=batch) is Backend.TORCH
        assert choose_backend(
            Backend.AUTO, wide, False, dtype=torch.float64, graph=True, batch=batch
        ) is Backend.TORCH  # fmt: skip
    for batch in (few + 1, None):
        assert choose_backend(Backend.AUTO, wide, False, graph=True, batch=batch) is Backend.TORCH
    narrow = LSTMFamily(FUSED_FLOAT32_HIDDEN - 1)
    assert choose_backend(Backend.AUTO, narrow, False, graph=True, batch=1) is Backend.TORCH


def test_auto_runs_a_projected_lstm_on_the_fused_kernels_on_the_cpu():
    """oneDNN has no projection, and torch's CPU fallback for one was the slower at every
    size, dtype and direction of the pass measured (benchmarks/lstm_auto_grid.py
    --proj-size); cuDNN has one."""
    for hidden in (4, FUSED_BFLOAT16_HIDDEN):
        family = LSTMFamily(hidden, proj_size=2)
        for dtype in (torch.float32, torch.bfloat16):
            for graph in (False, True):
                for batch in (None, 1, 64):
                    chosen = choose_backend(
                        Backend.AUTO, family, False, dtype=dtype, graph=graph, batch=batch
                    )
                    assert chosen is Backend.FUSED, (hidden, dtype, graph, batch)
        assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.TORCH


def test_the_layer_tells_auto_its_dtype_batch_and_whether_a_backward_will_follow(monkeypatch):
    chosen = []

    def spy(*args, **kwargs):
        backend = choose_backend(*args, **kwargs)
        chosen.append(backend)
        return backend

    monkeypatch.setattr(lstmkit.layers.base, "choose_backend", spy)
    wide = FUSED_BFLOAT16_HIDDEN
    layer = lstmkit.LSTM(I, wide, dtype=torch.bfloat16)
    x = torch.randn(T, B, I, dtype=torch.bfloat16)
    layer(x)  # the parameters ask for gradients
    with torch.no_grad():
        layer(x)
    layer.requires_grad_(False)
    layer(x)  # nothing asks for a gradient
    layer(x.clone().requires_grad_())  # the input does
    h0 = torch.zeros(1, B, wide, dtype=torch.bfloat16, requires_grad=True)
    layer(x, (h0, torch.zeros_like(h0)))  # a state does
    full = lstmkit.LSTM(I, wide)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full(x.float())  # runs in bfloat16, its float32 parameters asking for gradients
    full(x.float())
    narrow = lstmkit.LSTM(I, H, dtype=torch.bfloat16)
    narrow(x)  # batch 3, a small H: torch's
    narrow(x[:, :1])  # batch 1: lstmkit's
    with torch.no_grad():
        lstmkit.LSTM(I, H, proj_size=2)(x.float())  # a projection: lstmkit's
    lstmkit.LSTM(I, FUSED_FLOAT32_HIDDEN)(x.float())  # float32, large H, batch 3: lstmkit's
    f, t = Backend.FUSED, Backend.TORCH
    assert chosen == [f, t, t, f, f, f, t, t, f, f, f]


def test_explicit_backends_that_cannot_run_say_why():
    with pytest.raises(ValueError, match="the manual backend's loops do not have the gru cell"):
        lstmkit.GRU(I, H, backend="manual")
    with pytest.raises(ValueError, match="'manual' backend does not record"):
        lstmkit.LSTM(I, H, backend="manual")(torch.randn(T, B, I), return_trace=True)
    layer = lstmkit.LSTM(I, H, coupled=True)
    with pytest.raises(ValueError, match="torch's fused kernels have no coupled=True"):
        layer.backend = "torch"
    layer.backend = "reference"
    assert layer.backend is Backend.REFERENCE


def test_a_family_the_fused_kernels_do_not_know_runs_on_the_reference_loop():
    """A new cell (here a GRU whose step is changed) must not reach kernels that would run
    the parent's equations: fused refuses it by name and auto passes it by."""

    class HalvedGRU(GRUFamily):
        name = "halved-gru"

        def step(self, x_gates, state, weights):
            result = super().step(x_gates, state, weights)
            return result._replace(state=tuple(s / 2 for s in result.state))

    family = HalvedGRU(H)
    with pytest.raises(ValueError, match="fused kernels do not have the halved-gru cell"):
        lstmkit.layers.base.RecurrentLayer(family, I, backend="fused")
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.REFERENCE
    layer = lstmkit.layers.base.RecurrentLayer(family, I)
    plain = lstmkit.GRU(I, H, backend="reference")
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(1, B, I)
    # from a zero state, one step gives half of what the GRU gives
    torch.testing.assert_close(layer(x)[1], plain(x)[1] / 2)
