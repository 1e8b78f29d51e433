"""The layer-normalised LSTM (``layer_norm`` "ba2016", "per-gate", "cell") and Greff et al.'s
full gate recurrence (``gate_recurrence``, FGR) on the fused backend's C++ CPU kernels,
against the reference loop, alone and combined with the options the fused LSTM already runs
(peepholes, CIFG, NFG, NIG, NOG, NIAF, NOAF, the projection, no biases), on outputs, final
states (FGR's previous gates included) and every gradient (input, every initial state
tensor, every parameter: the norms' gains and shifts and W_gg too) under random upstream
gradients, at batch 3 (kernels.cpp's own products, vec_mat) and 6 (ATen's GEMM);
finite differences; bfloat16 against float32; traces; recomputation; which backend runs
what (``auto`` takes the C++ kernels on the CPU). The Triton kernels (under Triton's CPU
interpreter) likewise, with the hidden units held by one program and split over two (the
norms' statistics then cross programs between the phases of a step), each norm and FGR with
the projection too (torch's products with W_hh and W_hr between launches of one step).

The reference loop is lstmkit.cellmath.lstm's step under autograd, which
tests/test_layer_norm_lstm.py checks against loops written from Ba et al.'s and TensorFlow's
equations, Ba et al.'s invariance and finite differences, and tests/test_lstm_ablations.py
against a loop of Greff et al.'s FGR equations; these tests check that the kernels'
hand-written forward and backward passes agree with it. The norms' gains start at 1 and
their shifts at 0, where a mistake in their gradients or in where they apply could hide, so
every parameter is drawn at random here.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from helpers import (
    LSTM_NORM_AND_FGR_OPTIONS,
    TOLERANCE,
    assert_close_all,
    outputs_and_grads,
    products_through_aten,
)
from torch.autograd import gradcheck
from triton_on_cpu import lay_out, triton_on_the_cpu  # noqa: F401 (a fixture)

import lstmkit
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.layers.backends import Backend, choose_backend, fused_triton
from lstmkit.layers.backends.fused_triton import lstm as triton_lstm

I, T = 4, 6
LENGTHS = [6, 2, 5, 3, 1, 4]

# hidden size, layers, lengths or full, uni- or bidirectional
SHAPES = {
    "H5-L1-full-uni": (5, 1, False, False),
    "H6-L2-lengths-bi": (6, 2, True, True),
}
# batch 3 takes kernels.cpp's own products (vec_mat); batch 6 ATen's GEMM, sent there by
# LSTMKIT_NO_VEC_MAT (vec_mat would take it too at these sizes)
BATCHES = {"B3": 3, "B6": 6}
CPU_GRID = list(itertools.product(LSTM_NORM_AND_FGR_OPTIONS, SHAPES, BATCHES))


@pytest.fixture(autouse=True)
def one_thread():
    """torch's CPU layer_norm spreads even a (3, 24) tensor over its threads; on a loaded
    machine waking them costs milliseconds a call (as in tests/test_layer_norm_lstm.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomise(layer):
    """Every parameter away from its initial value: gains about 1, the rest about 0."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            noise = torch.rand(p.shape, generator=gen, dtype=torch.float64) - 0.5
            centre = 1.0 if name.startswith("ln_weight") else 0.0
            p.copy_(centre + 1.2 * noise)
    return layer


def _pair(options: dict, hidden: int, layers: int, bidirectional: bool, dtype=torch.float32):
    """A reference layer and a fused one with the same random weights."""
    make = lambda backend: lstmkit.LSTM(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **options
    ).to(dtype)
    reference, ours = _randomise(make("reference")), make("fused")
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _inputs(layer, batch: int, dtype, seed: int = 1):
    """x and a random initial state (h0, c0, and with FGR gates0), all requiring gradients.
    FGR's gates0 is drawn in (0, 1), where sigmoid gates live."""
    gen = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    x = torch.randn(T, batch, I, generator=gen, dtype=dtype)
    state = [torch.randn(stacked, batch, n, generator=gen, dtype=dtype)
             for n in layer.family.state_sizes]  # fmt: skip
    if layer.family.gate_recurrence:
        state[2] = torch.sigmoid(state[2])
    return [t.requires_grad_(True) for t in (x, *state)]


def _run(layer, x, *state, lengths=None):
    return outputs_and_grads(layer, x, state, lengths)


def _assert_close(mine, theirs, name: str, dtype, what: str, loose: bool = False) -> None:
    """helpers.TOLERANCE, but 1e-4 for the norms in float32 (and where ``loose`` says): a
    norm divides by sigma, which scales up the rounding of both loops (each of them differs
    from a float64 run by as much as from the other, tests/ has no float32 oracle closer
    than that)."""
    normed = "layer_norm" in LSTM_NORM_AND_FGR_OPTIONS[name]
    if dtype != torch.float32 or not (normed or loose):
        assert_close_all(mine, theirs, dtype, what)
        return
    assert len(mine) == len(theirs), what
    for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        torch.testing.assert_close(
            a, b, rtol=1e-4, atol=1e-4, msg=lambda m, k=k: f"{what}[{k}]: {m}"
        )


def _compare(name: str, shape: str, dtype, batch: int) -> None:
    hidden, layers, use_lengths, bidirectional = SHAPES[shape]
    reference, ours = _pair(LSTM_NORM_AND_FGR_OPTIONS[name], hidden, layers, bidirectional, dtype)
    inputs = _inputs(reference, batch, dtype)
    lengths = torch.tensor(LENGTHS[:batch]) if use_lengths else None
    mine, theirs = _run(ours, *inputs, lengths=lengths), _run(reference, *inputs, lengths=lengths)
    _assert_close(mine, theirs, name, dtype, f"fused vs reference, {name} {shape} B{batch}")


# -- the C++ CPU kernels -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "batch"), CPU_GRID, ids=["-".join(c) for c in CPU_GRID])
def test_cpu_kernels_match_reference(name, shape, batch, monkeypatch):
    if batch == "B6":
        products_through_aten(monkeypatch)
    _compare(name, shape, torch.float64, BATCHES[batch])


@pytest.mark.parametrize("name", list(LSTM_NORM_AND_FGR_OPTIONS))
def test_cpu_kernels_match_reference_in_float32(name):
    """The same in float32, the kernels' accumulation type for bfloat16 too."""
    _compare(name, "H6-L2-lengths-bi", torch.float32, 3)


GRADCHECK = ["LN-ba2016", "LN-per-gate", "LN-cell", "FGR", "FGR-LN-cell-NFG-NOAF-peephole",
             "LN-per-gate-CIFG-peephole"]  # fmt: skip


@pytest.mark.parametrize("name", GRADCHECK)
def test_cpu_kernels_gradcheck(name):
    """Finite differences in float64 against the kernels' hand-written backward, through
    the initial state (FGR's gates0 too) and every parameter."""
    layer = _randomise(
        lstmkit.LSTM(2, 3, bidirectional=True, backend="fused", **LSTM_NORM_AND_FGR_OPTIONS[name])
    )
    layer = layer.double()
    names = [n for n, _ in layer.named_parameters()]
    x, *state = _inputs(layer, 2, torch.float64)
    x = x[:4, :, :2].detach().requires_grad_(True)

    def run(x, *tensors):
        initial, params = tensors[: len(state)], tensors[len(state) :]
        output, final = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x, tuple(initial)),
            {"lengths": [4, 3]},
        )  # fmt: skip
        return output, *final

    assert gradcheck(run, (x, *state, *layer.parameters()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["LN-ba2016-peephole-proj", "LN-per-gate", "FGR-LN-cell"])
def test_cpu_kernels_bfloat16_follow_float32(name):
    """The kernels compute in float32 (the norms' statistics too) and round on store."""
    reference, ours = _pair(LSTM_NORM_AND_FGR_OPTIONS[name], 6, 2, True)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, 3, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=3e-2, atol=3e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())


