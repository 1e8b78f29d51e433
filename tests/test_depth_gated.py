"""The depth-gated LSTM (Yao et al. 2015) against oracles nobody here wrote into the module:
a loop written below from the paper's equations, one sequence at a time; a stacked
torch.nn.LSTM with the same weights when the depth gate is shut; finite differences; and
each sequence run alone."""

from __future__ import annotations

import pytest
import torch
from helpers import TOLERANCE, random_loss
from torch.autograd import gradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.layers.depth_gated import DepthGatedLSTM

I, H, T, B, L = 3, 4, 6, 3, 3
LENGTHS = [6, 2, 4]
F64 = TOLERANCE[torch.float64]


def make_layer(num_layers=L, **options) -> DepthGatedLSTM:
    torch.manual_seed(0)
    return DepthGatedLSTM(I, H, num_layers, **options).double()


# -- the oracle: Sec. 3's equations, one sequence at a time ----------------------------------


def paper_stack(layer: DepthGatedLSTM, x, h0, c0):
    """One sequence x (T, I), every layer in turn; h0, c0 (L, H). Returns the top layer's
    outputs (T, H) and the final (h, c), each (L, H)."""
    finals_h, finals_c = [], []
    lower_cells = None
    for k in range(layer.num_layers):
        p = {
            name.removesuffix(f"_l{k}"): w
            for name, w in layer.named_parameters()
            if name.endswith(f"_l{k}")
        }
        w_i, w_f, w_g, w_o = p["weight_ih"].split(H)
        u_i, u_f, u_g, u_o = p["weight_hh"].split(H)
        b = p["bias_ih"] + p["bias_hh"]
        b_i, b_f, b_g, b_o = b.split(H)
        h, c = h0[k], c0[k]
        outputs, cells = [], []
        for t in range(x.shape[0]):
            i = torch.sigmoid(w_i @ x[t] + u_i @ h + b_i)
            f = torch.sigmoid(w_f @ x[t] + u_f @ h + b_f)
            g = torch.tanh(w_g @ x[t] + u_g @ h + b_g)
            o = torch.sigmoid(w_o @ x[t] + u_o @ h + b_o)
            c_new = f * c + i * g
            if k > 0:  # the depth gate of layer k reads x_t = h_t^{k-1}, c_{t-1}^k and c_t^{k-1}
                d = torch.sigmoid(
                    p["weight_xd"] @ x[t]
                    + p["bias_d"]
                    + p["weight_cd"] * c
                    + p["weight_ld"] * lower_cells[t]
                )
                c_new = c_new + d * lower_cells[t]
            c = c_new
            h = o * torch.tanh(c)
            outputs.append(h)
            cells.append(c)
        finals_h.append(h)
        finals_c.append(c)
        x, lower_cells = torch.stack(outputs), cells
    return x, torch.stack(finals_h), torch.stack(finals_c)


def test_equals_the_papers_equations_with_lengths_and_a_state():
    layer = make_layer()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(L, B, H, dtype=torch.float64)
    c0 = torch.randn(L, B, H, dtype=torch.float64)
    output, (h_n, c_n) = layer(x, (h0, c0), lengths=LENGTHS)
    for b, n in enumerate(LENGTHS):
        out_b, h_b, c_b = paper_stack(layer, x[:n, b], h0[:, b], c0[:, b])
        torch.testing.assert_close(output[:n, b], out_b, **F64)
        torch.testing.assert_close(h_n[:, b], h_b, **F64)
        torch.testing.assert_close(c_n[:, b], c_b, **F64)
        assert bool((output[n:, b] == 0).all())


def test_depth_gate_is_used():
    """The oracle above would pass a module that ignored the depth gate only if the gate
    contributed nothing; opening it must change the top layer's output."""
    layer = make_layer()
    x = torch.randn(T, B, I, dtype=torch.float64)
    before = layer(x)[0]
    with torch.no_grad():
        layer.bias_d_l2.fill_(5.0)
    assert (layer(x)[0] - before).abs().max() > 1e-3


# -- the reduction: with the depth gate shut it is a stacked torch.nn.LSTM ------------------


def shut_depth_gates(layer: DepthGatedLSTM) -> None:
    """d_t = sigmoid(-1000 + ...) = 0 exactly in float64 (exp(1000) overflows to inf), so
    the depth path adds exactly nothing and its gradient is exactly zero."""
    with torch.no_grad():
        for k in range(1, layer.num_layers):
            getattr(layer, f"bias_d_l{k}").fill_(-1000.0)
            getattr(layer, f"weight_cd_l{k}").zero_()
            getattr(layer, f"weight_ld_l{k}").zero_()


def torch_lstm_like(layer: DepthGatedLSTM) -> torch.nn.LSTM:
    torch_lstm = torch.nn.LSTM(I, H, layer.num_layers).double()
    ours = dict(layer.named_parameters())
    torch_lstm.load_state_dict(
        {name: ours[name].detach().clone() for name, _ in torch_lstm.named_parameters()}
    )
    return torch_lstm


