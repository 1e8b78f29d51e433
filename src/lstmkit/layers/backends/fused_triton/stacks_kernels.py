"""Triton kernels of the memory-joined stacks: one layer of the depth-gated LSTM (Yao et al.
2015, Sec. 3) and one layer of 2-D Grid LSTM blocks (Kalchbrenner et al. 2015, Sec. 3.1),
forward and backward, for fused_triton/stacks.py, which imports this module on first use
(triton reads TRITON_INTERPRET when a kernel is defined; see fused_triton's docstring).

Legend: T time, B batch, H hidden, G gate blocks of H in a step's pre-activations
(depth-gated: 4 in layer 0, 5 above it, the depth gate's input part last; grid: 4 for the
time transform, 8 with the depth transform's after them), K the padded reduction length.

The layout is the LSTM kernels' (kernels.py): a program owns BLOCK_H hidden units of BLOCK_B
rows, keeps its rows of W_hh (forward) or columns (backward) on chip for every step it runs,
its own units' recurrent state in registers, and reads the full h_{t-1} (or the step's
pre-activation gradients) from global memory; with the units split over N_SPLIT > 1
programs each step ends at a grid barrier. ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh, where
a program's rows of it do not fit on chip (kernels.py's lstm_forward). What a layer takes
from below (the lower layer's c_t^L, the depth memory mu_t^{k-1}) is one more (T, B, H)
input read per unit. The equations and the backward's derivation are those of
fused_cpu/stacks.cpp.

Masks: ``mask[t, b]`` false means sequence b has ended. The recurrent state passes through
(its gradient too); what goes up at such a step is what the C++ kernels hand up: the held
c for the depth-gated layer, the depth pair computed from the held h for the grid.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lstmkit.layers.backends.fused_triton.kernels import (
    _backward_weight,
    _block_product,
    _forward_weight,
    _full_h,
    _live,
    _own_state,
    _program_tile,
    _rows_tile,
    _shared_tile,
    _sigmoid,
    _step_offset,
    _streamed_block,
    _streamed_product,
    _sync,
    _tanh,
    _tile,
)


@triton.jit
def _vector(ptr, units, unit_ok):
    """(1, BLOCK_H): a per-unit weight vector, in fp32."""
    return tl.load(ptr + units, mask=unit_ok, other=0.0).to(tl.float32)[None, :]


@triton.jit
def _load(ptr, offsets, ok):
    return tl.load(ptr + offsets, mask=ok, other=0.0).to(tl.float32)


@triton.jit
def _transform_weights(w_ptr, first, units, ks, H, unit_ok, BACKWARD: tl.constexpr):
    """One LSTM transform's four (K, BLOCK_H) tiles of W_hh, its blocks first .. first + 3
    (i, f, g, o): their rows for these units, transposed (kernels._forward_weight), or
    BACKWARD their columns (kernels._backward_weight)."""
    k_ok = ks < H
    if BACKWARD:
        w_i = _backward_weight(w_ptr, first, units, ks, H, unit_ok, k_ok)
        w_f = _backward_weight(w_ptr, first + 1, units, ks, H, unit_ok, k_ok)
        w_g = _backward_weight(w_ptr, first + 2, units, ks, H, unit_ok, k_ok)
        w_o = _backward_weight(w_ptr, first + 3, units, ks, H, unit_ok, k_ok)
    else:
        w_i = _forward_weight(w_ptr, first, units, ks, H, unit_ok, k_ok)
        w_f = _forward_weight(w_ptr, first + 1, units, ks, H, unit_ok, k_ok)
        w_g = _forward_weight(w_ptr, first + 2, units, ks, H, unit_ok, k_ok)
        w_o = _forward_weight(w_ptr, first + 3, units, ks, H, unit_ok, k_ok)
    return w_i, w_f, w_g, w_o


@triton.jit
def _transform_pre(h_prev, w_i, w_f, w_g, w_o, xg, first, H, gh, rows, units, ok):
    """One LSTM transform's four pre-activations (i, f, g, o) for these units, its blocks
    first .. first + 3 of xg and of W_hh, whose tiles are on chip."""
    return (
        _block_product(h_prev, w_i, xg, first, H, gh, rows, units, ok, True),
        _block_product(h_prev, w_f, xg, first + 1, H, gh, rows, units, ok, True),
        _block_product(h_prev, w_g, xg, first + 2, H, gh, rows, units, ok, True),
        _block_product(h_prev, w_o, xg, first + 3, H, gh, rows, units, ok, True),
    )


@triton.jit
def _streamed_transform_pre(xg, first, H, gh, h0_ptr, h_all_ptr, t, B, rows, row_ok, w_ptr,
                            units, unit_ok, ok, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                            BLOCK_KC: tl.constexpr):  # fmt: skip
    """:func:`_transform_pre` with W_hh streamed (kernels._streamed_block)."""
    sb = (H, gh, h0_ptr, h_all_ptr, t, B, rows, row_ok, w_ptr, units, unit_ok, ok)
    return (
        _streamed_block(xg, first, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC),
        _streamed_block(xg, first + 1, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC),
        _streamed_block(xg, first + 2, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC),
        _streamed_block(xg, first + 3, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC),
    )


@triton.jit
def _back(base, gate, H, rows, ks, gh, full_ok, w):
    """dL/dh_{t-1}'s share through one gate block: that block's pre-activation gradients
    of every unit at step t (written by every program) times the block's columns of W_hh."""
    d = _shared_tile(base + gate * H, rows, ks, gh, full_ok).to(w.dtype)
    return tl.dot(d, w, input_precision="ieee")


