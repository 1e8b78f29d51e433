"""The fused backends' input projection (input_projection.project): oneDNN's linear for large
float32 CPU products, forwards and for dL/dx, and for bfloat16 ones forwards where the CPU runs
bfloat16 natively, checked against torch's F.linear in float64, and the rule that picks it.
The fused-kernel tests run sizes below its threshold, so without this file the path would go
unchecked."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import random_loss

import lstmkit
from lstmkit.layers.backends import input_projection
from lstmkit.layers.backends.input_projection import project, uses_onednn

# a quarter million weights and 4096 rows: both the forward and dL/dx take oneDNN
T, B, I, N = 8, 512, 512, 512


def _relative_error(ours: torch.Tensor, exact: torch.Tensor) -> float:
    return ((ours.double() - exact).abs().max() / exact.abs().max()).item()


def _value_and_grads(fn, *inputs):
    """fn(*inputs), and the gradients of every input under a fixed random upstream gradient
    (drawn in float32 whatever the dtype, so that float64 differentiates the same loss)."""
    inputs = [t.detach().requires_grad_() for t in inputs]
    y = fn(*inputs)
    return [y, *torch.autograd.grad(random_loss([y.float()], seed=3), inputs)]


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_project_is_f_linear_to_float32_rounding(with_bias):
    torch.manual_seed(0)
    x, weight = torch.randn(T, B, I), torch.randn(N, I) / I**0.5
    inputs = [x, weight, torch.randn(N)] if with_bias else [x, weight]
    assert uses_onednn(x, weight) and T * B >= input_projection.MIN_ROWS_FOR_INPUT_GRAD
    ours = _value_and_grads(lambda *a: project(*a, *([] if with_bias else [None])), *inputs)
    exact = _value_and_grads(F.linear, *(t.double() for t in inputs))
    for name, a, b in zip(["y", "dx", "dW", "db"], ours, exact, strict=False):
        assert a.dtype == torch.float32 and a.shape == b.shape
        assert _relative_error(a, b) < 2e-6, name


def test_double_backward_matches_f_linear():
    """Under create_graph the backward is plain torch operators, so a gradient of a gradient
    is F.linear's."""
    torch.manual_seed(1)
    x, weight, bias = torch.randn(64, 4, I), torch.randn(N, I), torch.randn(N)

    def grad_norm_grads(fn):
        xs, w, b = (t.detach().requires_grad_() for t in (x, weight, bias))
        y = fn(xs, w, b)
        (gx,) = torch.autograd.grad(y.square().sum(), [xs], create_graph=True)
        return torch.autograd.grad(gx.square().sum(), [xs, w, b])

    for a, b in zip(grad_norm_grads(project), grad_norm_grads(F.linear), strict=True):
        assert _relative_error(a, b.double()) < 1e-5


def test_project_in_bfloat16_is_f_linear_to_bfloat16_rounding():
    """On oneDNN's path where this CPU runs bfloat16 natively, on F.linear's elsewhere: both
    within bfloat16's rounding of the exact product of the same rounded operands."""
    torch.manual_seed(5)
    x, weight, bias = torch.randn(T, B, I), torch.randn(N, I) / I**0.5, torch.randn(N)
    inputs = [t.bfloat16() for t in (x, weight, bias)]
    assert uses_onednn(*inputs[:2]) == input_projection.onednn_runs_bfloat16()
    ours = _value_and_grads(project, *inputs)
    exact = _value_and_grads(F.linear, *(t.double() for t in inputs))
    for name, a, b in zip(["y", "dx", "dW", "db"], ours, exact, strict=True):
        assert a.dtype == torch.bfloat16 and a.shape == b.shape
        assert _relative_error(a, b) < 1e-2, name


def test_the_rule_takes_large_cpu_products_in_float32_and_native_bfloat16(monkeypatch):
    x, big, small = torch.randn(3, 2, I), torch.randn(N, I), torch.randn(N, I // 2 - 1)
    assert uses_onednn(x, big)
    assert not uses_onednn(x[..., : I // 2 - 1], small)  # under a quarter million weights
    assert not uses_onednn(x.double(), big.double())
    assert not uses_onednn(x, big.bfloat16())  # mixed dtypes stay with F.linear's rules
    for native in (True, False):  # emulated bfloat16 is refused by oneDNN's linear
        monkeypatch.setattr(input_projection, "onednn_runs_bfloat16", lambda n=native: n)
        assert uses_onednn(x.bfloat16(), big.bfloat16()) == native
        assert not uses_onednn(x[..., : I // 2 - 1].bfloat16(), small.bfloat16())
    monkeypatch.setenv("LSTMKIT_NO_ONEDNN", "1")
    assert not uses_onednn(x, big)
    assert not uses_onednn(x.bfloat16(), big.bfloat16())


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:DeprecationWarning")
def test_a_trace_sees_plain_linear():
    """torch.jit.trace records F.linear, not an opaque Python function."""
    weight, bias = torch.randn(N, I), torch.randn(N)
    # check_trace=False: the check would compare the trace with oneDNN's rounding
    traced = torch.jit.trace(lambda x: project(x, weight, bias), torch.randn(2, 3, I),
                             check_trace=False)  # fmt: skip
    assert "_OneDNNLinear" not in str(traced.graph)
    x = torch.randn(5, 3, I)
    torch.testing.assert_close(traced(x), F.linear(x, weight, bias))


def test_a_fused_lstm_with_a_large_input_matches_the_reference():
    """The whole layer with the projection on oneDNN, against the reference loop in float64."""
    torch.manual_seed(2)
    fused = lstmkit.LSTM(I, 128, backend="fused")
    exact = lstmkit.LSTM(I, 128, backend="reference").double()
    exact.load_state_dict({k: v.double() for k, v in fused.state_dict().items()})
    x = torch.randn(T, B, I)
    assert uses_onednn(x, fused.weight_ih_l0)

    def outputs_and_grads(layer, inputs):
        inputs = inputs.detach().requires_grad_()
        output, (h_n, c_n) = layer(inputs)
        loss = random_loss([v.float() for v in (output, h_n, c_n)], seed=4)
        return [output, h_n, c_n, *torch.autograd.grad(loss, [inputs, *layer.parameters()])]

    for a, b in zip(outputs_and_grads(fused, x), outputs_and_grads(exact, x.double()),
                    strict=True):  # fmt: skip
        assert _relative_error(a, b) < 2e-5
