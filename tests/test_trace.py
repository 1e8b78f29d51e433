"""Traces: layout, names, agreement with the layer's own outputs and with a hand loop of
the cell, variable lengths, and that tracing off changes nothing."""

from __future__ import annotations

import pytest
import torch

import lstmkit

I, H, T, B = 3, 4, 6, 2
F64 = dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("cls", "options", "names"),
    [
        (lstmkit.LSTM, {}, ("input", "forget", "candidate", "output", "cell", "hidden")),
        (lstmkit.LSTM, dict(forget_gate=False), ("input", "candidate", "output", "cell", "hidden")),
        (lstmkit.GRU, {}, ("reset", "update", "candidate", "hidden")),
        (lstmkit.RNN, {}, ("hidden",)),
    ],
    ids=["lstm", "lstm1997", "gru", "rnn"],
)
def test_names_and_layout(cls, options, names):
    layer = cls(I, H, 2, batch_first=True, bidirectional=True, **options)
    _, _, trace = layer(torch.randn(B, T, I), return_trace=True)
    assert trace.names == names
    assert trace.cell == layer.family.name
    for name in names:
        assert trace[name].shape == (2, 2, B, T, H), name  # (layer, direction, batch, time, unit)
    assert (trace.num_layers, trace.num_directions) == (2, 2)
    with pytest.raises(KeyError, match="has no quantity 'forgot'"):
        trace["forgot"]


def test_trace_agrees_with_outputs_and_final_state():
    lstm = lstmkit.LSTM(I, H, 2, bidirectional=True, proj_size=2).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h_n, c_n), trace = lstm(x, return_trace=True)
    assert trace["hidden"].shape == (2, 2, B, T, 2)  # the projected h
    last = trace["hidden"][1]  # (D, B, T, P)
    torch.testing.assert_close(out, torch.cat([last[0], last[1]], -1).transpose(0, 1), **F64)
    # forward direction ends at T-1, the reverse one at position 0
    torch.testing.assert_close(c_n[0], trace["cell"][0, 0, :, -1], **F64)
    torch.testing.assert_close(c_n[1], trace["cell"][0, 1, :, 0], **F64)
    torch.testing.assert_close(h_n[3], trace["hidden"][1, 1, :, 0], **F64)


def test_trace_equals_a_hand_loop_of_the_cell():
    """The sequence layer's loop and a loop written here over LSTMCell give the same gates."""
    layer = lstmkit.LSTM(I, H, peephole=True).double()
    cell = lstmkit.LSTMCell(I, H, peephole=True).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(T, B, I, dtype=torch.float64)
    _, _, trace = layer(x, return_trace=True)
    state = None
    for t in range(T):
        state, gates = cell(x[t], state, return_gates=True)
        for name in trace.names:
            torch.testing.assert_close(trace[name][0, 0, :, t], gates[name], **F64)


def test_trace_with_lengths_zeroes_the_padding():
    gru = lstmkit.GRU(I, H, bidirectional=True)
    lengths = torch.tensor([T, 3])
    _, _, trace = gru(torch.randn(T, B, I), lengths=lengths, return_trace=True)
    assert torch.equal(trace.lengths, lengths)
    assert trace["update"][:, :, 1, 3:].abs().max() == 0
    assert trace["update"][:, :, 1, :3].abs().min() > 0


def test_tracing_off_returns_the_same_numbers_and_no_trace():
    lstm = lstmkit.LSTM(I, H, coupled=True, backend="reference")
    x = torch.randn(T, B, I)
    plain = lstm(x)
    traced = lstm(x, return_trace=True)
    assert len(plain) == 2 and len(traced) == 3
    torch.testing.assert_close(plain[0], traced[0], rtol=0, atol=0)


def test_auto_backend_traces_a_torch_layer():
    """A plain layer runs on torch's kernels; traced, it runs the reference loop instead,
    with the same result."""
    lstm = lstmkit.LSTM(I, H).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, _ = lstm(x)
    traced_out, _, _ = lstm(x, return_trace=True)
    torch.testing.assert_close(out, traced_out, **F64)
    explicit = lstmkit.LSTM(I, H, backend="torch")
    with pytest.raises(ValueError, match="use backend='auto', 'fused' or 'reference'"):
        explicit(torch.randn(T, B, I), return_trace=True)


def test_unbatched_trace_keeps_a_batch_of_one():
    rnn = lstmkit.RNN(I, H)
    out, _, trace = rnn(torch.randn(T, I), return_trace=True)
    assert out.shape == (T, H)
    assert trace["hidden"].shape == (1, 1, 1, T, H)


def test_detach():
    lstm = lstmkit.LSTM(I, H)
    _, _, trace = lstm(torch.randn(T, B, I), return_trace=True)
    assert trace["cell"].requires_grad
    assert not trace.detach()["cell"].requires_grad
