"""The LSTM variants torch lacks: what each option means, checked against its equation and
against the plain LSTM it reduces to. (Against onnxruntime: test_onnx_oracle.py.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lstmkit
from lstmkit.cellmath.lstm import LSTMFamily

I, H, T, B = 3, 5, 6, 2
F64 = dict(rtol=1e-10, atol=1e-10)


def test_peephole_with_zero_peepholes_is_the_plain_lstm():
    plain = nn.LSTM(I, H, 2, bidirectional=True).double()
    peep = lstmkit.LSTM(I, H, 2, bidirectional=True, peephole=True).double()
    missing, unexpected = peep.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == sorted(
        f"weight_c{g}_l{k}{s}" for g in "ifo" for k in (0, 1) for s in ("", "_reverse")
    )
    assert unexpected == []
    with torch.no_grad():
        for name in missing:
            getattr(peep, name).zero_()
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.testing.assert_close(peep(x)[0], plain(x)[0], **F64)


def test_peepholes_change_the_output():
    peep = lstmkit.LSTM(I, H, peephole=True).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    before = peep(x)[0]
    with torch.no_grad():
        peep.weight_co_l0.add_(1.0)
    assert (peep(x)[0] - before).abs().max() > 1e-3


def test_coupled_forget_gate_is_one_minus_input():
    lstm = lstmkit.LSTM(I, H, coupled=True).double()
    assert lstm.weight_ih_l0.shape == (3 * H, I)
    _, _, trace = lstm(torch.randn(T, B, I, dtype=torch.float64), return_trace=True)
    torch.testing.assert_close(trace["forget"], 1 - trace["input"], **F64)
    c_prev = torch.cat(
        [torch.zeros_like(trace["cell"][:, :, :, :1]), trace["cell"][:, :, :, :-1]], 3
    )
    expected = trace["forget"] * c_prev + trace["input"] * trace["candidate"]
    torch.testing.assert_close(trace["cell"], expected, **F64)


def test_coupled_equals_plain_lstm_with_forget_weights_tied_to_minus_input():
    """f = σ(z_f) with z_f = -z_i is 1 - σ(z_i): a plain LSTM whose forget rows are the
    negated input rows computes CIFG exactly."""
    cifg = lstmkit.LSTM(I, H, coupled=True).double()
    plain = nn.LSTM(I, H).double()
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            i, g, o = getattr(cifg, name).chunk(3)
            getattr(plain, name).copy_(torch.cat([i, -i, g, o]))
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (_, c) = cifg(x)
    out_p, (_, c_p) = plain(x)
    torch.testing.assert_close(out, out_p, **F64)
    torch.testing.assert_close(c, c_p, **F64)


def test_no_forget_gate_accumulates_like_1997():
    lstm = lstmkit.LSTM(I, H, forget_gate=False).double()
    assert lstm.weight_hh_l0.shape == (3 * H, H)
    c0 = torch.randn(1, B, H, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    _, _, trace = lstm(x, (torch.zeros_like(c0), c0), return_trace=True)
    assert "forget" not in trace
    increments = trace["input"][0, 0] * trace["candidate"][0, 0]  # (B, T, H)
    expected = c0[0].unsqueeze(1) + increments.cumsum(dim=1)  # C_t = C_0 + sum of i*g
    torch.testing.assert_close(trace["cell"][0, 0], expected, **F64)


@pytest.mark.parametrize("coupled", [False, True])
def test_peephole_and_coupled_combine(coupled):
    lstm = lstmkit.LSTM(I, H, 2, bidirectional=True, proj_size=2, peephole=True, coupled=coupled)
    names = {n for n, _ in lstm.named_parameters()}
    assert ("weight_cf_l1_reverse" in names) == (not coupled)
    out, (h, c) = lstm(torch.randn(T, B, I))
    assert out.shape == (T, B, 4) and h.shape == (4, B, 2) and c.shape == (4, B, H)


def test_forget_bias_sets_the_total_forget_bias():
    lstm = lstmkit.LSTM(I, H, 2, bidirectional=True, forget_bias=1.0)
    for k in (0, 1):
        for s in ("", "_reverse"):
            b_ih = getattr(lstm, f"bias_ih_l{k}{s}")
            b_hh = getattr(lstm, f"bias_hh_l{k}{s}")
            total = (b_ih + b_hh)[H : 2 * H]
            torch.testing.assert_close(total, torch.ones(H))
            assert b_ih[:H].abs().max() <= 1 / H**0.5  # the other gates keep torch's init
    cell = lstmkit.LSTMCell(I, H, forget_bias=2.0, peephole=True)
    torch.testing.assert_close((cell.bias_ih + cell.bias_hh)[H : 2 * H], torch.full((H,), 2.0))


def test_default_init_is_torchs_distribution():
    torch.manual_seed(0)
    ours = lstmkit.LSTM(I, H)
    torch.manual_seed(0)
    theirs = nn.LSTM(I, H)
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (dict(coupled=True, forget_gate=False), "cannot be combined"),
        (dict(coupled=True, forget_bias=1.0), "coupled=True derives the forget gate"),
        (dict(forget_gate=False, forget_bias=1.0), "no forget gate"),
        (dict(bias=False, forget_bias=1.0), "needs bias=True"),
        (dict(peephole=True, backend="torch"), "torch's fused kernels have no peephole=True"),
        (dict(backend="cudnn"), "backend must be one of"),
        (dict(proj_size=H), "proj_size must be smaller than hidden_size"),
    ],
)
def test_combinations_that_make_no_sense_say_why(options, needle):
    with pytest.raises(ValueError, match=needle):
        lstmkit.LSTM(I, H, **options)


def test_cell_options_match_layer():
    """LSTMCell with an option steps exactly like one step of the LSTM layer with it."""
    for options in [dict(peephole=True), dict(coupled=True), dict(forget_gate=False)]:
        layer = lstmkit.LSTM(I, H, **options).double()
        cell = lstmkit.LSTMCell(I, H, **options).double()
        cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
        x = torch.randn(T, B, I, dtype=torch.float64)
        out, (_, c_n) = layer(x)
        h = c = torch.zeros(B, H, dtype=torch.float64)
        for t in range(T):
            h, c = cell(x[t], (h, c))
            torch.testing.assert_close(h, out[t], **F64)
        torch.testing.assert_close(c, c_n[0], **F64)


def test_family_gate_layouts():
    assert LSTMFamily(4).gates == ("input", "forget", "candidate", "output")
    assert LSTMFamily(4, coupled=True).gates == ("input", "candidate", "output")
    assert LSTMFamily(4, forget_gate=False).gates == ("input", "candidate", "output")
