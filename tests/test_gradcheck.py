"""torch.autograd.gradcheck (finite differences) in float64 for every cell and option."""

from __future__ import annotations

import pytest
import torch
from helpers import LSTM_OPTIONS as BASE_LSTM_OPTIONS
from torch.autograd import gradcheck

import lstmkit

I, H, T, B = 3, 4, 4, 2

LSTM_OPTIONS = BASE_LSTM_OPTIONS | {
    "forget-bias": dict(forget_bias=1.0),
    "projection": dict(proj_size=2),
    "peephole-projection": dict(peephole=True, proj_size=2),
}

LAYERS = {f"lstm-{name}": (lstmkit.LSTM, opts) for name, opts in LSTM_OPTIONS.items()}
LAYERS |= {
    "gru": (lstmkit.GRU, {}),
    "rnn-tanh": (lstmkit.RNN, {}),
    "rnn-relu": (lstmkit.RNN, dict(nonlinearity="relu")),
}


def _flatten(result):
    out = []
    for r in result if isinstance(result, tuple) else (result,):
        if isinstance(r, tuple):
            out.extend(_flatten(r))
        else:
            out.append(r)
    return tuple(out)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_gradcheck(name):
    cls, options = LAYERS[name]
    module = cls(I, H, 2, bidirectional=True, backend="reference", **options).double()
    out_size = options.get("proj_size") or H

    def make_inputs():
        x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
        h0 = torch.randn(4, B, out_size, dtype=torch.float64, requires_grad=True)
        if cls is lstmkit.LSTM:
            c0 = torch.randn(4, B, H, dtype=torch.float64, requires_grad=True)
            return [x, (h0, c0)]
        return [x, h0]

    module_inputs = make_inputs()
    x, state = module_inputs
    states = list(state) if isinstance(state, tuple) else [state]
    params = list(module.parameters())
    names = [n for n, _ in module.named_parameters()]

    def fn(x, *rest):
        state_part, param_part = rest[: len(states)], rest[len(states) :]
        hx = tuple(state_part) if len(states) > 1 else state_part[0]
        overrides = dict(zip(names, param_part, strict=True))
        out, final = torch.func.functional_call(module, overrides, (x, hx))
        return (out, *_flatten(final))

    assert gradcheck(fn, (x, *states, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["lstm-plain", "lstm-peephole", "gru", "rnn-tanh"])
def test_layer_gradcheck_with_lengths(name):
    cls, options = LAYERS[name]
    module = cls(I, H, bidirectional=True, backend="reference", **options).double()
    names = [n for n, _ in module.named_parameters()]
    lengths = torch.tensor([T, 2])
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)

    def fn(x, *params):
        out, final = torch.func.functional_call(
            module, dict(zip(names, params, strict=True)), (x,), {"lengths": lengths}
        )
        return (out, *_flatten(final))

    assert gradcheck(fn, (x, *module.parameters()), eps=1e-6, atol=1e-6)


CELLS = {f"lstmcell-{n}": (lstmkit.LSTMCell, o) for n, o in LSTM_OPTIONS.items() if "proj" not in n}
CELLS |= {"grucell": (lstmkit.GRUCell, {}), "rnncell": (lstmkit.RNNCell, {})}


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_gradcheck(name):
    cls, options = CELLS[name]
    cell = cls(I, H, **options).double()
    names = [n for n, _ in cell.named_parameters()]
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    lstm = cls is lstmkit.LSTMCell

    def fn(x, h, c, *params):
        hx = (h, c) if lstm else h
        out = torch.func.functional_call(cell, dict(zip(names, params, strict=True)), (x, hx))
        return _flatten(out)

    assert gradcheck(fn, (x, h, c, *cell.parameters()), eps=1e-6, atol=1e-6)
