"""Triton kernels for the recurrence of the LSTM family, the GRU (torch's form and Cho et
al.'s), the MGU and the RNN.

Legend: T time, B batch, H hidden, G gate blocks (LSTM 1 to 4, one per gate with weights;
GRU 3; MGU 2; RNN 1), K the padded reduction length (H rounded up to a power of two).

The grid is (batch blocks, hidden blocks). A program owns ``BLOCK_H`` hidden units of
``BLOCK_B`` batch rows: it loads its rows of ``W_hh`` (every gate's, G x K x BLOCK_H) once,
before the time loop, and keeps them on chip for all the steps it runs (persistent kernel).
Its own units' C and h stay in registers too; only the full h_{t-1}, which every program
needs for the product, goes through global memory. When the hidden units are split over
several programs, each step ends with a barrier across the programs of a batch block
(:func:`_sync`), so that the next step reads a complete h_t.

``N_SPLIT`` is the number of programs that meet at that barrier (1: none). The same
kernels also run one step per launch (``n_steps`` = 1, ``N_SPLIT`` = 1), where the launch
boundary is the barrier: the caller does so when the programs of a batch block cannot all
be resident at once (the spin barrier would never open) and under ``TRITON_INTERPRET=1``, which runs
programs one after another.

Backward kernels run time backwards with the columns of ``W_hh`` on chip: a program's
share of dL/dh_{t-1} is the product of every unit's pre-activation gradient at step t with
its columns. What is local to a unit (dL/dC, the GRU's z h_{t-1} path, a finished
sequence's pass-through) is carried in ``dh_local``/``dc`` and, across launches, in fp32
buffers. Elementwise math and the products' accumulation are fp32 whatever the storage
dtype; fp32 products use IEEE precision, not TF32, to match the
reference.

Masks: ``mask[t, b]`` false means sequence b has ended. Its state passes through, its
output is 0, its gradients pass through and its pre-activation gradients are 0.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _sync(sync_ptr, step, N_SPLIT: tl.constexpr):
    """Grid barrier over the N_SPLIT programs that share one batch block: each adds 1 to
    the block's counter after its stores, then waits for all the step's arrivals."""
    tl.debug_barrier()
    count = tl.atomic_add(sync_ptr, 1, sem="acq_rel", scope="gpu") + 1
    target = (step + 1) * N_SPLIT
    while count < target:
        count = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()


@triton.jit
def _sigmoid(x):
    # tl.sigmoid's own formula. It is defined here because triton.language's helpers are
    # decorated when triton is first imported: if that was before TRITON_INTERPRET was set,
    # they stay compiled-only and the interpreter cannot call them. This module is imported
    # when the kernels are first used, so its helpers follow the setting at that time.
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    # triton.language has no tanh; this identity is exact in real arithmetic and loses
    # only rounding near 0 (absolute error ~1e-7 in fp32)
    return 2.0 * _sigmoid(2.0 * x) - 1.0


@triton.jit
def _rows_tile(ptr, rows, cols, stride, ok):
    """A (rows, cols) tile of a row-major matrix with ``stride`` elements per row."""
    return tl.load(ptr + rows[:, None].to(tl.int64) * stride + cols[None, :], mask=ok, other=0.0)


@triton.jit
def _forward_weight(w_ptr, gate, units, ks, H, unit_ok, k_ok):
    """(K, BLOCK_H): the gate's rows of W_hh (G*H, H) for these units, transposed."""
    rows = gate * H + units
    ok = k_ok[:, None] & unit_ok[None, :]
    return tl.load(w_ptr + rows[None, :] * H + ks[:, None], mask=ok, other=0.0)


@triton.jit
def _backward_weight(w_ptr, gate, units, ks, H, unit_ok, k_ok):
    """(K, BLOCK_H): the gate's block of W_hh (G*H, H), rows over every unit k, columns
    these units."""
    rows = gate * H + ks
    ok = k_ok[:, None] & unit_ok[None, :]
    return tl.load(w_ptr + rows[:, None] * H + units[None, :], mask=ok, other=0.0)


@triton.jit
def _step_offset(t, B, width):
    return t.to(tl.int64) * B * width


