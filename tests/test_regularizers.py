"""Recurrent dropout, zoneout and weight-drop on RecurrentLayer.

Oracles: torch.nn.LSTM/GRU/RNN (and torch.nn.LSTM run one step at a time, torch.nn.RNNCell)
with the layer's weights, fed the masks the layer drew; the GRU's equations written out here
where torch's module cannot take a dropped h_{t-1} apart from the undropped one; finite
differences (gradcheck, float64); and the unregularised layer itself.

The masks are watched through ``regularize.bernoulli``, where every one of them is drawn.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close_all, random_loss
from safetensors.torch import load_file, save_file
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmkit
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.rnn import RNNFamily
from lstmkit.layers import base, regularize
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer

I, H, T, B, P = 3, 5, 6, 4, 2
F64 = torch.float64

FAMILIES = {
    "lstm": lambda: LSTMFamily(H),
    "lstm-proj": lambda: LSTMFamily(H, proj_size=P),
    "gru": lambda: GRUFamily(H),
    "rnn-tanh": lambda: RNNFamily(H),
}
# the fast backends each family runs on, besides the reference loop
FAST_BACKENDS = {
    "lstm": ["fused", "torch", "manual"],
    "lstm-proj": ["fused", "torch", "manual"],
    "gru": ["fused", "torch"],
    "rnn-tanh": ["fused", "torch"],
}
BACKEND_CASES = [(f, b) for f, fast in FAST_BACKENDS.items() for b in [*fast, "reference"]]


@pytest.fixture
def draws(monkeypatch):
    """Every mask the layer draws, in order, as (probability of True, bool mask)."""
    drawn = []
    original = regularize.bernoulli

    def watch(shape, p, like):
        mask = original(shape, p, like)
        drawn.append((p, mask))
        return mask

    monkeypatch.setattr(regularize, "bernoulli", watch)
    return drawn


def make_layer(family: str, num_layers=1, dtype=F64, seed=0, **options) -> RecurrentLayer:
    torch.manual_seed(seed)
    return RecurrentLayer(FAMILIES[family](), I, num_layers, **options).to(dtype)


def twin(layer: RecurrentLayer, **options) -> RecurrentLayer:
    """A layer of the same family and shape with the same weights."""
    other = RecurrentLayer(
        layer.family, layer.input_size, layer.num_layers, layer.bias,
        bidirectional=layer.bidirectional, dropout=layer.dropout, **options,
    ).to(layer.weight_ih_l0.dtype)  # fmt: skip
    other.load_state_dict(layer.state_dict())
    return other.train(layer.training)


def inputs(layer: RecurrentLayer, batch=B, steps=T, seed=1):
    """x (T, B, I) and a random initial state, the LSTM's as (h, c)."""
    gen = torch.Generator().manual_seed(seed)
    dtype = layer.weight_ih_l0.dtype
    x = torch.randn(steps, batch, I, generator=gen, dtype=dtype)
    stacked = layer.num_layers * layer.num_directions
    state = tuple(
        torch.randn(stacked, batch, size, generator=gen, dtype=dtype)
        for size in layer.family.state_sizes
    )
    return x, state if len(state) > 1 else state[0]


