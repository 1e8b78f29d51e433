"""minGRU and minLSTM (Feng et al. 2024): the parallel scan against the step loop, against a
loop written here from the paper's equations, against each sequence run alone, against
finite differences (gradcheck), over long sequences, and the cells against the layers."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers import TOLERANCE, assert_close_all, random_loss
from torch.autograd import gradcheck

from lstmkit.cellmath.minrnn import (
    MinGRUFamily,
    MinLSTMFamily,
    parallel_scan,
    parallel_scan_log,
)
from lstmkit.cells.minrnn import MinGRUCell, MinLSTMCell
from lstmkit.layers.base import RecurrentLayer
from lstmkit.layers.minrnn import MinGRU, MinLSTM

I, H, T, B = 3, 4, 6, 3
F64 = TOLERANCE[torch.float64]
# the parallel scan is the reference backend's; auto takes the fused kernels on the CPU,
# which tests/test_fused_minrnn.py checks against the step loop and the scan
LAYERS = {
    "mingru": partial(MinGRU, backend="reference"),
    "minlstm": partial(MinLSTM, backend="reference"),
}
CELLS = {"mingru": MinGRUCell, "minlstm": MinLSTMCell}
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _run_with_grads(layer, x, h0, lengths, seed):
    """Output, final state and the gradients of x, h0 and every parameter under a random
    upstream gradient."""
    x = x.detach().requires_grad_()
    leaves = [x, *layer.parameters()]
    if h0 is not None:
        h0 = h0.detach().requires_grad_()
        leaves.append(h0)
    out, h_n = layer(x, h0, lengths=lengths)
    # the upstream gradients drawn in float64 whatever the dtype: torch draws other numbers
    # for float32 from the same seed, and the long test compares float32 with float64
    grads = torch.autograd.grad(random_loss([out.double(), h_n.double()], seed), leaves)
    return [out, h_n, *grads]


# -- the parallel scan equals the step loop ------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("given_state", [False, True], ids=["h0-zero", "h0-given"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_parallel_equals_sequential(cell, bidirectional, with_lengths, given_state, dtype):
    dtype = DTYPES[dtype]
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, 2, bidirectional=bidirectional).to(dtype)
    directions = 2 if bidirectional else 1
    x = torch.randn(T, B, I, dtype=dtype)
    h0 = 2 * torch.randn(2 * directions, B, H, dtype=dtype) if given_state else None  # any sign
    lengths = torch.tensor([T, 2, 1]) if with_lengths else None

    parallel = _run_with_grads(layer, x, h0, lengths, seed=1)
    layer.mode = "sequential"
    sequential = _run_with_grads(layer, x, h0, lengths, seed=1)
    assert_close_all(parallel, sequential, dtype, f"{cell} parallel vs sequential")


@pytest.mark.parametrize("cell", list(LAYERS))
def test_parallel_equals_sequential_unbatched_and_batch_first(cell):
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, bidirectional=True, batch_first=True).double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    parallel = [*layer(x, h0), *layer(x[0], h0[:, 0])]
    layer.mode = "sequential"
    sequential = [*layer(x, h0), *layer(x[0], h0[:, 0])]
    assert_close_all(parallel, sequential, torch.float64, f"{cell} batch_first/unbatched")


@pytest.mark.parametrize("cell", list(LAYERS))
def test_recomputation_gives_the_same_as_without(cell):
    """recompute_every cuts time into chunks the scan runs one by one; lengths 1 with chunks
    of 2 make chunks that lie wholly past a sequence's end."""
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, 2, bidirectional=True).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(4, B, H, dtype=torch.float64)
    lengths = torch.tensor([T, 3, 1])
    plain = _run_with_grads(layer, x, h0, lengths, seed=2)
    layer.recompute_every = 2
    chunked = _run_with_grads(layer, x, h0, lengths, seed=2)
    assert_close_all(chunked, plain, torch.float64, f"{cell} recompute_every=2")


# -- oracles nobody here wrote into the layer ----------------------------------------------