@pytest.mark.parametrize("name", ["LN-ba2016", "LN-per-gate", "FGR-LN-cell", "FGR-NIG-NOG"])
def test_cpu_traces_match_the_reference(name):
    """The same named quantities with the same values: the per-gate cell reports its
    normalised (carried) C_t, the others C_t itself."""
    reference, ours = _pair(LSTM_NORM_AND_FGR_OPTIONS[name], 5, 1, True, torch.float64)
    x = torch.randn(T, 3, I, dtype=torch.float64)
    lengths = torch.tensor(LENGTHS[:3])
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names
    for trace_name in theirs.names:
        torch.testing.assert_close(mine[trace_name], theirs[trace_name], **TOLERANCE[torch.float64])


@pytest.mark.parametrize("name", ["FGR", "LN-per-gate"])
def test_cpu_recomputation_matches_the_plain_run(name):
    """recompute_every reruns the kernels on chunks from their saved start state (FGR's
    previous gates included): outputs and every gradient equal the plain fused run's."""
    plain = _pair(LSTM_NORM_AND_FGR_OPTIONS[name], 5, 1, True, torch.float64)[1]
    chunked = lstmkit.LSTM(
        I,
        5,
        bidirectional=True,
        backend="fused",
        recompute_every=2,
        **LSTM_NORM_AND_FGR_OPTIONS[name],
    ).double()
    chunked.load_state_dict(plain.state_dict())
    inputs = _inputs(plain, 3, torch.float64)
    lengths = torch.tensor(LENGTHS[:3])
    mine, theirs = _run(chunked, *inputs, lengths=lengths), _run(plain, *inputs, lengths=lengths)
    assert_close_all(mine, theirs, torch.float64, f"recomputed vs plain, {name}")


