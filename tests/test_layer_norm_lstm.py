"""The layer-normalised LSTM: ``layer_norm="ba2016"`` (Ba et al. 2016), ``"per-gate"``
(TensorFlow's LayerNormBasicLSTMCell) and ``"cell"`` (only C_t before the output tanh).

Oracles: a time loop written below from each source's equations, its norms computed by
torch.nn.functional.layer_norm; the invariance Ba et al. prove for layer normalisation (Sec. 5.1:
rescaling a weight matrix leaves the normalised summed inputs unchanged); finite differences
(gradcheck) for each placement.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from stacked_loop import F64, LENGTHS, B, H, I, T, inputs, randomised, run_stacked
from torch.autograd import gradcheck

import lstmkit
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.layers.backends import Backend, choose_backend

EPS = 1e-5  # the epsilon lstmkit documents for its norms (torch.nn.LayerNorm's default)
PLACEMENTS = ("ba2016", "per-gate", "cell")

# id: options beside layer_norm, each combined with every placement
OTHER_OPTIONS = {
    "plain": {},
    "no-bias": dict(bias=False),
    "peephole-proj": dict(peephole=True, proj_size=2),
    "CIFG-NOAF": dict(coupled=True, output_activation=False),
}


@pytest.fixture(autouse=True)
def one_thread():
    """torch's CPU layer_norm spreads even a (2, 12) tensor over its threads; on a loaded
    machine waking them costs milliseconds a call, and gradcheck makes thousands of calls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ln(a, gain, shift):
    return F.layer_norm(a, a.shape[-1:], gain, shift, eps=EPS)


def layer_norm_step(placement: str, options: dict):
    """One step of the layer-normalised LSTM, written from the sources' equations with the
    weights of each gate taken by name. ``"ba2016"``: LN(h W_h) + LN(x W_x) + b, and
    h = o * tanh(LN(C_t)) with C_t carried; ``"per-gate"``: LN of each gate's block of
    [x, h] W, then + b, and C_t = LN(f C + i g) carried; ``"cell"``: h = o * tanh(LN(C_t))."""
    coupled = options.get("coupled", False)
    blocks = (
        ["input", "candidate", "output"] if coupled else ["input", "forget", "candidate", "output"]
    )
    peephole = options.get("peephole", False)

    def step(x_t, state, w):
        h, c = state
        x_product, h_product = x_t @ w["weight_ih"].T, h @ w["weight_hh"].T  # (B, G*H)
        if placement == "ba2016":
            summed = ln(h_product, w["ln_weight_hh"], w["ln_bias_hh"]) + ln(
                x_product, w["ln_weight_ih"], w["ln_bias_ih"]
            )
        elif placement == "per-gate":
            products = (x_product + h_product).split(H, dim=-1)
            gains = w["ln_weight_gates"].split(H)
            shifts = w["ln_bias_gates"].split(H)
            summed = torch.cat(
                [ln(p, g, s) for p, g, s in zip(products, gains, shifts, strict=True)], dim=-1
            )
        else:
            summed = x_product + h_product
        if "bias_ih" in w:
            summed = summed + w["bias_ih"] + w["bias_hh"]
        pre = dict(zip(blocks, summed.split(H, dim=-1), strict=True))
        if peephole:
            pre["input"] = pre["input"] + w["weight_ci"] * c
            if "forget" in pre:
                pre["forget"] = pre["forget"] + w["weight_cf"] * c
        i = torch.sigmoid(pre["input"])
        f = 1 - i if coupled else torch.sigmoid(pre["forget"])
        c_new = f * c + i * torch.tanh(pre["candidate"])
        if placement == "per-gate":  # TensorFlow carries the normalised cell state
            c_new = ln(c_new, w["ln_weight_c"], w["ln_bias_c"])
        if peephole:
            pre["output"] = pre["output"] + w["weight_co"] * c_new
        o = torch.sigmoid(pre["output"])
        shown = c_new
        if placement in ("ba2016", "cell"):
            shown = ln(c_new, w["ln_weight_c"], w["ln_bias_c"])
        h_new = o * (torch.tanh(shown) if options.get("output_activation", True) else shown)
        if options.get("proj_size"):
            h_new = h_new @ w["weight_hr"].T
        return h_new, c_new

    return step


