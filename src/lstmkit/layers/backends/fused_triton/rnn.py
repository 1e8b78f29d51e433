"""The Elman RNN (tanh or relu) on the fused GPU backend: the autograd function around
fused_triton's Triton kernels (``kernels.py``), laid out by
:func:`~lstmkit.layers.backends.fused_triton.plan`.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_triton import (
    _check,
    _kernels,
    _mask_bytes,
    _on_chip,
    _shifted,
    _time_loop,
    plan,
)


def run_rnn(family, x, state, weights, mask):
    _check(x)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    (h0,) = state
    relu = family.nonlinearity == "relu"
    output, h_n, h_all = _RNNFunction.apply(relu, mask, x_gates, h0, weights["weight_hh"])
    return output, (h_n,), dict(hidden=h_all)


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, relu, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, hidden = xg.shape
        layout = plan(batch, hidden, 1, w_hh.dtype, xg.device)
        h_all = torch.empty_like(xg)
        output = torch.empty_like(xg)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.rnn_forward[layout.grid](
                xg, w_chip, h0, mask_u8, h_all, output, sync, t_begin, n_steps, batch, hidden,
                RELU=relu, HAS_MASK=mask is not None, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.relu, ctx.mask, ctx.layout = relu, mask, layout
        ctx.save_for_backward(h_all, h0, w)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_all[-1].clone(), h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        h_all, h0, w = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _kernels(), ctx.layout, ctx.mask
        steps, batch, hidden = h_all.shape
        d_output = zeros_if_none(d_output, h_all).contiguous()
        d_pre = torch.empty_like(h_all)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, h_all)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.rnn_backward[layout.grid](
                d_output, h_all, w_chip, mask_u8, d_pre, dh_buf, sync, t_begin, n_steps, steps,
                batch, hidden, RELU=ctx.relu, HAS_MASK=mask is not None, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        back = (d_pre[0] @ w).float()
        dh0 = dh_buf + (back if mask is None else back * mask[0].unsqueeze(1))
        d_w_hh = d_pre.reshape(steps * batch, hidden).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        return None, None, d_pre, dh0.to(h0.dtype), d_w_hh