def as_tuple(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def zoneout_rates(layer: RecurrentLayer) -> tuple[float, ...]:
    rates = layer.zoneout
    return rates if isinstance(rates, tuple) else (rates,) * len(layer.family.state_sizes)


# -- oracles -----------------------------------------------------------------------------


def torch_step(layer: RecurrentLayer, layer_index: int, direction: int):
    """One step of one layer-direction: ``step(x_t, state, h_product) -> new state``, where
    ``h_product`` is h_{t-1} as it enters the recurrent product (dropped or not)."""
    w = {k: v.detach() for k, v in layer.layer_weights(layer_index, direction).items()}
    family, dtype = layer.family, w["weight_ih"].dtype
    in_size = w["weight_ih"].shape[1]
    if isinstance(family, LSTMFamily):
        lstm = torch.nn.LSTM(
            in_size, family.hidden_size, proj_size=family.proj_size, bias=layer.bias, dtype=dtype
        )
        lstm.load_state_dict({k + "_l0": v for k, v in w.items()})

        def step(x_t, state, h_product):
            _, (h, c) = lstm(x_t[None], (h_product[None], state[1][None]))
            return h[0], c[0]

    elif isinstance(family, RNNFamily):
        cell = torch.nn.RNNCell(in_size, family.hidden_size, nonlinearity=family.nonlinearity)
        cell.to(dtype).load_state_dict(w)

        def step(x_t, state, h_product):
            return (cell(x_t, h_product),)

    else:  # the GRU as torch documents it, with h_{t-1} dropped in the products only

        def step(x_t, state, h_product):
            x_r, x_z, x_n = F.linear(x_t, w["weight_ih"], w.get("bias_ih")).chunk(3, -1)
            h_r, h_z, h_n = F.linear(h_product, w["weight_hh"], w.get("bias_hh")).chunk(3, -1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            return ((1 - z) * n + z * state[0],)

    return step


def independent_loop(layer: RecurrentLayer, x, state, drawn, lengths=None):
    """Every layer and direction, step by step, with the masks the layer drew, used in the
    order regularize's docstring gives: per layer-direction the recurrent-dropout mask, then
    per step a zoneout mask per state with a nonzero rate. (output, final states)."""
    drawn = iter(drawn)
    p = layer.recurrent_dropout if layer.training else 0.0
    rates = zoneout_rates(layer)
    steps, batch = x.shape[:2]
    lengths = None if lengths is None else torch.as_tensor(lengths)
    finals, layer_input = [], x
    for index in range(layer.num_layers):
        outputs = []
        for direction in range(layer.num_directions):
            step = torch_step(layer, index, direction)
            s = tuple(t[index * layer.num_directions + direction] for t in as_tuple(state))
            scale = None
            if p > 0:
                keep_p, keep = next(drawn)
                assert keep_p == pytest.approx(1 - p)
                assert keep.shape == (batch, layer.family.state_sizes[0])  # one per sequence
                scale = keep.to(x.dtype) / (1 - p)
            out = [None] * steps
            for t in reversed(range(steps)) if direction else range(steps):
                candidate = step(layer_input[t], s, s[0] if scale is None else s[0] * scale)
                new = []
                for rate, previous, cand in zip(rates, s, candidate, strict=True):
                    if rate == 0:
                        new.append(cand)
                    elif layer.training:
                        stay_p, stay = next(drawn)
                        assert stay_p == rate
                        d = stay.to(x.dtype)  # Krueger et al.: d s_{t-1} + (1 - d) s~_t
                        new.append(d * previous + (1 - d) * cand)
                    else:
                        new.append(rate * previous + (1 - rate) * cand)
                if lengths is not None:  # past a sequence's end nothing moves
                    live = (t < lengths)[:, None]
                    new = [torch.where(live, n, o) for n, o in zip(new, s, strict=True)]
                s = tuple(new)
                out[t] = s[0] if lengths is None else torch.where(live, s[0], 0.0)
            outputs.append(torch.stack(out))
            finals.append(s)
        layer_input = torch.cat(outputs, -1)
    assert next(drawn, None) is None, "the layer drew masks the loop did not use"
    return layer_input, tuple(torch.stack(f) for f in zip(*finals, strict=True))


def torch_module(layer: RecurrentLayer, replaced: dict[str, torch.Tensor]):
    """torch.nn.LSTM/GRU/RNN with the layer's weights, some replaced."""
    family = layer.family
    options = dict(bias=layer.bias, bidirectional=layer.bidirectional)
    if isinstance(family, LSTMFamily):
        module = torch.nn.LSTM(I, H, layer.num_layers, proj_size=family.proj_size, **options)
    elif isinstance(family, GRUFamily):
        module = torch.nn.GRU(I, H, layer.num_layers, **options)
    else:
        module = torch.nn.RNN(I, H, layer.num_layers, nonlinearity=family.nonlinearity, **options)
    module.to(layer.weight_ih_l0.dtype)
    module.load_state_dict({**layer.state_dict(), **replaced})
    return module


def weight_hh_names(layer: RecurrentLayer) -> list[str]:
    """In the order the masks are drawn: layer by layer, forward direction first."""
    return [
        f"weight_hh_l{k}" + ("_reverse" if d else "")
        for k in range(layer.num_layers)
        for d in range(layer.num_directions)
    ]


# -- off at evaluation, and exactly the plain layer at rate 0 --------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_evaluation_ignores_recurrent_dropout_and_weight_drop(family):
    plain = make_layer(family, 2, bidirectional=True).eval()
    regularized = twin(plain, recurrent_dropout=0.5, weight_drop=0.5).eval()
    x, state = inputs(plain)
    for ours, theirs in zip(regularized(x, state), plain(x, state), strict=True):
        for a, b in zip(as_tuple(ours), as_tuple(theirs), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("family", ["lstm", "lstm-proj", "gru"])
def test_zoneout_at_evaluation_is_its_expectation(family, draws):
    zoneout = (0.3, 0.6) if family.startswith("lstm") else 0.3
    layer = make_layer(family, 2, bidirectional=True, zoneout=zoneout).eval()
    x, state = inputs(layer)
    with torch.no_grad():
        output, final = layer(x, state)
        expected_output, expected_final = independent_loop(layer, x, state, draws)
    assert not draws  # no noise at evaluation
    assert_close_all([output, *as_tuple(final)], [expected_output, *expected_final], F64, "eval")
    plain_output = twin(layer).eval()(x, state)[0]
    assert (output - plain_output).abs().max() > 1e-3  # the rule does change the result


@pytest.mark.parametrize(("family", "backend"), BACKEND_CASES, ids=lambda v: v)
def test_zero_rates_give_the_plain_layer_bit_for_bit_in_training(family, backend):
    plain = make_layer(family, 2, dtype=torch.float32, dropout=0.3, backend=backend).train()
    regularized = twin(plain, backend=backend, recurrent_dropout=0.0, zoneout=0.0, weight_drop=0)
    x, state = inputs(plain)
    results = []
    for layer in (plain, regularized):
        torch.manual_seed(7)  # the same between-layer dropout masks
        output, final = layer(x, state)
        grads = torch.autograd.grad(
            random_loss([output, *as_tuple(final)], seed=3), list(layer.parameters())
        )
        results.append([output, *as_tuple(final), *grads])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


# -- recurrent dropout ----------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_recurrent_dropout_matches_a_loop_with_one_mask_per_sequence(family, draws):
    layer = make_layer(family, 2, bidirectional=True, recurrent_dropout=0.4).train()
    x, state = inputs(layer)
    lengths = [6, 2, 5, 3]
    with torch.no_grad():
        output, final = layer(x, state, lengths=lengths)
        assert len(draws) == 4  # one mask per layer and direction, not one per step
        expected_output, expected_final = independent_loop(layer, x, state, draws, lengths)
    what = f"recurrent dropout, {family}"
    assert_close_all([output, *as_tuple(final)], [expected_output, *expected_final], F64, what)


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_recurrent_dropout_masks_differ_between_sequences_and_calls(family):
    layer = make_layer(family, recurrent_dropout=0.5).train()
    x, _ = inputs(layer, batch=1)
    x = x.expand(T, 8, I)  # eight copies of one sequence
    first = layer(x)[0]
    assert (first[:, 1:] - first[:, :1]).abs().amax() > 1e-3  # copies got different masks
    second = layer(x)[0]
    assert (second - first).abs().max() > 1e-3  # a fresh mask on the next call
    evaluated = layer.eval()(x)[0]  # no masks: the copies agree (to the BLAS's rounding)
    torch.testing.assert_close(evaluated[:, 1:], evaluated[:, :1].expand_as(evaluated[:, 1:]))


def test_recurrent_dropout_drops_a_fraction_p_of_the_units(draws):
    p, batch, hidden = 0.3, 80, 50
    layer = RecurrentLayer(LSTMFamily(hidden), I, recurrent_dropout=p).train()
    layer(torch.randn(2, batch, I))
    ((_, keep),) = draws
    dropped = 1 - keep.double().mean().item()
    sigma = (p * (1 - p) / keep.numel()) ** 0.5
    assert keep.shape == (batch, hidden)
    assert abs(dropped - p) < 5 * sigma, f"dropped {dropped:.3f} of the units, expected {p}"


def test_the_gru_interpolation_keeps_the_undropped_state():
    """GRU with an update gate pinned at 1 (h_t = h_{t-1}): the dropped h_{t-1} must not leak
    into the state itself, so the state stays exactly h_0 under any mask."""
    layer = make_layer("gru", recurrent_dropout=0.5).train()
    with torch.no_grad():
        layer.bias_ih_l0[H : 2 * H] = 1e4  # z = sigmoid(huge) = 1
    x, h0 = inputs(layer)
    output, final = layer(x, h0)
    assert torch.equal(final, h0)
    assert torch.equal(output, h0.expand_as(output))


# -- zoneout -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "zoneout"),
    [("lstm", (0.3, 0.6)), ("lstm-proj", 0.4), ("gru", 0.3), ("rnn-tanh", 0.5)],
    ids=["lstm", "lstm-proj", "gru", "rnn-tanh"],
)
def test_zoneout_in_training_matches_an_independent_loop(family, zoneout, draws):
    layer = make_layer(family, 2, bidirectional=True, zoneout=zoneout).train()
    x, state = inputs(layer)
    lengths = [6, 2, 5, 3]
    with torch.no_grad():
        output, final = layer(x, state, lengths=lengths)
        per_step = len(layer.family.state_sizes)
        assert len(draws) == 4 * T * per_step  # fresh masks every step, each state its own
        expected_output, expected_final = independent_loop(layer, x, state, draws, lengths)
    what = f"zoneout, {family}"
    assert_close_all([output, *as_tuple(final)], [expected_output, *expected_final], F64, what)


def test_zoneout_rates_of_h_and_c_are_their_own(draws):
    hidden, batch = 40, 50
    layer = RecurrentLayer(LSTMFamily(hidden), I, zoneout=(0.2, 0.7)).train()
    layer(torch.randn(T, batch, I))
    h_masks, c_masks = draws[0::2], draws[1::2]
    for rate, masks in ((0.2, h_masks), (0.7, c_masks)):
        stayed = torch.stack([m for _, m in masks]).double()
        sigma = (rate * (1 - rate) / stayed.numel()) ** 0.5
        assert all(p == rate for p, _ in masks)
        assert abs(stayed.mean().item() - rate) < 5 * sigma


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_zoneout_of_one_state_freezes_it_alone(training):
    layer = make_layer("lstm", zoneout=(0.0, 1.0)).train(training)
    x, (h0, c0) = inputs(layer)
    output, (h, c) = layer(x, (h0, c0))
    assert torch.equal(c, c0) and (h - h0).abs().max() > 1e-3
    layer.zoneout = (1.0, 0.0)
    output, (h, c) = layer(x, (h0, c0))
    assert torch.equal(output, h0.expand_as(output)) and torch.equal(h, h0)
    assert (c - c0).abs().max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_zoneout_of_one_freezes_the_state(family, training):
    layer = make_layer(family, 2, bidirectional=True, zoneout=1.0).train(training)
    x, state = inputs(layer)
    output, final = layer(x, state)
    for a, b in zip(as_tuple(final), as_tuple(state), strict=True):
        assert torch.equal(a, b)
    last = as_tuple(state)[0][-2:]  # the top layer's two directions
    assert torch.equal(output, torch.cat(list(last), -1).expand_as(output))


def test_a_traced_call_reports_the_zoned_state():
    layer = make_layer("lstm", zoneout=(0.3, 0.5)).train()
    x, state = inputs(layer)
    output, (_, c), trace = layer(x, state, return_trace=True)
    torch.testing.assert_close(trace["hidden"][0, 0].transpose(0, 1), output, rtol=0, atol=0)
    torch.testing.assert_close(trace["cell"][0, 0, :, -1], c[0], rtol=0, atol=0)


# -- weight-drop ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_drop_is_one_mask_per_call_on_each_recurrent_matrix(family, draws):
    p = 0.4
    layer = make_layer(family, 2, bidirectional=True, weight_drop=p).train()
    x, state = inputs(layer)
    with torch.no_grad():
        output, final = layer(x, state)
        names = weight_hh_names(layer)
        assert len(draws) == len(names)  # per matrix, not per step
        for name, (_, keep) in zip(names, draws, strict=True):
            assert keep.shape == getattr(layer, name).shape
        dropped = {
            name: getattr(layer, name) * keep.to(F64) / (1 - p)
            for name, (keep_p, keep) in zip(names, draws, strict=True)
            if keep_p == pytest.approx(1 - p)
        }
        assert len(dropped) == len(names)
        expected_output, expected_final = torch_module(layer, dropped)(x, state)
        assert_close_all(
            [output, *as_tuple(final)], [expected_output, *as_tuple(expected_final)], F64, family
        )
        second = layer(x, state)[0]
    assert (second - output).abs().max() > 1e-3  # the next call draws a new mask
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(draws[:4], draws[4:], strict=True))


def test_weight_drop_leaves_the_parameters_as_they_are():
    layer = make_layer("lstm", 2, weight_drop=0.5).train()
    reference = torch.nn.LSTM(I, H, 2).double()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x, state = inputs(layer)
    output, final = layer(x, state)
    random_loss([output, *final], seed=0).backward()
    assert list(layer.state_dict()) == list(reference.state_dict())  # torch's names
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in reference.named_parameters()]
    for name, value in layer.state_dict().items():
        assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_drop_gives_the_same_result_on_every_backend(family, draws):
    p, results = 0.4, {}
    reference = make_layer(family, 2, bidirectional=True, weight_drop=p, backend="reference")
    x, state = inputs(reference)
    for backend in [*FAST_BACKENDS[family], "reference"]:
        layer = twin(reference, backend=backend, weight_drop=p).train()
        draws.clear()
        torch.manual_seed(11)  # the same masks for every backend
        output, final = layer(x, state)
        params = dict(layer.named_parameters())
        grads = torch.autograd.grad(
            random_loss([output, *as_tuple(final)], seed=5), list(params.values())
        )
        grads = dict(zip(params, grads, strict=True))
        for name, (_, keep) in zip(weight_hh_names(layer), draws, strict=True):
            assert torch.equal(grads[name][~keep], torch.zeros_like(grads[name][~keep]))
        results[backend] = [output, *as_tuple(final), *grads.values()]
    for backend in FAST_BACKENDS[family]:
        assert_close_all(results[backend], results["reference"], F64, f"{family}: {backend}")


