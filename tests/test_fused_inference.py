"""A call on the fused backend that builds no autograd graph (``torch.no_grad()``, or nothing
that requires a gradient) and records no trace keeps nothing for a backward, so a long one
runs in chunks of steps with the state carried between them (``fused.chunk_steps``). The
chunks must give exactly what one call gives, and hold a chunk's memory, not the sequence's.

Every registry cell that runs through the fused direction loop, and the two stacks, which
run their own loop over their layers, with sequences that end early; float64, compared bit
for bit: each step runs the same arithmetic whichever call it is in.
"""

from __future__ import annotations

import functools

import pytest
import torch
from helpers import LSTM_NORM_AND_FGR_OPTIONS
from triton_on_cpu import triton_on_the_cpu  # noqa: F401 (a fixture)

from lstmkit.bench.memory import peak_bytes
from lstmkit.layers._memory_stack import MemoryJoinedStack
from lstmkit.layers.backends import fused
from lstmkit.layers.lstm import LSTM
from lstmkit.layers.named import MODERN_CELLS

I, H, B, T = 3, 8, 3, 53
CHUNK = 16  # the smallest chunk chunk_steps gives: 53 steps are 3 chunks and 5 steps
LENGTHS = [T, 40, 7]  # ended inside the second chunk, and inside the first


def _cells(stacks: bool) -> list[str]:
    """The registry's direction-loop cells, or its memory-joined stacks."""
    names = []
    for name, cell in MODERN_CELLS.items():
        with torch.device("meta"):
            layer = cell.layer(I, H, None)
        if isinstance(layer, MemoryJoinedStack) == stacks:
            names.append(name)
    return names


@pytest.fixture
def calls(monkeypatch):
    """The step counts of the kernels' calls, with chunks of CHUNK steps."""
    monkeypatch.setattr(fused, "CHUNK_VALUES", 1)
    return _spy_on_runners(monkeypatch)


def _spy_on_runners(monkeypatch, keeps: list[bool] | None = None) -> list[int]:
    """The step counts of the kernels' calls, and in ``keeps`` whether each was asked to
    keep what a backward reads (the runners that take ``keep``)."""
    made = []
    find = fused.runner

    def spying(family, kernels):
        run = find(family, kernels)

        @functools.wraps(run)  # the signature too: the direction loop reads it for ``keep``
        def counted(family, x, *args, **options):
            made.append(x.shape[0])
            if keeps is not None:
                keeps.append(options.get("keep", True))
            return run(family, x, *args, **options)

        return counted

    monkeypatch.setattr(fused, "runner", spying)
    return made


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _assert_no_grad_call_matches(layer, x: torch.Tensor, rtol: float = 0.0) -> None:
    """The layer over x (lengths LENGTHS) building a graph, then under no_grad: the same
    output and final state, bit for bit unless rtol allows rounding."""
    whole, whole_state = layer(x, lengths=LENGTHS)  # the parameters require gradients
    with torch.no_grad():
        chunked, chunked_state = layer(x, lengths=LENGTHS)
    ours, theirs = (chunked, *_as_tuple(chunked_state)), (whole, *_as_tuple(whole_state))
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference.detach(), rtol=rtol, atol=rtol * 1e-2)


def _layer(name: str):
    torch.manual_seed(0)
    return MODERN_CELLS[name].layer(I, H, 1.0, batch_first=False, backend="fused").double()


@pytest.mark.parametrize("name", _cells(stacks=False))
def test_without_a_graph_a_long_call_runs_in_chunks_and_gives_the_same(name, calls):
    layer = _layer(name)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _assert_no_grad_call_matches(layer, x)
    assert calls == [T, CHUNK, CHUNK, CHUNK, T - 3 * CHUNK]  # with the graph, then without


@pytest.mark.parametrize("name", _cells(stacks=True))
def test_the_stacks_run_in_chunks_of_their_whole_depth_without_a_graph(name, monkeypatch):
    monkeypatch.setattr(fused, "CHUNK_VALUES", 1)
    stack = _layer(name)
    made = []
    run_stack = stack._run_stack

    def counted(x, *args):
        made.append(x.shape[0])
        return run_stack(x, *args)

    monkeypatch.setattr(stack, "_run_stack", counted)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _assert_no_grad_call_matches(stack, x)
    assert made == [T, CHUNK, CHUNK, CHUNK, T - 3 * CHUNK]
    made.clear()
    stack.backend = "reference"  # no graph under no_grad anyway: it keeps nothing to chunk
    with torch.no_grad():
        stack(x, lengths=LENGTHS)
    assert made == [T]