@triton.jit
def _transform_back(dh, base, first, H, rows, ks, gh, full_ok, w_i, w_f, w_g, w_o):
    """dh + what one LSTM transform's four blocks (first .. first + 3) send back to these
    units of h_{t-1} (:func:`_back`), their W_hh tiles on chip."""
    dh += _back(base, first, H, rows, ks, gh, full_ok, w_i)
    dh += _back(base, first + 1, H, rows, ks, gh, full_ok, w_f)
    dh += _back(base, first + 2, H, rows, ks, gh, full_ok, w_g)
    dh += _back(base, first + 3, H, rows, ks, gh, full_ok, w_o)
    return dh


@triton.jit
def _streamed_back(dh, base, gh, rows, row_ok, w_ptr, units, unit_ok, H,
                   N_HH: tl.constexpr, BLOCK_KC: tl.constexpr):  # fmt: skip
    """dh + what all N_HH blocks of W_hh's pre-activations at step t (``base``) send back
    to these units of h_{t-1}, W_hh streamed (kernels._streamed_product)."""
    for q in tl.static_range(N_HH):
        dh = _streamed_product(dh, base + q * H, gh, rows, row_ok, w_ptr + q * H * H, units,
                               unit_ok, H, False, BLOCK_KC)  # fmt: skip
    return dh


# -- depth-gated LSTM ----------------------------------------------------------------------
#
# z = xg[t] + h_{t-1} W_hh^T (4H): i, f, o = sigma, g = tanh; above layer 0 the depth gate
# d = sigma(xg[t][4H:5H] + w_cd c_{t-1} + w_ld c^L_t) (its input part x W_xd^T + b_d is
# precomputed); c_t = f c_{t-1} + i g (+ d c^L_t), h_t = o tanh(c_t).