def seeded_training_output(layer, x, state, seed=21):
    torch.manual_seed(seed)
    return layer.train()(x, state)[0]


def test_weight_drop_survives_saving_copying_and_moving(tmp_path):
    layer = make_layer("lstm", 2, dtype=torch.float32, weight_drop=0.5, backend="fused")
    x, state = inputs(layer)
    expected = seeded_training_output(layer, x, state)
    assert (expected - layer.eval()(x, state)[0]).abs().max() > 1e-3  # the mask acts

    save_file(layer.state_dict(), tmp_path / "layer.safetensors")
    loaded = make_layer("lstm", 2, dtype=torch.float32, seed=99, weight_drop=0.5, backend="fused")
    loaded.load_state_dict(load_file(tmp_path / "layer.safetensors"))
    assert torch.equal(seeded_training_output(loaded, x, state), expected)

    assert torch.equal(seeded_training_output(copy.deepcopy(layer), x, state), expected)

    doubled = copy.deepcopy(layer).to(F64)
    output = seeded_training_output(doubled, x.double(), tuple(s.double() for s in state))
    assert output.dtype == F64
    torch.testing.assert_close(output.float(), expected, rtol=1e-5, atol=1e-5)


# -- gradients -----------------------------------------------------------------------------


GRADIENT_CASES = {
    "lstm": dict(recurrent_dropout=0.4, zoneout=(0.3, 0.5), weight_drop=0.4),
    "lstm-proj": dict(recurrent_dropout=0.4, zoneout=0.3, weight_drop=0.4),
    "gru": dict(recurrent_dropout=0.4, zoneout=0.3, weight_drop=0.4),
    "rnn-tanh": dict(recurrent_dropout=0.4, zoneout=0.3, weight_drop=0.4),
}


