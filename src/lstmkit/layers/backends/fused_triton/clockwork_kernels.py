"""Triton kernels of the Clockwork RNN (Koutník et al. 2014, Sec. 3); the glue, layout and
the paper's saving are described in ``clockwork.py``. Imported on first use, like kernels.py,
so that the kernels follow TRITON_INTERPRET as it is then.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lstmkit.layers.backends.fused_triton.kernels import (
    _backward_weight,
    _forward_weight,
    _full_h,
    _live,
    _own_state,
    _program_tile,
    _rows_tile,
    _shared_tile,
    _step_offset,
    _streamed_forward,
    _streamed_product,
    _sync,
    _tanh,
)


@triton.jit
def _larger(a, b):
    return tl.maximum(a, b)


@triton.jit
def _any(flags):
    """Whether any entry of a boolean tile is true. A reduction of this module's own, not
    tl.max: triton.language's helpers are decorated when triton is first imported, and one
    imported before TRITON_INTERPRET was set cannot run under the interpreter (kernels.py's
    _sigmoid says the same)."""
    return tl.reduce(flags.to(tl.int32), None, _larger) > 0


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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """``BLOCK_KC`` < ``BLOCK_K`` streams W_H (kernels.py's lstm_forward)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    if ON_CHIP:
        w = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)  # masked W_H^T
    period = tl.load(period_ptr + units, mask=unit_ok, other=1)
    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        runs = _runs(phase_ptr, period, t, B, rows, row_ok, live, ok)
        pre = tl.load(xg_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        if _any(runs):  # held units need no product
            if ON_CHIP:
                h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w.dtype)
                pre += tl.dot(h_prev, w, input_precision="ieee")
            else:
                pre = _streamed_forward(pre, h0_ptr, h_all_ptr, t, B, H, rows, row_ok, w_ptr,
                                        units, unit_ok, BLOCK_KC)  # fmt: skip
        h = tl.where(runs, _tanh(pre), h)  # the others keep h_{t-1}
        tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
        tl.store(out_ptr + slot, tl.where(live, h, 0.0).to(out_ptr.dtype.element_ty), mask=ok)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)


@triton.jit
def clockwork_backward(
    dout_ptr, h_all_ptr, w_ptr, phase_ptr, period_ptr, mask_ptr, dpre_ptr, dh_buf_ptr,
    sync_ptr, t_begin, n_steps, T, B, H,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """``BLOCK_KC`` < ``BLOCK_K`` streams W_H (kernels.py's lstm_forward)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    if ON_CHIP:
        w = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)  # masked W_H's columns
    period = tl.load(period_ptr + units, mask=unit_ok, other=1)
    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:  # what step t+1's running units send back through W_H
            # step t+1's gradients, which other programs wrote: read past L1
            base = dpre_ptr + _step_offset(t + 1, B, H)
            if ON_CHIP:
                back = _shared_tile(base, rows, ks, H, full_ok)
                dh += tl.dot(back.to(w.dtype), w, input_precision="ieee")
            else:
                dh = _streamed_product(dh, base, H, rows, row_ok, w_ptr, units, unit_ok, H, False,
                                       BLOCK_KC)  # fmt: skip
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        dh_t = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        h = tl.load(h_all_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        runs = _runs(phase_ptr, period, t, B, rows, row_ok, live, ok)
        dz = tl.where(runs, dh_t * (1.0 - h * h), 0.0)  # tanh' where the unit ran
        tl.store(dpre_ptr + slot, dz.to(dpre_ptr.dtype.element_ty), mask=ok)
        # a held unit's h_t is h_{t-1}; an ended row passes its carry by, output unused
        dh_local = tl.where(live, tl.where(runs, 0.0, dh_t), dh)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)