@triton.jit
def depth_gated_forward(
    xg_ptr, w_ptr, h0_ptr, c0_ptr, lower_ptr, wcd_ptr, wld_ptr, mask_ptr,
    acts_ptr, c_all_ptr, h_all_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    DEPTH: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin .. t_begin + n_steps - 1. Stores the gates as applied (acts, G*H), and
    the carried c_t and h_t (held past a sequence's end; the layer zeroes its output)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    N_BLOCKS: tl.constexpr = 5 if DEPTH else 4
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = N_BLOCKS * H

    if ON_CHIP:
        w_i, w_f, w_g, w_o = _transform_weights(w_ptr, 0, units, ks, H, unit_ok, False)
    if DEPTH:  # the depth gate's diagonal weights on c_{t-1} and c^L_t
        p_cd = _vector(wcd_ptr, units, unit_ok)
        p_ld = _vector(wld_ptr, units, unit_ok)

    c = _own_state(c0_ptr, c_all_ptr, t_begin, B, H, rows, units, ok)
    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        at = (H, gh, rows, units, ok)
        if ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_i.dtype)
            z_i, z_f, z_g, z_o = _transform_pre(h_prev, w_i, w_f, w_g, w_o, xg, 0, *at)
        else:
            sb = (H, gh, h0_ptr, h_all_ptr, t, B, rows, row_ok, w_ptr, units, unit_ok, ok)
            z_i, z_f, z_g, z_o = _streamed_transform_pre(xg, 0, *sb, BLOCK_B, BLOCK_H, BLOCK_KC)
        i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), _tanh(z_g), _sigmoid(z_o)
        c_new = f * c + i * g
        acts = acts_ptr + _tile(t, B, gh, rows, units)
        ty = acts_ptr.dtype.element_ty
        slot = _tile(t, B, H, rows, units)
        if DEPTH:  # Sec. 3: the gated linear path from the memory cell below
            c_low = _load(lower_ptr, slot, ok)
            z_d = _rows_tile(xg + 4 * H, rows, units, gh, ok).to(tl.float32)
            d = _sigmoid(z_d + p_cd * c + p_ld * c_low)
            c_new += d * c_low
            tl.store(acts + 4 * H, d.to(ty), mask=ok)
        h_new = o * _tanh(c_new)
        tl.store(acts, i.to(ty), mask=ok)
        tl.store(acts + H, f.to(ty), mask=ok)
        tl.store(acts + 2 * H, g.to(ty), mask=ok)
        tl.store(acts + 3 * H, o.to(ty), mask=ok)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        c = tl.where(live, c_new, c)
        h = tl.where(live, h_new, h)
        tl.store(c_all_ptr + slot, c.to(c_all_ptr.dtype.element_ty), mask=ok)
        tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)


