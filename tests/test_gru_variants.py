"""The GRU variants: Cho et al.'s reset placement (``reset_after=False``) beside torch's, and
the minimal gated unit (MGU, Zhou et al. 2016).

Oracles: onnxruntime's GRU operator, which has both placements (``linear_before_reset`` 1 and
0); for the MGU, the same operator running Cho et al.'s GRU with r = f and z = 1 - f, which
is the MGU exactly (see lstmkit.cellmath.mgu); finite differences (gradcheck, float64);
hand-written loops over the cell; each sequence of a batch run alone; the equations written
out here against the traces. onnxruntime's GRU is float32 only, so those comparisons are in
float32; the rest are in float64.
"""

from __future__ import annotations

import pytest
import torch
from onnx_cases import (
    ATOL,
    LENGTHS,
    assert_matches,
    lstmkit_forward,
    make_inputs,
    max_difference,
)
from onnx_cases import H as ONNX_H
from onnx_cases import I as ONNX_I
from onnx_graphs import onnx_forward, onnx_weights, padded
from torch import nn
from torch.autograd import gradcheck
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.cells.mgu import MGUCell
from lstmkit.layers.backends import Backend, choose_backend
from lstmkit.layers.mgu import MGU

F64 = dict(rtol=1e-10, atol=1e-10)
# I input, H hidden, T time, B batch: tiny, for gradcheck and the other float64 tests (the ONNX
# tests take onnx_cases' sizes, ONNX_I and ONNX_H, and its inputs)
I, H, T, B = 2, 3, 3, 2

# id: (layer class, cell class, keyword arguments of both)
VARIANTS = {
    "gru-cho": (lstmkit.GRU, lstmkit.GRUCell, {"reset_after": False}),
    "mgu": (MGU, MGUCell, {}),
}


def make_layer(cls, *, num_layers=1, bidirectional=False, bias=True, backend="reference", **kw):
    """A layer of the ONNX tests' sizes, its parameters redrawn from U(-0.8, 0.8): wider than
    the default initialisation, so that every weight moves the outputs visibly."""
    layer = cls(
        ONNX_I, ONNX_H, num_layers, bias=bias, bidirectional=bidirectional, backend=backend, **kw
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-0.8, 0.8, generator=generator)
    return layer


def run_both(layer, with_state, lengths_mode, oracle_layer=None, **onnx_options):
    """lstmkit's ``layer`` and onnxruntime running ``oracle_layer``'s weights (``layer``'s
    when None) on the same inputs: two (output, final states) pairs, as arrays."""
    x, hx = make_inputs(layer, with_state)
    lengths = None if lengths_mode == "full" else torch.tensor(LENGTHS)
    expected = onnx_forward(oracle_layer or layer, x, hx, lengths, **onnx_options)
    return lstmkit_forward(layer, x, hx, lengths_mode), expected


# -- the two reset placements against onnxruntime's GRU ----------------------------------------


