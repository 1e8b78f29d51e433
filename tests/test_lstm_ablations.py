"""Greff et al. (2015)'s LSTM ablations (NIG, NOG, NIAF, NOAF, FGR) as options of lstmkit.LSTM.

Oracles: torch.nn.LSTM with one gate saturated open (sigmoid(1000) is exactly 1.0 in float64)
for NIG and NOG; onnxruntime's LSTM with peepholes (P) for NIG and NOG with peepholes; for
NIAF, NOAF and FGR, and their combinations, a time loop written below from the paper's
equations; finite differences (gradcheck) for every option.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers import random_loss
from onnx_graphs import lstm_model
from stacked_loop import F64, LENGTHS, B, H, I, T, inputs, randomised, run_stacked
from torch import nn
from torch.autograd import gradcheck
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.layers.backends import Backend, choose_backend

TORCH_GATES = ("input", "forget", "candidate", "output")

# id: the options of one ablation or combination, each checked against the equations' loop
ABLATIONS = {
    "NIG": dict(input_gate=False),
    "NOG": dict(output_gate=False),
    "NIAF": dict(input_activation=False),
    "NOAF": dict(output_activation=False),
    "FGR": dict(gate_recurrence=True),
    "NIG-peephole": dict(input_gate=False, peephole=True),
    "NOG-NOAF": dict(output_gate=False, output_activation=False),
    "NIAF-NFG": dict(input_activation=False, forget_gate=False),
    "FGR-peephole-proj": dict(gate_recurrence=True, peephole=True, proj_size=2),
    "FGR-CIFG": dict(gate_recurrence=True, coupled=True),
    "FGR-NIG-NOG": dict(gate_recurrence=True, input_gate=False, output_gate=False),
}


# -- the equations' step, for stacked_loop.run_stacked -------------------------------------


def greff_step(options: dict):
    """One step of Greff et al.'s vanilla LSTM with ``options``' ablations, written from the
    paper's equations with each gate's weights taken by name: a removed gate is the constant
    1 (NIG, NOG; NFG's f_t = 1), CIFG's f_t = 1 - i_t, NIAF and NOAF drop a tanh, and FGR adds
    sum_b R_ab gate_b(t-1) to each gate a."""
    coupled = options.get("coupled", False)
    has = {
        "input": options.get("input_gate", True),
        "forget": options.get("forget_gate", True) and not coupled,
        "candidate": True,
        "output": options.get("output_gate", True),
    }
    blocks = [gate for gate in TORCH_GATES if has[gate]]
    gated = [gate for gate in blocks if gate != "candidate"]
    peephole = options.get("peephole", False)

    def step(x_t, state, w):
        h, c = state[0], state[1]
        w_ih = dict(zip(blocks, w["weight_ih"].split(H), strict=True))
        w_hh = dict(zip(blocks, w["weight_hh"].split(H), strict=True))
        b = dict(zip(blocks, (w["bias_ih"] + w["bias_hh"]).split(H), strict=True))
        pre = {gate: x_t @ w_ih[gate].T + h @ w_hh[gate].T + b[gate] for gate in blocks}
        if options.get("gate_recurrence"):
            previous = dict(zip(gated, state[2].split(H, dim=-1), strict=True))
            rows = dict(zip(gated, w["weight_gg"].split(H, dim=0), strict=True))
            for a in gated:
                columns = dict(zip(gated, rows[a].split(H, dim=1), strict=True))
                pre[a] = pre[a] + sum(previous[g] @ columns[g].T for g in gated)
        if peephole:
            for gate in ("input", "forget"):
                if gate in pre:
                    pre[gate] = pre[gate] + w[f"weight_c{gate[0]}"] * c
        i = torch.sigmoid(pre["input"]) if has["input"] else 1.0
        if coupled:
            f = 1 - i
        else:
            f = torch.sigmoid(pre["forget"]) if has["forget"] else 1.0
        g = pre["candidate"]
        if options.get("input_activation", True):
            g = torch.tanh(g)
        c_new = f * c + i * g
        o = 1.0
        if has["output"]:
            if peephole:
                pre["output"] = pre["output"] + w["weight_co"] * c_new
            o = torch.sigmoid(pre["output"])
        shown = torch.tanh(c_new) if options.get("output_activation", True) else c_new
        h_new = o * shown
        if options.get("proj_size"):
            h_new = h_new @ w["weight_hr"].T
        if not options.get("gate_recurrence"):
            return h_new, c_new
        values = {"input": i, "forget": f, "output": o}
        return h_new, c_new, torch.cat([values[gate] for gate in gated], dim=-1)

    return step


def zero_state(layer, batch):
    stacked = layer.num_layers * layer.num_directions
    return tuple(
        torch.zeros(stacked, batch, size, dtype=torch.float64) for size in layer.family.state_sizes
    )


# -- NIG and NOG against torch.nn.LSTM with the gate saturated open ------------------------


def saturated_torch_lstm(ours, removed: str) -> nn.LSTM:
    """torch.nn.LSTM with ``ours``' weights in its other blocks, and in the ``removed`` gate's
    block zero weights and a bias of 1000, so that gate is sigmoid(1000) = 1.0 exactly."""
    theirs = nn.LSTM(I, H, ours.num_layers, bidirectional=ours.bidirectional).double()
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            blocks = dict(zip(ours.family.gates, getattr(ours, name).split(H), strict=True))
            blocks[removed] = torch.full((H, *param.shape[1:]), 0.0, dtype=torch.float64)
            if name.startswith("bias_ih"):
                blocks[removed] += 1000.0
            param.copy_(torch.cat([blocks[gate] for gate in TORCH_GATES]))
    return theirs


def test_saturating_bias_gives_exactly_one():
    assert torch.sigmoid(torch.tensor(1000.0, dtype=torch.float64)).item() == 1.0


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("removed", ["input", "output"], ids=["NIG", "NOG"])
def test_removed_gate_is_torch_lstm_with_that_gate_open(removed, bidirectional):
    ours = randomised(
        lstmkit.LSTM(I, H, 2, bidirectional=bidirectional, **{removed + "_gate": False})
    )
    assert ours.weight_ih_l0.shape == (3 * H, I)
    assert removed not in ours.family.gates
    theirs = saturated_torch_lstm(ours, removed)
    x = inputs()
    generator = torch.Generator().manual_seed(2)
    stacked = 2 * ours.num_directions
    hx = tuple(torch.randn(stacked, B, H, generator=generator, dtype=torch.float64) for _ in "hc")
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
    out_theirs, (h_theirs, c_theirs) = theirs(packed, hx)
    out_theirs, _ = pad_packed_sequence(out_theirs, total_length=T)
    out, (h, c) = ours(x, hx, lengths=torch.tensor(LENGTHS))
    torch.testing.assert_close(out, out_theirs, **F64)
    torch.testing.assert_close(h, h_theirs, **F64)
    torch.testing.assert_close(c, c_theirs, **F64)


# -- NIG and NOG with peepholes against onnxruntime's LSTM ---------------------------------

ONNX_GATES = ("input", "output", "forget", "candidate")  # ONNX's W, R, B blocks: i, o, f, c
ONNX_PEEPHOLES = ("input", "output", "forget")  # ONNX's P: p_i, p_o, p_f


def onnx_weights_saturated(layer, removed: str, leave_out_p: bool = False) -> dict:
    """W, R, B, P of ``layer``'s first layer for ONNX's LSTM, the ``removed`` gate given zero
    weights, zero peephole and an input bias of 1000 (float32 sigmoid(1000) is 1.0 too)."""
    per_direction = []
    for d in range(layer.num_directions):
        w = {k: v.detach().numpy().astype(np.float32) for k, v in layer.layer_weights(0, d).items()}

        def onnx_blocks(name, fill, w=w):
            blocks = dict(
                zip(layer.family.gates, np.split(w[name], len(layer.family.gates)), strict=True)
            )
            blocks[removed] = np.full((H, *w[name].shape[1:]), fill, np.float32)
            return np.concatenate([blocks[gate] for gate in ONNX_GATES])

        mapped = {
            "W": onnx_blocks("weight_ih", 0.0),
            "R": onnx_blocks("weight_hh", 0.0),
            "B": np.concatenate([onnx_blocks("bias_ih", 1000.0), onnx_blocks("bias_hh", 0.0)]),
        }
        peepholes = {
            gate: w.get(f"weight_c{gate[0]}", np.zeros(H, np.float32)) for gate in ONNX_PEEPHOLES
        }
        if not leave_out_p:
            mapped["P"] = np.concatenate([peepholes[gate] for gate in ONNX_PEEPHOLES])
        per_direction.append(mapped)
    return {name: np.stack([m[name] for m in per_direction]) for name in per_direction[0]}


def onnx_run(layer, weights, x, hx, lengths):
    """onnxruntime's LSTM with ``weights`` on x (T, B, I): output (T, B, D*H), (h_n, c_n)."""
    model = lstm_model(
        [weights], x.shape, bidirectional=layer.bidirectional, lengths=True, initial=True
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        "X": x.numpy(),
        "sequence_lens": np.asarray(lengths, np.int32),
        "initial_h_0": hx[0].numpy(),
        "initial_c_0": hx[1].numpy(),
    }
    y, h_n, c_n = session.run(None, feeds)  # y (T, D, B, H)
    return y.transpose(0, 2, 1, 3).reshape(T, B, -1), h_n, c_n


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("removed", ["input", "output"], ids=["NIG", "NOG"])
def test_removed_gate_with_peepholes_matches_onnx(removed, bidirectional):
    options = {removed + "_gate": False, "peephole": True}
    layer = randomised(lstmkit.LSTM(I, H, bidirectional=bidirectional, **options)).float()
    assert f"weight_c{removed[0]}_l0" not in dict(layer.named_parameters())
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(T, B, I, generator=generator)
    hx = tuple(0.5 * torch.randn(layer.num_directions, B, H, generator=generator) for _ in "hc")
    with torch.no_grad():
        out, (h, c) = layer(x, hx, lengths=torch.tensor(LENGTHS))
    expected = onnx_run(layer, onnx_weights_saturated(layer, removed), x, hx, LENGTHS)
    for ours, theirs in zip((out, h, c), expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-5)
    # negative control: without the peepholes ONNX computes another cell, far from ours
    control = onnx_run(layer, onnx_weights_saturated(layer, removed, True), x, hx, LENGTHS)
    assert np.abs(out.numpy() - control[0]).max() > 1e-3


# -- every ablation against the loop of the paper's equations ------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_matches_the_equations(name, bidirectional):
    options = ABLATIONS[name]
    layer = randomised(lstmkit.LSTM(I, H, 2, bidirectional=bidirectional, **options))
    x = inputs()
    generator = torch.Generator().manual_seed(4)
    initial = tuple(
        0.5 * torch.randn(s.shape, generator=generator, dtype=torch.float64)
        for s in zero_state(layer, B)
    )
    expected_out, expected_state = run_stacked(layer, x, LENGTHS, greff_step(options), initial)
    out, state = layer(x, initial, lengths=torch.tensor(LENGTHS))  # FGR: (h_0, c_0, gates_0)
    torch.testing.assert_close(out, expected_out, **F64)
    assert len(state) == len(expected_state) == len(layer.family.state_sizes)
    for ours, theirs in zip(state, expected_state, strict=True):
        torch.testing.assert_close(ours, theirs, **F64)


@pytest.mark.parametrize("name", ["FGR", "FGR-CIFG", "FGR-NIG-NOG", "FGR-peephole-proj"])
def test_gate_recurrence_step_reads_the_previous_gates(name):
    """One step from a random state, previous gate activations included: FGR's extra term
    R gates_{t-1} is what this checks, which a zero initial state would hide."""
    options = ABLATIONS[name]
    cell = randomised(
        lstmkit.LSTMCell(I, H, **{k: v for k, v in options.items() if k != "proj_size"})
    )
    family = cell.family
    generator = torch.Generator().manual_seed(5)
    state = tuple(
        torch.rand(B, size, generator=generator, dtype=torch.float64) for size in family.state_sizes
    )
    x = torch.randn(B, I, generator=generator, dtype=torch.float64)
    weights = dict(cell.named_parameters())
    x_gates = x @ cell.weight_ih.T + cell.bias_ih
    ours = family.step(x_gates, state, weights).state
    theirs = greff_step({**options, "proj_size": 0})(x, state, weights)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, **F64)
    # the previous gates matter: zeroing them changes the step
    zeroed = (*state[:2], torch.zeros_like(state[2]))
    assert (family.step(x_gates, zeroed, weights).state[0] - ours[0]).abs().max() > 1e-3


