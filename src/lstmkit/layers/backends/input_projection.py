"""x W^T + b for every time step at once: the fused backends' input side.

On a float32 CPU tensor ``torch.nn.functional.linear`` runs ATen's GEMM (MKL), and with a
bias it first copies the bias into every row of the result. oneDNN's linear, the library
torch.nn.LSTM's own CPU kernel runs, adds the bias inside its GEMM instead, and on the
project's AMD EPYC (2 threads) it ran the fastrnns-sized projection, (6400, 512) x
(512, 2048) with a bias, in 0.89x ATen's time, and dL/dx = dL/dy W in 0.91x. So larger
float32 products on the CPU take oneDNN's linear forwards, and for dL/dx where there are
many rows; dL/dW and dL/db stay with ATen (oneDNN's linear ran dL/dW's product of two
transposed operands at two thirds of ATen's speed). From 100 to 1,600 rows oneDNN's dL/dx
ran at 0.3 to 1.0x ATen's speed at the bench's hidden sizes, and below a quarter million
weights the forward gained nothing reliable.

In bfloat16 ATen's product is oneDNN's already, but with the bias copied into the result
first, as in float32: on a CPU where oneDNN runs bfloat16 natively (the project's AMD EPYC
with AVX-512 BF16) oneDNN's linear with its own bias ran the fastrnns-sized projection in
0.92x the time of ``F.linear`` (32.6 against 35.4 ms, 2 threads), so the bfloat16 forward
takes it too; dL/dx did not gain (32.3 against 31.6 ms) and stays with ATen.

``LSTMKIT_NO_ONEDNN=1`` keeps everything with ATen, as it does for the C++ kernels' step
products. The result is the same product to the dtype's rounding either way.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import Tensor

# the thresholds above, from microbenchmarks of the projection shapes of the bench's sizes
MIN_WEIGHTS = 1 << 18
MIN_ROWS_FOR_INPUT_GRAD = 4096


def onednn_allowed() -> bool:
    """Whether torch has oneDNN and LSTMKIT_NO_ONEDNN does not send products back to ATen."""
    flag = os.environ.get("LSTMKIT_NO_ONEDNN", "")
    return torch.backends.mkldnn.is_available() and flag in ("", "0")


@functools.cache
def onednn_runs_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 on this CPU in hardware (AVX-512 BF16 or AMX), not
    emulated; asked once, as the CPU does not change."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def uses_onednn(x: Tensor, weight: Tensor) -> bool:
    """Whether project() sends this product to oneDNN: float32 on the CPU, or bfloat16 where
    :func:`onednn_runs_bfloat16`, a quarter million weights or more, and nothing (a trace,
    torch.compile) that wants plain ATen operators."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():  # first: a trace would
        return False  # record the size test below as a constant, with a warning
    if x.device.type != "cpu" or weight.dtype != x.dtype or weight.numel() < MIN_WEIGHTS:
        return False
    if x.dtype == torch.bfloat16:
        return onednn_allowed() and onednn_runs_bfloat16()
    return x.dtype == torch.float32 and onednn_allowed()


def project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN where :func:`uses_onednn` says so."""
    if not uses_onednn(x, weight):
        return F.linear(x, weight, bias)
    return _OneDNNLinear.apply(x, weight, bias)


def _onednn_linear(rows: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """rows (M, K) @ weight (N, K)^T + bias, by oneDNN (a plain weight; packing it first
    gained nothing for a single product)."""
    return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], None)


class _OneDNNLinear(torch.autograd.Function):
    """The product forwards and dL/dx by oneDNN; under create_graph the backward is plain
    differentiable torch operators, so double backward works as it does for F.linear."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        rows = x.reshape(-1, x.shape[-1])
        out = _onednn_linear(rows, weight.contiguous(), bias)
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_rows = grad.reshape(-1, grad.shape[-1])
        x_rows = x.reshape(-1, x.shape[-1])
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            if (
                grad_rows.dtype == torch.float32
                and grad_rows.shape[0] >= MIN_ROWS_FOR_INPUT_GRAD
                and not torch.is_grad_enabled()
            ):
                grad_x = _onednn_linear(grad_rows.contiguous(), weight.t().contiguous(), None)
            else:
                grad_x = grad_rows @ weight
            grad_x = grad_x.view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_rows.t() @ x_rows
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_rows.sum(0)
        return grad_x, grad_weight, grad_bias