def _g(x):
    # the paper's Appendix B.3: x + 1/2 above zero, the logistic function below
    return torch.where(x >= 0, x + 0.5, 1 / (1 + torch.exp(-x)))


def _paper_step(cell, x_t, h, w, b):
    """One step of Sections 3.1 / 3.2 with the Appendix B.3 candidate, written from the
    paper: three (or two) linear maps of x_t, no term in h_{t-1} but the gates."""
    rows = [w[k * H : (k + 1) * H] for k in range(len(w) // H)]
    biases = [b[k * H : (k + 1) * H] for k in range(len(b) // H)]
    pre = [x_t @ r.T + c for r, c in zip(rows, biases, strict=True)]
    if cell == "mingru":
        z = 1 / (1 + torch.exp(-pre[0]))
        return (1 - z) * h + z * _g(pre[1])
    f, i = (1 / (1 + torch.exp(-p)) for p in pre[:2])
    return f / (f + i) * h + i / (f + i) * _g(pre[2])


@pytest.mark.parametrize("cell", list(LAYERS))
def test_layer_equals_a_loop_written_from_the_paper(cell):
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, 2, bidirectional=True).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(4, B, H, dtype=torch.float64)
    out, h_n = layer(x, h0)

    finals, inputs = [], x
    for k in range(2):
        outputs = []
        for d, suffix in enumerate(["", "_reverse"]):
            w = getattr(layer, f"weight_ih_l{k}{suffix}")
            b = getattr(layer, f"bias_ih_l{k}{suffix}")
            h, steps = h0[2 * k + d], [None] * T
            for t in reversed(range(T)) if d else range(T):
                h = _paper_step(cell, inputs[t], h, w, b)
                steps[t] = h
            outputs.append(torch.stack(steps))
            finals.append(h)
        inputs = torch.cat(outputs, -1)
    torch.testing.assert_close(out, inputs, **F64)
    torch.testing.assert_close(h_n, torch.stack(finals), **F64)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_a_padded_batch_gives_what_each_sequence_gives_alone(cell):
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, 2, bidirectional=True).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(4, B, H, dtype=torch.float64)
    lengths = [T, 4, 1]
    out, h_n = layer(x, h0, lengths=torch.tensor(lengths))
    for b, length in enumerate(lengths):
        alone_out, alone_h = layer(x[:length, b : b + 1], h0[:, b : b + 1])
        torch.testing.assert_close(out[:length, b : b + 1], alone_out, **F64)
        torch.testing.assert_close(h_n[:, b : b + 1], alone_h, **F64)
        assert bool((out[length:, b] == 0).all())


@pytest.mark.parametrize("cell", list(LAYERS))
def test_the_cell_stepped_by_hand_equals_the_layer(cell):
    """Both directions: the forward one read from t = 0, the reverse one from t = T-1."""
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, bidirectional=True).double()
    step = CELLS[cell](I, H).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    out, h_n = layer(x, h0)
    for d, suffix in enumerate(["_l0", "_l0_reverse"]):
        step.load_state_dict(
            {name: getattr(layer, name + suffix) for name in ("weight_ih", "bias_ih")}
        )
        h = h0[d]
        for t in reversed(range(T)) if d else range(T):
            h = step(x[t], h)
            torch.testing.assert_close(out[t, :, d * H : (d + 1) * H], h, **F64)
        torch.testing.assert_close(h_n[d], h, **F64)


def test_the_cell_takes_unbatched_input():
    step = MinLSTMCell(I, H).double()
    x, h = torch.randn(2, I, dtype=torch.float64), torch.randn(2, H, dtype=torch.float64)
    torch.testing.assert_close(step(x[0], h[0]), step(x, h)[0], **F64)


# -- the scan itself -----------------------------------------------------------------------


def _loop(a, b, h0):
    h, out = h0, []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def _coefficients(steps, generator):
    log_a = -torch.rand(steps, 2, 3, dtype=torch.float64, generator=generator) * 3  # a in (e^-3, 1)
    log_b = torch.randn(steps, 2, 3, dtype=torch.float64, generator=generator)
    return log_a, log_b


@pytest.mark.parametrize("chunk", [1, 3, 4, 100], ids=lambda c: f"chunk{c}")
def test_parallel_scan_equals_the_loop_for_any_sign_of_h0(chunk):
    gen = torch.Generator().manual_seed(0)
    log_a, log_b = _coefficients(10, gen)
    h0 = torch.randn(2, 3, dtype=torch.float64, generator=gen)
    assert (h0 < 0).any() and (h0 > 0).any()
    expected = _loop(log_a.exp(), log_b.exp(), h0)
    torch.testing.assert_close(parallel_scan(log_a, log_b, h0, chunk=chunk), expected, **F64)


def test_parallel_scan_log_is_heinsens_form_for_positive_h0():
    gen = torch.Generator().manual_seed(0)
    log_a, log_b = _coefficients(10, gen)
    h0 = torch.rand(2, 3, dtype=torch.float64, generator=gen) + 0.1
    expected = _loop(log_a.exp(), log_b.exp(), h0)
    torch.testing.assert_close(parallel_scan_log(log_a, log_b, h0.log()), expected, **F64)
    from_zero = _loop(log_a.exp(), log_b.exp(), torch.zeros_like(h0))
    torch.testing.assert_close(parallel_scan_log(log_a, log_b), from_zero, **F64)


def test_gradcheck_parallel_scans():
    gen = torch.Generator().manual_seed(0)
    log_a, log_b = (c.requires_grad_() for c in _coefficients(5, gen))
    h0 = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    log_h0 = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert gradcheck(parallel_scan_log, (log_a, log_b, log_h0))
    assert gradcheck(lambda a, b, h: parallel_scan(a, b, h, chunk=2), (log_a, log_b, h0))


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_gradcheck_layer(cell, with_lengths):
    torch.manual_seed(0)
    layer = LAYERS[cell](2, 3, 2, bidirectional=True).double()
    names = [n for n, _ in layer.named_parameters()]
    lengths = torch.tensor([4, 2]) if with_lengths else None
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, h0, *params):
        overrides = dict(zip(names, params, strict=True))
        return torch.func.functional_call(layer, overrides, (x, h0), {"lengths": lengths})

    assert gradcheck(fn, (x, h0, *layer.parameters()), eps=1e-6, atol=1e-6)