def random_state(layer, seed=2):
    generator = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * layer.num_directions
    return tuple(
        0.5 * torch.randn(stacked, B, size, generator=generator, dtype=torch.float64)
        for size in layer.family.state_sizes
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("other", list(OTHER_OPTIONS))
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_layer_norm_matches_the_equations(placement, other, bidirectional):
    options = OTHER_OPTIONS[other]
    layer = randomised(
        lstmkit.LSTM(I, H, 2, bidirectional=bidirectional, layer_norm=placement, **options)
    )
    x, hx = inputs(), random_state(layer)
    expected_out, expected_state = run_stacked(
        layer, x, LENGTHS, layer_norm_step(placement, options), hx
    )
    out, state = layer(x, hx, lengths=torch.tensor(LENGTHS))
    torch.testing.assert_close(out, expected_out, **F64)
    for ours, theirs in zip(state, expected_state, strict=True):
        torch.testing.assert_close(ours, theirs, **F64)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_cell_steps_like_the_layer(placement):
    layer = randomised(lstmkit.LSTM(I, H, layer_norm=placement, peephole=True))
    cell = lstmkit.LSTMCell(I, H, layer_norm=placement, peephole=True).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = inputs()
    out, (_, c_n) = layer(x)
    state = None
    for t in range(T):
        state = cell(x[t], state)
        torch.testing.assert_close(state[0], out[t], **F64)
    torch.testing.assert_close(state[1], c_n[0], **F64)


def test_gate_recurrence_with_the_cell_norm():
    """FGR and layer_norm='cell' combine: from the same state (previous gates included), one
    step has FGR's gates and C_t, and h_t = o_t * tanh(LN(C_t))."""
    with_norm = randomised(lstmkit.LSTMCell(I, H, layer_norm="cell", gate_recurrence=True))
    without = lstmkit.LSTMCell(I, H, gate_recurrence=True).double()
    without.load_state_dict(
        {k: v for k, v in with_norm.state_dict().items() if not k.startswith("ln_")}
    )
    generator = torch.Generator().manual_seed(3)
    sizes = with_norm.family.state_sizes
    state = tuple(torch.rand(B, size, generator=generator, dtype=torch.float64) for size in sizes)
    x = torch.randn(B, I, generator=generator, dtype=torch.float64)
    x_gates = x @ with_norm.weight_ih.T + with_norm.bias_ih
    ours = with_norm.family.step(x_gates, state, dict(with_norm.named_parameters()))
    plain = without.family.step(x_gates, state, dict(without.named_parameters()))
    for name in ("input", "forget", "output", "cell"):
        torch.testing.assert_close(ours.values[name], plain.values[name], **F64)
    torch.testing.assert_close(ours.state[2], plain.state[2], **F64)
    normalised = ln(plain.values["cell"], with_norm.ln_weight_c, with_norm.ln_bias_c)
    torch.testing.assert_close(
        ours.state[0], plain.values["output"] * torch.tanh(normalised), **F64
    )


# -- what Ba et al. prove, and where the biases go ---------------------------------------------


def rescale(layer, factor_ih: float, factor_hh: float) -> None:
    with torch.no_grad():
        for suffix in ("_l0", "_l0_reverse"):
            getattr(layer, "weight_ih" + suffix).mul_(factor_ih)
            getattr(layer, "weight_hh" + suffix).mul_(factor_hh)


@pytest.mark.parametrize("placement", ["ba2016", "per-gate"])
def test_rescaling_the_weight_matrices_changes_nothing(placement):
    """Ba et al. (2016, Sec. 5.1, Table 1): layer normalisation is invariant to rescaling the
    weight matrix whose summed inputs it normalises. ba2016 normalises x W_ih^T and h W_hh^T
    separately, so each matrix may take its own factor; per-gate normalises their sum, so
    both take the same one. Only up to the epsilon, which does not rescale (a few 1e-4
    here); the cell norm alone does not normalise the gates, and there the same rescaling
    moves the output by far more (0.3 to 0.6 on these sizes)."""
    factors = (3.0, 2.0) if placement == "ba2016" else (3.0, 3.0)
    layer = randomised(lstmkit.LSTM(I, H, bidirectional=True, layer_norm=placement))
    x = inputs()
    before, _ = layer(x)
    rescale(layer, *factors)
    torch.testing.assert_close(layer(x)[0], before, rtol=0, atol=2e-3)

    control = randomised(lstmkit.LSTM(I, H, bidirectional=True, layer_norm="cell"))
    before, _ = control(x)
    rescale(control, *factors)
    assert (control(x)[0] - before).abs().max() > 0.1


@pytest.mark.parametrize("placement", ["ba2016", "per-gate"])
def test_bias_comes_after_the_norms(placement):
    """Ba's b is added after the norms, and lstmkit's b is b_ih + b_hh: moving part of the bias
    from b_ih to b_hh changes nothing. (Had b_ih stayed inside the input norm, it would.)"""
    layer = randomised(lstmkit.LSTM(I, H, layer_norm=placement))
    x = inputs()
    before, _ = layer(x)
    shift = torch.linspace(-2, 2, 4 * H, dtype=torch.float64)
    with torch.no_grad():
        layer.bias_ih_l0.add_(shift)
        layer.bias_hh_l0.sub_(shift)
    torch.testing.assert_close(layer(x)[0], before, **F64)


def test_initialisation_gains_one_shifts_zero():
    torch.manual_seed(0)
    layer = lstmkit.LSTM(I, H, 2, bidirectional=True, layer_norm="ba2016", forget_bias=1.0)
    norms = {n: p for n, p in layer.named_parameters() if n.startswith("ln_")}
    assert len(norms) == 6 * 4  # six per layer and direction
    for name, p in norms.items():
        expected = torch.ones_like(p) if name.startswith("ln_weight") else torch.zeros_like(p)
        torch.testing.assert_close(p, expected, rtol=0, atol=0, msg=name)
    bound = H**-0.5
    assert 0 < layer.weight_hh_l1.abs().max() <= bound  # the rest keep torch's draw
    torch.testing.assert_close((layer.bias_ih_l0 + layer.bias_hh_l0)[H : 2 * H], torch.ones(H))
    cell = lstmkit.LSTMCell(I, H, layer_norm="per-gate")
    torch.testing.assert_close(cell.ln_weight_gates, torch.ones(4 * H), rtol=0, atol=0)
    torch.testing.assert_close(cell.ln_bias_c, torch.zeros(H), rtol=0, atol=0)
    with torch.no_grad():
        cell.ln_weight_gates.zero_()
    cell.reset_parameters()  # resetting restores the constants too
    torch.testing.assert_close(cell.ln_weight_gates, torch.ones(4 * H), rtol=0, atol=0)


def test_parameter_layouts():
    def shapes(placement, **options):
        return LSTMFamily(H, layer_norm=placement, **options).extra_parameters()

    assert shapes("ba2016") == {
        "ln_weight_hh": (4 * H,),
        "ln_bias_hh": (4 * H,),
        "ln_weight_ih": (4 * H,),
        "ln_bias_ih": (4 * H,),
        "ln_weight_c": (H,),
        "ln_bias_c": (H,),
    }
    assert shapes("per-gate", coupled=True) == {
        "ln_weight_gates": (3 * H,),
        "ln_bias_gates": (3 * H,),
        "ln_weight_c": (H,),
        "ln_bias_c": (H,),
    }
    assert shapes("cell") == {"ln_weight_c": (H,), "ln_bias_c": (H,)}
    assert LSTMFamily(H, layer_norm="ba2016").state_sizes == (H, H)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_repr_names_the_placement(placement):
    assert f"layer_norm={placement!r}" in repr(lstmkit.LSTM(I, H, layer_norm=placement))
    assert f"layer_norm={placement!r}" in repr(lstmkit.LSTMCell(I, H, layer_norm=placement))


# -- finite differences ------------------------------------------------------------------


@pytest.mark.parametrize("other", ["plain", "peephole-proj"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_gradcheck(placement, other):
    layer = randomised(
        lstmkit.LSTM(I, 3, bidirectional=True, layer_norm=placement, **OTHER_OPTIONS[other])
    )
    names = [n for n, _ in layer.named_parameters()]
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(3, 2, I, generator=generator, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, layer.family.state_sizes[0], dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, h0, c0, *params):
        out, state = torch.func.functional_call(
            layer,
            dict(zip(names, params, strict=True)),
            (x, (h0, c0)),
            {"lengths": torch.tensor([3, 2])},
        )
        return (out, *state)

    assert gradcheck(fn, (x, h0, c0, *layer.parameters()), eps=1e-6, atol=1e-6)


# -- backends and bad input ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "manual"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_fast_backends_refuse_layer_norm_by_name(placement, backend):
    with pytest.raises(ValueError, match=f"have no layer_norm='{placement}'"):
        lstmkit.LSTM(I, H, layer_norm=placement, backend=backend)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_auto_runs_layer_norm_on_the_fused_kernels_on_the_cpu(placement):
    """tests/test_fused_lstm_options.py checks those kernels against the reference loop;
    off the CPU auto takes the reference loop (the Triton kernels lack the norms)."""
    auto = randomised(lstmkit.LSTM(I, H, layer_norm=placement))
    assert choose_backend(Backend.AUTO, auto.family, tracing=False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, auto.family, False, "cuda") is Backend.REFERENCE
    reference = lstmkit.LSTM(I, H, layer_norm=placement, backend="reference").double()
    reference.load_state_dict(auto.state_dict())
    x = inputs()
    torch.testing.assert_close(auto(x)[0], reference(x)[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (
            dict(layer_norm="batch"),
            "layer_norm must be None or one of 'ba2016', 'per-gate', 'cell', got 'batch'",
        ),
        (dict(layer_norm=True), "layer_norm must be None or one of .* got True"),
        (dict(layer_norm="ba2016", gate_recurrence=True), "use layer_norm='cell' or None with it"),
        (
            dict(layer_norm="per-gate", gate_recurrence=True),
            "gate_recurrence=True with layer_norm='per-gate'",
        ),
    ],
)
def test_bad_layer_norm_options_say_why(options, needle):
    with pytest.raises(ValueError, match=needle):
        lstmkit.LSTM(I, H, **options)
    with pytest.raises(ValueError, match=needle):
        lstmkit.LSTMCell(I, H, **options)


def test_a_norm_over_one_unit_is_refused():
    with pytest.raises(ValueError, match="needs hidden_size >= 2"):
        lstmkit.LSTM(I, 1, layer_norm="cell")
