"""The Clockwork RNN (Koutník et al. 2014, Sec. 3) against oracles nobody here wrote or
written here from the paper: a module-by-module loop of Sec. 3's equations, torch.nn.RNN
(one module of period 1; and every module forced active, with the masked W_H), finite
differences, and running each sequence alone."""

from __future__ import annotations

import pytest
import torch
from helpers import TOLERANCE, random_loss
from torch import nn
from torch.autograd import gradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.cells.clockwork import ClockworkCell
from lstmkit.layers.clockwork import ClockworkRNN

I, H, T, B = 3, 6, 9, 3
PERIODS = (1, 2, 4)  # g = 3 modules of k = 2 units
F64 = TOLERANCE[torch.float64]


# -- the oracle: Sec. 3 module by module ------------------------------------------------------


def paper_direction(x, h, t0, params, periods, reverse=False):
    """One layer and direction as Sec. 3 writes it. x (T, B, I), h (B, H); t0 (B,) each
    row's t at its first step. Module i runs at step t when t mod T_i = 0, reading x_t and
    every module j with T_j >= T_i; the others keep their units."""
    g, k = len(periods), H // len(periods)
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b = params["bias_ih"] + params["bias_hh"] if "bias_ih" in params else torch.zeros(H)
    t = t0.clone()
    outputs = [None] * x.shape[0]
    for step in reversed(range(x.shape[0])) if reverse else range(x.shape[0]):
        new = h.clone()
        for i in range(g):
            rows = slice(i * k, (i + 1) * k)
            z = x[step] @ w_ih[rows].T + b[rows]
            for j in range(g):
                if periods[j] >= periods[i]:  # slower (or the same) module feeds module i
                    cols = slice(j * k, (j + 1) * k)
                    z = z + h[:, cols] @ w_hh[rows, cols].T
            runs = (t % periods[i] == 0)[:, None]  # (B, 1)
            new[:, rows] = torch.where(runs, torch.tanh(z), h[:, rows])
        h, t = new, t + 1
        outputs[step] = h
    return torch.stack(outputs), h, t


def layer_params(layer, k, direction):
    suffix = f"_l{k}" + ("_reverse" if direction else "")
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if layer.bias else [])
    return {name: getattr(layer, name + suffix) for name in names}


def paper_layer(layer, x, h0):
    """Stacked and bidirectional, one sequence (x (T, 1, I)), clocks from t = 0."""
    finals_h, finals_t = [], []
    for k in range(layer.num_layers):
        outs = []
        for d in range(layer.num_directions):
            index = k * layer.num_directions + d
            out, h, t = paper_direction(
                x, h0[index], torch.zeros(x.shape[1]), layer_params(layer, k, d),
                layer.periods, reverse=d == 1,
            )  # fmt: skip
            outs.append(out)
            finals_h.append(h)
            finals_t.append(t)
        x = torch.cat(outs, dim=-1)
    return x, torch.stack(finals_h), torch.stack(finals_t)


def double_layer(**options) -> ClockworkRNN:
    """A float64 layer on the reference loop unless ``options`` say otherwise: these tests
    check it against the paper; tests/test_fused_clockwork.py checks the fused kernels
    against it."""
    torch.manual_seed(0)
    return ClockworkRNN(I, H, dtype=torch.float64, **{"backend": "reference", **options})


