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
from types import SimpleNamespace

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

# Bound by _clockwork_kernels on first use, as module globals: the kernels look names up in
# their module's globals, under the interpreter as well as the compiler (closures would
# serve the compiler only). ``tl`` is triton.language; ``shared`` fused_triton's kernel
# module, whose helpers (_sync, _tanh, _live, ...) the kernels call; ``_runs`` this file's
# own helper.
tl = None
shared = None
_runs = None


@functools.cache
def _clockwork_kernels() -> SimpleNamespace:
    """The kernels, defined on first use: triton reads TRITON_INTERPRET when a kernel is
    defined (see fused_triton's ``_kernels``), and the shared helpers come from the kernel
    module defined under the same setting."""
    global tl, shared, _runs
    import triton
    import triton.language

    tl, shared = triton.language, _kernels()

    @triton.jit
    def _runs(phase_ptr, period, t, B, rows, row_ok, live, ok):
        """(BLOCK_B, BLOCK_H): the units that run at step t (Sec. 3: t mod T_i = 0), in
        live rows only."""
        phase = tl.load(phase_ptr + t.to(tl.int64) * B + rows, mask=row_ok, other=1)
        return ((phase[:, None] % period[None, :]) == 0) & live & ok

    @triton.jit
    def clockwork_forward(
        xg_ptr, w_ptr, h0_ptr, phase_ptr, period_ptr, mask_ptr, h_all_ptr, out_ptr, sync_ptr,
        t_begin, n_steps, B, H,
        HAS_MASK: tl.constexpr,
        BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
    ):  # fmt: skip
        pid_b = tl.program_id(0)
        pid_h = tl.program_id(1)
        rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
        units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
        ks = tl.arange(0, BLOCK_K)
        row_ok = rows < B
        unit_ok = units < H
        ok = row_ok[:, None] & unit_ok[None, :]
        full_ok = row_ok[:, None] & (ks < H)[None, :]
        w = shared._forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)  # masked W_H^T
        period = tl.load(period_ptr + units, mask=unit_ok, other=1)
        h = shared._own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
        for step in range(n_steps):
            t = t_begin + step
            slot = shared._step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
            live = shared._live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
            runs = _runs(phase_ptr, period, t, B, rows, row_ok, live, ok)
            pre = tl.load(xg_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            if tl.max(runs.to(tl.int32)) > 0:  # held units need no product
                h_prev = shared._full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w.dtype)
                pre += tl.dot(h_prev, w, input_precision="ieee")
            h = tl.where(runs, shared._tanh(pre), h)  # the others keep h_{t-1}
            tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
            tl.store(out_ptr + slot, tl.where(live, h, 0.0).to(out_ptr.dtype.element_ty), mask=ok)
            if N_SPLIT > 1:
                shared._sync(sync_ptr + pid_b, step, N_SPLIT)

    @triton.jit
    def clockwork_backward(
        dout_ptr, h_all_ptr, w_ptr, phase_ptr, period_ptr, mask_ptr, dpre_ptr, dh_buf_ptr,
        sync_ptr, t_begin, n_steps, T, B, H,
        HAS_MASK: tl.constexpr,
        BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
    ):  # fmt: skip
        pid_b = tl.program_id(0)
        pid_h = tl.program_id(1)
        rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
        units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
        ks = tl.arange(0, BLOCK_K)
        row_ok = rows < B
        unit_ok = units < H
        ok = row_ok[:, None] & unit_ok[None, :]
        full_ok = row_ok[:, None] & (ks < H)[None, :]
        w = shared._backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)  # masked W_H's columns
        period = tl.load(period_ptr + units, mask=unit_ok, other=1)
        dh_local = shared._rows_tile(dh_buf_ptr, rows, units, H, ok)
        for step in range(n_steps):
            t = t_begin - step
            dh = dh_local
            if t + 1 < T:  # what step t+1's running units send back through W_H
                back = shared._rows_tile(
                    dpre_ptr + shared._step_offset(t + 1, B, H), rows, ks, H, full_ok
                )
                dh += tl.dot(back.to(w.dtype), w, input_precision="ieee")
            slot = shared._step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
            dh_t = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            h = tl.load(h_all_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            live = shared._live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
            runs = _runs(phase_ptr, period, t, B, rows, row_ok, live, ok)
            dz = tl.where(runs, dh_t * (1.0 - h * h), 0.0)  # tanh' where the unit ran
            tl.store(dpre_ptr + slot, dz.to(dpre_ptr.dtype.element_ty), mask=ok)
            # a held unit's h_t is h_{t-1}; an ended row passes its carry by, output unused
            dh_local = tl.where(live, tl.where(runs, 0.0, dh_t), dh)
            if N_SPLIT > 1:
                shared._sync(sync_ptr + pid_b, step, N_SPLIT)
        tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)

    return SimpleNamespace(forward=clockwork_forward, backward=clockwork_backward)


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
            kernels.forward[layout.grid](
                xg, w_chip, h0, phases, periods, mask_u8, h_all, output, sync, t_begin,
                n_steps, batch, hidden, HAS_MASK=mask is not None, BLOCK_B=layout.block_b,
                BLOCK_H=layout.block_h, BLOCK_K=layout.block_k, N_SPLIT=sync_programs,
                num_warps=layout.num_warps,
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
            kernels.backward[layout.grid](
                d_output, h_all, w_chip, phases, periods, mask_u8, d_pre, dh_buf, sync,
                t_begin, n_steps, steps, batch, hidden, HAS_MASK=mask is not None,
                BLOCK_B=layout.block_b, BLOCK_H=layout.block_h, BLOCK_K=layout.block_k,
                N_SPLIT=sync_programs, num_warps=layout.num_warps,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        # step 0's running units reach h0 through W_H (an ended row's d_pre is 0)
        dh0 = dh_buf + (d_pre[0] @ w).float()
        d_w_hh = d_pre.reshape(steps * batch, hidden).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        return None, None, None, d_pre, dh0.to(h0.dtype), d_w_hh