@pytest.mark.usefixtures("triton_on_the_cpu")
def test_the_triton_kernels_run_in_chunks_too(calls):
    """The chunk loop is the direction loop's, so the GPU's kernels chunk as well: here under
    the interpreter, float32, with lengths (the interpreter runs about 50 steps a second)."""
    torch.manual_seed(0)
    layer = LSTM(I, H, peephole=True, backend="fused")
    _assert_no_grad_call_matches(layer, torch.randn(T, B, I))
    assert calls == [T, CHUNK, CHUNK, CHUNK, T - 3 * CHUNK]


def test_nothing_requiring_a_gradient_is_as_good_as_no_grad(calls):
    layer = LSTM(I, H, peephole=True, backend="fused").double().requires_grad_(False)
    layer(torch.randn(T, B, I, dtype=torch.float64))
    assert max(calls) == CHUNK
    calls.clear()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)  # the input's gradient
    layer(x)
    assert calls == [T]


def test_a_traced_call_runs_whole(calls):
    """A trace is every step's gates: the kernels' whole record, so no chunks."""
    layer = LSTM(I, H, peephole=True, backend="fused")
    with torch.no_grad():
        layer(torch.randn(T, B, I), return_trace=True)
    assert calls == [T]


@pytest.mark.parametrize("seed", range(4))
def test_bidirectional_layers_chunk_each_direction_in_its_own_time_order(calls, seed):
    """To rounding, not bit for bit: the upper layer's input projection, x W_ih^T over the
    lower layer's 2H = 16 features, is one BLAS product per chunk, and MKL's float64 GEMM
    may sum in another order for another number of rows (in about half of the seeds tried
    some value moved by an ulp). A state carried wrongly between chunks moves values by
    far more than rtol."""
    torch.manual_seed(seed)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, peephole=True, backend="fused").double()
    _assert_no_grad_call_matches(layer, torch.randn(T, B, I, dtype=torch.float64), rtol=1e-14)


def test_chunks_hold_a_chunks_memory_not_the_sequences(monkeypatch):
    """T = 2,000 without a graph, in chunks of 32 steps: the most memory held at once, over
    the output's, is a few chunks' gates and states, where one call holds T steps' input
    side (x W_ih^T + b: 16 MB here; the kernel keeps no gates or states without a graph)."""
    layer = LSTM(16, 64, peephole=True, backend="fused")
    x = torch.randn(2_000, 8, 16)
    output_bytes = 2_000 * 8 * 64 * 4
    chunk_gates = 32 * 8 * 4 * 64 * 4  # one chunk's (steps, B, 4H) float32 values
    held = {}
    for name, values in (("chunks", 32 * 8 * 4 * 64), ("one call", 1 << 40)):
        monkeypatch.setattr(fused, "CHUNK_VALUES", values)
        with torch.no_grad():
            held[name] = peak_bytes(lambda: layer(x)[0]) - output_bytes
    assert held["chunks"] < 8 * chunk_gates < held["one call"] / 4, held


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    "options", [{}, dict(peephole=True), *LSTM_NORM_AND_FGR_OPTIONS.values()],
    ids=["plain", "peephole", *LSTM_NORM_AND_FGR_OPTIONS],
)  # fmt: skip
def test_the_lstm_kernel_keeps_nothing_without_a_graph_and_gives_the_same(
    options, dtype, monkeypatch
):
    """Without a graph the CPU LSTM kernel keeps one step of scratch and two of the carried
    states (C, FGR's gates) instead of every step's, and writes no gates back: bit for bit
    the same output and state as the call that keeps them, in one chunk, with lengths."""
    keeps = []
    made = _spy_on_runners(monkeypatch, keeps)
    torch.manual_seed(0)
    layer = LSTM(I, H, backend="fused", **options).to(dtype)
    x = torch.randn(T, B, I, dtype=dtype)
    _assert_no_grad_call_matches(layer, x)
    assert (made, keeps) == ([T, T], [True, False])