@pytest.mark.parametrize("family", GRADIENT_CASES)
def test_gradients_match_finite_differences(family):
    torch.manual_seed(0)
    small = {
        "lstm": LSTMFamily(2),
        "lstm-proj": LSTMFamily(3, proj_size=1),
        "gru": GRUFamily(2),
        "rnn-tanh": RNNFamily(2),
    }
    cell = small[family]
    options = GRADIENT_CASES[family]
    layer = RecurrentLayer(cell, I, bidirectional=True, **options).double().train()
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x, state = inputs(layer, batch=2, steps=3)
    state = as_tuple(state)
    num_states = len(state)

    def run(x, *tensors):
        torch.manual_seed(5)  # the same masks on every evaluation
        hx = tensors[:num_states] if num_states > 1 else tensors[0]
        values = dict(zip(names, tensors[num_states:], strict=True))
        output, final = functional_call(layer, values, (x, hx), {"lengths": [3, 2]})
        return output, *as_tuple(final)

    tensors = [t.requires_grad_() for t in (x, *state)] + params
    assert gradcheck(run, tensors)
    with torch.no_grad():  # and the masks did act: evaluation gives another result
        noisy = run(*tensors)[0]
        evaluated = layer.eval()(x, state if num_states > 1 else state[0], lengths=[3, 2])[0]
    assert (noisy - evaluated).abs().max() > 1e-3


