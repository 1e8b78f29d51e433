"""Shared test helpers: the case tables several test files run, random upstream gradients and
comparisons of every gradient."""

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

# id: the options of one of Greff et al.'s ablations or a combination (each one LSTMFamily
# accepts), as the fused kernels' grids run them (test_fused_ablations, test_fused_simd_rows)
LSTM_ABLATIONS = {
    "NIG": dict(input_gate=False),
    "NOG": dict(output_gate=False),
    "NIAF": dict(input_activation=False),
    "NOAF": dict(output_activation=False),
    "NIG-NOG": dict(input_gate=False, output_gate=False),
    "NIAF-NOAF": dict(input_activation=False, output_activation=False),
    "NIG-peephole": dict(input_gate=False, peephole=True),  # no p_i: only p_f and p_o
    "NOG-peephole": dict(output_gate=False, peephole=True),  # no p_o
    "NIG-NOG-peephole": dict(input_gate=False, output_gate=False, peephole=True),  # p_f only
    "NIG-NFG": dict(input_gate=False, forget_gate=False),  # C_t = C_{t-1} + C~_t
    "NIG-NFG-NOG": dict(input_gate=False, forget_gate=False, output_gate=False),  # one block
    "NOG-NFG-peephole": dict(output_gate=False, forget_gate=False, peephole=True),  # p_i only
    "CIFG-NOG-NIAF-NOAF-peephole": dict(
        coupled=True,
        output_gate=False,
        input_activation=False,
        output_activation=False,
        peephole=True,
    ),
    "NIG-NOAF-proj": dict(input_gate=False, output_activation=False, proj_size=3),
    "NOG-NIAF-peephole-proj": dict(
        output_gate=False, input_activation=False, peephole=True, proj_size=3
    ),
}

# id: the layer norms and full gate recurrence, with the other options (each combination one
# LSTMFamily accepts; FGR goes with no norm or "cell"), as the fused kernels' grids run them
# (test_fused_lstm_options, test_fused_simd_rows)
LSTM_NORM_AND_FGR_OPTIONS = {
    "LN-ba2016": dict(layer_norm="ba2016"),
    "LN-per-gate": dict(layer_norm="per-gate"),
    "LN-cell": dict(layer_norm="cell"),
    "FGR": dict(gate_recurrence=True),
    "FGR-LN-cell": dict(gate_recurrence=True, layer_norm="cell"),
    "LN-ba2016-peephole-proj": dict(layer_norm="ba2016", peephole=True, proj_size=3),
    "LN-ba2016-nobias-NIG": dict(layer_norm="ba2016", bias=False, input_gate=False),
    "LN-per-gate-CIFG-peephole": dict(layer_norm="per-gate", coupled=True, peephole=True),
    "LN-per-gate-nobias-NFG-NOG-NIAF": dict(
        layer_norm="per-gate",
        bias=False,
        forget_gate=False,
        output_gate=False,
        input_activation=False,
    ),
    "LN-per-gate-peephole-proj": dict(layer_norm="per-gate", peephole=True, proj_size=2),
    "LN-cell-NOAF-NIG-peephole": dict(
        layer_norm="cell", output_activation=False, input_gate=False, peephole=True
    ),
    "FGR-peephole-proj": dict(gate_recurrence=True, peephole=True, proj_size=3),
    "LN-cell-CIFG-proj": dict(layer_norm="cell", coupled=True, proj_size=3),
    "FGR-LN-cell-NOG-proj": dict(
        gate_recurrence=True, layer_norm="cell", output_gate=False, proj_size=2
    ),
    "FGR-NIG-NOG": dict(gate_recurrence=True, input_gate=False, output_gate=False),  # f only
    "FGR-CIFG-NIAF-nobias": dict(
        gate_recurrence=True, coupled=True, input_activation=False, bias=False
    ),
    "FGR-LN-cell-NFG-NOAF-peephole": dict(
        gate_recurrence=True,
        layer_norm="cell",
        forget_gate=False,
        output_activation=False,
        peephole=True,
    ),
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