def scramble_masked_(layer) -> None:
    """Put random values where the mask removes W_H's entries: they must never act."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("weight_hh"):
                p.add_(torch.randn_like(p) * (p == 0))


# -- the layer equals the paper's equations --------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_layer_equals_paper_loop_with_lengths(bidirectional, bias):
    layer = double_layer(num_layers=2, bidirectional=bidirectional, bias=bias, periods=PERIODS)
    scramble_masked_(layer)
    stacked = layer.num_layers * layer.num_directions
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(stacked, B, H, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([T, 5, 2])
    out, (h_n, clock_n) = layer(x, (h0, torch.zeros(stacked, B, 1, dtype=torch.float64)),
                                lengths=lengths)  # fmt: skip
    cycle = 4  # lcm(1, 2, 4)
    for row, n in enumerate(lengths.tolist()):
        want_out, want_h, want_t = paper_layer(layer, x[:n, row : row + 1], h0[:, row : row + 1])
        torch.testing.assert_close(out[:n, row], want_out[:, 0], **F64)
        assert (out[n:, row] == 0).all()  # past the end, as torch's padded output
        torch.testing.assert_close(h_n[:, row], want_h[:, 0], **F64)
        assert (clock_n[:, row, 0] == want_t[:, 0] % cycle).all()


def test_packed_input_equals_each_sequence_alone():
    layer = double_layer(num_layers=2, bidirectional=True, num_modules=3)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, I, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([4, T, 7])
    layer.batch_first = True
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_packed, (h_n, clock_n) = layer(packed)
    out, _ = pad_packed_sequence(out_packed, batch_first=True)
    for row, n in enumerate(lengths.tolist()):
        alone, (h_alone, clock_alone) = layer(x[row : row + 1, :n])
        torch.testing.assert_close(out[row, :n], alone[0], **F64)
        torch.testing.assert_close(h_n[:, row], h_alone[:, 0], **F64)
        assert torch.equal(clock_n[:, row], clock_alone[:, 0])


# -- oracles nobody here wrote: torch.nn.RNN --------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_one_module_of_period_one_is_torch_rnn(bidirectional):
    layer = double_layer(num_layers=2, bidirectional=bidirectional, periods=(1,))
    torch_rnn = nn.RNN(I, H, num_layers=2, bidirectional=bidirectional, dtype=torch.float64)
    torch_rnn.load_state_dict(layer.state_dict())  # same names and shapes, strict
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([T, 6, 1])
    ours, (h_n, _) = layer(x, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    theirs, h_torch = torch_rnn(packed)
    theirs, _ = pad_packed_sequence(theirs, total_length=T)
    torch.testing.assert_close(ours, theirs, **F64)
    torch.testing.assert_close(h_n, h_torch, **F64)
    grads = torch.autograd.grad(random_loss([ours, h_n], 4), [x, *layer.parameters()])
    grads_torch = torch.autograd.grad(
        random_loss([theirs, h_torch], 4), [x, *torch_rnn.parameters()]
    )
    for a, b in zip(grads, grads_torch, strict=True):
        torch.testing.assert_close(a, b, **F64)


def test_all_modules_active_is_torch_rnn_with_block_triangular_w_h():
    """Resetting the clock to 0 before every step runs every module every step: a plain tanh
    RNN whose W_H is the paper's block-upper-triangular one, mask written here."""
    layer = double_layer(periods=PERIODS)
    scramble_masked_(layer)
    k = H // len(PERIODS)
    module = torch.arange(H) // k
    mask = (module[None, :] >= module[:, None]).double()  # [receiving, sending]: j >= i
    torch_rnn = nn.RNN(I, H, dtype=torch.float64)
    state = layer.state_dict()
    state["weight_hh_l0"] = state["weight_hh_l0"] * mask
    torch_rnn.load_state_dict(state)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    theirs, _ = torch_rnn(x)
    h = torch.zeros(1, B, H, dtype=torch.float64)
    for t in range(T):
        out, (h, clock) = layer(x[t : t + 1], (h, torch.zeros(1, B, 1, dtype=torch.float64)))
        torch.testing.assert_close(out[0], theirs[t], **F64)
        assert (clock == 1).all()


# -- the schedule, the mask, the clock --------------------------------------------------------