# -- long sequences ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("cell", list(LAYERS))
def test_a_long_sequence_stays_finite_and_equals_the_loop(cell, dtype):
    """T = 2000 (two scan pieces), weights of scale 5 (gates up to saturation), padding over
    most of one sequence; against the step loop in float64. Each tensor must be within
    ``bound`` times its largest entry: for float32 the float32 step loop's own error is up
    to 3e-6 of it, and the paper's scan in float32 would miss by 1e-2 or more on the
    gradients (cellmath.minrnn, "Precision")."""
    dtype = DTYPES[dtype]
    torch.manual_seed(0)
    steps = 2000
    reference = LAYERS[cell](I, H, bidirectional=True, mode="sequential").double()
    with torch.no_grad():
        for p in reference.parameters():
            p.mul_(5 * H**0.5)  # U(-5, 5)
    layer = LAYERS[cell](I, H, bidirectional=True).to(dtype)
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(steps, 2, I, dtype=torch.float64)
    h0 = torch.randn(2, 2, H, dtype=torch.float64)
    lengths = torch.tensor([steps, 300])

    expected = _run_with_grads(reference, x, h0, lengths, seed=3)
    got = _run_with_grads(layer, x.to(dtype), h0.to(dtype), lengths, seed=3)
    bound = 1e-9 if dtype == torch.float64 else 2e-5
    for k, (ours, exact) in enumerate(zip(got, expected, strict=True)):
        assert bool(ours.isfinite().all()), f"[{k}] not finite"
        error = (ours.double() - exact).abs().max() / exact.abs().max()
        assert error < bound, f"[{k}] error {error:.1e} of the largest entry"