# -- which backend runs what ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(LSTM_NORM_AND_FGR_OPTIONS))
def test_auto_runs_the_options_on_the_fused_kernels_on_the_cpu(name):
    options = {k: v for k, v in LSTM_NORM_AND_FGR_OPTIONS[name].items() if k != "bias"}
    family = LSTMFamily(4, **options)
    assert choose_backend(Backend.AUTO, family, tracing=False) is Backend.FUSED
    # off the CPU auto does not take the Triton kernels (unmeasured on a GPU), and the manual
    # backend and torch's kernels have neither option: the reference loop runs them
    assert choose_backend(Backend.AUTO, family, False, "cuda") is Backend.REFERENCE
    with pytest.raises(ValueError, match="the manual backend's loops have no"):
        lstmkit.LSTM(I, 4, backend="manual", **options)
    with pytest.raises(ValueError, match="torch's fused kernels have no"):
        lstmkit.LSTM(I, 4, backend="torch", **options)


# -- the Triton kernels, under the interpreter ---------------------------------------------
#
# Set up by tests/triton_on_cpu.py's fixture. The hidden units are held by one program (H5,
# one persistent launch: a step's phases meet at the threads' barrier) or split over two
# (H20 in blocks of 16, a launch per phase: the norms' statistics cross programs), as
# triton_on_cpu.TRITON_SHAPES does, here with one layer (the interpreter is slow, and
# stacking and bidirection are the layer's, tested on these kernels in test_fused_triton).
# Float32, the kernels' widest dtype; each norm and FGR run both shapes, alone and with the
# projection, the combinations with the other options the one program. The projected cells
# also run two bidirectional layers with the units split (the second layer reads both
# directions' projected h).

# hidden size, layers, lengths or full, direction, units per program (None: one program)
TRITON_SHAPES = {
    "H5-full-bi-one-program": (5, 1, False, True, None),
    "H20-lengths-uni-split": (20, 1, True, False, 16),
    "H20-L2-lengths-bi-split": (20, 2, True, True, 16),
}
_ALONE = ["LN-ba2016", "LN-per-gate", "LN-cell", "FGR", "FGR-LN-cell"]
_COMBINED = ["LN-per-gate-CIFG-peephole", "LN-ba2016-nobias-NIG", "LN-cell-NOAF-NIG-peephole",
             "FGR-CIFG-NIAF-nobias", "FGR-NIG-NOG", "FGR-LN-cell-NFG-NOAF-peephole"]  # fmt: skip