@triton.jit
def depth_gated_backward(
    dhs_ptr, dcs_ptr, acts_ptr, c_all_ptr, c0_ptr, lower_ptr, w_ptr, wcd_ptr, wld_ptr,
    mask_ptr, dz_ptr, dlow_ptr, dh_buf_ptr, dc_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    DEPTH: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... (n_steps of them). ``dhs``, ``dcs`` (T, B, H): the
    gradients of the carried h_t and c_t as handed on (output, the cell for the layer
    above). Writes dz (T, B, G*H) and, with DEPTH, dL/dc^L_t (T, B, H); the fp32 buffers
    carry between launches the part of dL/dh_t that does not go through W_hh, and dL/dc_t."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    N_BLOCKS: tl.constexpr = 5 if DEPTH else 4
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = N_BLOCKS * H

    if ON_CHIP:
        w_i, w_f, w_g, w_o = _transform_weights(w_ptr, 0, units, ks, H, unit_ok, True)
    if DEPTH:
        p_cd = _vector(wcd_ptr, units, unit_ok)
        p_ld = _vector(wld_ptr, units, unit_ok)

    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    dc = _rows_tile(dc_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:  # what step t+1's four LSTM blocks send back through W_hh
            base = dz_ptr + _step_offset(t + 1, B, gh)
            if ON_CHIP:
                dh = _transform_back(dh, base, 0, H, rows, ks, gh, full_ok, w_i, w_f, w_g, w_o)
            else:
                dh = _streamed_back(dh, base, gh, rows, row_ok, w_ptr, units, unit_ok, H, 4,
                                    BLOCK_KC)  # fmt: skip
        slot = _tile(t, B, H, rows, units)
        # the carried h_t and c_t were handed on as well
        dh_t = dh + _load(dhs_ptr, slot, ok)
        dc_t = dc + _load(dcs_ptr, slot, ok)
        acts = acts_ptr + _tile(t, B, gh, rows, units)
        i = _load(acts, 0, ok)
        f = _load(acts + H, 0, ok)
        g = _load(acts + 2 * H, 0, ok)
        o = _load(acts + 3 * H, 0, ok)
        s = _tanh(_load(c_all_ptr, slot, ok))  # recomputed: cheaper than keeping it
        c_prev = _own_state(c0_ptr, c_all_ptr, t, B, H, rows, units, ok)
        dz_o = dh_t * s * o * (1.0 - o)  # h = o tanh(c)
        dct = dc_t + dh_t * o * (1.0 - s * s)
        dz_i = dct * g * i * (1.0 - i)  # c = f c_{t-1} + i g (+ d c^L)
        dz_f = dct * c_prev * f * (1.0 - f)
        dz_g = dct * i * (1.0 - g * g)
        dc_prev = dct * f

        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        out = dz_ptr + _tile(t, B, gh, rows, units)
        ty = dz_ptr.dtype.element_ty
        if DEPTH:  # d = sigma(... + w_cd c_{t-1} + w_ld c^L_t) adds d c^L_t
            d = _load(acts + 4 * H, 0, ok)
            c_low = _load(lower_ptr, slot, ok)
            dz_d = dct * c_low * d * (1.0 - d)
            dc_prev += dz_d * p_cd
            d_low = dct * d + dz_d * p_ld
            tl.store(out + 4 * H, tl.where(live, dz_d, 0.0).to(ty), mask=ok)
            tl.store(dlow_ptr + slot, tl.where(live, d_low, 0.0).to(ty), mask=ok)
        tl.store(out, tl.where(live, dz_i, 0.0).to(ty), mask=ok)
        tl.store(out + H, tl.where(live, dz_f, 0.0).to(ty), mask=ok)
        tl.store(out + 2 * H, tl.where(live, dz_g, 0.0).to(ty), mask=ok)
        tl.store(out + 3 * H, tl.where(live, dz_o, 0.0).to(ty), mask=ok)
        # an ended row held its state: both gradients pass by
        dc = tl.where(live, dc_prev, dc_t)
        dh_local = tl.where(live, 0.0, dh_t)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)
    tl.store(dc_buf_ptr + rows[:, None] * H + units[None, :], dc, mask=ok)


# -- 2-D Grid LSTM blocks ------------------------------------------------------------------
#
# Both transforms read H = [u_t ; h_{t-1}]: their pre-activations are xg[t] + h_{t-1}
# [W_hh; W_dhh]^T (4H or 8H). Sec. 2.1's LSTM on each: m' = f m + i g, h' = o tanh(m')
# (torch's form) or tanh(o m') (as printed, PRINTED). The time transform carries (h, m);
# the depth transform turns mu^{k-1}_t (0 without HAS_LOWER) into (eta, mu), which go up.


@triton.jit
def _transform_output(o, m, PRINTED: tl.constexpr):
    if PRINTED:  # Sec. 2.1 as printed: the output gate inside the tanh
        out = _tanh(o * m)
    else:
        out = o * _tanh(m)
    return out


@triton.jit
def _transform_backward(i, f, g, o, m, m_prev, dh, dm, PRINTED: tl.constexpr):
    """One transform's pre-activation gradients and dL/dm_prev, from the gradients dh, dm
    of its outputs (h', m'); the gates as applied, its new memory m and old one m_prev."""
    if PRINTED:  # h = tanh(o m)
        s = _tanh(o * m)
        dmt = dm + dh * (1.0 - s * s) * o
        dz_o = dh * (1.0 - s * s) * m * o * (1.0 - o)
    else:  # h = o tanh(m)
        s = _tanh(m)
        dmt = dm + dh * o * (1.0 - s * s)
        dz_o = dh * s * o * (1.0 - o)
    dz_i = dmt * g * i * (1.0 - i)
    dz_f = dmt * m_prev * f * (1.0 - f)
    dz_g = dmt * i * (1.0 - g * g)
    return dz_i, dz_f, dz_g, dz_o, dmt * f


@triton.jit
def grid_forward(
    xg_ptr, w_ptr, h0_ptr, m0_ptr, lower_ptr, mask_ptr,
    acts_ptr, m_all_ptr, h_all_ptr, eta_ptr, mu_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    DEPTH: tl.constexpr, HAS_LOWER: tl.constexpr, PRINTED: tl.constexpr,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin .. t_begin + n_steps - 1. Stores the gates of both transforms (acts,
    G*H), the carried time pair (m_all, h_all; held past a sequence's end) and, with DEPTH,
    the depth pair (eta, mu) of every step."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    N_BLOCKS: tl.constexpr = 8 if DEPTH else 4
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = N_BLOCKS * H

    if ON_CHIP:
        w_i, w_f, w_g, w_o = _transform_weights(w_ptr, 0, units, ks, H, unit_ok, False)
        if DEPTH:
            v_i, v_f, v_g, v_o = _transform_weights(w_ptr, 4, units, ks, H, unit_ok, False)

    m = _own_state(m0_ptr, m_all_ptr, t_begin, B, H, rows, units, ok)
    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        acts = acts_ptr + _tile(t, B, gh, rows, units)
        ty = acts_ptr.dtype.element_ty
        slot = _tile(t, B, H, rows, units)
        at = (H, gh, rows, units, ok)
        sb = (H, gh, h0_ptr, h_all_ptr, t, B, rows, row_ok, w_ptr, units, unit_ok, ok)
        # the time transform: (h^k_t, m^k_t) = LSTM(H, m^k_{t-1})
        if ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_i.dtype)
            z_i, z_f, z_g, z_o = _transform_pre(h_prev, w_i, w_f, w_g, w_o, xg, 0, *at)
        else:
            z_i, z_f, z_g, z_o = _streamed_transform_pre(xg, 0, *sb, BLOCK_B, BLOCK_H, BLOCK_KC)
        i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), _tanh(z_g), _sigmoid(z_o)
        m_new = f * m + i * g
        h_new = _transform_output(o, m_new, PRINTED)
        tl.store(acts, i.to(ty), mask=ok)
        tl.store(acts + H, f.to(ty), mask=ok)
        tl.store(acts + 2 * H, g.to(ty), mask=ok)
        tl.store(acts + 3 * H, o.to(ty), mask=ok)
        if DEPTH:  # the depth transform: (eta^k_t, mu^k_t) = LSTM(H, mu^{k-1}_t)
            if ON_CHIP:
                e_i, e_f, e_g, e_o = _transform_pre(h_prev, v_i, v_f, v_g, v_o, xg, 4, *at)
            else:
                e_i, e_f, e_g, e_o = _streamed_transform_pre(xg, 4, *sb, BLOCK_B, BLOCK_H,
                                                             BLOCK_KC)  # fmt: skip
            di, df, dg, do = _sigmoid(e_i), _sigmoid(e_f), _tanh(e_g), _sigmoid(e_o)
            mu = di * dg
            if HAS_LOWER:  # mu^{-1} = 0 at the bottom
                mu += df * _load(lower_ptr, slot, ok)
            eta = _transform_output(do, mu, PRINTED)
            tl.store(acts + 4 * H, di.to(ty), mask=ok)
            tl.store(acts + 5 * H, df.to(ty), mask=ok)
            tl.store(acts + 6 * H, dg.to(ty), mask=ok)
            tl.store(acts + 7 * H, do.to(ty), mask=ok)
            tl.store(mu_ptr + slot, mu.to(ty), mask=ok)
            tl.store(eta_ptr + slot, eta.to(ty), mask=ok)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        m = tl.where(live, m_new, m)
        h = tl.where(live, h_new, h)
        tl.store(m_all_ptr + slot, m.to(ty), mask=ok)
        tl.store(h_all_ptr + slot, h.to(ty), mask=ok)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)


