"""The sLSTM (Beck et al. 2024, Sec. 2.2) against oracles written here from the paper's
equations: a loop with dense recurrent matrices built from the blocks by torch.block_diag,
a log-space evaluation that needs no stabiliser, finite differences, torch.nn.LSTM's
parameter count and running each sequence alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import TOLERANCE, random_loss
from torch.autograd import gradcheck
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.cells.slstm import SLSTMCell
from lstmkit.layers.slstm import SLSTM

I, H, HEADS, T, B = 3, 4, 2, 5, 3
F64 = TOLERANCE[torch.float64]
FORGETS = ["sigmoid", "exp"]


# -- oracles, from the paper's equations -----------------------------------------------------


def dense_blocks(weight_hh: torch.Tensor) -> list[torch.Tensor]:
    """R_z, R_i, R_f, R_o as dense (H, H) matrices, in the stored gate order i, f, z, o."""
    return [torch.block_diag(*weight_hh[g]) for g in range(weight_hh.shape[0])]


def gate_preactivations(x_t, h_prev, params):
    """(i~, f~, z~, o~), each W_a x_t + R_a h_{t-1} + b_a, one gate at a time."""
    w_in = params["weight_ih"].split(H)
    recurrent = dense_blocks(params["weight_hh"])
    bias = params["bias_ih"] + params["bias_hh"] if "bias_ih" in params else None
    biases = bias.split(H) if bias is not None else [0.0] * 4
    return [x_t @ w.T + h_prev @ r.T + b for w, r, b in zip(w_in, recurrent, biases, strict=True)]


def paper_direction(x, state, params, forget_activation, stabilized, reverse=False):
    """One layer, one direction, Sec. 2.2 as written. x (T, B, I)."""
    h, c, n, m = state
    outputs = [None] * x.shape[0]
    for t in reversed(range(x.shape[0])) if reverse else range(x.shape[0]):
        i_pre, f_pre, z_pre, o_pre = gate_preactivations(x[t], h, params)
        z, o = torch.tanh(z_pre), torch.sigmoid(o_pre)
        if stabilized:
            log_f = -F.softplus(-f_pre) if forget_activation == "sigmoid" else f_pre
            m_new = torch.maximum(log_f + m, i_pre)
            i, f = torch.exp(i_pre - m_new), torch.exp(log_f + m - m_new)
            m = m_new
        else:
            i = torch.exp(i_pre)
            f = torch.sigmoid(f_pre) if forget_activation == "sigmoid" else torch.exp(f_pre)
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        outputs[t] = h
    return torch.stack(outputs), (h, c, n, m)


def layer_params(layer, k, direction):
    suffix = f"_l{k}" + ("_reverse" if direction else "")
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if layer.bias else [])
    return {name: getattr(layer, name + suffix) for name in names}


def paper_layer(layer: SLSTM, x, hx):
    """Stacked, optionally bidirectional: each layer reads the previous one's output."""
    finals = []
    for k in range(layer.num_layers):
        outs = []
        for d in range(layer.num_directions):
            index = k * layer.num_directions + d
            out, final = paper_direction(
                x,
                tuple(s[index] for s in hx),
                layer_params(layer, k, d),
                layer.family.forget_activation,
                layer.family.stabilized,
                reverse=d == 1,
            )
            outs.append(out)
            finals.append(final)
        x = torch.cat(outs, dim=-1)
    return x, tuple(torch.stack(parts) for parts in zip(*finals, strict=True))


def log_space_direction(x, params, forget_activation):
    """The plain form from the zero state without any stabiliser: it carries r = c/n and
    log n instead of c and n, so nothing is ever exponentiated beyond 0. x (T, B, I)."""
    h = x.new_zeros(x.shape[1], H)
    ratio = x.new_zeros(x.shape[1], H)
    log_n = x.new_full((x.shape[1], H), float("-inf"))  # n_0 = 0
    outputs = []
    for t in range(x.shape[0]):
        i_pre, f_pre, z_pre, o_pre = gate_preactivations(x[t], h, params)
        log_f = -F.softplus(-f_pre) if forget_activation == "sigmoid" else f_pre
        log_n_new = torch.logaddexp(log_f + log_n, i_pre)  # log(f n + i)
        # c_t / n_t = (f n r + i z) / n_t, both weights in (0, 1] and summing to 1
        ratio = torch.exp(log_f + log_n - log_n_new) * ratio + torch.exp(
            i_pre - log_n_new
        ) * torch.tanh(z_pre)
        log_n = log_n_new
        h = torch.sigmoid(o_pre) * ratio
        outputs.append(h)
    return torch.stack(outputs), ratio, log_n