# one per norm placement and FGR, each with the projection
_PROJECTED = ["LN-ba2016-peephole-proj", "LN-per-gate-peephole-proj", "LN-cell-CIFG-proj",
              "FGR-peephole-proj", "FGR-LN-cell-NOG-proj"]  # fmt: skip
_ONE, _SPLIT, _STACKED = TRITON_SHAPES  # the names of the shapes
# W_hh and W_gg streamed in slices of 16 columns, as where a program's rows of them do not
# fit on chip. H20 split: two slices of h, the second partial, and four of FGR's gates
# (K*H = 60), over two programs; H40 in one program: three slices of h, eight of the gates
STREAMED_SHAPES = {
    "H20-lengths-uni-split-streamed": (20, 1, True, False, 16),
    "H40-full-bi-one-program-streamed": (40, 1, False, True, None),
}
ALL_SHAPES = {**TRITON_SHAPES, **STREAMED_SHAPES}
# streamed: each norm and FGR alone, FGR with fewer gates (W_gg's blocks at other offsets),
# and with the projection (W_gg alone streamed: torch does the product with W_hh)
_STREAMED = ["LN-ba2016", "LN-per-gate", "LN-cell", "FGR", "FGR-LN-cell", "FGR-NIG-NOG",
             "FGR-CIFG-NIAF-nobias", "FGR-peephole-proj"]  # fmt: skip
TRITON_GRID = [
    *itertools.product(_ALONE, [_ONE, _SPLIT]),
    *itertools.product(_COMBINED, [_ONE]),
    ("LN-per-gate-CIFG-peephole", _SPLIT),
    *itertools.product(_PROJECTED, [_ONE, _SPLIT]),
    ("LN-ba2016-peephole-proj", _STACKED),
    ("FGR-LN-cell-NOG-proj", _STACKED),
    *itertools.product(_STREAMED, STREAMED_SHAPES),
]


def _triton_pair(name: str, shape: str, monkeypatch, dtype=torch.float32):
    """A reference layer and a fused one for a TRITON_SHAPES or STREAMED_SHAPES shape, its
    hidden size and its lengths."""
    hidden, layers, use_lengths, bidirectional, block_h = ALL_SHAPES[shape]
    lay_out(monkeypatch, block_h, shape in STREAMED_SHAPES)
    reference, ours = _pair(LSTM_NORM_AND_FGR_OPTIONS[name], hidden, layers, bidirectional, dtype)
    return reference, ours, hidden, torch.tensor(LENGTHS[:3]) if use_lengths else None


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize(("name", "shape"), TRITON_GRID, ids=["-".join(c) for c in TRITON_GRID])
def test_triton_kernels_match_reference(name, shape, monkeypatch):
    """At H40 the reference loop's own float32 gradients differ from a float64 run's by up
    to 3.3e-5 with FGR (FGR-NIG-NOG's W_hh), so FGR there is held to the norms' 1e-4
    (_assert_close)."""
    reference, ours, hidden, lengths = _triton_pair(name, shape, monkeypatch)
    inputs = _inputs(reference, 3, torch.float32)
    mine, theirs = _run(ours, *inputs, lengths=lengths), _run(reference, *inputs, lengths=lengths)
    loose = hidden == 40 and LSTM_NORM_AND_FGR_OPTIONS[name].get("gate_recurrence", False)
    what = f"triton vs reference, {name} {shape}"
    _assert_close(mine, theirs, name, torch.float32, what, loose=loose)


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("name", ["LN-ba2016", "FGR-LN-cell", "LN-per-gate-peephole-proj",
                                  "FGR-peephole-proj"])  # fmt: skip