@triton.jit
def grid_backward(
    dhs_ptr, deta_ptr, dmu_ptr, acts_ptr, m_all_ptr, mu_ptr, lower_ptr, m0_ptr, w_ptr,
    mask_ptr, dz_ptr, dlow_ptr, dh_buf_ptr, dm_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    DEPTH: tl.constexpr, HAS_LOWER: tl.constexpr, PRINTED: tl.constexpr,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... (n_steps of them). ``dhs`` (T, B, H): the gradient of
    the carried h_t as handed on; ``deta``, ``dmu``: of the depth pair. Writes dz (T, B,
    G*H) and, with HAS_LOWER, dL/dmu^{k-1}_t (T, B, H); the fp32 buffers carry between
    launches the part of dL/dh_t that does not go through W_hh, and dL/dm_t."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    N_BLOCKS: tl.constexpr = 8 if DEPTH else 4
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = N_BLOCKS * H

    if ON_CHIP:
        w_i, w_f, w_g, w_o = _transform_weights(w_ptr, 0, units, ks, H, unit_ok, True)
        if DEPTH:
            v_i, v_f, v_g, v_o = _transform_weights(w_ptr, 4, units, ks, H, unit_ok, True)

    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    dm = _rows_tile(dm_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:  # both transforms read h_t at step t+1: every block sends back
            base = dz_ptr + _step_offset(t + 1, B, gh)
            if ON_CHIP:
                dh = _transform_back(dh, base, 0, H, rows, ks, gh, full_ok, w_i, w_f, w_g, w_o)
                if DEPTH:
                    dh = _transform_back(dh, base, 4, H, rows, ks, gh, full_ok, v_i, v_f, v_g, v_o)
            else:
                dh = _streamed_back(dh, base, gh, rows, row_ok, w_ptr, units, unit_ok, H,
                                    N_BLOCKS, BLOCK_KC)  # fmt: skip
        slot = _tile(t, B, H, rows, units)
        dh_t = dh + _load(dhs_ptr, slot, ok)  # the carried h_t was handed on as well
        acts = acts_ptr + _tile(t, B, gh, rows, units)
        out = dz_ptr + _tile(t, B, gh, rows, units)
        ty = dz_ptr.dtype.element_ty
        m_prev = _own_state(m0_ptr, m_all_ptr, t, B, H, rows, units, ok)
        dz_i, dz_f, dz_g, dz_o, dm_prev = _transform_backward(
            _load(acts, 0, ok), _load(acts + H, 0, ok), _load(acts + 2 * H, 0, ok),
            _load(acts + 3 * H, 0, ok), _load(m_all_ptr, slot, ok), m_prev, dh_t, dm, PRINTED,
        )  # fmt: skip
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        tl.store(out, tl.where(live, dz_i, 0.0).to(ty), mask=ok)
        tl.store(out + H, tl.where(live, dz_f, 0.0).to(ty), mask=ok)
        tl.store(out + 2 * H, tl.where(live, dz_g, 0.0).to(ty), mask=ok)
        tl.store(out + 3 * H, tl.where(live, dz_o, 0.0).to(ty), mask=ok)
        if DEPTH:  # the depth transform runs at every step: its outputs go up even past the end
            if HAS_LOWER:
                mu_low = _load(lower_ptr, slot, ok)
            else:
                mu_low = tl.full((BLOCK_B, BLOCK_H), 0.0, tl.float32)  # not tl.zeros: see _sigmoid
            ez_i, ez_f, ez_g, ez_o, d_low = _transform_backward(
                _load(acts + 4 * H, 0, ok), _load(acts + 5 * H, 0, ok),
                _load(acts + 6 * H, 0, ok), _load(acts + 7 * H, 0, ok),
                _load(mu_ptr, slot, ok), mu_low, _load(deta_ptr, slot, ok),
                _load(dmu_ptr, slot, ok), PRINTED,
            )  # fmt: skip
            tl.store(out + 4 * H, ez_i.to(ty), mask=ok)
            tl.store(out + 5 * H, ez_f.to(ty), mask=ok)
            tl.store(out + 6 * H, ez_g.to(ty), mask=ok)
            tl.store(out + 7 * H, ez_o.to(ty), mask=ok)
            if HAS_LOWER:
                tl.store(dlow_ptr + slot, d_low.to(ty), mask=ok)
        # an ended row held its time pair: both gradients pass by
        dm = tl.where(live, dm_prev, dm)
        dh_local = tl.where(live, 0.0, dh_t)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)
    tl.store(dm_buf_ptr + rows[:, None] * H + units[None, :], dm, mask=ok)