@triton.jit
def _live(mask_ptr, t, B, rows, row_ok, HAS_MASK: tl.constexpr):
    """(BLOCK_B, 1) true where the sequence has not ended at step t."""
    if HAS_MASK:
        keep = tl.load(mask_ptr + t.to(tl.int64) * B + rows, mask=row_ok, other=0) != 0
    else:
        keep = rows >= 0
    return keep[:, None]


@triton.jit
def _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, ok):
    """h_{t-1} for all K columns: h0 at t = 0, else the previous step's stored state, read
    past the L1 cache, which other programs' stores do not update."""
    if t == 0:
        h = tl.load(h0_ptr + rows[:, None] * H + ks[None, :], mask=ok, other=0.0)
    else:
        base = h_all_ptr + _step_offset(t - 1, B, H)
        h = tl.load(
            base + rows[:, None] * H + ks[None, :], mask=ok, other=0.0, cache_modifier=".cg"
        )
    return h


@triton.jit
def _own_state(first_ptr, all_ptr, t, B, H, rows, units, ok):
    """This program's slice of a state after step t-1: ``first`` at t = 0, else step t-1's."""
    if t == 0:
        s = _rows_tile(first_ptr, rows, units, H, ok)
    else:
        s = _rows_tile(all_ptr + _step_offset(t - 1, B, H), rows, units, H, ok)
    return s.to(tl.float32)


# -- LSTM family ---------------------------------------------------------------------------
#
# Which parts of the cell exist is compile-time (constexpr) flags, so each variant compiles
# to its own kernel with no branch on them at run time: HAS_I, HAS_F (a forget block of its
# own), COUPLED (CIFG: f = 1 - i), HAS_O, SQUASH_IN (C~ = tanh(z_g); off for Greff et al.'s
# NIAF, where C~ = z_g) and SQUASH_OUT (h = o tanh(C); off for NOAF, h = o C). A gate
# without a block is 1 (NIG: i = 1, NOG: o = 1). The blocks present keep the order
# (i, f, g, o).


@triton.jit
def _peephole(p_ptr, units, unit_ok):
    """(1, BLOCK_H): one gate's peephole weights for these units, in fp32."""
    return tl.load(p_ptr + units, mask=unit_ok, other=0.0).to(tl.float32)[None, :]