@pytest.mark.parametrize("form", ["padded", "packed"])
def test_shut_depth_gate_is_a_stacked_torch_lstm(form):
    layer = make_layer()
    shut_depth_gates(layer)
    oracle = torch_lstm_like(layer)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(L, B, H, dtype=torch.float64)
    c0 = torch.randn(L, B, H, dtype=torch.float64)
    if form == "packed":
        packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
        ours_out, ours_state = layer(packed, (h0, c0))
        theirs_out, theirs_state = oracle(packed, (h0, c0))
        ours_out, theirs_out = ours_out.data, theirs_out.data
    else:
        ours_out, ours_state = layer(x, (h0, c0))
        theirs_out, theirs_state = oracle(x, (h0, c0))
    ours_all, theirs_all = [ours_out, *ours_state], [theirs_out, *theirs_state]
    for a, b in zip(ours_all, theirs_all, strict=True):
        torch.testing.assert_close(a, b, **F64)

    ours_params = dict(layer.named_parameters())
    shared = [name for name, _ in oracle.named_parameters()]
    grads_ours = torch.autograd.grad(  # the packing's graph is shared with the oracle's call
        random_loss(ours_all, 1), [x] + [ours_params[n] for n in shared], retain_graph=True
    )
    grads_theirs = torch.autograd.grad(random_loss(theirs_all, 1), [x, *oracle.parameters()])
    for name, a, b in zip(["input", *shared], grads_ours, grads_theirs, strict=True):
        torch.testing.assert_close(a, b, **F64, msg=lambda m, name=name: f"d/d{name}: {m}")


def test_one_layer_is_torch_lstm():
    layer = make_layer(num_layers=1)
    assert [n for n, _ in layer.named_parameters()] == [
        n for n, _ in torch.nn.LSTM(I, H).named_parameters()
    ]
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], torch_lstm_like(layer)(x)[0], **F64)


# -- finite differences ----------------------------------------------------------------------


def test_gradcheck():
    layer = DepthGatedLSTM(2, 3, 2).double()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def fn(x, h0, c0, *params):
        out, (h, c) = functional_call(
            layer, dict(zip(names, params, strict=True)), (x, (h0, c0)), {"lengths": [3, 2]}
        )
        return out, h, c

    assert gradcheck(fn, (x, h0, c0, *params))


# -- input forms -----------------------------------------------------------------------------


def test_lengths_and_packed_equal_each_sequence_alone():
    layer = make_layer()
    x = torch.randn(B, T, I, dtype=torch.float64)
    layer.batch_first = True
    out_lengths, (h_l, c_l) = layer(x, lengths=LENGTHS)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    out_packed, (h_p, c_p) = layer(packed)
    out_packed, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=T)
    for b, n in enumerate(LENGTHS):
        alone, (h_a, c_a) = layer(x[b, :n])  # unbatched (T, I)
        for out, h, c in [(out_lengths, h_l, c_l), (out_packed, h_p, c_p)]:
            torch.testing.assert_close(out[b, :n], alone, **F64)
            torch.testing.assert_close(h[:, b], h_a, **F64)
            torch.testing.assert_close(c[:, b], c_a, **F64)
            assert bool((out[b, n:] == 0).all())


def test_trace():
    layer = make_layer()
    x = torch.randn(T, B, I, dtype=torch.float64)
    output, _, trace = layer(x, lengths=LENGTHS, return_trace=True)
    assert trace.names == ("input", "forget", "candidate", "output", "depth", "cell", "hidden")
    assert trace["depth"].shape == (L, 1, B, T, H)
    assert bool((trace["depth"][0] == 0).all())  # layer 0 has no memory below it
    assert bool((trace["depth"][1:, 0, 0] > 0).all())
    torch.testing.assert_close(trace["hidden"][-1, 0].transpose(0, 1), output, **F64)


def test_forget_bias_and_dropout():
    layer = DepthGatedLSTM(I, H, 2, dropout=0.5, forget_bias=1.0)
    for k in range(2):
        assert bool((getattr(layer, f"bias_ih_l{k}")[H : 2 * H] == 1.0).all())
        assert bool((getattr(layer, f"bias_hh_l{k}")[H : 2 * H] == 0.0).all())
    x = torch.randn(T, B, I)
    assert not torch.equal(layer(x)[0], layer(x)[0])  # training: fresh dropout masks
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])


# -- bad input -------------------------------------------------------------------------------


def test_bad_input():
    layer = DepthGatedLSTM(I, H, 2)
    with pytest.raises(ValueError, match=r"DepthGatedLSTM: input has 7 features .* input_size = 3"):
        layer(torch.randn(T, B, 7))
    with pytest.raises(ValueError, match=r"input must be 3-D .* got a 4-D tensor"):
        layer(torch.randn(T, B, I, 1))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        layer(torch.randn(T, B, I), torch.zeros(2, B, H))
    with pytest.raises(
        ValueError, match=r"hx\[1\] \(c_0\) has shape \(3, 3, 4\); expected .* = \(2, 3, 4\)"
    ):
        layer(torch.randn(T, B, I), (torch.zeros(2, B, H), torch.zeros(3, B, H)))
    with pytest.raises(
        TypeError, match=r"input has dtype torch.float64, but the parameters are torch.float32"
    ):
        layer(torch.randn(T, B, I, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 6\]"):
        layer(torch.randn(T, B, I), lengths=[7, 1, 1])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(bidirectional=True), "bidirectional=True is not offered"),
        (dict(num_layers=0), "num_layers must be an integer >= 1"),
        (dict(dropout=1.5), r"dropout must be a number in \[0, 1\]"),
        (dict(bias=False, forget_bias=1.0), "forget_bias=1.0 needs bias=True"),
    ],
    ids=["bidirectional", "no-layers", "dropout", "forget-bias-without-bias"],
)
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        DepthGatedLSTM(I, H, **{"num_layers": 2, **kwargs})