def random_state(layers_dirs, batch, dtype, m_zero=False):
    gen = torch.Generator().manual_seed(7)
    h, c, m = (torch.randn(layers_dirs, batch, H, generator=gen, dtype=dtype) for _ in range(3))
    n = torch.rand(layers_dirs, batch, H, generator=gen, dtype=dtype) + 0.5  # n > 0
    return (h, c, n, torch.zeros_like(m) if m_zero else m)


# -- the layer equals the paper's equations ----------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("forget", FORGETS)
@pytest.mark.parametrize("stabilized", [True, False], ids=["stabilized", "plain"])
def test_layer_equals_paper_loop(stabilized, forget, bidirectional):
    torch.manual_seed(0)
    layer = SLSTM(
        I, H, 2, bidirectional=bidirectional, num_heads=HEADS, forget_activation=forget,
        stabilized=stabilized,
    ).double()  # fmt: skip
    x = torch.randn(T, B, I, dtype=torch.float64)
    # the paper's plain form has no m: start it from m_0 = 0, where the two agree
    hx = random_state(2 * layer.num_directions, B, torch.float64, m_zero=not stabilized)
    out, final = layer(x, hx)
    want_out, want_final = paper_layer(layer, x, hx)
    torch.testing.assert_close(out, want_out, **F64)
    for name, got, want in zip("hcnm", final, want_final, strict=True):
        torch.testing.assert_close(got, want, **F64, msg=lambda msg, name=name: f"{name}: {msg}")


def test_no_bias_equals_paper_loop():
    torch.manual_seed(1)
    layer = SLSTM(I, H, bias=False, num_heads=HEADS).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    hx = random_state(1, B, torch.float64)
    out, _ = layer(x, hx)
    torch.testing.assert_close(out, paper_layer(layer, x, hx)[0], **F64)


def test_cell_equals_one_step_of_the_layer():
    torch.manual_seed(2)
    layer = SLSTM(I, H, num_heads=HEADS, forget_activation="exp").double()
    cell = SLSTMCell(I, H, num_heads=HEADS, forget_activation="exp").double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(1, B, I, dtype=torch.float64)
    hx = random_state(1, B, torch.float64)
    _, want = layer(x, hx)
    got = cell(x[0], tuple(s[0] for s in hx))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w[0], **F64)


# -- the stabilised form equals the plain one, and survives where the plain one overflows ----


@pytest.mark.parametrize("forget", FORGETS)
def test_stabilized_equals_plain(forget):
    """Same weights, zero state: h and c/n agree; the stored c and n differ by exp(m)."""
    torch.manual_seed(3)
    stable = SLSTM(I, H, num_heads=HEADS, forget_activation=forget).double()
    plain = SLSTM(I, H, num_heads=HEADS, forget_activation=forget, stabilized=False).double()
    plain.load_state_dict(stable.state_dict())
    x = 2 * torch.randn(8, B, I, dtype=torch.float64)
    out_s, (h_s, c_s, n_s, m_s) = stable(x)
    out_p, (h_p, c_p, n_p, m_p) = plain(x)
    assert m_s.abs().max() > 0.1  # the stabiliser did move, so the check below means something
    torch.testing.assert_close(out_s, out_p, **F64)
    torch.testing.assert_close(h_s, h_p, **F64)
    torch.testing.assert_close(c_s / n_s, c_p / n_p, **F64)
    torch.testing.assert_close(c_s * torch.exp(m_s), c_p, **F64)
    torch.testing.assert_close(n_s * torch.exp(m_s), n_p, **F64)
    assert bool((m_p == 0).all())  # the plain form keeps the scale it started from


def test_plain_form_continues_a_stabilized_state_on_its_scale():
    """The stored c, n are the true ones times exp(-m); the plain form keeps that m, so from
    a state the stabilised form left it gives the same h as the stabilised form would."""
    torch.manual_seed(14)
    stable = SLSTM(I, H, num_heads=HEADS).double()
    plain = SLSTM(I, H, num_heads=HEADS, stabilized=False).double()
    plain.load_state_dict(stable.state_dict())
    first, second = torch.randn(2, 6, B, I, dtype=torch.float64)
    _, state = stable(first)
    assert state[3].abs().max() > 0.1
    out_s, (h_s, c_s, n_s, _) = stable(second, state)
    out_p, (h_p, c_p, n_p, _) = plain(second, state)
    torch.testing.assert_close(out_p, out_s, **F64)
    torch.testing.assert_close(h_p, h_s, **F64)
    torch.testing.assert_close(c_p / n_p, c_s / n_s, **F64)


