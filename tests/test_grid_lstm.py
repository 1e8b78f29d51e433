"""The 2-D Grid LSTM (Kalchbrenner et al. 2015) against oracles nobody here wrote into the
module: a grid loop written below whose LSTM transforms are torch.nn.LSTMCell (and, for the
paper's printed output form, the transform written from Sec. 2.1), one sequence at a time;
the Stacked LSTM (no LSTM along depth) against torch.nn.LSTM; finite differences; and each
sequence run alone."""

from __future__ import annotations

import pytest
import torch
from helpers import TOLERANCE, random_loss
from torch.autograd import gradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.layers.grid_lstm import GridLSTM

I, H, T, B, L = 3, 4, 5, 3, 3
LENGTHS = [5, 2, 4]
F64 = TOLERANCE[torch.float64]
OPTIONS = {
    "untied": {},
    "tied": dict(tied=True),
    "printed-output-form": dict(output_form="tanh(o*m)"),
    "tied-printed-output-form": dict(tied=True, output_form="tanh(o*m)"),
}


def make_grid(num_layers=L, **options) -> GridLSTM:
    torch.manual_seed(0)
    return GridLSTM(I, H, num_layers, **options).double()


# -- the oracle: a grid of LSTM transforms, one sequence at a time ---------------------------


def torch_cell(weights: dict, prefix: str) -> torch.nn.LSTMCell:
    """torch.nn.LSTMCell computing LSTM(H, m, W) of Sec. 2.1 with H = [input ; hx]."""
    cell = torch.nn.LSTMCell(weights[f"weight_{prefix}ih"].shape[1], H).double()
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    cell.load_state_dict({n: weights[n.replace("_", f"_{prefix}")] for n in names})
    return cell


def printed_transform(weights: dict, prefix: str):
    """Sec. 2.1 as printed, h' = tanh(g^o * m'), one gate at a time."""

    def transform(inp, state):
        h, m = state
        w = weights[f"weight_{prefix}ih"].split(H)
        u = weights[f"weight_{prefix}hh"].split(H)
        b = (weights[f"bias_{prefix}ih"] + weights[f"bias_{prefix}hh"]).split(H)
        g_u, g_f, g_c, g_o = (w[k] @ inp + u[k] @ h + b[k] for k in range(4))
        m_new = torch.sigmoid(g_f) * m + torch.sigmoid(g_u) * torch.tanh(g_c)
        return torch.tanh(torch.sigmoid(g_o) * m_new), m_new

    return transform


def grid_oracle(grid: GridLSTM, x, h0, m0):
    """One sequence x (T, I). Each block: the time transform on (h_{t-1}, m_{t-1}) and the
    depth transform on (h_{t-1}, mu from below), both reading the same depth input."""
    params = dict(grid.named_parameters())
    layers = []
    for k in range(grid.num_layers):
        suffix = "" if grid.tied else f"_l{k}"
        weights = {
            name.removesuffix(suffix): w for name, w in params.items() if name.endswith(suffix)
        }
        make = torch_cell if grid.output_form == "o*tanh(m)" else printed_transform
        layers.append((make(weights, ""), make(weights, "depth_")))
    state = [(h0[k], m0[k]) for k in range(grid.num_layers)]
    outputs = []
    for t in range(x.shape[0]):
        up = x[t] @ params["weight_in"].T if grid.tied else x[t]
        mu = torch.zeros(H, dtype=x.dtype)
        for k, (time_lstm, depth_lstm) in enumerate(layers):
            h_prev = state[k][0]
            state[k] = time_lstm(up, state[k])
            up, mu = depth_lstm(up, (h_prev, mu))
        outputs.append(up)
    return (
        torch.stack(outputs),
        torch.stack([h for h, _ in state]),
        torch.stack([m for _, m in state]),
    )


@pytest.mark.parametrize("name", list(OPTIONS))
def test_equals_a_grid_of_lstm_transforms(name):
    grid = make_grid(**OPTIONS[name])
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(L, B, H, dtype=torch.float64)
    m0 = torch.randn(L, B, H, dtype=torch.float64)
    output, (h_n, m_n) = grid(x, (h0, m0), lengths=LENGTHS)
    for b, n in enumerate(LENGTHS):
        out_b, h_b, m_b = grid_oracle(grid, x[:n, b], h0[:, b], m0[:, b])
        torch.testing.assert_close(output[:n, b], out_b, **F64)
        torch.testing.assert_close(h_n[:, b], h_b, **F64)
        torch.testing.assert_close(m_n[:, b], m_b, **F64)
        assert bool((output[n:, b] == 0).all())


def test_tied_shares_one_set_of_weights():
    untied = [n for n, _ in make_grid().named_parameters()]
    tied = [n for n, _ in make_grid(tied=True).named_parameters()]
    assert len(untied) == 8 * L
    assert tied == [
        "weight_in",
        "weight_ih", "weight_hh", "bias_ih", "bias_hh",
        "weight_depth_ih", "weight_depth_hh", "bias_depth_ih", "bias_depth_hh",
    ]  # fmt: skip


# -- the reduction: without LSTM cells along depth it is a stacked torch.nn.LSTM -------------