def test_gate_recurrence_state_continues_a_sequence():
    layer = randomised(lstmkit.LSTM(I, H, gate_recurrence=True))
    x = inputs()
    whole, state_whole = layer(x)
    first, state_first = layer(x[:2])
    second, state_second = layer(x[2:], state_first)
    torch.testing.assert_close(torch.cat([first, second]), whole, **F64)
    for a, b in zip(state_second, state_whole, strict=True):
        torch.testing.assert_close(a, b, **F64)


# -- what each option changes ------------------------------------------------------------


def test_layouts_of_the_ablations():
    assert LSTMFamily(4).gates == TORCH_GATES
    assert LSTMFamily(4, input_gate=False).gates == ("forget", "candidate", "output")
    assert LSTMFamily(4, output_gate=False).gates == ("input", "forget", "candidate")
    assert LSTMFamily(4, input_activation=False).gates == TORCH_GATES
    assert LSTMFamily(4, gate_recurrence=True).state_sizes == (4, 4, 12)
    assert LSTMFamily(4, gate_recurrence=True, coupled=True).state_sizes == (4, 4, 8)
    assert LSTMFamily(4, proj_size=2, gate_recurrence=True, output_gate=False).state_sizes == (
        2,
        4,
        8,
    )
    assert LSTMFamily(4).state_sizes == (4, 4)
    extra = LSTMFamily(4, peephole=True, input_gate=False).extra_parameters()
    assert list(extra) == ["weight_cf", "weight_co"]
    assert LSTMFamily(4, gate_recurrence=True).extra_parameters() == {"weight_gg": (12, 12)}