def test_recomputation_replays_the_same_masks():
    options = dict(recurrent_dropout=0.4, zoneout=(0.3, 0.5), weight_drop=0.4)
    layer = make_layer("lstm", 2, bidirectional=True, **options).train()
    again = twin(layer, recompute_every=2, **options).train()
    x, state = inputs(layer)
    results = []
    for each in (layer, again):
        torch.manual_seed(13)
        output, final = each(x, state, lengths=[6, 2, 5, 3])
        loss = random_loss([output, *final], seed=1)
        results.append([output, *final, *torch.autograd.grad(loss, list(each.parameters()))])
    assert_close_all(results[1], results[0], F64, "recompute_every=2 vs none")


# -- backends ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["fused", "torch", "manual"])
@pytest.mark.parametrize(
    ("option", "value"), [("recurrent_dropout", 0.2), ("zoneout", 0.1), ("zoneout", (0.0, 0.3))]
)
def test_fast_backends_refuse_the_loop_regularizers(backend, option, value):
    with pytest.raises(ValueError, match=rf"backend='{backend}' cannot run .*{option}="):
        RecurrentLayer(LSTMFamily(H), I, backend=backend, **{option: value})
    layer = RecurrentLayer(LSTMFamily(H), I, **{option: value})
    with pytest.raises(ValueError, match=rf"{option}=.*only the reference loop"):
        layer.backend = backend
    fast = RecurrentLayer(LSTMFamily(H), I, backend=backend, weight_drop=0.3)
    with pytest.raises(ValueError, match=rf"backend='{backend}', which cannot run .*{option}="):
        setattr(fast, option, value)
    assert getattr(fast, option) in (0.0, (0.0, 0.0))  # unchanged after the refusal


