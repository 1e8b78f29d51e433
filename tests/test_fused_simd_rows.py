"""The fused CPU kernels' row arithmetic at hidden sizes that fill SIMD vectors.

The kernels run a row's elementwise work a vector at a time (for_lanes in common.h: 16
floats or 8 doubles with AVX-512, 8 floats with AVX2) and the remainder one value at a
time. The other grids use H of 5 to 9, which in float32 reach only the one-at-a-time
remainder; H = 21 is a full vector or two and a remainder in every build (the Clockwork
RNN's H = 63, 21 units to each of its 3 modules). Every family, option and ablation of
kernels.cpp, and minrnn.cpp's and clockwork.cpp's cells, against the reference loop:
outputs, final states and every gradient under a random upstream gradient, with lengths,
both directions, at batch 3 and 6 (vec_mat's pass over three rows, and over four then two;
the Clockwork RNN's ATen products at 6), in float64 and float32; bfloat16 no further from
float32 than the reference loop's bfloat16 (for the layer norms also on average over ten
seeds); and the kernels' own float32 tanh.
"""

from __future__ import annotations

import pytest
import torch
from helpers import (
    LAYER_CASES,
    LSTM_ABLATIONS,
    LSTM_NORM_AND_FGR_OPTIONS,
    assert_close_all,
    random_loss,
)

import lstmkit
from lstmkit.layers.backends import fused_cpu
from lstmkit.layers.clockwork import ClockworkRNN
from lstmkit.layers.minrnn import MinGRU, MinLSTM

I, T, H = 4, 6, 21
LENGTHS = [6, 2, 5, 3, 1, 4]
# id: (layer class, its options, its hidden size)
CASES = {
    name: (cls, options, H)
    for name, (cls, options) in (
        LAYER_CASES
        | {
            f"lstm-{name}": (lstmkit.LSTM, opts)
            for name, opts in (LSTM_ABLATIONS | LSTM_NORM_AND_FGR_OPTIONS).items()
        }
        | {"mingru": (MinGRU, {}), "minlstm": (MinLSTM, {})}
    ).items()
} | {"clockwork": (ClockworkRNN, dict(num_modules=3), 3 * H)}
# float32: with parameters of up to 0.6 and 21 units, the reference loop's own float32 run
# is up to 1e-4 (relative) from its float64 one, and so is the fused one, in either
# direction; float64 checks the arithmetic to 1e-10
F32_TOLERANCE = dict(rtol=3e-4, atol=3e-4)


def _pair(case: str, batch: int, dtype: torch.dtype, seed: int = 0):
    """A reference layer and a fused one with the same parameters, and an input."""
    cls, options, hidden = CASES[case]
    torch.manual_seed(seed)
    reference = cls(I, hidden, bidirectional=True, backend="reference", **options).to(dtype)
    fused = cls(I, hidden, bidirectional=True, backend="fused", **options).to(dtype)
    with torch.no_grad():  # every parameter away from its initial value (gains about 1)
        for name, p in reference.named_parameters():
            noise = 1.2 * (torch.rand(p.shape, dtype=torch.float64) - 0.5)
            p.copy_(noise + (1.0 if name.startswith("ln_weight") else 0.0))
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(T, batch, I, dtype=torch.float64).to(dtype).requires_grad_(True)
    return reference, fused, x


def _run(layer, x: torch.Tensor) -> list[torch.Tensor]:
    lengths = torch.tensor(LENGTHS[: x.shape[1]])
    output, state = layer(x, lengths=lengths)
    values = [output, *(state if isinstance(state, tuple) else (state,))]
    # float32's random upstream gradients for bfloat16 too (randn draws per dtype)
    widened = [v.float() if v.dtype == torch.bfloat16 else v for v in values]
    grads = torch.autograd.grad(random_loss(widened, seed=3), [x, *layer.parameters()])
    return [*values, *grads]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch", [3, 6], ids=["B3", "B6"])  # vec_mat: 3 rows; 4 and 2
@pytest.mark.parametrize("case", list(CASES))
def test_wide_rows_match_the_reference(case, batch, dtype):
    reference, fused, x = _pair(case, batch, dtype)
    ours, theirs = _run(fused, x), _run(reference, x)
    if dtype == torch.float64:
        assert_close_all(ours, theirs, dtype, f"H={H} {case}")
        return
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        torch.testing.assert_close(a, b, **F32_TOLERANCE, msg=lambda m, k=k: f"{case}[{k}]: {m}")