# -- structure and choices -----------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_parameters_are_the_input_maps_only(cell, bias):
    gates = 2 if cell == "mingru" else 3
    layer = LAYERS[cell](I, H, 2, bias=bias, bidirectional=True)
    expected = {}
    for k, width in enumerate([I, 2 * H]):
        for suffix in ("", "_reverse"):
            expected[f"weight_ih_l{k}{suffix}"] = (gates * H, width)
            if bias:
                expected[f"bias_ih_l{k}{suffix}"] = (gates * H,)
    assert {n: tuple(p.shape) for n, p in layer.named_parameters()} == expected
    per_direction = gates * H * (I + 2 * H + 2 * bias)  # layer 0 reads I, layer 1 reads 2H
    assert sum(p.numel() for p in layer.parameters()) == 2 * per_direction
    cell_shapes = {n: tuple(p.shape) for n, p in CELLS[cell](I, H, bias=bias).named_parameters()}
    assert cell_shapes == {"weight_ih": (gates * H, I)} | (
        {"bias_ih": (gates * H,)} if bias else {}
    )


@pytest.mark.parametrize("backend", ["torch", "manual"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_the_fast_backends_refuse_them(cell, backend):
    with pytest.raises(ValueError, match=rf"backend='{backend}' cannot run .*{cell} cell"):
        LAYERS[cell](I, H, backend=backend)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_auto_runs_them_as_reference_does(cell):
    torch.manual_seed(0)
    auto = LAYERS[cell](I, H, 2, bidirectional=True, backend="auto").double()
    ref = LAYERS[cell](I, H, 2, bidirectional=True, backend="reference").double()
    ref.load_state_dict(auto.state_dict())
    x = torch.randn(T, B, I, dtype=torch.float64)
    assert_close_all([*auto(x)], [*ref(x)], torch.float64, f"{cell} auto vs reference")


@pytest.mark.parametrize("cell", list(LAYERS))
def test_a_traced_call_returns_the_step_loops_trace(cell):
    torch.manual_seed(0)
    layer = LAYERS[cell](I, H, bidirectional=True).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, _, trace = layer(x, return_trace=True)
    torch.testing.assert_close(out, layer(x)[0], **F64)
    assert trace.names == layer.family.trace_names
    hidden = trace["hidden"][0].permute(2, 1, 0, 3).reshape(T, B, 2 * H)  # (D, B, T, H) -> out
    torch.testing.assert_close(hidden, out, **F64)
    if cell == "minlstm":  # Section 3.2.3: the normalised gates sum to one
        ones = torch.ones_like(trace["input"])
        torch.testing.assert_close(trace["forget"] + trace["input"], ones, **F64)


def test_families_describe_their_gates():
    assert MinGRUFamily(H).gates == ("update", "candidate")
    assert MinLSTMFamily(H).gates == ("forget", "input", "candidate")
    assert MinGRUFamily(H).state_sizes == (H,) == MinLSTMFamily(H).state_sizes


@pytest.mark.parametrize("cell", list(LAYERS))
def test_an_unknown_mode_is_refused_by_name(cell):
    with pytest.raises(
        ValueError, match=r"mode must be one of 'parallel', 'sequential', got 'fast'"
    ):
        LAYERS[cell](I, H, mode="fast")
    layer = LAYERS[cell](I, H)
    with pytest.raises(ValueError, match=r"got 'Parallel'"):
        layer.mode = "Parallel"
    assert layer.mode == "parallel"


def test_weight_drop_is_refused_for_cells_without_a_recurrent_matrix():
    with pytest.raises(ValueError, match="the minlstm cell has none"):
        RecurrentLayer(MinLSTMFamily(4), 3, weight_drop=0.5)


def test_forget_bias_sets_the_forget_gate_of_a_cell_without_a_recurrent_bias():
    layer = RecurrentLayer(MinLSTMFamily(4), 3, forget_bias=2.0)
    forget = layer.family.gates.index("forget")
    assert torch.all(layer.bias_ih_l0[forget * 4 : (forget + 1) * 4] == 2.0)
