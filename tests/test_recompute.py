"""recompute_every: the same outputs, states and gradients as keeping every activation, on
every backend that runs directions, with far less kept for the backward; and its refusals."""

from __future__ import annotations

import pytest
import torch
from helpers import LAYER_CASES, TOLERANCE, assert_close_all, random_loss

import lstmkit
from lstmkit.bench.memory import retained_bytes

# (family, backend): every backend that runs directions; auto picks one for the plain LSTM
# (torch's kernel cannot recompute)
CASES = [
    *[(family, b) for family in ("lstm-peephole", "lstm-proj") for b in ("reference", "manual")],
    *[(family, "fused") for family in ("lstm-peephole", "lstm-proj", "gru", "rnn-tanh")],
    ("gru", "reference"),
    ("lstm-plain", "auto"),
]


def _run(layer, x, lengths):
    output, state = layer(x, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    values = [output, *states]
    return [*values, *torch.autograd.grad(random_loss(values, seed=5), [x, *layer.parameters()])]


@pytest.mark.parametrize(("family", "backend"), CASES, ids=["-".join(c) for c in CASES])
def test_recomputing_gives_the_same_gradients(family, backend):
    cls, options = LAYER_CASES[family]
    make = lambda every: cls(  # noqa: E731
        3, 5, 2, bidirectional=True, backend=backend, recompute_every=every, **options
    ).double()
    kept, recomputed = make(None), make(3)  # 3 does not divide T: a short last chunk
    recomputed.load_state_dict(kept.state_dict())
    x = torch.randn(8, 4, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([8, 2, 5, 7])
    ours, theirs = _run(recomputed, x, lengths), _run(kept, x, lengths)
    assert_close_all(ours, theirs, torch.float64, f"recompute_every=3, {family} on {backend}")


def test_recomputing_keeps_a_fraction_of_the_activations():
    """T = 200 in chunks of 20: the backward keeps 10 chunk-start states instead of 200
    steps' gates and states. Counted by the allocator: checkpoint holds the chunk-start
    states by reference, past the saved-tensor hook (which reads 0 bytes here)."""
    x = torch.randn(200, 8, 16, requires_grad=True)
    kept = {}
    for every in (None, 20):
        layer = lstmkit.LSTM(16, 32, peephole=True, backend="fused", recompute_every=every)
        kept[every] = retained_bytes(lambda layer=layer: layer(x)[0])
    state_bytes = 2 * 8 * 32 * 4  # one (h, c) pair of the (8, 32) float32 states
    assert 10 * state_bytes <= kept[20] < kept[None] / 10, kept


def test_traced_and_gradient_free_calls_run_without_it():
    layer = lstmkit.LSTM(3, 4, recompute_every=2)
    x = torch.randn(5, 1, 3)
    with torch.no_grad():
        plain = layer(x)[0]
    traced = layer(x, return_trace=True)
    torch.testing.assert_close(traced[0], plain, **TOLERANCE[torch.float32])
    assert traced[2]["cell"].shape[-2] == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(recompute_every=0), "recompute_every must be an integer >= 1, got 0"),
        (dict(recompute_every=2.5), "recompute_every must be an integer >= 1, got 2.5"),
        (dict(recompute_every=4, backend="torch"), "torch's kernels run the whole layer"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lstmkit.LSTM(3, 4, **kwargs)


STACKS = {
    "depth-gated": (lstmkit.DepthGatedLSTM, {}),
    "grid": (lstmkit.GridLSTM, {}),
    "grid-tied": (lstmkit.GridLSTM, dict(tied=True)),
}


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("stack", list(STACKS))
def test_the_stacks_recompute_to_the_same_gradients(stack, backend):
    """The depth-gated and Grid LSTM run their own loop: recomputation there checkpoints
    chunks of steps of the whole stack, the states carried between chunks."""
    cls, options = STACKS[stack]
    make = lambda every: cls(  # noqa: E731
        3, 5, 2, backend=backend, recompute_every=every, **options
    ).double()
    kept, recomputed = make(None), make(3)  # 3 does not divide T: a short last chunk
    recomputed.load_state_dict(kept.state_dict())
    assert "recompute_every=3" in repr(recomputed)
    x = torch.randn(8, 4, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([8, 2, 5, 7])
    ours, theirs = _run(recomputed, x, lengths), _run(kept, x, lengths)
    assert_close_all(ours, theirs, torch.float64, f"recompute_every=3, {stack} on {backend}")


@pytest.mark.parametrize("stack", list(STACKS))
def test_the_stacks_refuse_a_bad_recompute_every(stack):
    cls, options = STACKS[stack]
    with pytest.raises(ValueError, match="recompute_every must be an integer >= 1, got 0"):
        cls(3, 5, 2, recompute_every=0, **options)