def test_triton_kernels_bfloat16_follow_float32(name, monkeypatch):
    """The kernels compute in float32 (the norms' statistics in fp32 scratch) and round on
    store; the units split, so the statistics cross programs. 5e-2, not the C++ kernels'
    3e-2: the interpreter truncates float32 to bfloat16 on store (twice the mean error of
    torch's round-to-nearest, measured here; a GPU's conversion rounds to nearest), and the
    norms' division by sigma scales that up."""
    reference, ours, _, _ = _triton_pair(name, _SPLIT, monkeypatch)
    ours = ours.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    x = torch.randn(T, 3, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    mine = ours(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(mine.float(), theirs, rtol=5e-2, atol=5e-2)
    mine.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in ours.parameters())
    assert x.grad is not None and x.grad.dtype == torch.bfloat16


@pytest.mark.usefixtures("triton_on_the_cpu")
@pytest.mark.parametrize("name", ["LN-per-gate", "FGR-LN-cell", "LN-ba2016-peephole-proj"])
def test_triton_traces_match_the_reference(name, monkeypatch):
    """The per-gate cell reports its normalised (carried) C_t, the others C_t itself (one
    program, with lengths: the split's values are checked above)."""
    reference, ours, _, _ = _triton_pair(name, _ONE, monkeypatch)
    x = torch.randn(T, 3, I, generator=torch.Generator().manual_seed(4))
    lengths = torch.tensor(LENGTHS[:3])
    mine = ours(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert mine.names == theirs.names
    for trace_name in theirs.names:
        torch.testing.assert_close(mine[trace_name], theirs[trace_name], rtol=1e-4, atol=1e-4)


def test_the_split_runs_a_launch_per_phase_and_one_program_one_launch(monkeypatch):
    """A norm needs every unit of a row: with the units split, each phase of a step is a
    launch of its own (forwards PRODUCT, GATES, CELL; backwards OUT, CELL, NORM), the ones
    an option does not need left out; one program runs a step's phases in one launch."""
    from lstmkit.layers.backends.fused_triton.lstm import _step_phases

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    split = fused_triton.plan(3, 20, 4, torch.float32, torch.device("cpu"))
    assert (split.grid, split.persistent) == ((1, 2), False)
    phases = dict(PRODUCT=False, GATES=True, CELL=True)  # "cell": no product norm
    assert _step_phases(split, phases) == [
        dict(PRODUCT=False, GATES=True, CELL=False),
        dict(PRODUCT=False, GATES=False, CELL=True),
    ]
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", None)
    whole = fused_triton.plan(3, 20, 4, torch.float32, torch.device("cpu"))
    assert (whole.grid, whole.persistent) == ((1, 1), True)
    assert _step_phases(whole, phases) == [dict(PRODUCT=False, GATES=True, CELL=True)]


def test_the_projected_cell_launches_each_phase_alone_when_the_units_split(monkeypatch):
    """With the projection every launch is one step between torch's products, so a plan
    that would run all steps in one persistent launch (a GPU with room for every program)
    must still give each phase of a split step a launch of its own: a launch with
    N_SPLIT = 1 has no barrier across programs between its phases. The interpreter never
    plans a persistent split, so this is where that choice is checked."""
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    split = fused_triton.plan(3, 20, 4, torch.float32, torch.device("cpu"))
    persistent_split = dataclasses.replace(split, persistent=True)
    monkeypatch.setattr(triton_lstm, "plan", lambda *args, **options: persistent_split)
    cpu = torch.device("cpu")
    projected = LSTMFamily(20, proj_size=3, layer_norm="cell")
    layout = triton_lstm._options_layout(projected, None, 3, torch.float32, cpu)
    assert (layout.plan.grid, layout.plan.persistent) == ((1, 2), False)
    plain = triton_lstm._options_layout(LSTMFamily(20, layer_norm="cell"), None, 3,
                                         torch.float32, cpu)  # fmt: skip
    assert plain.plan.persistent
