"""The fused CPU kernels of minGRU and minLSTM (``minrnn.cpp``): the recurrence
h_t = a_t h_{t-1} + (1 - a_t) h~_t run forwards in one pass over time, and its backward, with
nothing kept but h (the backward recomputes a_t and h~_t from the pre-activations).

``run_minrnn`` has :mod:`lstmkit.layers.backends.fused`'s runner contract: x (T, B, I) in
forward time order, a (T, B) mask or None; it returns the outputs (T, B, H), the final state
(h_n,) and what ``fused._trace`` reads.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.minrnn import MinLSTMFamily
from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_cpu import load_ops


def run_minrnn(family, x, state, weights, mask):
    ops = load_ops("minrnn")
    x_gates = gate_inputs(x, weights, fold_hidden_bias=False)  # the min cells have no b_hh
    (h0,) = state
    lstm = isinstance(family, MinLSTMFamily)
    output, h_n, h_all = _MinRNNFunction.apply(ops, lstm, mask, x_gates, h0)
    return output, (h_n,), dict(x_gates=x_gates.detach(), h0=h0.detach(), hidden=h_all)


class _MinRNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, lstm, mask, x_gates, h0):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace output's gradient
        x_gates, h0 = x_gates.contiguous(), h0.contiguous()
        output, h_n, h_all = ops.minrnn_forward(x_gates, h0, lstm, mask)
        ctx.ops, ctx.lstm, ctx.mask = ops, lstm, mask
        ctx.save_for_backward(x_gates, h_all, h0)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_n, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, _):
        x_gates, h_all, h0 = ctx.saved_tensors
        d_x_gates, dh0 = ctx.ops.minrnn_backward(
            zeros_if_none(d_output, h_all), zeros_if_none(d_h_n, h0), x_gates, h_all, h0,
            ctx.lstm, ctx.mask,
        )  # fmt: skip
        return None, None, None, d_x_gates, dh0