def test_closed_sigmoid_forget_gate_keeps_gradients_finite():
    """f~ = -200: sigmoid(f~) is 0 in float32, and log(0) would give nan gradients; the
    stabiliser takes log f as logsigmoid(f~), which stays finite."""
    torch.manual_seed(15)
    layer = SLSTM(I, H, num_heads=HEADS)
    with torch.no_grad():
        layer.bias_ih_l0[H : 2 * H] -= 200.0
    out, final = layer(torch.randn(6, B, I))
    random_loss([out, *final], seed=4).backward()
    assert bool(out.isfinite().all())
    assert all(bool(p.grad.isfinite().all()) for p in layer.parameters())


def test_forget_bias_sets_the_forget_block():
    layer = SLSTM(I, H, forget_bias=3.0)
    assert bool((layer.bias_ih_l0[H : 2 * H] == 3.0).all())
    assert bool((layer.bias_hh_l0[H : 2 * H] == 0.0).all())


@pytest.mark.parametrize("forget", FORGETS)
@pytest.mark.parametrize(
    "dtype, input_bias", [(torch.float32, 100.0), (torch.float64, 1000.0)], ids=["f32", "f64"]
)
def test_stabilized_survives_where_plain_overflows(dtype, input_bias, forget):
    """exp(100) overflows float32 and exp(1000) float64: the plain form turns to nan, the
    stabilised one equals a float64 evaluation in log space, which has no stabiliser."""
    torch.manual_seed(4)
    stable = SLSTM(I, H, num_heads=HEADS, forget_activation=forget, dtype=dtype)
    with torch.no_grad():
        stable.bias_ih_l0[:H] += input_bias  # the input-gate block
    plain = SLSTM(I, H, num_heads=HEADS, forget_activation=forget, stabilized=False, dtype=dtype)
    plain.load_state_dict(stable.state_dict())
    x = torch.randn(20, B, I, dtype=dtype)

    out_p, _ = plain(x)
    assert not bool(out_p.isfinite().any())
    out_s, (_, c_s, n_s, m_s) = stable(x)
    assert all(bool(t.isfinite().all()) for t in (out_s, c_s, n_s, m_s))

    params = {k: v.detach().double() for k, v in layer_params(stable, 0, 0).items()}
    want_out, want_ratio, want_log_n = log_space_direction(x.double(), params, forget)
    tol = TOLERANCE[dtype] if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_s.double(), want_out, **tol)
    torch.testing.assert_close((c_s / n_s)[0].double(), want_ratio, **tol)
    # the stored n is the true one over exp(m): log n_true = m + log n_stored
    log_n = (m_s + torch.log(n_s))[0].double()
    torch.testing.assert_close(
        log_n, want_log_n, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0
    )