def test_defaults_are_the_plain_cell():
    explicit = LSTMFamily(
        5, input_gate=True, output_gate=True, input_activation=True, output_activation=True,
        gate_recurrence=False, layer_norm=None,
    )  # fmt: skip
    assert explicit == LSTMFamily(5)
    assert LSTMFamily(5).variant_options() == []
    assert LSTMFamily(5).trace_names == (*TORCH_GATES, "cell", "hidden")


@pytest.mark.parametrize("name", ["NIG", "NOG", "NIAF", "NOAF"])
def test_trace_shows_the_ablation(name):
    layer = randomised(lstmkit.LSTM(I, H, **ABLATIONS[name]))
    _, _, trace = layer(inputs(), return_trace=True)
    assert tuple(trace) == layer.family.trace_names
    removed = {"NIG": "input", "NOG": "output"}.get(name)
    assert removed is None or removed not in trace
    if name == "NOAF":  # h = o * C, no tanh
        torch.testing.assert_close(trace["hidden"], trace["output"] * trace["cell"], **F64)
    if name == "NOG":  # h = tanh(C)
        torch.testing.assert_close(trace["hidden"], torch.tanh(trace["cell"]), **F64)
    if name == "NIAF":  # the candidate is unbounded: with these weights it leaves [-1, 1]
        assert trace["candidate"].abs().max() > 1


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_repr_names_the_options(name):
    options = ABLATIONS[name]
    text = repr(lstmkit.LSTM(I, H, **options)) + repr(
        lstmkit.LSTMCell(I, H, **{k: v for k, v in options.items() if k != "proj_size"})
    )
    for key, value in options.items():
        if key != "proj_size":
            assert f"{key}={value!r}" in text