def test_a_module_of_period_four_changes_only_when_t_mod_4_is_0():
    layer = double_layer(bidirectional=True, periods=(1, 4))
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(T, 2, I, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([T, 6])
    out, _, trace = layer(x, lengths=lengths, return_trace=True)
    slow = slice(H // 2, H)  # module 2: period 4
    for row, n in enumerate(lengths.tolist()):
        for direction in (0, 1):
            hidden = out[:n, row, direction * H : (direction + 1) * H]  # (n, H)
            order = list(range(n)) if direction == 0 else list(reversed(range(n)))
            previous = torch.zeros(H, dtype=torch.float64)
            for t, position in enumerate(order):  # t: this direction's own clock
                changed = hidden[position, slow] != previous[slow]
                assert bool(changed.all()) == (t % 4 == 0), (row, direction, t)
                assert bool(changed.any()) == (t % 4 == 0), (row, direction, t)
                assert (hidden[position, : H // 2] != previous[: H // 2]).all()  # period 1
                active = trace["active"][0, direction, row, position]
                assert active.tolist() == [1.0] * (H // 2) + [float(t % 4 == 0)] * (H // 2)
                previous = hidden[position]
    assert trace.names == ("hidden", "active")
    torch.testing.assert_close(trace["hidden"][0].permute(2, 1, 0, 3).reshape(T, 2, 2 * H), out)


def test_masked_entries_of_w_h_get_zero_gradient_and_do_not_act():
    layer = double_layer(num_layers=2, bidirectional=True, periods=PERIODS)
    x = torch.randn(T, B, I, dtype=torch.float64)
    before, _ = layer(x)
    scramble_masked_(layer)
    after, state = layer(x)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    random_loss([after, state[0]], 7).backward()
    k = H // len(PERIODS)
    module = torch.arange(H) // k
    masked = module[None, :] < module[:, None]  # a faster module would feed a slower one
    for name, p in layer.named_parameters():
        if name.startswith("weight_hh"):
            assert (p.grad[masked] == 0).all(), name
            assert (p.grad[~masked] != 0).all(), name


def test_new_layer_stores_zeros_where_w_h_is_masked():
    layer = ClockworkRNN(I, 8, num_modules=4)
    cell = ClockworkCell(I, 8, num_modules=4)
    module = torch.arange(8) // 2
    masked = module[None, :] < module[:, None]
    for weight in (layer.weight_hh_l0, cell.weight_hh):
        assert (weight[masked] == 0).all()
        assert (weight[~masked] != 0).all()
    assert layer.periods == (1, 2, 4, 8) and layer.num_modules == 4


def test_chunks_with_the_state_passed_on_equal_one_run():
    """The clock in the state continues the schedule: two calls equal one."""
    layer = double_layer(num_layers=2, periods=(1, 3, 5))
    x = torch.randn(T, B, I, dtype=torch.float64)
    whole, (h, clock) = layer(x)
    first, state = layer(x[:4])
    second, (h2, clock2) = layer(x[4:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, **F64)
    torch.testing.assert_close(h2, h, **F64)
    assert (clock2 == T % 15).all() and torch.equal(clock2, clock)


def test_cell_stepped_equals_layer():
    layer = double_layer(periods=PERIODS)
    cell = ClockworkCell(I, H, periods=PERIODS, dtype=torch.float64)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h_n, clock_n) = layer(x)
    state = None
    for t in range(T):
        state, values = cell(x[t], state, return_gates=True)
        torch.testing.assert_close(state[0], out[t], **F64)
        torch.testing.assert_close(values["hidden"], out[t], **F64)
    torch.testing.assert_close(state[0], h_n[0], **F64)
    assert torch.equal(state[1], clock_n[0])


def test_recompute_gives_the_same_gradients():
    layer = double_layer(num_layers=2, bidirectional=True, periods=PERIODS)
    x = torch.randn(T, B, I, dtype=torch.float64)

    def gradients():
        out, (h_n, _) = layer(x)
        return torch.autograd.grad(random_loss([out, h_n], 8), list(layer.parameters()))

    plain = gradients()
    layer.recompute_every = 2
    for a, b in zip(gradients(), plain, strict=True):
        torch.testing.assert_close(a, b, **F64)


# -- finite differences -----------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_gradcheck_float64(bidirectional):
    layer = ClockworkRNN(2, 4, bidirectional=bidirectional, periods=(1, 2), dtype=torch.float64)
    names = [name for name, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(5, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layer.num_directions, 2, 4, generator=gen, dtype=torch.float64)
    h0.requires_grad_(True)
    clock0 = torch.tensor([0.0, 1.0], dtype=torch.float64).expand(layer.num_directions, 2)
    clock0 = clock0[..., None].contiguous()
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]

    def run(x, h0, *params):
        out, (h_n, _) = functional_call(
            layer, dict(zip(names, params, strict=True)), (x, (h0, clock0))
        )
        return out, h_n

    assert gradcheck(run, (x, h0, *params))


# -- backends ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "manual"])
def test_fast_backends_refuse(backend):
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer.*clockwork"):
        ClockworkRNN(I, H, periods=PERIODS, backend=backend)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (dict(periods=(1, 4, 2)), ValueError, r"strictly increasing.*periods\[2\] = 2"),
        (dict(periods=(1, 1)), ValueError, "strictly increasing"),
        (dict(periods=(0, 2)), ValueError, r"periods\[0\] must be a positive integer.*got 0"),
        (dict(periods=(1, 2.5)), ValueError, r"periods\[1\] must be a positive integer"),
        (dict(periods=()), ValueError, "at least one"),
        (dict(periods=4), TypeError, "sequence of positive integers"),
        (dict(num_modules=0), ValueError, "num_modules must be a positive integer, got 0"),
        (dict(num_modules=4), ValueError, r"4 modules .* must divide hidden_size=6"),
        (dict(periods=(1, 2, 4, 8, 16)), ValueError, "must divide hidden_size=6"),
        ({}, TypeError, "pass num_modules=g"),
        (dict(num_modules=2, periods=(1, 2)), TypeError, "not both"),
    ],
    ids=[
        "decreasing", "repeated", "zero", "fraction", "empty", "not-a-sequence",
        "no-modules", "modules-not-dividing", "periods-not-dividing", "neither", "both",
    ],
)  # fmt: skip
def test_bad_options_are_refused(options, error, message):
    with pytest.raises(error, match=message):
        ClockworkRNN(I, H, **options)
    with pytest.raises(error, match=message):
        ClockworkCell(I, H, **options)


@pytest.mark.parametrize("clock", [0.5, -1.0, float("nan")], ids=["fraction", "negative", "nan"])
def test_bad_clock_is_refused(clock):
    layer = ClockworkRNN(I, H, periods=PERIODS)
    h0 = torch.zeros(1, B, H)
    with pytest.raises(ValueError, match=r"hx\[1\] \(clock_0\) must hold whole numbers >= 0"):
        layer(torch.zeros(T, B, I), (h0, torch.full((1, B, 1), clock)))
    cell = ClockworkCell(I, H, periods=PERIODS)
    with pytest.raises(ValueError, match="must hold whole numbers"):
        cell(torch.zeros(B, I), (h0[0], torch.full((B, 1), clock)))


def test_missing_clock_is_refused_naming_it():
    layer = ClockworkRNN(I, H, periods=PERIODS)
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, clock_0\)"):
        layer(torch.zeros(T, B, I), torch.zeros(1, B, H))


def test_clock_dtype_that_cannot_count_the_cycle_is_refused():
    family = ClockworkFamily(4, periods=(1, 3, 7, 13))  # lcm 273 > 256
    state = (torch.zeros(2, 4, dtype=torch.bfloat16), torch.zeros(2, 1, dtype=torch.bfloat16))
    weights = {"weight_hh": torch.zeros(4, 4, dtype=torch.bfloat16)}
    with pytest.raises(ValueError, match=r"lcm\(1, 3, 7, 13\) = 273.*bfloat16.*up to 256"):
        family.step(torch.zeros(2, 4, dtype=torch.bfloat16), state, weights)
    small = ClockworkFamily(4, num_modules=4)  # lcm 8: bfloat16 counts it
    _, clock = small.step(torch.zeros(2, 4, dtype=torch.bfloat16), state, weights).state
    assert (clock == 1).all()


def test_bfloat16_autocast_counts_the_clock_exactly():
    """Under autocast the state runs in bfloat16; the clock, kept modulo lcm = 8, stays exact
    past 256 steps, where bfloat16 stops counting whole numbers."""
    layer = ClockworkRNN(I, 8, num_modules=4)
    steps = 300
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (_, clock) = layer(torch.randn(steps, 2, I))
    assert out.dtype == torch.bfloat16
    assert (clock == steps % 8).all()


def test_zoneout_on_the_clock_is_refused():
    layer = ClockworkRNN(I, H, periods=PERIODS)
    with pytest.raises(ValueError, match="zone out the clock"):
        layer.zoneout = 0.1
    layer.zoneout = (0.1, 0.0)
    assert layer.zoneout == (0.1, 0.0)


def test_the_masked_recurrent_matrix_is_formed_once_per_call_not_per_step():
    """Memory kept for the backward grows with T like the plain RNN's, not by an (H, H)
    masked copy of W_H per step (which made the Clockwork RNN keep 31x torch.nn.LSTM's
    activations at T=1000, H=256)."""
    from lstmkit.bench.memory import saved_activation_bytes
    from lstmkit.layers.named import MODERN_CELLS

    def growth(name: str) -> int:
        layer = MODERN_CELLS[name].layer(8, 64, None, batch_first=False, backend="reference")
        saved = [
            saved_activation_bytes(
                lambda x: layer(x)[0], torch.randn(steps, 2, 8, requires_grad=True),
                layer.parameters(),
            )
            for steps in (20, 80)
        ]  # fmt: skip
        return (saved[1] - saved[0]) // 60  # bytes per step

    assert growth("clockwork") < 3 * growth("rnn") < 64 * 64 * 4