@pytest.mark.parametrize("forget", FORGETS)
@pytest.mark.parametrize("stabilized", [True, False], ids=["stabilized", "plain"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_first_step_from_zeros_is_o_times_z(dtype, stabilized, forget):
    """From c_0 = n_0 = 0, c_1 / n_1 = i z / i = z exactly, so h_1 = sigma(o~) tanh(z~)."""
    torch.manual_seed(5)
    cell = SLSTMCell(I, H, num_heads=HEADS, forget_activation=forget, stabilized=stabilized)
    cell = cell.to(dtype)
    x = 3 * torch.randn(B, I, dtype=dtype)
    h, c, n, m = cell(x)
    gates = (x @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh).split(H, dim=-1)
    want = torch.sigmoid(gates[3]) * torch.tanh(gates[2])
    assert all(bool(t.isfinite().all()) for t in (h, c, n, m))
    torch.testing.assert_close(h, want, **TOLERANCE[dtype])


# -- gradients: finite differences -------------------------------------------------------------

CASES = [(True, "sigmoid"), (True, "exp"), (False, "sigmoid"), (False, "exp")]
CASE_IDS = [f"{'stabilized' if s else 'plain'}-{f}" for s, f in CASES]


@pytest.mark.parametrize("stabilized, forget", CASES, ids=CASE_IDS)
def test_layer_gradcheck(stabilized, forget):
    """One bidirectional layer: the stacking around it is the shared layer code, which
    test_gradcheck.py checks for the other cells."""
    torch.manual_seed(6)
    layer = SLSTM(
        2, H, bidirectional=True, num_heads=HEADS, forget_activation=forget,
        stabilized=stabilized,
    ).double()  # fmt: skip
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    states = [s.requires_grad_() for s in random_state(2, 2, torch.float64)]

    def fn(x, *rest):
        hx, params = tuple(rest[:4]), rest[4:]
        out, final = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x, hx)
        )
        return (out, *final)

    assert gradcheck(fn, (x, *states, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("stabilized, forget", CASES, ids=CASE_IDS)
def test_cell_gradcheck(stabilized, forget):
    torch.manual_seed(7)
    cell = SLSTMCell(
        2, H, num_heads=HEADS, forget_activation=forget, stabilized=stabilized
    ).double()
    names = [n for n, _ in cell.named_parameters()]
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    states = [s[0].requires_grad_() for s in random_state(1, 2, torch.float64)]

    def fn(x, *rest):
        hx, params = tuple(rest[:4]), rest[4:]
        return torch.func.functional_call(cell, dict(zip(names, params, strict=True)), (x, hx))

    assert gradcheck(fn, (x, *states, *cell.parameters()), eps=1e-6, atol=1e-6)


# -- heads: block-diagonal recurrence ----------------------------------------------------------


def test_one_head_has_a_full_recurrent_matrix_and_torch_lstms_parameter_count():
    layer = SLSTM(I, H, 2, bidirectional=True)
    assert layer.weight_hh_l0.shape == (4, 1, H, H)
    count = sum(p.numel() for p in layer.parameters())
    torch_count = sum(p.numel() for p in torch.nn.LSTM(I, H, 2, bidirectional=True).parameters())
    formula = 2 * (4 * H * I + 4 * H * H + 8 * H) + 2 * (4 * H * 2 * H + 4 * H * H + 8 * H)
    assert count == formula == torch_count


def test_heads_store_only_the_diagonal_blocks():
    hidden, heads = 6, 3
    layer = SLSTM(I, hidden, num_heads=heads, bias=False)
    head = hidden // heads
    assert layer.weight_hh_l0.shape == (4, heads, head, head)
    assert sum(p.numel() for p in layer.parameters()) == 4 * hidden * I + 4 * heads * head**2


@pytest.mark.parametrize("heads", [1, 2])
def test_one_step_jacobian_is_block_diagonal(heads):
    """dh_1/dh_0 of one step: h_0 reaches h_1 only through R, so a head's units do not
    depend on another head's previous hidden state; within a head every entry does."""
    torch.manual_seed(8)
    cell = SLSTMCell(I, H, num_heads=heads).double()
    x = torch.randn(1, I, dtype=torch.float64)
    _, c0, n0, m0 = (s[0] for s in random_state(1, 1, torch.float64))

    def h1(h0):
        return cell(x, (h0, c0, n0, m0))[0][0]

    jac = torch.autograd.functional.jacobian(h1, torch.randn(1, H, dtype=torch.float64))[:, 0]
    head = H // heads
    for a in range(heads):
        for b in range(heads):
            block = jac[a * head : (a + 1) * head, b * head : (b + 1) * head]
            if a == b:
                assert bool((block != 0).all()), f"head {a} must read its own units"
            else:
                assert bool((block == 0).all()), f"head {a} must not read head {b}"


def test_recurrent_product_is_the_block_diagonal_matrix():
    torch.manual_seed(9)
    family = SLSTMFamily(6, num_heads=3)
    weight_hh = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    h = torch.randn(B, 6, dtype=torch.float64)
    want = torch.cat([h @ r.T for r in dense_blocks(weight_hh)], dim=-1)
    torch.testing.assert_close(family.recurrent(h, weight_hh), want, **F64)


# -- variable lengths ------------------------------------------------------------------------


@pytest.mark.parametrize("packed", [False, True], ids=["lengths", "packed"])
def test_variable_lengths_equal_each_sequence_alone(packed):
    torch.manual_seed(10)
    layer = SLSTM(I, H, 2, bidirectional=True, num_heads=HEADS).double()
    lengths = torch.tensor([T, 2, 4])
    x = torch.randn(T, 3, I, dtype=torch.float64)
    if packed:
        out, final = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
        out, _ = pad_packed_sequence(out, total_length=T)
    else:
        out, final = layer(x, lengths=lengths)
    for b, length in enumerate(lengths.tolist()):
        alone_out, alone_final = layer(x[:length, b : b + 1])
        torch.testing.assert_close(out[:length, b : b + 1], alone_out, **F64)
        assert bool((out[length:, b] == 0).all())
        for got, want in zip(final, alone_final, strict=True):
            torch.testing.assert_close(got[:, b : b + 1], want, **F64)


# -- backends --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "manual"])
@pytest.mark.parametrize("options", [{}, dict(stabilized=False, forget_activation="exp")])
def test_fast_backends_refuse_the_slstm(backend, options):
    with pytest.raises(
        ValueError, match=rf"backend='{backend}'.*slstm cell.*'auto' or 'reference'"
    ):
        SLSTM(I, H, backend=backend, **options)
    layer = SLSTM(I, H, **options)
    with pytest.raises(ValueError, match="slstm cell"):
        layer.backend = backend


def test_auto_matches_the_reference_loop():
    """auto takes the fused kernels on the CPU (tests/test_fused_slstm.py checks them);
    they agree with the reference loop to float32's rounding."""
    torch.manual_seed(11)
    auto = SLSTM(I, H, 2, num_heads=HEADS)
    reference = SLSTM(I, H, 2, num_heads=HEADS, backend="reference")
    reference.load_state_dict(auto.state_dict())
    x = torch.randn(T, B, I)
    for got, want in zip(auto(x)[1], reference(x)[1], strict=True):
        torch.testing.assert_close(got, want, **TOLERANCE[torch.float32])


def test_recompute_gives_the_same_gradients():
    torch.manual_seed(12)
    plain = SLSTM(I, H, 2, bidirectional=True, num_heads=HEADS).double()
    recomputed = SLSTM(I, H, 2, bidirectional=True, num_heads=HEADS, recompute_every=2)
    recomputed = recomputed.double()
    recomputed.load_state_dict(plain.state_dict())
    x = torch.randn(T, B, I, dtype=torch.float64)
    grads = []
    for layer in (plain, recomputed):
        out, final = layer(x)
        params = list(layer.parameters())
        grads.append(torch.autograd.grad(random_loss([out, *final], seed=3), params))
    for g, w in zip(*grads, strict=True):
        torch.testing.assert_close(g, w, **F64)


def test_trace_holds_every_quantity_and_ends_at_the_final_state():
    torch.manual_seed(13)
    layer = SLSTM(I, H, num_heads=HEADS)
    _, final, trace = layer(torch.randn(T, B, I), return_trace=True)
    assert trace.names == SLSTMFamily.trace_names
    for name, state in zip(["hidden", "cell", "normalizer", "stabilizer"], final, strict=True):
        torch.testing.assert_close(trace[name][0, 0, :, -1], state[0], rtol=0, atol=0)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [SLSTM, SLSTMCell])
def test_heads_must_divide_hidden_size(module):
    with pytest.raises(ValueError, match=r"num_heads=4 must divide hidden_size=6.*\[1, 2, 3, 6\]"):
        module(I, 6, num_heads=4)
    with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
        module(I, 6, num_heads=0)


@pytest.mark.parametrize("module", [SLSTM, SLSTMCell])
def test_unknown_forget_activation_is_named(module):
    with pytest.raises(
        ValueError, match=r"forget_activation must be one of 'sigmoid', 'exp'.*'relu'"
    ):
        module(I, H, forget_activation="relu")


def test_bad_initial_state_is_named():
    layer = SLSTM(I, H)
    x = torch.randn(T, B, I)
    state = random_state(1, B, torch.float32)
    with pytest.raises(TypeError, match=r"\(h_0, c_0, n_0, m_0\) of 4 tensors.*length 2"):
        layer(x, state[:2])
    bad = (*state[:2], torch.zeros(1, B, H + 1), state[3])
    with pytest.raises(ValueError, match=r"hx\[2\] \(n_0\) has shape \(1, 3, 5\); expected"):
        layer(x, bad)
    with pytest.raises(TypeError, match=r"hx\[3\] \(m_0\) has dtype torch.float64"):
        layer(x, (*state[:3], state[3].double()))
    cell = SLSTMCell(I, H)
    with pytest.raises(TypeError, match=r"hx\[1\] \(c_0\) must be a torch.Tensor"):
        cell(x[0], (state[0][0], None, state[2][0], state[3][0]))
    with pytest.raises(ValueError, match=r"hx\[3\] \(m_0\) has shape \(3, 5\)"):
        cell(x[0], (*(s[0] for s in state[:3]), torch.zeros(B, H + 1)))