@pytest.mark.parametrize("name", ["NIG", "NOAF", "FGR-CIFG"])
def test_cell_steps_like_the_layer(name):
    options = ABLATIONS[name]
    layer = randomised(lstmkit.LSTM(I, H, **options))
    cell = lstmkit.LSTMCell(I, H, **options).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = inputs()
    out, final = layer(x)
    state = None
    for t in range(T):
        state = cell(x[t], state)
        torch.testing.assert_close(state[0], out[t], **F64)
    for a, b in zip(state, final, strict=True):
        torch.testing.assert_close(a, b[0], **F64)


# -- finite differences ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_gradcheck(name):
    options = ABLATIONS[name]
    layer = randomised(lstmkit.LSTM(I, 3, bidirectional=True, **options))
    names = [n for n, _ in layer.named_parameters()]
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(3, 2, I, generator=generator, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])

    def fn(x, *params):
        out, state = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x,), {"lengths": lengths}
        )
        return (out, *state)

    assert gradcheck(fn, (x, *layer.parameters()), eps=1e-6, atol=1e-6)


# -- backends and bad input ------------------------------------------------------------------

NEW_OPTIONS = {
    "input_gate": False,
    "output_gate": False,
    "input_activation": False,
    "output_activation": False,
    "gate_recurrence": True,
}