@pytest.mark.parametrize(
    ("options", "training", "expected"),
    [
        (dict(recurrent_dropout=0.3), True, Backend.REFERENCE),
        (dict(recurrent_dropout=0.3), False, Backend.TORCH),  # off at evaluation
        (dict(zoneout=0.3), True, Backend.REFERENCE),
        (dict(zoneout=0.3), False, Backend.REFERENCE),  # the expectation still acts
        (dict(weight_drop=0.3), True, Backend.TORCH),
    ],
    ids=["recdrop-train", "recdrop-eval", "zoneout-train", "zoneout-eval", "weightdrop-train"],
)
def test_auto_takes_the_reference_loop_when_the_loop_is_regularized(
    options, training, expected, monkeypatch
):
    chosen = []
    choose = base.choose_backend

    def watch(*args, **kwargs):
        chosen.append(choose(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(base, "choose_backend", watch)
    layer = make_layer("lstm", dtype=torch.float32, **options).train(training)
    x, state = inputs(layer)
    torch.manual_seed(3)
    auto_output = layer(x, state)[0]
    assert chosen == [expected]
    # an explicit fast backend refuses recurrent dropout even where it would be off
    explicit = twin(layer, backend=expected.value, weight_drop=layer.weight_drop)
    if expected is Backend.REFERENCE:
        explicit.recurrent_dropout, explicit.zoneout = layer.recurrent_dropout, layer.zoneout
    torch.manual_seed(3)
    assert torch.equal(explicit(x, state)[0], auto_output)


# -- bad input and repr ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "options", "error", "message"),
    [
        (
            "lstm",
            dict(recurrent_dropout=1.0),
            ValueError,
            r"recurrent_dropout must be in \[0, 1\), got 1.0",
        ),
        (
            "lstm",
            dict(recurrent_dropout=-0.1),
            ValueError,
            r"recurrent_dropout must be in \[0, 1\)",
        ),
        ("lstm", dict(recurrent_dropout=float("nan")), ValueError, r"recurrent_dropout must be in"),
        (
            "lstm",
            dict(recurrent_dropout="0.1"),
            TypeError,
            r"recurrent_dropout must be a number, got str",
        ),
        (
            "lstm",
            dict(recurrent_dropout=True),
            TypeError,
            r"recurrent_dropout must be a number, got bool",
        ),
        ("lstm", dict(zoneout=1.5), ValueError, r"zoneout must be in \[0, 1\], got 1.5"),
        (
            "lstm",
            dict(zoneout=(0.1,)),
            ValueError,
            r"two, \(h_rate, c_rate\) for the 'lstm' cell, got 1",
        ),
        (
            "lstm",
            dict(zoneout=(0.1, 2.0)),
            ValueError,
            r"zoneout\[1\] must be in \[0, 1\], got 2.0",
        ),
        ("lstm", dict(zoneout=("a", 0.1)), TypeError, r"zoneout\[0\] must be a number, got str"),
        ("gru", dict(zoneout=(0.1, 0.2)), ValueError, r"one, for h for the 'gru' cell, got 2"),
        ("gru", dict(zoneout=None), TypeError, r"zoneout must be a number, got NoneType"),
        (
            "rnn-tanh",
            dict(weight_drop=1.0),
            ValueError,
            r"weight_drop must be in \[0, 1\), got 1.0",
        ),
        ("rnn-tanh", dict(weight_drop=None), TypeError, r"weight_drop must be a number"),
    ],
)
def test_bad_rates_are_refused_by_name(family, options, error, message):
    with pytest.raises(error, match=message):
        RecurrentLayer(FAMILIES[family](), I, **options)


def test_recurrent_dropout_refuses_a_cell_whose_use_of_h_it_does_not_know():
    class HalvedGRU(GRUFamily):
        name = "halved-gru"

    with pytest.raises(ValueError, match="recurrent_dropout is implemented for the LSTM, GRU"):
        RecurrentLayer(HalvedGRU(H), I, recurrent_dropout=0.2)
    RecurrentLayer(HalvedGRU(H), I, zoneout=0.2, weight_drop=0.2)  # these act on any cell


def test_repr_names_the_regularizers():
    layer = RecurrentLayer(LSTMFamily(H), I, recurrent_dropout=0.25, zoneout=(0.1, 0.5))
    assert "recurrent_dropout=0.25, zoneout=(0.1, 0.5)" in repr(layer)
    layer.weight_drop, layer.zoneout = 0.5, 0.2
    assert repr(layer).endswith("recurrent_dropout=0.25, zoneout=0.2, weight_drop=0.5)")
    assert "dropout" not in repr(RecurrentLayer(LSTMFamily(H), I))


@pytest.mark.parametrize("cls", [lstmkit.LSTM, lstmkit.GRU, lstmkit.RNN])
def test_the_layers_take_the_regularisers_as_keywords(cls):
    layer = cls(3, 4, recurrent_dropout=0.25, zoneout=0.1, weight_drop=0.5)
    assert (layer.recurrent_dropout, layer.zoneout, layer.weight_drop) == (0.25, 0.1, 0.5)
    assert "zoneout=0.1" in repr(layer)


def test_the_other_cells_take_zoneout_and_weight_drop_where_they_mean_something():
    from lstmkit.layers.clockwork import ClockworkRNN
    from lstmkit.layers.mgu import MGU
    from lstmkit.layers.slstm import SLSTM

    mgu = MGU(3, 4, zoneout=0.1, weight_drop=0.5)
    assert (mgu.zoneout, mgu.weight_drop) == (0.1, 0.5)
    clockwork = ClockworkRNN(3, 4, num_modules=2, zoneout=(0.1, 0.0), weight_drop=0.5)
    assert (clockwork.zoneout, clockwork.weight_drop) == ((0.1, 0.0), 0.5)
    with pytest.raises(ValueError, match="zone out the clock"):
        ClockworkRNN(3, 4, num_modules=2, zoneout=0.1)
    slstm = SLSTM(3, 4, weight_drop=0.5)
    slstm.zoneout = (0.1, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="c, n and m"):
        slstm.zoneout = 0.1


@pytest.mark.parametrize("name", ["mgu", "slstm", "clockwork"])
def test_weight_drop_changes_training_and_not_evaluation_of_the_other_cells(name):
    from lstmkit.layers.named import MODERN_CELLS

    torch.manual_seed(0)
    layer = MODERN_CELLS[name].layer(I, 4, None).double()
    x = torch.randn(B, T, I, dtype=F64)
    plain = layer(x)[0]
    layer.weight_drop = 0.5
    layer.eval()
    torch.testing.assert_close(layer(x)[0], plain.detach(), rtol=0, atol=0)
    layer.train()
    assert not torch.allclose(layer(x)[0], plain)
