"""Triton kernels of the sLSTM (Beck et al. 2024, "xLSTM", Sec. 2.2): the forward time loop
and its backward, for fused_triton/slstm.py, which imports this module on first use (triton
reads TRITON_INTERPRET when a kernel is defined; see fused_triton's docstring). The layout,
what is kept and the backward's equations are described there and in fused_cpu/slstm.cpp.

Legend: T time, B batch, H hidden, D units per head, G = 4 gate blocks (i, f, z, o).
"""

from __future__ import annotations

import triton
import triton.language as tl

from lstmkit.layers.backends.fused_triton.kernels import (
    _full_h,
    _live,
    _own_state,
    _program_tile,
    _rows_tile,
    _shared_tile,
    _sigmoid,
    _step_offset,
    _sync,
    _tanh,
    _tile,
)


@triton.jit
def _block_weight(w_ptr, gate, ks, units, H, D, FORWARD: tl.constexpr):
    """(BLOCK_K, BLOCK_H) of the gate's block-diagonal R (stored as (G, K, D, D)), zero
    where a row and a column belong to different heads. FORWARD: R^T's rows ks and
    columns units (h_{t-1} R^T); else R's rows ks, columns units (dpre R)."""
    same_head = (ks // D)[:, None] == (units // D)[None, :]
    ok = same_head & (ks < H)[:, None] & (units < H)[None, :]
    if FORWARD:  # element (k, u) = R[u, k] = w[g, u // D, u % D, k % D]
        offset = units[None, :] * D + (ks % D)[:, None]
    else:  # element (k, u) = R[k, u] = w[g, k // D, k % D, u % D]
        offset = ks[:, None] * D + (units % D)[None, :]
    return tl.load(w_ptr + gate * H * D + offset, mask=ok, other=0.0)


@triton.jit
def _heads_columns(row_ok, H, D, BLOCK_H: tl.constexpr, BLOCK_S: tl.constexpr):
    """The columns of R a program's units need, R being block-diagonal: ``BLOCK_S`` from
    the first column of the first unit's head (the host makes BLOCK_S cover every unit's
    head, slstm.py's ``_heads_span``), and the mask of the (rows, columns) tile."""
    first = tl.program_id(1) * BLOCK_H
    ks = (first // D) * D + tl.arange(0, BLOCK_S)
    return ks, row_ok[:, None] & (ks < H)[None, :]


@triton.jit
def _streamed_heads(acc, src_ptr, all_ptr, t, B, stride, rows, row_ok, w_ptr, gate, units, H, D,
                    FORWARD: tl.constexpr, BLOCK_H: tl.constexpr,
                    BLOCK_KC: tl.constexpr):  # fmt: skip
    """acc + the gate's product for these units with R streamed (kernels.py's
    _streamed_forward): FORWARD, h_{t-1} R^T, h_{t-1} read as _full_h reads it from
    ``src_ptr`` (h0) and ``all_ptr``; else dpre R, dpre the gate's (B, H) gradients at
    ``src_ptr``, rows ``stride`` apart, read past L1. R is block-diagonal, so only the
    columns of the heads these units belong to are read, BLOCK_KC at a time."""
    first = tl.program_id(1) * BLOCK_H
    k_begin = (first // D) * D
    k_end = tl.minimum(H, ((first + BLOCK_H - 1) // D + 1) * D)
    for k0 in range(k_begin, k_end, BLOCK_KC):
        kc = k0 + tl.arange(0, BLOCK_KC)
        kc_ok = row_ok[:, None] & (kc < k_end)[None, :]
        if FORWARD:
            s_c = _full_h(src_ptr, all_ptr, t, B, H, rows, kc, kc_ok)
        else:
            s_c = _shared_tile(src_ptr, rows, kc, stride, kc_ok)
        w_c = _block_weight(w_ptr, gate, kc, units, H, D, FORWARD)
        acc += tl.dot(s_c.to(w_c.dtype), w_c, input_precision="ieee")
    return acc


@triton.jit
def slstm_forward(
    xg_ptr, w_ptr, h0_ptr, c0_ptr, n0_ptr, m0_ptr, mask_ptr,
    acts_ptr, aux_ptr, c_all_ptr, n_all_ptr, m_all_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H, D,
    STABILIZED: tl.constexpr, EXP_FORGET: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    BLOCK_S: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin .. t_begin + n_steps - 1 of cellmath/slstm.py's equations. ``BLOCK_KC``
    < ``BLOCK_K`` streams R (:func:`_streamed_heads`); on chip, the products reduce over
    the ``BLOCK_S`` columns from the first of these units' heads (:func:`_heads_columns`)."""
    pid_b, rows, units, ks, row_ok, _, ok, full_ok = _program_tile(B, H, BLOCK_B, BLOCK_H, BLOCK_K)
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = 4 * H
    if ON_CHIP:
        # a span as wide as the padded H (one head, or heads wider than the units) is every
        # column from 0, as a dense tile's: a start from the program's index would cost
        # registers and spills for nothing
        if BLOCK_S < BLOCK_K:
            ks, full_ok = _heads_columns(row_ok, H, D, BLOCK_H, BLOCK_S)
        w_i = _block_weight(w_ptr, 0, ks, units, H, D, True)
        w_f = _block_weight(w_ptr, 1, ks, units, H, D, True)
        w_z = _block_weight(w_ptr, 2, ks, units, H, D, True)
        w_o = _block_weight(w_ptr, 3, ks, units, H, D, True)

    c = _own_state(c0_ptr, c_all_ptr, t_begin, B, H, rows, units, ok)
    n = _own_state(n0_ptr, n_all_ptr, t_begin, B, H, rows, units, ok)
    m = _own_state(m0_ptr, m_all_ptr, t_begin, B, H, rows, units, ok)
    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        pre_i = _rows_tile(xg, rows, units, gh, ok).to(tl.float32)
        pre_f = _rows_tile(xg + H, rows, units, gh, ok).to(tl.float32)
        pre_z = _rows_tile(xg + 2 * H, rows, units, gh, ok).to(tl.float32)
        pre_o = _rows_tile(xg + 3 * H, rows, units, gh, ok).to(tl.float32)
        if ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_i.dtype)
            pre_i += tl.dot(h_prev, w_i, input_precision="ieee")
            pre_f += tl.dot(h_prev, w_f, input_precision="ieee")
            pre_z += tl.dot(h_prev, w_z, input_precision="ieee")
            pre_o += tl.dot(h_prev, w_o, input_precision="ieee")
        else:
            hs = (h0_ptr, h_all_ptr, t, B, H, rows, row_ok, w_ptr)
            pre_i = _streamed_heads(pre_i, *hs, 0, units, H, D, True, BLOCK_H, BLOCK_KC)
            pre_f = _streamed_heads(pre_f, *hs, 1, units, H, D, True, BLOCK_H, BLOCK_KC)
            pre_z = _streamed_heads(pre_z, *hs, 2, units, H, D, True, BLOCK_H, BLOCK_KC)
            pre_o = _streamed_heads(pre_o, *hs, 3, units, H, D, True, BLOCK_H, BLOCK_KC)
        z = _tanh(pre_z)
        o = _sigmoid(pre_o)
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        if STABILIZED:
            if EXP_FORGET:
                log_f = pre_f
                slope = tl.full(pre_f.shape, 1.0, tl.float32)
            else:  # log sigma(f~) without overflow or log(0): min(f~, 0) - log1p(e^-|f~|)
                log_f = tl.minimum(pre_f, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(pre_f)))
                slope = _sigmoid(-pre_f)  # d log sigma(f~) / d f~
            a = log_f + m
            m_new = tl.maximum(a, pre_i)
            share = tl.where(a > pre_i, 1.0, tl.where(a < pre_i, 0.0, 0.5))
            i = tl.exp(pre_i - m_new)
            f = tl.exp(a - m_new)
            aux = aux_ptr + _tile(t, B, 2 * H, rows, units)
            tl.store(aux, share.to(aux_ptr.dtype.element_ty), mask=ok)
            tl.store(aux + H, slope.to(aux_ptr.dtype.element_ty), mask=ok)
        else:  # the plain form on the fixed scale m_{t-1}
            m_new = m
            i = tl.exp(pre_i - m)
            if EXP_FORGET:
                f = tl.exp(pre_f)
            else:
                f = _sigmoid(pre_f)
        c_new = f * c + i * z
        n_new = f * n + i
        h_new = o * (c_new / n_new)

        acts = acts_ptr + _tile(t, B, gh, rows, units)
        ty = acts_ptr.dtype.element_ty
        tl.store(acts, i.to(ty), mask=ok)
        tl.store(acts + H, f.to(ty), mask=ok)
        tl.store(acts + 2 * H, z.to(ty), mask=ok)
        tl.store(acts + 3 * H, o.to(ty), mask=ok)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        c = tl.where(live, c_new, c)
        n = tl.where(live, n_new, n)
        m = tl.where(live, m_new, m)
        h = tl.where(live, h_new, h)
        tl.store(c_all_ptr + slot, c.to(ty), mask=ok)
        tl.store(n_all_ptr + slot, n.to(ty), mask=ok)
        tl.store(m_all_ptr + slot, m.to(ty), mask=ok)
        tl.store(h_all_ptr + slot, h.to(ty), mask=ok)
        tl.store(out_ptr + slot, tl.where(live, h_new, 0.0).to(ty), mask=ok)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)


@triton.jit
def slstm_backward(
    dout_ptr, acts_ptr, aux_ptr, c_all_ptr, n_all_ptr, c0_ptr, n0_ptr, w_ptr, mask_ptr,
    dpre_ptr, dh_buf_ptr, dc_buf_ptr, dn_buf_ptr, dm_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H, D,
    STABILIZED: tl.constexpr, EXP_FORGET: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    BLOCK_S: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... (n_steps of them). Writes dpre (T, B, G*H); the
    fp32 buffers carry dL/dh's pass-by part and dL/dc, dL/dn, dL/dm between launches.
    ``BLOCK_KC`` < ``BLOCK_K`` streams R (:func:`_streamed_heads`); on chip, as forwards."""
    pid_b, rows, units, ks, row_ok, _, ok, full_ok = _program_tile(B, H, BLOCK_B, BLOCK_H, BLOCK_K)
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = 4 * H
    if ON_CHIP:
        if BLOCK_S < BLOCK_K:  # as forwards
            ks, full_ok = _heads_columns(row_ok, H, D, BLOCK_H, BLOCK_S)
        w_i = _block_weight(w_ptr, 0, ks, units, H, D, False)
        w_f = _block_weight(w_ptr, 1, ks, units, H, D, False)
        w_z = _block_weight(w_ptr, 2, ks, units, H, D, False)
        w_o = _block_weight(w_ptr, 3, ks, units, H, D, False)

    own = rows[:, None] * H + units[None, :]
    dh_local = tl.load(dh_buf_ptr + own, mask=ok, other=0.0)
    dc = tl.load(dc_buf_ptr + own, mask=ok, other=0.0)
    dn = tl.load(dn_buf_ptr + own, mask=ok, other=0.0)
    dm = tl.load(dm_buf_ptr + own, mask=ok, other=0.0)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:  # what step t+1's pre-activations send back through R
            base = dpre_ptr + _step_offset(t + 1, B, gh)
            if ON_CHIP:
                back_i = _shared_tile(base, rows, ks, gh, full_ok).to(w_i.dtype)
                dh += tl.dot(back_i, w_i, input_precision="ieee")
                back_f = _shared_tile(base + H, rows, ks, gh, full_ok).to(w_i.dtype)
                dh += tl.dot(back_f, w_f, input_precision="ieee")
                back_z = _shared_tile(base + 2 * H, rows, ks, gh, full_ok).to(w_i.dtype)
                dh += tl.dot(back_z, w_z, input_precision="ieee")
                back_o = _shared_tile(base + 3 * H, rows, ks, gh, full_ok).to(w_i.dtype)
                dh += tl.dot(back_o, w_o, input_precision="ieee")
            else:
                at = (dpre_ptr, t, B, gh, rows, row_ok, w_ptr)  # all_ptr, t, B: read forwards only
                for q in tl.static_range(4):
                    dh = _streamed_heads(dh, base + q * H, *at, q, units, H, D, False, BLOCK_H,
                                         BLOCK_KC)  # fmt: skip
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        g_h = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        acts = acts_ptr + _tile(t, B, gh, rows, units)
        i = tl.load(acts, mask=ok, other=0.0).to(tl.float32)
        f = tl.load(acts + H, mask=ok, other=0.0).to(tl.float32)
        z = tl.load(acts + 2 * H, mask=ok, other=0.0).to(tl.float32)
        o = tl.load(acts + 3 * H, mask=ok, other=0.0).to(tl.float32)
        c = tl.load(c_all_ptr + slot, mask=ok, other=1.0).to(tl.float32)
        n = tl.load(n_all_ptr + slot, mask=ok, other=1.0).to(tl.float32)
        c_prev = _own_state(c0_ptr, c_all_ptr, t, B, H, rows, units, ok)
        n_prev = _own_state(n0_ptr, n_all_ptr, t, B, H, rows, units, ok)
        q = c / n
        d_pre_o = g_h * q * o * (1.0 - o)  # h = o c / n
        dct = dc + g_h * o / n
        dnt = dn - g_h * o * q / n
        d_i = dct * z + dnt  # c = f c' + i z, n = f n' + i
        d_f = dct * c_prev + dnt * n_prev
        d_pre_z = dct * i * (1.0 - z * z)
        if STABILIZED:
            aux = aux_ptr + _tile(t, B, 2 * H, rows, units)
            share = tl.load(aux, mask=ok, other=0.0).to(tl.float32)
            slope = tl.load(aux + H, mask=ok, other=0.0).to(tl.float32)
            g_a = d_f * f
            g_i = d_i * i
            g_m = dm - g_a - g_i  # m scales both gates and is a state itself
            g_a += share * g_m  # the max: torch.maximum's split
            g_i += (1.0 - share) * g_m
            d_pre_i = g_i
            d_pre_f = g_a * slope
            dm_prev = g_a
        else:
            d_pre_i = d_i * i
            if EXP_FORGET:
                d_pre_f = d_f * f
            else:
                d_pre_f = d_f * f * (1.0 - f)
            dm_prev = dm - d_i * i

        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        out = dpre_ptr + _tile(t, B, gh, rows, units)
        ty = dpre_ptr.dtype.element_ty
        tl.store(out, tl.where(live, d_pre_i, 0.0).to(ty), mask=ok)
        tl.store(out + H, tl.where(live, d_pre_f, 0.0).to(ty), mask=ok)
        tl.store(out + 2 * H, tl.where(live, d_pre_z, 0.0).to(ty), mask=ok)
        tl.store(out + 3 * H, tl.where(live, d_pre_o, 0.0).to(ty), mask=ok)
        dc = tl.where(live, dct * f, dc)
        dn = tl.where(live, dnt * f, dn)
        dm = tl.where(live, dm_prev, dm)
        dh_local = tl.where(live, 0.0, dh)  # an ended row passes its gradient by
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + own, dh_local, mask=ok)
    tl.store(dc_buf_ptr + own, dc, mask=ok)
    tl.store(dn_buf_ptr + own, dn, mask=ok)
    tl.store(dm_buf_ptr + own, dm, mask=ok)