@pytest.mark.parametrize("form", ["padded", "packed"])
def test_stacked_lstm_is_torch_lstm(form):
    """Sec. 2.2: the Stacked LSTM has LSTM cells along time only, each layer's h going up."""
    grid = make_grid(depth_lstm=False)
    oracle = torch.nn.LSTM(I, H, L).double()
    oracle.load_state_dict(grid.state_dict())  # the same names and shapes
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    hx = (torch.randn(L, B, H, dtype=torch.float64), torch.randn(L, B, H, dtype=torch.float64))
    inp = (
        pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
        if form == "packed"
        else x
    )
    ours_out, ours_state = grid(inp, hx)
    theirs_out, theirs_state = oracle(inp, hx)
    if form == "packed":
        ours_out, theirs_out = ours_out.data, theirs_out.data
    ours_all, theirs_all = [ours_out, *ours_state], [theirs_out, *theirs_state]
    for a, b in zip(ours_all, theirs_all, strict=True):
        torch.testing.assert_close(a, b, **F64)
    grads_ours = torch.autograd.grad(  # the packing's graph is shared with the oracle's call
        random_loss(ours_all, 2), [x, *grid.parameters()], retain_graph=True
    )
    grads_theirs = torch.autograd.grad(random_loss(theirs_all, 2), [x, *oracle.parameters()])
    for a, b in zip(grads_ours, grads_theirs, strict=True):
        torch.testing.assert_close(a, b, **F64)


def test_depth_lstm_changes_the_model():
    """The grid with LSTM cells along depth is not the stacked LSTM of its time weights."""
    grid = make_grid()
    stacked = make_grid(depth_lstm=False)
    stacked.load_state_dict({n: p for n, p in grid.state_dict().items() if "depth" not in n})
    x = torch.randn(T, B, I, dtype=torch.float64)
    assert (grid(x)[0] - stacked(x)[0]).abs().max() > 1e-3


# -- finite differences ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["untied", "tied-printed-output-form"])
def test_gradcheck(name):
    grid = GridLSTM(2, 3, 2, **OPTIONS[name]).double()
    names = [n for n, _ in grid.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    m0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in grid.parameters()]

    def fn(x, h0, m0, *params):
        out, (h, m) = functional_call(
            grid, dict(zip(names, params, strict=True)), (x, (h0, m0)), {"lengths": [3, 2]}
        )
        return out, h, m

    assert gradcheck(fn, (x, h0, m0, *params))


# -- input forms -----------------------------------------------------------------------------


def test_lengths_and_packed_equal_each_sequence_alone():
    grid = make_grid(batch_first=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    out_lengths, (h_l, m_l) = grid(x, lengths=LENGTHS)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    out_packed, (h_p, m_p) = grid(packed)
    out_packed, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=T)
    for b, n in enumerate(LENGTHS):
        alone, (h_a, m_a) = grid(x[b, :n])  # unbatched (T, I)
        for out, h, m in [(out_lengths, h_l, m_l), (out_packed, h_p, m_p)]:
            torch.testing.assert_close(out[b, :n], alone, **F64)
            torch.testing.assert_close(h[:, b], h_a, **F64)
            torch.testing.assert_close(m[:, b], m_a, **F64)
            assert bool((out[b, n:] == 0).all())


def test_trace():
    grid = make_grid()
    x = torch.randn(T, B, I, dtype=torch.float64)
    output, (h_n, _), trace = grid(x, lengths=LENGTHS, return_trace=True)
    assert trace.names[:6] == ("input", "forget", "candidate", "output", "cell", "hidden")
    assert trace["depth_hidden"].shape == (L, 1, B, T, H)
    torch.testing.assert_close(trace["depth_hidden"][-1, 0].transpose(0, 1), output, **F64)
    last = torch.tensor(LENGTHS) - 1
    torch.testing.assert_close(trace["hidden"][:, 0, torch.arange(B), last], h_n, **F64)


def test_forget_bias_and_dropout():
    grid = GridLSTM(I, H, 2, dropout=0.5, forget_bias=1.0)
    for name in ["bias_ih_l0", "bias_depth_ih_l1"]:
        assert bool((getattr(grid, name)[H : 2 * H] == 1.0).all())
    assert bool((grid.bias_depth_hh_l0[H : 2 * H] == 0.0).all())
    x = torch.randn(T, B, I)
    assert not torch.equal(grid(x)[0], grid(x)[0])  # training: fresh dropout masks
    grid.eval()
    torch.testing.assert_close(grid(x)[0], grid(x)[0])


# -- bad input -------------------------------------------------------------------------------


def test_bad_input():
    grid = GridLSTM(I, H, 2)
    with pytest.raises(ValueError, match=r"GridLSTM: input has 7 features .* input_size = 3"):
        grid(torch.randn(T, B, 7))
    with pytest.raises(ValueError, match=r"input must be 3-D .* got a 4-D tensor"):
        grid(torch.randn(T, B, I, 1))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        grid(torch.randn(T, B, I), torch.zeros(2, B, H))
    with pytest.raises(
        ValueError, match=r"hx\[0\] \(h_0\) has shape \(2, 4\); expected .* = \(2, 3, 4\)"
    ):
        grid(torch.randn(T, B, I), (torch.zeros(2, H), torch.zeros(2, B, H)))
    with pytest.raises(
        TypeError, match=r"input has dtype torch.float64, but the parameters are torch.float32"
    ):
        grid(torch.randn(T, B, I, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"lengths= is for padded input"):
        grid(pack_padded_sequence(torch.randn(T, B, I), torch.tensor([5, 4, 2])), lengths=[5, 4, 2])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(bidirectional=True), "bidirectional=True is not offered"),
        (dict(output_form="o*m"), r"output_form must be one of \('o\*tanh\(m\)', 'tanh\(o\*m\)'\)"),
        (dict(hidden_size=0), "hidden_size must be an integer >= 1"),
        (dict(dropout=-0.1), r"dropout must be a number in \[0, 1\]"),
    ],
    ids=["bidirectional", "output-form", "no-hidden", "dropout"],
)
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        GridLSTM(**{"input_size": I, "hidden_size": H, "num_layers": 2, **kwargs})
