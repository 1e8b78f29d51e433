"""The Clockwork RNN (Koutník et al. 2014, Sec. 3) on the fused GPU backend: Triton kernels
for its recurrence and backward, laid out as fused_triton's RNN kernels are (:func:`plan`,
persistent launches with a grid barrier per step, or a launch per step).

Legend: T time, B batch, H hidden, K the padded reduction length (H rounded up to a power of
two). The schedule, the masked W_H and the final clock are the CPU glue's
(``fused_cpu/clockwork.py``): ``phases`` (T, B) holds t mod L of each row at each step, and
unit j of row b runs at step t when ``phases[t, b] % period[j] == 0``. A running unit takes
tanh of its pre-activation, the others keep h_{t-1}; backwards, a running unit's dL/dz is
dL/dh_t (1 - h_t^2) and a held unit passes dL/dh_t on to h_{t-1}.

The paper's saving, per program: a program whose units do not run at a step in any of its
rows skips that step's product (in the persistent launch it still meets the barrier). The
fastest modules run every step, so a program holding them never skips; with the units split
over several programs, those of the slow modules skip most steps.
"""

from __future__ import annotations

import functools

import torch
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_cpu.clockwork import ClockworkSaved, clock_phases, final_clock
from lstmkit.layers.backends.fused_triton import (
    _check,
    _kernels,
    _mask_bytes,
    _on_chip,
    _shifted,
    _time_loop,
    plan,
)


@functools.cache
def _clockwork_kernels():
    # imported on first use: triton reads TRITON_INTERPRET when the kernels are defined
    from lstmkit.layers.backends.fused_triton import clockwork_kernels

    _kernels()  # the shared kernel module first, under the same setting
    return clockwork_kernels


def run_clockwork(family: ClockworkFamily, x, state, weights, mask):
    """One direction, as ``fused_cpu.clockwork.run_clockwork``: x (T, B, I) in forward time
    order, state (h0 (B, H), clock (B, 1)), mask (T, B) or None."""
    _check(x)
    h0, clock = state
    steps = x.shape[0]
    phases = clock_phases(family, clock, mask, steps)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    # Sec. 3: the block-upper-triangular W_H, formed once for the call
    w_active = family.loop_weights(weights)["weight_hh_active"]
    periods = family.unit_periods(phases).contiguous()  # (H,) int64
    output, h_n, h_all = _ClockworkFunction.apply(phases, periods, mask, x_gates, h0, w_active)
    clock_n = final_clock(family, clock, mask, steps)
    return output, (h_n, clock_n), ClockworkSaved(family, h_all, phases)


class _ClockworkFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, phases, periods, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace output's gradient
        kernels = _clockwork_kernels()
        xg = x_gates.contiguous()
        steps, batch, hidden = xg.shape
        layout = plan(batch, hidden, 1, w_hh.dtype, xg.device)
        h_all = torch.empty_like(xg)
        output = torch.empty_like(xg)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.clockwork_forward[layout.grid](
                xg, w_chip, h0, phases, periods, mask_u8, h_all, output, sync, t_begin,
                n_steps, batch, hidden, HAS_MASK=mask is not None, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.mask, ctx.layout = mask, layout
        ctx.save_for_backward(h_all, h0, w, phases, periods)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_all[-1].clone(), h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, _):
        h_all, h0, w, phases, periods = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _clockwork_kernels(), ctx.layout, ctx.mask
        steps, batch, hidden = h_all.shape
        d_output = zeros_if_none(d_output, h_all).contiguous()
        d_pre = torch.empty_like(h_all)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, h_all)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.clockwork_backward[layout.grid](
                d_output, h_all, w_chip, phases, periods, mask_u8, d_pre, dh_buf, sync,
                t_begin, n_steps, steps, batch, hidden, HAS_MASK=mask is not None,
                N_SPLIT=sync_programs, **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        # step 0's running units reach h0 through W_H (an ended row's d_pre is 0)
        dh0 = dh_buf + (d_pre[0] @ w).float()
        d_w_hh = d_pre.reshape(steps * batch, hidden).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        return None, None, None, d_pre, dh0.to(h0.dtype), d_w_hh
