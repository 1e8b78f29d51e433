"""Shared test helpers: random upstream gradients and comparisons of every gradient."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

import lstmkit

LSTM_OPTIONS = {  # every variant and combination of the LSTM that the backends must agree on
    "plain": {},
    "peephole": dict(peephole=True),
    "coupled": dict(coupled=True),
    "peephole-coupled": dict(peephole=True, coupled=True),
    "no-forget-gate": dict(forget_gate=False),
    "peephole-no-forget-gate": dict(peephole=True, forget_gate=False),
}

# (layer class, its options) for every family and option the kernels must agree on: the
# LSTM with each variant and a projection, the GRU and the RNN
LAYER_CASES = {
    **{f"lstm-{name}": (lstmkit.LSTM, opts) for name, opts in LSTM_OPTIONS.items()},
    "lstm-proj": (lstmkit.LSTM, dict(proj_size=3)),
    "lstm-peephole-proj-nobias": (lstmkit.LSTM, dict(peephole=True, proj_size=3, bias=False)),
    "gru": (lstmkit.GRU, {}),
    "gru-nobias": (lstmkit.GRU, dict(bias=False)),
    "rnn-tanh": (lstmkit.RNN, {}),
    "rnn-relu": (lstmkit.RNN, dict(nonlinearity="relu")),
}

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def flat_outputs(output, state) -> list[Tensor]:
    """The output (packed data if packed) followed by every final state tensor."""
    data = output.data if isinstance(output, PackedSequence) else output
    states = list(state) if isinstance(state, tuple) else [state]
    return [data, *states]


def random_loss(tensors: list[Tensor], seed: int) -> Tensor:
    """sum_k <t_k, R_k> with fixed random R_k: backpropagates a random upstream gradient
    into every tensor, so no gradient path can hide behind a symmetric loss."""
    gen = torch.Generator().manual_seed(seed)
    total = 0
    for t in tensors:
        weight = torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device)
        total = total + (t * weight).sum()
    return total


def outputs_and_grads(layer, x: Tensor, state: tuple[Tensor, ...], lengths=None) -> list[Tensor]:
    """A layer's output and final state, then the gradients of x, of each initial state
    tensor that requires one and of every parameter, under :func:`random_loss`: what the
    fused kernels' tests compare with the reference loop's. ``state`` is the tuple of
    initial state tensors (one for the GRU-like cells, two for the LSTM-like, four for the
    sLSTM); a final state tensor without a gradient (the Clockwork RNN's clock) is compared
    but not differentiated."""
    output, final = layer(x, state[0] if len(state) == 1 else tuple(state), lengths=lengths)
    values = [output, *(final if isinstance(final, tuple) else (final,))]
    leaves = [x, *(s for s in state if s.requires_grad), *layer.parameters()]
    loss = random_loss([v for v in values if v.requires_grad], seed=3)
    return [*values, *torch.autograd.grad(loss, leaves)]


def assert_close_all(ours: list[Tensor], theirs: list[Tensor], dtype, what: str) -> None:
    assert len(ours) == len(theirs), what
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        torch.testing.assert_close(a, b, **TOLERANCE[dtype], msg=lambda m, k=k: f"{what}[{k}]: {m}")


def cli_error(capsys, argv: list[str]) -> str:
    """Run ``lstmkit ARGV`` expecting bad input: exit status 2 and one line on stderr,
    ``lstmkit: error: ...``, no traceback; returns that line."""
    import pytest

    from lstmkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmkit: error: "), err
    assert "Traceback" not in err
    return err


def products_through_aten(monkeypatch) -> None:
    """Sends the fused C++ kernels' step products past vec_mat, their own loop for small
    products (batch x weights up to a million), to ATen's GEMM (LSTMKIT_NO_VEC_MAT=1), so
    that a test's small sizes run the path that larger ones take."""
    monkeypatch.setenv("LSTMKIT_NO_VEC_MAT", "1")
