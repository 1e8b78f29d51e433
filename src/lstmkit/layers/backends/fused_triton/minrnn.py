"""The Triton kernels of minGRU and minLSTM (``minrnn_kernels.py``) behind
:mod:`lstmkit.layers.backends.fused`'s runner contract, for CUDA tensors (and CPU tensors
under ``TRITON_INTERPRET=1``). Nothing is kept for the backward but h: it recomputes the
coefficients from the pre-activations, which the caller keeps anyway.
"""

from __future__ import annotations

import functools

import torch
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.minrnn import MinLSTMFamily
from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_triton import _check, _mask_bytes

BLOCK = 256
"""Units per program: the grid is B * H / BLOCK programs, each running every step."""


@functools.cache
def _kernels():
    # imported on first use: triton reads TRITON_INTERPRET when the kernels are defined
    from lstmkit.layers.backends.fused_triton import minrnn_kernels

    return minrnn_kernels


def run_minrnn(family, x, state, weights, mask):
    _check(x)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=False)  # the min cells have no b_hh
    (h0,) = state
    lstm = isinstance(family, MinLSTMFamily)
    output, h_n, h_all = _MinRNNFunction.apply(lstm, mask, x_gates, h0)
    return output, (h_n,), dict(x_gates=x_gates.detach(), h0=h0.detach(), hidden=h_all)


def _grid(batch: int, hidden: int) -> tuple[int]:
    return (-(-batch * hidden // BLOCK),)


class _MinRNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lstm, mask, x_gates, h0):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace output's gradient
        xg, h0 = x_gates.contiguous(), h0.contiguous()
        steps, batch, hidden = xg.shape[0], xg.shape[1], h0.shape[1]
        h_all = xg.new_empty(steps, batch, hidden)
        output = torch.empty_like(h_all)
        _kernels().minrnn_forward[_grid(batch, hidden)](
            xg, h0, _mask_bytes(mask, xg), h_all, output, steps, batch, hidden,
            LSTM=lstm, HAS_MASK=mask is not None, BLOCK=BLOCK,
        )  # fmt: skip
        ctx.lstm, ctx.mask = lstm, mask
        ctx.save_for_backward(xg, h_all, h0)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_all[-1].clone(), h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, _):
        xg, h_all, h0 = ctx.saved_tensors
        steps, batch, hidden = h_all.shape
        d_x_gates = torch.empty_like(xg)
        dh0 = torch.empty_like(h0)
        _kernels().minrnn_backward[_grid(batch, hidden)](
            zeros_if_none(d_output, h_all).contiguous(), zeros_if_none(d_h_n, h0).contiguous(),
            xg, h_all, h0, _mask_bytes(ctx.mask, xg), d_x_gates, dh0, steps, batch, hidden,
            LSTM=ctx.lstm, HAS_MASK=ctx.mask is not None, BLOCK=BLOCK,
        )  # fmt: skip
        return None, None, d_x_gates, dh0