# the fused kernels run NIG, NOG, NIAF and NOAF (tests/test_fused_ablations.py); FGR runs on
# the reference loop only
REFUSED = [(option, backend) for option in NEW_OPTIONS for backend in ("torch", "manual")]


@pytest.mark.parametrize(("option", "backend"), REFUSED, ids=[f"{o}-{b}" for o, b in REFUSED])
def test_fast_backends_refuse_the_option_by_name(option, backend):
    value = NEW_OPTIONS[option]
    with pytest.raises(ValueError, match=f"have no {option}={value!r}"):
        lstmkit.LSTM(I, H, backend=backend, **{option: value})


@pytest.mark.parametrize("option", ["gate_recurrence"])
def test_auto_runs_the_option_on_the_fused_kernels_on_the_cpu(option):
    """tests/test_fused_lstm_options.py checks those kernels against the reference loop;
    off the CPU auto takes the reference loop (the Triton kernels lack the option)."""
    auto = randomised(lstmkit.LSTM(I, H, **{option: NEW_OPTIONS[option]}))
    assert choose_backend(Backend.AUTO, auto.family, tracing=False) is Backend.FUSED
    assert choose_backend(Backend.AUTO, auto.family, False, "cuda") is Backend.REFERENCE
    reference = lstmkit.LSTM(I, H, backend="reference", **{option: NEW_OPTIONS[option]}).double()
    reference.load_state_dict(auto.state_dict())
    x = inputs()
    out_auto, state_auto = auto(x)
    out_reference, state_reference = reference(x)
    torch.testing.assert_close(out_auto, out_reference, rtol=1e-10, atol=1e-10)
    for a, b in zip(state_auto, state_reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (dict(coupled=True, input_gate=False), "no input gate to couple to"),
        (dict(peephole=True, input_gate=False, forget_gate=False, output_gate=False), "has none"),
        (
            dict(gate_recurrence=True, input_gate=False, forget_gate=False, output_gate=False),
            "no gates",
        ),
        (
            dict(gate_recurrence=True, coupled=True, output_gate=False, input_gate=False),
            "no input gate",
        ),
        (dict(input_gate=False, forget_bias=1.0, forget_gate=False), "no forget gate"),
    ],
)
def test_combinations_without_a_cell_say_why(options, needle):
    with pytest.raises(ValueError, match=needle):
        lstmkit.LSTM(I, H, **options)
    with pytest.raises(ValueError, match=needle):
        lstmkit.LSTMCell(I, H, **options)


def test_gate_recurrence_state_needs_all_three_tensors():
    layer = lstmkit.LSTM(I, H, gate_recurrence=True)
    h0, c0 = torch.zeros(1, B, H), torch.zeros(1, B, H)
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0, gates_0\) of 3"):
        layer(torch.randn(T, B, I), (h0, c0))
    with pytest.raises(ValueError, match=r"hx\[2\] \(gates_0\)"):
        layer(torch.randn(T, B, I), (h0, c0, torch.zeros(1, B, H)))  # gates_0 is (1, B, 3H)


def test_recomputation_carries_the_gate_state():
    """recompute_every reruns chunks from their saved start state, which with FGR includes
    the previous gates: outputs and every gradient equal the plain run's."""
    plain = randomised(lstmkit.LSTM(I, H, bidirectional=True, gate_recurrence=True))
    chunked = lstmkit.LSTM(I, H, bidirectional=True, gate_recurrence=True, recompute_every=2)
    chunked = chunked.double()
    chunked.load_state_dict(plain.state_dict())
    x = inputs()
    results = []
    for layer in (plain, chunked):
        out, state = layer(x, lengths=torch.tensor(LENGTHS))
        loss = random_loss([out, *state], seed=7)
        results.append([out, *state, *torch.autograd.grad(loss, list(layer.parameters()))])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **F64)