@triton.jit
def lstm_forward(
    xg_ptr, w_ptr, h0_ptr, c0_ptr, pi_ptr, pf_ptr, po_ptr, mask_ptr,
    acts_ptr, c_all_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    HAS_I: tl.constexpr, HAS_F: tl.constexpr, COUPLED: tl.constexpr, HAS_O: tl.constexpr,
    SQUASH_IN: tl.constexpr, SQUASH_OUT: tl.constexpr, PEEPHOLE: tl.constexpr,
    HAS_MASK: tl.constexpr, DOT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin .. t_begin + n_steps - 1. C = f C_prev + i g with a forget block;
    CIFG's C = (1 - i) C_prev + i g; else the 1997 C = C_prev + i g. Stores the gates and
    g = C~ as the cell writes it (the pre-activation itself under NIAF).

    ``DOT`` false (the projected LSTM): ``xg`` already holds the full pre-activations of
    the one step (the caller did the product with the projected h), and the kernel stores
    m = o tanh(C) unmasked to ``h_all``'s slot, for the caller to project."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    # the blocks' positions in units of H (the order i, f, g, o, absent ones left out)
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    N_BLOCKS: tl.constexpr = OFF_O + 1 if HAS_O else OFF_O
    gh = N_BLOCKS * H

    if DOT:
        w_g = _forward_weight(w_ptr, OFF_G, units, ks, H, unit_ok, ks < H)
        if HAS_I:
            w_i = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if HAS_F:
            w_f = _forward_weight(w_ptr, OFF_F, units, ks, H, unit_ok, ks < H)
        if HAS_O:
            w_o = _forward_weight(w_ptr, OFF_O, units, ks, H, unit_ok, ks < H)
    if PEEPHOLE:  # each gate with a block has one (the caller passes a stand-in otherwise)
        if HAS_I:
            p_i = _peephole(pi_ptr, units, unit_ok)
        if HAS_F:
            p_f = _peephole(pf_ptr, units, unit_ok)
        if HAS_O:
            p_o = _peephole(po_ptr, units, unit_ok)

    c = _own_state(c0_ptr, c_all_ptr, t_begin, B, H, rows, units, ok)
    if DOT:  # with a projection h is the caller's (and h_all holds m)
        h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        z_g = _rows_tile(xg + OFF_G * H, rows, units, gh, ok).to(tl.float32)
        if HAS_I:
            z_i = _rows_tile(xg, rows, units, gh, ok).to(tl.float32)
        if HAS_F:
            z_f = _rows_tile(xg + OFF_F * H, rows, units, gh, ok).to(tl.float32)
        if HAS_O:
            z_o = _rows_tile(xg + OFF_O * H, rows, units, gh, ok).to(tl.float32)
        if DOT:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_g.dtype)
            z_g += tl.dot(h_prev, w_g, input_precision="ieee")
            if HAS_I:
                z_i += tl.dot(h_prev, w_i, input_precision="ieee")
            if HAS_F:
                z_f += tl.dot(h_prev, w_f, input_precision="ieee")
            if HAS_O:
                z_o += tl.dot(h_prev, w_o, input_precision="ieee")
        if SQUASH_IN:
            g = _tanh(z_g)
        else:  # NIAF: the candidate is its pre-activation
            g = z_g
        if HAS_I:
            if PEEPHOLE:  # i looks at C_{t-1}
                z_i += p_i * c
            i = _sigmoid(z_i)
            written = i * g
        else:  # NIG: i = 1
            written = g
        if HAS_F:
            if PEEPHOLE:  # so does f
                z_f += p_f * c
            f = _sigmoid(z_f)
            c_new = f * c + written
        elif COUPLED:
            c_new = c + i * (g - c)
        else:
            c_new = c + written
        if SQUASH_OUT:
            shown = _tanh(c_new)
        else:  # NOAF: C_t unsquashed
            shown = c_new
        if HAS_O:
            if PEEPHOLE:  # o looks at C_t
                z_o += p_o * c_new
            o = _sigmoid(z_o)
            m = o * shown
        else:  # NOG: o = 1
            m = shown

        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        tl.store(acts + OFF_G * H, g.to(acts_ptr.dtype.element_ty), mask=ok)
        if HAS_I:
            tl.store(acts, i.to(acts_ptr.dtype.element_ty), mask=ok)
        if HAS_F:
            tl.store(acts + OFF_F * H, f.to(acts_ptr.dtype.element_ty), mask=ok)
        if HAS_O:
            tl.store(acts + OFF_O * H, o.to(acts_ptr.dtype.element_ty), mask=ok)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        c = tl.where(live, c_new, c)
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        tl.store(c_all_ptr + slot, c.to(c_all_ptr.dtype.element_ty), mask=ok)
        if DOT:
            h = tl.where(live, m, h)
            tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
            tl.store(out_ptr + slot, tl.where(live, m, 0.0).to(out_ptr.dtype.element_ty), mask=ok)
            if N_SPLIT > 1:
                _sync(sync_ptr + pid_b, step, N_SPLIT)
        else:
            tl.store(h_all_ptr + slot, m.to(h_all_ptr.dtype.element_ty), mask=ok)