@pytest.mark.parametrize("batch", [3, 6], ids=["B3", "B6"])  # vec_mat, in float32
@pytest.mark.parametrize("case", list(CASES))
def test_wide_rows_in_bfloat16_err_no_more_than_the_reference_loop(case, batch):
    """The bfloat16 rows widen and round a vector at a time. Against the same layer in
    float32, the fused layer in bfloat16 is off by no more than the reference loop in
    bfloat16 is (in norm, twice as much at most, or 1% of the value's norm): a lane widened
    or rounded wrongly would be off by far more. A fixed tolerance would not do: the RNN
    with ReLU and the ungated LSTM grow their states, and bfloat16's error with them.

    The ReLU RNN's gradients are left out: a pre-activation within bfloat16's rounding of 0
    takes either side of the kink, and its gradient is then on or off in every earlier step
    of that row. With this seed the fused layer's bfloat16 puts one of 756 pre-activations
    (f32: 0, bf16: 7e-5) in the reverse direction's last step on the other side, and the
    loop two elsewhere: both are right, and the fused layer's dL/dx is then 14% (in norm)
    from float32's, the loop's 2%.

    So are those of the per-gate norm with peepholes and a projection at batch 3. There,
    with this seed, dL/dx grows sixfold a step back to t = 0 in one row, and the fused
    layer's error ends 4.5 times the loop's: its error at t = 4 is the loop's (0.08 and
    0.09), but the step back to t = 3 shrinks the loop's sevenfold and not the fused one's.
    This seed is an outlier, not the rule: over 30 seeds (by hand) the fused layer's
    relative error per tensor was 0.74 times the loop's at the median seed, 0.32 to 2.9
    times it from seed to seed, and its mean over all 0.73 times the loop's (the test below
    bounds that mean for every normalised case). Its products are not the cause: the
    figures were the same to every digit printed while bfloat16's small-batch products were
    ATen's."""
    reference, fused, x = _pair(case, batch, torch.float32)
    truth = _run(fused, x)
    x16 = x.detach().bfloat16().requires_grad_(True)
    ours = _run(fused.to(torch.bfloat16), x16)
    theirs = _run(reference.to(torch.bfloat16), x16)
    # the output and h_n (the ReLU RNN), and (h_n, c_n) too (the per-gate norm at batch 3)
    values_only = {"rnn-relu": 2, "lstm-LN-per-gate-peephole-proj": 3 if batch == 3 else None}
    compared = values_only.get(case) or len(truth)
    for k, (a, b, exact) in enumerate(zip(ours, theirs, truth, strict=True)):
        assert a.dtype == torch.bfloat16, k
        if k >= compared:
            continue
        our_error = (a.float() - exact).norm().item()
        loop_error = (b.float() - exact).norm().item()
        floor = 1e-2 * exact.norm().clamp_min(1.0).item()
        assert our_error <= 2 * loop_error + floor, (k, our_error, loop_error)


NORMALISED = [case for case, (_, options, _) in CASES.items() if options.get("layer_norm")]


def _relative_errors(values: list[torch.Tensor], truth: list[torch.Tensor]) -> torch.Tensor:
    """Each tensor's |value - truth| / |truth| (in norm; truth's norm at least 1e-6)."""
    return torch.stack(
        [
            (v.float() - t).norm() / t.norm().clamp_min(1e-6)
            for v, t in zip(values, truth, strict=True)
        ]
    )


@pytest.mark.parametrize("case", NORMALISED)
def test_layer_norms_in_bfloat16_err_less_than_the_reference_loop_on_average(case):
    """Over ten seeds at batch 3 (vec_mat's path), the fused layer's bfloat16 is, on average
    over seeds and tensors (outputs, states, every gradient), no further from its float32
    than the reference loop's bfloat16 is, give or take a quarter: the one seed of the test
    above that goes the other way is not the rule. Measured: 0.55 to 0.95 times the loop's
    mean error. Both layers' errors come mostly from the roundings to bfloat16 that they
    share (every stored gate and state), so one extra rounding in the kernels does not show
    here (tried: xhat rounded before the gain, the norm's upstream gradient rounded before
    its backward; both within 0.1 of these ratios). What it bounds is a systematic loss
    beyond those shared roundings, which one seed's luck could hide either way."""
    ours_total = loop_total = 0.0
    for seed in range(10):
        reference, fused, x = _pair(case, 3, torch.float32, seed=seed)
        truth = _run(fused, x)
        x16 = x.detach().bfloat16().requires_grad_(True)
        ours_total += _relative_errors(_run(fused.to(torch.bfloat16), x16), truth).mean().item()
        theirs = _run(reference.to(torch.bfloat16), x16)
        loop_total += _relative_errors(theirs, truth).mean().item()
    assert ours_total <= 1.25 * loop_total, (ours_total / 10, loop_total / 10)


def _ulps(ours: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|ours - exact| in units of the last place of exact rounded to ours' dtype."""
    rounded = exact.to(ours.dtype)
    ulp = (torch.nextafter(rounded, torch.tensor(float("inf"), dtype=ours.dtype)) - rounded).abs()
    return (ours.double() - exact).abs() / ulp.double()


def test_the_kernels_tanh_is_within_three_ulps():
    """Float32 rows squash with lstmkit's own tanh (common.h, tanh_float: a Taylor series
    near 0, exp elsewhere), in about a third of Sleef's time (benchmarks/tanh_speed.py).
    Over magnitudes from 1e-8 to 20 and both signs, against float64's tanh, which is exact
    to float32's last place. (Float64 rows keep at::vec's tanh, Sleef's or the C library's:
    nothing here to test it against.)"""
    magnitudes = torch.logspace(-8, 1.3, 200_001)
    x = torch.cat([magnitudes, -magnitudes, torch.zeros(1)])
    ops = fused_cpu.load_ops()
    worst = _ulps(ops.kernel_tanh(x), torch.tanh(x.double())).max().item()
    assert worst <= 3.0, worst
    special = torch.tensor([float("inf"), float("-inf"), float("nan")])
    assert ops.kernel_tanh(special)[:2].tolist() == [1.0, -1.0]
    assert ops.kernel_tanh(special)[2].isnan()
    assert ops.kernel_tanh(torch.tensor([-0.0])).signbit().item()
