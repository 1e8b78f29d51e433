"""Parity with torch.nn.LSTM/GRU/RNN, the implementation nobody here wrote.

Over a grid of layers, bidirection, batch_first, projection, packed variable-length batches
and initial states, for both backends: outputs, final states, and the gradients of the
input, the initial state and every parameter under a random upstream gradient.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, flat_outputs, random_loss
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit

T, B, I, H, P = 5, 3, 4, 6, 3
LENGTHS = [5, 2, 4]  # unsorted on purpose: packing with enforce_sorted=False permutes

FAMILIES = {
    "lstm": (nn.LSTM, lstmkit.LSTM),
    "gru": (nn.GRU, lstmkit.GRU),
    "rnn": (nn.RNN, lstmkit.RNN),
}


def make_pair(family, dtype, backend, **options):
    theirs_cls, ours_cls = FAMILIES[family]
    theirs = theirs_cls(I, H, **options).to(dtype)
    ours = ours_cls(I, H, **options, backend=backend).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def make_inputs(family, dtype, layers, bidirectional, proj, batch_first, packed, with_state):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, I, generator=gen, dtype=dtype)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    x.requires_grad_(True)
    state = None
    if with_state:
        stacked = layers * (2 if bidirectional else 1)
        h0 = torch.randn(stacked, B, proj or H, generator=gen, dtype=dtype).requires_grad_(True)
        if family == "lstm":
            c0 = torch.randn(stacked, B, H, generator=gen, dtype=dtype).requires_grad_(True)
            state = (h0, c0)
        else:
            state = h0
    return x, state


def run(module, x, state, packed, batch_first):
    inp = x
    if packed:
        inp = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first, enforce_sorted=False)
    return module(inp, state)


def leaves(x, state):
    if state is None:
        return [x]
    return [x, *(state if isinstance(state, tuple) else (state,))]


GRID = [
    dict(layers=l, bidirectional=bi, batch_first=bf, packed=pk, with_state=st)
    for l, bi, bf, pk, st in itertools.product(
        [1, 2, 3], [False, True], [False, True], [False, True], [False, True]
    )
]


def grid_id(case):
    return "L{layers}-{d}-{bf}-{pk}-{st}".format(
        layers=case["layers"],
        d="bi" if case["bidirectional"] else "uni",
        bf="bf" if case["batch_first"] else "tm",
        pk="packed" if case["packed"] else "padded",
        st="h0" if case["with_state"] else "zero",
    )


def check_parity(family, dtype, backend, case, proj=0):
    options = dict(
        num_layers=case["layers"],
        bidirectional=case["bidirectional"],
        batch_first=case["batch_first"],
    )
    if proj:
        options["proj_size"] = proj
    ours, theirs = make_pair(family, dtype, backend, **options)
    x, state = make_inputs(
        family,
        dtype,
        case["layers"],
        case["bidirectional"],
        proj,
        case["batch_first"],
        case["packed"],
        case["with_state"],
    )
    results = []
    for module in (ours, theirs):
        out, final = run(module, x, state, case["packed"], case["batch_first"])
        tensors = flat_outputs(out, final)
        inputs = leaves(x, state) + list(module.parameters())
        grads = torch.autograd.grad(random_loss(tensors, seed=1), inputs)
        results.append((tensors, grads, [n for n, _ in module.named_parameters()]))
    (o_out, o_grad, o_names), (t_out, t_grad, t_names) = results
    assert o_names == t_names
    assert_close_all(o_out, t_out, dtype, "outputs and final states")
    assert_close_all(list(o_grad), list(t_grad), dtype, "gradients")


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_parity_float64(family, backend, case):
    check_parity(family, torch.float64, backend, case)


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_lstm_projection_parity_float64(backend, case):
    check_parity("lstm", torch.float64, backend, case, proj=P)


FLOAT32_GRID = [c for c in GRID if c["layers"] in (1, 2) and c["batch_first"] == c["packed"]]


FLOAT32_FAMILIES = [("lstm", 0), ("lstm", P), ("gru", 0), ("rnn", 0)]  # proj is LSTM-only


@pytest.mark.parametrize(
    ("family", "proj"), FLOAT32_FAMILIES, ids=["lstm", "lstm-proj", "gru", "rnn"]
)
@pytest.mark.parametrize("case", FLOAT32_GRID, ids=grid_id)
def test_parity_float32_reference(family, proj, case):
    check_parity(family, torch.float32, "reference", case, proj=proj)


def test_rnn_relu_parity():
    for backend in ("auto", "reference"):
        theirs = nn.RNN(I, H, 2, nonlinearity="relu", bidirectional=True).double()
        ours = lstmkit.RNN(I, H, 2, nonlinearity="relu", bidirectional=True, backend=backend)
        ours = ours.double()
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(T, B, I, dtype=torch.float64)
        assert_close_all(flat_outputs(*ours(x)), flat_outputs(*theirs(x)), torch.float64, "relu")


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_unbatched_input(family, backend):
    ours, theirs = make_pair(family, torch.float64, backend, num_layers=2, bidirectional=True)
    x = torch.randn(T, I, dtype=torch.float64)
    h0 = torch.randn(4, H, dtype=torch.float64)
    state = (h0, torch.randn(4, H, dtype=torch.float64)) if family == "lstm" else h0
    for hx in (None, state):
        o_out, o_state = ours(x, hx)
        t_out, t_state = theirs(x, hx)
        assert o_out.shape == t_out.shape == (T, 2 * H)
        assert_close_all(
            flat_outputs(o_out, o_state), flat_outputs(t_out, t_state), torch.float64, "unbatched"
        )


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
def test_state_dict_moves_both_ways(family):
    theirs_cls, ours_cls = FAMILIES[family]
    ours = ours_cls(I, H, 2, bidirectional=True)
    theirs = theirs_cls(I, H, 2, bidirectional=True)
    theirs.load_state_dict(ours.state_dict())  # ours -> theirs
    x = torch.randn(T, B, I)
    assert_close_all(flat_outputs(*ours(x)), flat_outputs(*theirs(x)), torch.float32, "o->t")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert a.shape == b.shape, name


def test_lengths_keyword_equals_packing():
    lstm = lstmkit.LSTM(I, H, 2, bidirectional=True, backend="reference").double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = torch.tensor(LENGTHS)
    out, (h, c) = lstm(x, lengths=lengths)
    packed_out, (hp, cp) = lstm(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(packed_out, total_length=T)
    torch.testing.assert_close(out, padded, **TOLERANCE[torch.float64])
    torch.testing.assert_close(h, hp, **TOLERANCE[torch.float64])
    torch.testing.assert_close(c, cp, **TOLERANCE[torch.float64])
    # padding holds zeros, and whatever sat in the padded steps did not leak in
    x_noisy = x.clone()
    x_noisy[3:, 1] = float("nan")
    out_noisy, (h_noisy, _) = lstm(x_noisy, lengths=lengths)
    torch.testing.assert_close(out_noisy, out)
    torch.testing.assert_close(h_noisy, h)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_cells_match_torch(cell, batched):
    classes = {
        "lstm": (nn.LSTMCell, lstmkit.LSTMCell),
        "gru": (nn.GRUCell, lstmkit.GRUCell),
        "rnn": (nn.RNNCell, lstmkit.RNNCell),
    }
    theirs_cls, ours_cls = classes[cell]
    theirs = theirs_cls(I, H).double()
    ours = ours_cls(I, H).double()
    ours.load_state_dict(theirs.state_dict())
    shape = (B,) if batched else ()
    x = torch.randn(*shape, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(*shape, H, dtype=torch.float64, requires_grad=True)
    c = torch.randn(*shape, H, dtype=torch.float64, requires_grad=True)
    state = (h, c) if cell == "lstm" else h
    for hx in (None, state):
        outs = []
        for module in (ours, theirs):
            new = module(x, hx)
            tensors = list(new) if isinstance(new, tuple) else [new]
            inputs = (
                [x, h, c]
                if hx is not None and cell == "lstm"
                else [x] + ([h] if hx is not None else [])
            )
            grads = torch.autograd.grad(random_loss(tensors, 3), inputs + list(module.parameters()))
            outs.append(tensors + list(grads))
        assert_close_all(outs[0], outs[1], torch.float64, f"{cell} cell")