@triton.jit
def lstm_backward(
    dout_ptr, acts_ptr, c_all_ptr, c0_ptr, w_ptr, pi_ptr, pf_ptr, po_ptr, mask_ptr,
    dz_ptr, dh_buf_ptr, dc_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    HAS_I: tl.constexpr, HAS_F: tl.constexpr, COUPLED: tl.constexpr, HAS_O: tl.constexpr,
    SQUASH_IN: tl.constexpr, SQUASH_OUT: tl.constexpr, PEEPHOLE: tl.constexpr,
    HAS_MASK: tl.constexpr, DOT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... (n_steps of them). Writes dz (T, B, G*H), the
    gradient of every gate pre-activation, and leaves in the fp32 buffers dh_buf the part
    of dL/dh_{t-1} that does not go through W_hh, and dc_buf dL/dC_{t-1}.

    ``DOT`` false (the projected LSTM): ``dout``'s slot at t holds dL/dm_t for the step,
    and the caller handles h's gradient (through W_hr and W_hh) itself."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    # the blocks' positions in units of H (the order i, f, g, o, absent ones left out)
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    N_BLOCKS: tl.constexpr = OFF_O + 1 if HAS_O else OFF_O
    gh = N_BLOCKS * H

    if DOT:
        w_g = _backward_weight(w_ptr, OFF_G, units, ks, H, unit_ok, ks < H)
        if HAS_I:
            w_i = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if HAS_F:
            w_f = _backward_weight(w_ptr, OFF_F, units, ks, H, unit_ok, ks < H)
        if HAS_O:
            w_o = _backward_weight(w_ptr, OFF_O, units, ks, H, unit_ok, ks < H)
    if PEEPHOLE:
        if HAS_I:
            p_i = _peephole(pi_ptr, units, unit_ok)
        if HAS_F:
            p_f = _peephole(pf_ptr, units, unit_ok)
        if HAS_O:
            p_o = _peephole(po_ptr, units, unit_ok)

    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    dc = _rows_tile(dc_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        # two ifs, not one `and`: DOT is a compile-time constant, t a run-time value
        if DOT:  # noqa: SIM102
            if t + 1 < T:  # what step t+1's gates send back through W_hh
                base = dz_ptr + _step_offset(t + 1, B, gh)
                d_g = _rows_tile(base + OFF_G * H, rows, ks, gh, full_ok).to(w_g.dtype)
                back = tl.dot(d_g, w_g, input_precision="ieee")
                if HAS_I:
                    d_i = _rows_tile(base, rows, ks, gh, full_ok).to(w_g.dtype)
                    back += tl.dot(d_i, w_i, input_precision="ieee")
                if HAS_F:
                    d_f = _rows_tile(base + OFF_F * H, rows, ks, gh, full_ok).to(w_g.dtype)
                    back += tl.dot(d_f, w_f, input_precision="ieee")
                if HAS_O:
                    d_o = _rows_tile(base + OFF_O * H, rows, ks, gh, full_ok).to(w_g.dtype)
                    back += tl.dot(d_o, w_o, input_precision="ieee")
                # an ended row's dz is 0, so its share is 0 already
                dh += back
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        dm = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)

        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        g = tl.load(acts + OFF_G * H, mask=ok, other=0.0).to(tl.float32)
        c_t = tl.load(c_all_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        c_prev = _own_state(c0_ptr, c_all_ptr, t, B, H, rows, units, ok)
        # through h = o s(C_t), s = tanh (recomputed: cheaper than storing it) or, NOAF, C_t
        if SQUASH_OUT:
            shown = _tanh(c_t)
            d_shown = dm * (1.0 - shown * shown)
        else:
            shown = c_t
            d_shown = dm
        if HAS_O:
            o = tl.load(acts + OFF_O * H, mask=ok, other=0.0).to(tl.float32)
            dz_o = dm * shown * o * (1.0 - o)
            dct = dc + d_shown * o
            if PEEPHOLE:  # o's peephole saw C_t
                dct += p_o * dz_o
        else:  # NOG: o = 1
            dct = dc + d_shown
        if HAS_I:
            i = tl.load(acts, mask=ok, other=0.0).to(tl.float32)
        # d_i: dL/di before i's sigmoid (unused under NIG); dc_prev: dL/dC_{t-1}
        if HAS_F:
            f = tl.load(acts + OFF_F * H, mask=ok, other=0.0).to(tl.float32)
            d_i = dct * g
            dz_f = dct * c_prev * f * (1.0 - f)
            dc_prev = dct * f
            if PEEPHOLE:
                dc_prev += p_f * dz_f
        elif COUPLED:
            d_i = dct * (g - c_prev)
            dc_prev = dct * (1.0 - i)
        else:  # the 1997 carrousel passes dC on unchanged
            d_i = dct * g
            dc_prev = dct
        if HAS_I:
            dz_i = d_i * i * (1.0 - i)
            if PEEPHOLE:
                dc_prev += p_i * dz_i
            d_g = dct * i
        else:  # NIG: C~ enters C_t whole
            d_g = dct
        if SQUASH_IN:
            dz_g = d_g * (1.0 - g * g)
        else:  # NIAF: C~ is the pre-activation
            dz_g = d_g

        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        out = dz_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        ty = dz_ptr.dtype.element_ty
        tl.store(out + OFF_G * H, tl.where(live, dz_g, 0.0).to(ty), mask=ok)
        if HAS_I:
            tl.store(out, tl.where(live, dz_i, 0.0).to(ty), mask=ok)
        if HAS_F:
            tl.store(out + OFF_F * H, tl.where(live, dz_f, 0.0).to(ty), mask=ok)
        if HAS_O:
            tl.store(out + OFF_O * H, tl.where(live, dz_o, 0.0).to(ty), mask=ok)
        dc = tl.where(live, dc_prev, dc)
        dh_local = tl.where(live, 0.0, dh)  # an ended row passes its gradient by
        if DOT and N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)
    tl.store(dc_buf_ptr + rows[:, None] * H + units[None, :], dc, mask=ok)


# -- GRU (torch's form: r multiplies W_hn h + b_hn) ----------------------------------------


@triton.jit
def gru_forward(
    xg_ptr, w_ptr, bn_ptr, h0_ptr, mask_ptr,
    acts_ptr, hn_all_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    HAS_BN: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """xg (T, B, 3H) holds x W_ih^T + b_ih, with b_hr and b_hz added. Stores acts (r, z, n)
    and hn = W_hn h_{t-1} + b_hn for the backward."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    gh = 3 * H
    w_r = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
    w_z = _forward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
    w_n = _forward_weight(w_ptr, 2, units, ks, H, unit_ok, ks < H)
    if HAS_BN:
        b_n = tl.load(bn_ptr + units, mask=unit_ok, other=0.0).to(tl.float32)[None, :]

    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_r.dtype)
        r = _sigmoid(
            _rows_tile(xg, rows, units, gh, ok).to(tl.float32)
            + tl.dot(h_prev, w_r, input_precision="ieee")
        )
        z = _sigmoid(
            _rows_tile(xg + H, rows, units, gh, ok).to(tl.float32)
            + tl.dot(h_prev, w_z, input_precision="ieee")
        )
        hn = tl.dot(h_prev, w_n, input_precision="ieee").to(tl.float32)
        if HAS_BN:
            hn += b_n
        n = _tanh(_rows_tile(xg + 2 * H, rows, units, gh, ok).to(tl.float32) + r * hn)
        h_new = (1.0 - z) * n + z * h

        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        tl.store(acts, r.to(acts_ptr.dtype.element_ty), mask=ok)
        tl.store(acts + H, z.to(acts_ptr.dtype.element_ty), mask=ok)
        tl.store(acts + 2 * H, n.to(acts_ptr.dtype.element_ty), mask=ok)
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        tl.store(hn_all_ptr + slot, hn.to(hn_all_ptr.dtype.element_ty), mask=ok)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        h = tl.where(live, h_new, h)
        tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
        tl.store(out_ptr + slot, tl.where(live, h_new, 0.0).to(out_ptr.dtype.element_ty), mask=ok)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)


@triton.jit
def gru_backward(
    dout_ptr, acts_ptr, hn_all_ptr, h_all_ptr, h0_ptr, w_ptr, mask_ptr,
    dx_ptr, drec_ptr, dh_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Writes dx (T, B, 3H), the gradients of the input pre-activations (r, z, n), and
    drec (T, B, 3H), those of W_hh h + b_hh (r, z, and r times n's), which also feed
    dL/dh_{t-1} through W_hh. dh_buf carries the part that does not (z h_{t-1})."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    gh = 3 * H
    w_r = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
    w_z = _backward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
    w_n = _backward_weight(w_ptr, 2, units, ks, H, unit_ok, ks < H)

    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:
            base = drec_ptr + _step_offset(t + 1, B, gh)
            back = tl.dot(_rows_tile(base, rows, ks, gh, full_ok).to(w_r.dtype), w_r,
                          input_precision="ieee")  # fmt: skip
            back += tl.dot(_rows_tile(base + H, rows, ks, gh, full_ok).to(w_r.dtype), w_z,
                           input_precision="ieee")  # fmt: skip
            back += tl.dot(_rows_tile(base + 2 * H, rows, ks, gh, full_ok).to(w_r.dtype), w_n,
                           input_precision="ieee")  # fmt: skip
            dh += back
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        dh_t = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        r = tl.load(acts, mask=ok, other=0.0).to(tl.float32)
        z = tl.load(acts + H, mask=ok, other=0.0).to(tl.float32)
        n = tl.load(acts + 2 * H, mask=ok, other=0.0).to(tl.float32)
        hn = tl.load(hn_all_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        h_prev = _own_state(h0_ptr, h_all_ptr, t, B, H, rows, units, ok)
        d_pre_n = dh_t * (1.0 - z) * (1.0 - n * n)
        d_pre_z = dh_t * (h_prev - n) * z * (1.0 - z)
        d_pre_r = d_pre_n * hn * r * (1.0 - r)

        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        d_pre_r = tl.where(live, d_pre_r, 0.0)
        d_pre_z = tl.where(live, d_pre_z, 0.0)
        d_pre_n = tl.where(live, d_pre_n, 0.0)
        out = rows[:, None].to(tl.int64) * gh + units[None, :] + _step_offset(t, B, gh)
        ty = dx_ptr.dtype.element_ty
        tl.store(dx_ptr + out, d_pre_r.to(ty), mask=ok)
        tl.store(dx_ptr + out + H, d_pre_z.to(ty), mask=ok)
        tl.store(dx_ptr + out + 2 * H, d_pre_n.to(ty), mask=ok)
        tl.store(drec_ptr + out, d_pre_r.to(ty), mask=ok)
        tl.store(drec_ptr + out + H, d_pre_z.to(ty), mask=ok)
        tl.store(drec_ptr + out + 2 * H, (d_pre_n * r).to(ty), mask=ok)
        dh_local = tl.where(live, dh_t * z, dh)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)


# -- reset before the product: Cho et al.'s GRU and the MGU --------------------------------
#
# n = tanh(x_n + (r h_{t-1}) W_hn^T) (Cho et al. 2014, Sect. 2.3): the candidate's product
# takes r h_{t-1} over every unit, and a program computes r for its own units only. So a
# step has two phases with a barrier between them: GATES (r, z and r h_{t-1}, which goes to
# rh_all for every program to read) and CANDIDATE (n and h_t). A persistent launch runs
# both, with a barrier after each; one launch per step runs each phase as a launch of its
# own, whose boundary is then the barrier. The backward mirrors them: CANDIDATE (dL/dh_t
# and the candidate's pre-activation gradient), then GATES (its product with W_hn, the
# gradient of r h_{t-1} over every unit, and from it the gates').
#
# TIED: the MGU (Zhou et al. 2016), whose one gate f is both r and 1 - z; its blocks are
# (f, n), the GRU's (r, z, n). The caller folds every bias_hh block into xg: each adds to a
# pre-activation, b_hn included, since the reset does not reach it in this form.


@triton.jit
def _phase_barrier(sync_ptr, k, N_SPLIT: tl.constexpr):
    """Between a phase's stores and the reads of them by other threads: the grid barrier
    over the programs of a batch block (its k-th), or, in one program, its threads'."""
    if N_SPLIT > 1:
        _sync(sync_ptr, k, N_SPLIT)
    else:
        tl.debug_barrier()


@triton.jit
def _shared_tile(ptr, rows, ks, stride, ok):
    """(BLOCK_B, K): every unit of a (B, stride) slice other programs wrote, read past the L1
    cache, which their stores do not update."""
    offsets = rows[:, None].to(tl.int64) * stride + ks[None, :]
    return tl.load(ptr + offsets, mask=ok, other=0.0, cache_modifier=".cg")


@triton.jit
def reset_first_forward(
    xg_ptr, w_ptr, h0_ptr, mask_ptr,
    acts_ptr, rh_all_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    TIED: tl.constexpr, GATES: tl.constexpr, CANDIDATE: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """xg (T, B, G*H) holds x W_ih^T + b_ih + b_hh. Stores acts (the gates, then n),
    rh_all = r h_{t-1} (T, B, H) and h_all; the phases run as GATES and CANDIDATE say."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    N_GATES: tl.constexpr = 1 if TIED else 2  # the candidate's block follows the gates'
    gh = (N_GATES + 1) * H
    if GATES:
        w_r = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if not TIED:
            w_z = _forward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
    if CANDIDATE:
        w_n = _forward_weight(w_ptr, N_GATES, units, ks, H, unit_ok, ks < H)

    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        ty = acts_ptr.dtype.element_ty
        if GATES:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_r.dtype)
            r = _sigmoid(
                _rows_tile(xg, rows, units, gh, ok).to(tl.float32)
                + tl.dot(h_prev, w_r, input_precision="ieee")
            )
            tl.store(acts, r.to(ty), mask=ok)
            if TIED:  # the MGU's f keeps 1 - f of h_{t-1}
                z = 1.0 - r
            else:
                z = _sigmoid(
                    _rows_tile(xg + H, rows, units, gh, ok).to(tl.float32)
                    + tl.dot(h_prev, w_z, input_precision="ieee")
                )
                tl.store(acts + H, z.to(ty), mask=ok)
            # the reset acts here, before the candidate's product
            tl.store(rh_all_ptr + slot, (r * h).to(rh_all_ptr.dtype.element_ty), mask=ok)
            _phase_barrier(sync_ptr + pid_b, 2 * step, N_SPLIT)
        elif TIED:  # this step's GATES launch stored the gate
            z = 1.0 - tl.load(acts, mask=ok, other=0.0).to(tl.float32)
        else:
            z = tl.load(acts + H, mask=ok, other=0.0).to(tl.float32)
        if CANDIDATE:
            rh = _shared_tile(rh_all_ptr + _step_offset(t, B, H), rows, ks, H, full_ok)
            n = _tanh(
                _rows_tile(xg + N_GATES * H, rows, units, gh, ok).to(tl.float32)
                + tl.dot(rh.to(w_n.dtype), w_n, input_precision="ieee")
            )
            h_new = (1.0 - z) * n + z * h
            tl.store(acts + N_GATES * H, n.to(ty), mask=ok)
            live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
            h = tl.where(live, h_new, h)
            tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
            out = tl.where(live, h_new, 0.0).to(out_ptr.dtype.element_ty)
            tl.store(out_ptr + slot, out, mask=ok)
            _phase_barrier(sync_ptr + pid_b, 2 * step + 1, N_SPLIT)


@triton.jit
def reset_first_backward(
    dout_ptr, acts_ptr, h_all_ptr, h0_ptr, w_ptr, mask_ptr,
    dpre_ptr, dh_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    TIED: tl.constexpr, CANDIDATE: tl.constexpr, GATES: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... Writes dpre (T, B, G*H), the gradient of every
    pre-activation (the gates', then n's). The fp32 buffer dh_buf carries between launches
    what a phase leaves: after CANDIDATE dL/dh_t, after GATES the part of dL/dh_{t-1} that
    does not go through W_h(r,z) (z h_{t-1}, r h_{t-1}, a finished sequence's pass-by)."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    N_GATES: tl.constexpr = 1 if TIED else 2
    gh = (N_GATES + 1) * H
    if CANDIDATE:  # what step t+1's gates send back to h_t
        w_r = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if not TIED:
            w_z = _backward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
    if GATES:  # what n's pre-activation sends back to r h_{t-1}
        w_n = _backward_weight(w_ptr, N_GATES, units, ks, H, unit_ok, ks < H)

    carried = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    dh_local = carried  # the CANDIDATE phase starts from it
    dh_t = carried  # a GATES-only launch starts from it
    for step in range(n_steps):
        t = t_begin - step
        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        dpre = dpre_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        ty = dpre_ptr.dtype.element_ty
        n = tl.load(acts + N_GATES * H, mask=ok, other=0.0).to(tl.float32)
        r = tl.load(acts, mask=ok, other=0.0).to(tl.float32)
        if TIED:
            z = 1.0 - r
        else:
            z = tl.load(acts + H, mask=ok, other=0.0).to(tl.float32)
        if CANDIDATE:
            dh = dh_local
            if t + 1 < T:  # an ended row's gate gradients are 0, so its share is 0 already
                base = dpre_ptr + _step_offset(t + 1, B, gh)
                d_r = _shared_tile(base, rows, ks, gh, full_ok).to(w_r.dtype)
                dh += tl.dot(d_r, w_r, input_precision="ieee")
                if not TIED:
                    d_z = _shared_tile(base + H, rows, ks, gh, full_ok).to(w_r.dtype)
                    dh += tl.dot(d_z, w_z, input_precision="ieee")
            # an ended row's output is 0: its gradient goes nowhere
            d_out = tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            dh_t = tl.where(live, dh + d_out, dh)
            d_pre_n = tl.where(live, dh_t * (1.0 - z) * (1.0 - n * n), 0.0)  # h_t, then tanh
            tl.store(dpre + N_GATES * H, d_pre_n.to(ty), mask=ok)
            _phase_barrier(sync_ptr + pid_b, 2 * step, N_SPLIT)
        if GATES:
            d_n = _shared_tile(dpre_ptr + _step_offset(t, B, gh) + N_GATES * H, rows, ks, gh,
                               full_ok).to(w_n.dtype)  # fmt: skip
            d_rh = tl.dot(d_n, w_n, input_precision="ieee")  # dL/d(r h_{t-1})
            h_prev = _own_state(h0_ptr, h_all_ptr, t, B, H, rows, units, ok)
            d_r = d_rh * h_prev
            if TIED:  # f is r and 1 - z: h_t = (1 - f) h_{t-1} + f n
                d_pre_f = (d_r + dh_t * (n - h_prev)) * r * (1.0 - r)
                tl.store(dpre, tl.where(live, d_pre_f, 0.0).to(ty), mask=ok)
            else:
                d_pre_r = d_r * r * (1.0 - r)
                d_pre_z = dh_t * (h_prev - n) * z * (1.0 - z)
                tl.store(dpre, tl.where(live, d_pre_r, 0.0).to(ty), mask=ok)
                tl.store(dpre + H, tl.where(live, d_pre_z, 0.0).to(ty), mask=ok)
            # z h_{t-1} and r h_{t-1}; an ended row passes its gradient by
            dh_local = tl.where(live, dh_t * z + d_rh * r, dh_t)
            _phase_barrier(sync_ptr + pid_b, 2 * step + 1, N_SPLIT)
    if GATES:
        tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)
    else:
        tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_t, mask=ok)


# -- RNN (tanh or relu; both biases folded into xg by the caller) --------------------------


@triton.jit
def rnn_forward(
    xg_ptr, w_ptr, h0_ptr, mask_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    RELU: tl.constexpr, HAS_MASK: tl.constexpr,
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
    w = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w.dtype)
        pre = tl.load(xg_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        pre += tl.dot(h_prev, w, input_precision="ieee")
        if RELU:
            h_new = tl.maximum(pre, 0.0)
        else:
            h_new = _tanh(pre)
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        h = tl.where(live, h_new, h)
        tl.store(h_all_ptr + slot, h.to(h_all_ptr.dtype.element_ty), mask=ok)
        tl.store(out_ptr + slot, tl.where(live, h_new, 0.0).to(out_ptr.dtype.element_ty), mask=ok)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)


@triton.jit
def rnn_backward(
    dout_ptr, h_all_ptr, w_ptr, mask_ptr, dpre_ptr, dh_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    RELU: tl.constexpr, HAS_MASK: tl.constexpr,
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
    w = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:
            back = _rows_tile(dpre_ptr + _step_offset(t + 1, B, H), rows, ks, H, full_ok)
            dh += tl.dot(back.to(w.dtype), w, input_precision="ieee")
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        dh_t = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        h = tl.load(h_all_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        if RELU:
            slope = tl.where(h > 0.0, 1.0, 0.0)
        else:
            slope = 1.0 - h * h
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        tl.store(dpre_ptr + slot, tl.where(live, dh_t * slope, 0.0).to(dpre_ptr.dtype.element_ty),
                 mask=ok)  # fmt: skip
        dh_local = tl.where(live, 0.0, dh)
        if N_SPLIT > 1:
            _sync(sync_ptr + pid_b, step, N_SPLIT)
    tl.store(dh_buf_ptr + rows[:, None] * H + units[None, :], dh_local, mask=ok)