@pytest.mark.parametrize("lengths_mode", ["full", "lengths", "packed"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset-after", "reset-before"])
def test_gru_matches_onnx(reset_after, bidirectional, with_state, lengths_mode):
    gru = make_layer(lstmkit.GRU, bidirectional=bidirectional, reset_after=reset_after)
    both = run_both(gru, with_state, lengths_mode, linear_before_reset=int(reset_after))
    assert_matches(*both)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset-after", "reset-before"])
def test_two_layer_gru_matches_chained_onnx(reset_after, bias):
    gru = make_layer(
        lstmkit.GRU, num_layers=2, bidirectional=True, bias=bias, reset_after=reset_after
    )
    assert_matches(*run_both(gru, True, "lengths", linear_before_reset=int(reset_after)))


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset-after", "reset-before"])
def test_the_other_placement_fails_against_onnx(reset_after):
    """Negative control: the same weights under the other ``linear_before_reset`` must
    disagree by far more than the tolerance, so the tests above tell the two apart."""
    gru = make_layer(lstmkit.GRU, bidirectional=True, reset_after=reset_after)
    actual, expected = run_both(gru, True, "lengths", linear_before_reset=int(not reset_after))
    assert max_difference(actual, expected) > 100 * ATOL


# -- the MGU against onnxruntime's GRU in Cho et al.'s form ------------------------------------


def gru_holding_mgu(mgu: MGU, update_sign: float = -1.0) -> lstmkit.GRU:
    """A GRU(reset_after=False) of ``mgu``'s shape whose blocks are r = f, z = update_sign*f
    (rows and biases), n = the MGU's candidate. With update_sign = -1, z_t = sigma(-a_f) =
    1 - f_t, and torch's h_t = (1 - z_t) n_t + z_t h_{t-1} becomes the MGU's
    h_t = f_t h~_t + (1 - f_t) h_{t-1}; r_t = f_t scales h_{t-1} before W_hn as the MGU's
    f_t does before W_hh. The GRU only carries the weights into onnx_forward."""
    gru = lstmkit.GRU(
        mgu.input_size,
        mgu.hidden_size,
        mgu.num_layers,
        bias=mgu.bias,
        bidirectional=mgu.bidirectional,
        reset_after=False,
    )
    assert [n for n, _ in gru.named_parameters()] == [n for n, _ in mgu.named_parameters()]
    with torch.no_grad():
        for name, p in mgu.named_parameters():
            forget, candidate = p.chunk(2)
            getattr(gru, name).copy_(torch.cat([forget, update_sign * forget, candidate]))
    return gru


@pytest.mark.parametrize("lengths_mode", ["full", "lengths", "packed"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_mgu_matches_onnx_cho_gru(bidirectional, with_state, lengths_mode):
    mgu = make_layer(MGU, bidirectional=bidirectional)
    oracle = gru_holding_mgu(mgu)
    assert_matches(*run_both(mgu, with_state, lengths_mode, oracle, linear_before_reset=0))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_two_layer_mgu_matches_chained_onnx(bias):
    mgu = make_layer(MGU, num_layers=2, bidirectional=True, bias=bias)
    oracle = gru_holding_mgu(mgu)
    assert ("B" in onnx_weights(oracle, 0)) == bias  # no bias: ONNX reads B as zeros
    assert_matches(*run_both(mgu, True, "lengths", oracle, linear_before_reset=0))


@pytest.mark.parametrize(
    ("update_sign", "linear_before_reset"),
    [(+1.0, 0), (-1.0, 1)],
    ids=["update-gate-f-not-1-minus-f", "reset-after-the-product"],
)
def test_mgu_negative_controls(update_sign, linear_before_reset):
    """The mapping above is the only one that passes: z = f (instead of 1 - f), or the reset
    applied after the product, must disagree by far more than the tolerance."""
    mgu = make_layer(MGU, bidirectional=True)
    oracle = gru_holding_mgu(mgu, update_sign)
    actual, expected = run_both(
        mgu, True, "lengths", oracle, linear_before_reset=linear_before_reset
    )
    assert max_difference(actual, expected) > 100 * ATOL


# -- finite differences, the cell loop, variable lengths ---------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_layer_gradcheck(name):
    layer_cls, _, options = VARIANTS[name]
    layer = layer_cls(I, H, 2, bidirectional=True, backend="reference", **options).double()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, B, H, dtype=torch.float64, requires_grad=True)

    def fn(x, h0, *params):
        overrides = dict(zip(names, params, strict=True))
        return torch.func.functional_call(layer, overrides, (x, h0))

    assert gradcheck(fn, (x, h0, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("name", VARIANTS)
def test_cell_gradcheck(name, bias):
    _, cell_cls, options = VARIANTS[name]
    cell = cell_cls(I, H, bias, **options).double()
    names = [n for n, _ in cell.named_parameters()]
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)

    def fn(x, h, *params):
        return torch.func.functional_call(cell, dict(zip(names, params, strict=True)), (x, h))

    assert gradcheck(fn, (x, h, *cell.parameters()), eps=1e-6, atol=1e-6)


def cell_with(layer, cell_cls, options, suffix: str):
    """A cell holding the layer's parameters that end in ``suffix`` ("_l0", "_l0_reverse")."""
    cell = cell_cls(layer.input_size, layer.hidden_size, layer.bias, **options).double()
    state = {k.removesuffix(suffix): v for k, v in layer.state_dict().items() if k.endswith(suffix)}
    cell.load_state_dict(state)
    return cell


@pytest.mark.parametrize("name", VARIANTS)
def test_layer_equals_a_loop_over_its_cell(name):
    """Both directions: the forward one steps t = 0..T-1, the reverse one T-1..0."""
    layer_cls, cell_cls, options = VARIANTS[name]
    steps = 5
    layer = layer_cls(I, H, bidirectional=True, backend="reference", **options).double()
    x = torch.randn(steps, B, I, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    out, h_n = layer(x, h0)
    forward, backward = list(range(steps)), list(reversed(range(steps)))
    for direction, suffix, times in [(0, "_l0", forward), (1, "_l0_reverse", backward)]:
        cell = cell_with(layer, cell_cls, options, suffix)
        h = h0[direction]
        for t in times:
            h = cell(x[t], h)
            torch.testing.assert_close(out[t, :, direction * H : (direction + 1) * H], h, **F64)
        torch.testing.assert_close(h_n[direction], h, **F64)


@pytest.mark.parametrize("lengths_mode", ["lengths", "packed"])
@pytest.mark.parametrize("name", VARIANTS)
def test_each_sequence_as_if_alone(name, lengths_mode):
    """A padded batch with lengths (or packed) gives each sequence what it gives alone: the
    output up to its length, zeros after, and the final state at its own last step."""
    layer_cls, _, options = VARIANTS[name]
    layer = layer_cls(I, H, 2, bidirectional=True, backend="reference", **options).double()
    lengths = (5, 1, 3, 4)
    steps, batch = 6, len(lengths)
    x = torch.randn(steps, batch, I, dtype=torch.float64)
    h0 = torch.randn(4, batch, H, dtype=torch.float64)
    if lengths_mode == "packed":
        packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        out, h_n = layer(packed, h0)
        out = padded(out, steps)
    else:
        out, h_n = layer(x, h0, lengths=torch.tensor(lengths))
    for b, n in enumerate(lengths):
        alone_out, alone_h = layer(x[:n, b : b + 1], h0[:, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], alone_out, **F64)
        assert torch.count_nonzero(out[n:, b]) == 0
        torch.testing.assert_close(h_n[:, b : b + 1], alone_h, **F64)


# -- traces: names, and values against the equations written out here --------------------------


def previous_states(hidden: torch.Tensor, h0: torch.Tensor, reverse: bool) -> torch.Tensor:
    """h_{t-1} for every position t of one direction's trace ``hidden`` (B, T, H), in
    processing order: the reverse direction's previous state at t is its state at t + 1."""
    if reverse:
        return torch.cat([hidden[:, 1:], h0.unsqueeze(1)], dim=1)
    return torch.cat([h0.unsqueeze(1), hidden[:, :-1]], dim=1)


def cho_gru_equations(x, h_prev, w):
    """Cho et al.'s GRU (lstmkit.cellmath.gru, reset_after=False), written out: x (B, T, I),
    h_prev (B, T, H), w the base-named weights."""
    w_ir, w_iz, w_in = w["weight_ih"].chunk(3)
    w_hr, w_hz, w_hn = w["weight_hh"].chunk(3)
    b_ir, b_iz, b_in = w["bias_ih"].chunk(3)
    b_hr, b_hz, b_hn = w["bias_hh"].chunk(3)
    r = torch.sigmoid(x @ w_ir.T + b_ir + h_prev @ w_hr.T + b_hr)
    z = torch.sigmoid(x @ w_iz.T + b_iz + h_prev @ w_hz.T + b_hz)
    n = torch.tanh(x @ w_in.T + b_in + (r * h_prev) @ w_hn.T + b_hn)
    return {"reset": r, "update": z, "candidate": n, "hidden": (1 - z) * n + z * h_prev}


def mgu_equations(x, h_prev, w):
    """Zhou et al.'s MGU (lstmkit.cellmath.mgu), written out; arguments as above."""
    w_if, w_ih = w["weight_ih"].chunk(2)
    w_hf, w_hh = w["weight_hh"].chunk(2)
    b_if, b_ih = w["bias_ih"].chunk(2)
    b_hf, b_hh = w["bias_hh"].chunk(2)
    f = torch.sigmoid(x @ w_if.T + b_if + h_prev @ w_hf.T + b_hf)
    candidate = torch.tanh(x @ w_ih.T + b_ih + (f * h_prev) @ w_hh.T + b_hh)
    return {"forget": f, "candidate": candidate, "hidden": (1 - f) * h_prev + f * candidate}


TRACES = {  # id: (layer class, options, trace names, the equations)
    "gru-cho": (
        lstmkit.GRU,
        {"reset_after": False},
        ("reset", "update", "candidate", "hidden"),
        cho_gru_equations,
    ),
    "mgu": (MGU, {}, ("forget", "candidate", "hidden"), mgu_equations),
}


@pytest.mark.parametrize("name", TRACES)
def test_trace_names_and_values(name):
    layer_cls, options, names, equations = TRACES[name]
    steps = 5
    layer = layer_cls(I, H, bidirectional=True, **options).double()
    assert layer.family.trace_names == names
    x = torch.randn(steps, B, I, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    out, h_n, trace = layer(x, h0, return_trace=True)
    assert trace.names == names and trace.cell == layer.family.name
    for direction, suffix in enumerate(("_l0", "_l0_reverse")):
        hidden = trace["hidden"][0, direction]  # (B, T, H)
        torch.testing.assert_close(
            hidden, out[:, :, direction * H : (direction + 1) * H].transpose(0, 1), **F64
        )
        weights = {
            k.removesuffix(suffix): v for k, v in layer.named_parameters() if k.endswith(suffix)
        }
        h_prev = previous_states(hidden, h0[direction], reverse=direction == 1)
        expected = equations(x.transpose(0, 1), h_prev, weights)
        assert set(expected) == set(names)
        for quantity in names:
            got = trace[quantity][0, direction]
            torch.testing.assert_close(got, expected[quantity], **F64, msg=quantity)
    torch.testing.assert_close(h_n[0], trace["hidden"][0, 0, :, -1], **F64)
    torch.testing.assert_close(h_n[1], trace["hidden"][0, 1, :, 0], **F64)


def test_cell_gates_are_the_traces_names():
    for _, cell_cls, options in VARIANTS.values():
        cell = cell_cls(I, H, **options)
        _, gates = cell(torch.randn(B, I), return_gates=True)
        assert tuple(gates) == cell.family.trace_names


# -- backends ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "backend", "needle"),
    [
        ("gru-cho", "torch", "torch's fused kernels have no reset_after=False"),
        ("mgu", "torch", "torch's fused kernels do not have the mgu cell"),
        ("gru-cho", "manual", "the manual backend's loops do not have the gru cell"),
        ("mgu", "manual", "the manual backend's loops do not have the mgu cell"),
    ],
)
def test_fast_backends_refuse(name, backend, needle):
    """lstmkit's fused kernels run both (tests/test_fused_gru_mgu.py); torch's and the
    manual backend's do not."""
    layer_cls, _, options = VARIANTS[name]
    with pytest.raises(ValueError, match=f"backend='{backend}' cannot run this layer: {needle}"):
        layer_cls(I, H, backend=backend, **options)
    layer = layer_cls(I, H, **options)
    with pytest.raises(ValueError, match=needle):
        layer.backend = backend


def test_torchs_gru_still_runs_on_the_fast_backends():
    for backend in ("fused", "torch"):
        assert lstmkit.GRU(I, H, reset_after=True, backend=backend).backend is Backend(backend)


@pytest.mark.parametrize("name", VARIANTS)
def test_auto_runs_the_fused_kernels_on_the_cpu(name):
    """Outputs, final states and every gradient agree with the reference loop's: on the
    CPU auto picks lstmkit's fused kernels, elsewhere the reference (torch has neither)."""
    layer_cls, _, options = VARIANTS[name]
    auto = layer_cls(I, H, 2, bidirectional=True, **options).double()
    reference = layer_cls(I, H, 2, bidirectional=True, backend="reference", **options).double()
    reference.load_state_dict(auto.state_dict())
    assert choose_backend(Backend.AUTO, auto.family, tracing=False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, auto.family, False, "cuda") is Backend.REFERENCE
    x = torch.randn(T, B, I, dtype=torch.float64)
    results = []
    for layer in (auto, reference):
        xi = x.clone().requires_grad_(True)
        out, h_n = layer(xi, lengths=[T, 2])
        grads = torch.autograd.grad((out.sin().sum() + h_n.cos().sum()), [xi, *layer.parameters()])
        results.append([out, h_n, *grads])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize("name", VARIANTS)
def test_recompute_every_gives_the_same_gradients(name):
    """recompute_every reruns the family's steps in the backward: same outputs, same grads."""
    layer_cls, _, options = VARIANTS[name]
    recomputing = layer_cls(I, H, 2, bidirectional=True, recompute_every=2, **options).double()
    plain = layer_cls(I, H, 2, bidirectional=True, backend="reference", **options).double()
    plain.load_state_dict(recomputing.state_dict())
    x = torch.randn(7, B, I, dtype=torch.float64)
    results = []
    for layer in (recomputing, plain):
        out, h_n = layer(x)
        loss = out.sin().sum() + h_n.cos().sum()
        results.append([out, h_n, *torch.autograd.grad(loss, list(layer.parameters()))])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **F64)


# -- parameters, reprs, bad input --------------------------------------------------------------


def test_mgu_parameters_are_named_like_torchs_gru_with_two_blocks():
    mgu = MGU(I, H, 2, bidirectional=True)
    gru = nn.GRU(I, H, 2, bidirectional=True)
    assert [n for n, _ in mgu.named_parameters()] == [n for n, _ in gru.named_parameters()]
    for (name, ours), (_, torchs) in zip(
        mgu.named_parameters(), gru.named_parameters(), strict=True
    ):
        assert ours.shape[0] * 3 == torchs.shape[0] * 2, name
        assert ours.shape[1:] == torchs.shape[1:], name
        assert ours.abs().max() <= 1 / H**0.5, name  # torch's U(-1/sqrt(H), 1/sqrt(H))
    assert MGUFamily(H).gates == ("forget", "candidate")


def test_reset_placement_keeps_the_parameters():
    """Same names and shapes, so one state dict runs either placement."""
    torchs = lstmkit.GRU(I, H, 2, bidirectional=True)
    chos = lstmkit.GRU(I, H, 2, bidirectional=True, reset_after=False)
    chos.load_state_dict(torchs.state_dict())
    cell = lstmkit.GRUCell(I, H, reset_after=False)
    cell.load_state_dict(lstmkit.GRUCell(I, H).state_dict())


def test_reprs():
    assert repr(lstmkit.GRU(I, H)) == "GRU(2, 3)"
    assert repr(lstmkit.GRU(I, H, reset_after=False)) == "GRU(2, 3, reset_after=False)"
    assert repr(lstmkit.GRUCell(I, H)) == "GRUCell(2, 3, bias=True)"
    assert repr(lstmkit.GRUCell(I, H, reset_after=False)) == (
        "GRUCell(2, 3, bias=True, reset_after=False)"
    )
    assert lstmkit.GRU(I, H, reset_after=False).reset_after is False
    assert repr(MGU(I, H, 2)) == "MGU(2, 3, num_layers=2)"
    assert repr(MGUCell(I, H)) == "MGUCell(2, 3, bias=True)"


@pytest.mark.parametrize("value", [1, 0, "False", None, 1.0], ids=repr)
@pytest.mark.parametrize(
    "build", [lstmkit.GRU, lstmkit.GRUCell, GRUFamily], ids=lambda c: c.__name__
)
def test_reset_after_must_be_a_bool(build, value):
    args = (H,) if build is GRUFamily else (I, H)
    with pytest.raises(
        ValueError,
        match=rf"reset_after must be True \(torch's GRU\) or False \(Cho et al.'s\), got {value!r}",
    ):
        build(*args, reset_after=value)


def test_forget_bias_is_refused_for_the_mgu_whose_open_gate_erases():
    from lstmkit.cellmath.mgu import MGUFamily
    from lstmkit.layers.base import RecurrentLayer

    with pytest.raises(ValueError, match="would make the mgu cell forget more"):
        RecurrentLayer(MGUFamily(4), 3, forget_bias=1.0)
