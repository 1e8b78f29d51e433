"""Triton kernels for the recurrence of the LSTM family (with its layer norms and full gate
recurrence: the section "LSTM options"), the GRU (torch's form and Cho et al.'s), the MGU
and the RNN.

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
programs one after another. Should they still not all run at once, the barrier gives up
after ``SPIN_LIMIT`` polls rather than hang the GPU, and the caller raises.

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

# A barrier polls its counter at most SPIN_LIMIT times (each poll an acquiring read from L2,
# so by estimate a second or more on an H100, not yet measured; a step's real wait should be
# microseconds). A program that runs out has waited for programs that are not running, which
# would otherwise hang the GPU: it sets the counter's GAVE_UP bit, which opens this barrier
# and every later one of the launch to all its programs at once, and the host reports the
# bit (fused_triton's _time_loop). The bit is set with an OR, not added, so that programs
# giving up together cannot overflow the counter; the arrivals' own count stays far below.
SPIN_LIMIT = tl.constexpr(1 << 22)
GAVE_UP = tl.constexpr(1 << 30)


@triton.jit
def _sync(sync_ptr, step, N_SPLIT: tl.constexpr):
    """Grid barrier over the N_SPLIT programs that share one batch block: each adds 1 to
    the block's counter after its stores, then waits for all the step's arrivals."""
    tl.debug_barrier()
    count = tl.atomic_add(sync_ptr, 1, sem="acq_rel", scope="gpu") + 1
    target = (step + 1) * N_SPLIT
    polls = 0
    while (count < target) & (polls < SPIN_LIMIT):
        count = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
        polls += 1
    if count < target:
        tl.atomic_or(sync_ptr, GAVE_UP, sem="acq_rel", scope="gpu")
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
def _weight_rows(block_ptr, units, ks, width, unit_ok, k_ok):
    """(K, BLOCK_H): rows ``units`` of a row-major block of weights ``width`` columns wide
    (from ``block_ptr``), transposed: what each of these units takes from inputs ``ks``."""
    ok = k_ok[:, None] & unit_ok[None, :]
    return tl.load(block_ptr + units[None, :] * width + ks[:, None], mask=ok, other=0.0)


@triton.jit
def _weight_columns(block_ptr, units, ks, width, unit_ok, k_ok):
    """(K, BLOCK_H): rows ``ks``, columns ``units`` of a row-major block of weights whose
    rows are ``width`` apart: what the pre-activations ``ks`` send back to these units."""
    ok = k_ok[:, None] & unit_ok[None, :]
    return tl.load(block_ptr + ks[:, None] * width + units[None, :], mask=ok, other=0.0)


@triton.jit
def _forward_weight(w_ptr, gate, units, ks, H, unit_ok, k_ok):
    """(K, BLOCK_H): the gate's rows of W_hh (G*H, H) for these units, transposed."""
    return _weight_rows(w_ptr + gate * H * H, units, ks, H, unit_ok, k_ok)


@triton.jit
def _backward_weight(w_ptr, gate, units, ks, H, unit_ok, k_ok):
    """(K, BLOCK_H): the gate's block of W_hh (G*H, H), rows over every unit k, columns
    these units."""
    return _weight_columns(w_ptr + gate * H * H, units, ks, H, unit_ok, k_ok)


@triton.jit
def _streamed_forward(acc, first_ptr, all_ptr, t, B, width, rows, row_ok, w_block, units,
                      unit_ok, BLOCK_KC: tl.constexpr):  # fmt: skip
    """acc + s_{t-1} W^T for these units, with W streamed: where a program's rows of it do
    not fit on chip, each step reads them again (from L2, where they stay), with the
    state's, BLOCK_KC columns at a time. s is a (B, width) state (h; FGR's gates), its
    first value at ``first_ptr``, later ones at ``all_ptr`` (:func:`_full_h`); ``w_block``
    the first of the gate's rows of W, ``width`` wide (:func:`_weight_rows`)."""
    for k0 in range(0, width, BLOCK_KC):
        kc = k0 + tl.arange(0, BLOCK_KC)
        kc_ok = kc < width
        s_c = _full_h(first_ptr, all_ptr, t, B, width, rows, kc,
                      row_ok[:, None] & kc_ok[None, :])  # fmt: skip
        w_c = _weight_rows(w_block, units, kc, width, unit_ok, kc_ok)
        acc += tl.dot(s_c.to(w_c.dtype), w_c, input_precision="ieee")
    return acc


@triton.jit
def _streamed_product(acc, src_ptr, stride, rows, row_ok, w_block, units, unit_ok, width,
                      TRANSPOSED: tl.constexpr, BLOCK_KC: tl.constexpr):  # fmt: skip
    """acc + s W_part for these units, W streamed as in :func:`_streamed_forward`: s is the
    (B, width) operand at ``src_ptr`` (rows ``stride`` apart), which every program wrote,
    read past L1; W_part is W's rows for these units from ``w_block``, transposed
    (TRANSPOSED: a forward product, :func:`_weight_rows`), or its columns for them (a
    backward one, :func:`_weight_columns`), ``width`` wide."""
    for k0 in range(0, width, BLOCK_KC):
        kc = k0 + tl.arange(0, BLOCK_KC)
        kc_ok = kc < width
        s_c = _shared_tile(src_ptr, rows, kc, stride, row_ok[:, None] & kc_ok[None, :])
        if TRANSPOSED:
            w_c = _weight_rows(w_block, units, kc, width, unit_ok, kc_ok)
        else:
            w_c = _weight_columns(w_block, units, kc, width, unit_ok, kc_ok)
        acc += tl.dot(s_c.to(w_c.dtype), w_c, input_precision="ieee")
    return acc


@triton.jit
def _step_offset(t, B, width):
    return t.to(tl.int64) * B * width


@triton.jit
def _program_tile(B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr):
    """What a program of the (batch blocks, hidden blocks) grid works on: its batch block's
    index (for the barrier), its rows and units, the reduction's columns ks, and the masks of
    the rows, the units, its (rows, units) tile and its (rows, ks) tile."""
    pid_b = tl.program_id(0)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    return pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok


@triton.jit
def _tile(t, B, width, rows, units):
    """Offsets of these rows' and units' elements of step t in a (T, B, width) tensor."""
    return _step_offset(t, B, width) + rows[:, None].to(tl.int64) * width + units[None, :]


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
def _lstm_streamed_back(dh, base, gh, rows, row_ok, w_ptr, units, unit_ok, H,
                        HAS_I: tl.constexpr, HAS_F: tl.constexpr, HAS_O: tl.constexpr,
                        BLOCK_KC: tl.constexpr):  # fmt: skip
    """dh + what step t+1's gate blocks send back to these units of h_t through W_hh (G*H,
    H), streamed (:func:`_streamed_product`); ``base`` holds their pre-activations'
    gradients, (B, G*H) with rows ``gh`` apart."""
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    at = (rows, row_ok)
    dh = _streamed_product(dh, base + OFF_G * H, gh, *at, w_ptr + OFF_G * H * H, units, unit_ok,
                           H, False, BLOCK_KC)  # fmt: skip
    if HAS_I:
        dh = _streamed_product(dh, base, gh, *at, w_ptr, units, unit_ok, H, False, BLOCK_KC)
    if HAS_F:
        dh = _streamed_product(dh, base + OFF_F * H, gh, *at, w_ptr + OFF_F * H * H, units,
                               unit_ok, H, False, BLOCK_KC)  # fmt: skip
    if HAS_O:
        dh = _streamed_product(dh, base + OFF_O * H, gh, *at, w_ptr + OFF_O * H * H, units,
                               unit_ok, H, False, BLOCK_KC)  # fmt: skip
    return dh


@triton.jit
def lstm_forward(
    xg_ptr, w_ptr, h0_ptr, c0_ptr, pi_ptr, pf_ptr, po_ptr, mask_ptr,
    acts_ptr, c_all_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    HAS_I: tl.constexpr, HAS_F: tl.constexpr, COUPLED: tl.constexpr, HAS_O: tl.constexpr,
    SQUASH_IN: tl.constexpr, SQUASH_OUT: tl.constexpr, PEEPHOLE: tl.constexpr,
    HAS_MASK: tl.constexpr, DOT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin .. t_begin + n_steps - 1. C = f C_prev + i g with a forget block;
    CIFG's C = (1 - i) C_prev + i g; else the 1997 C = C_prev + i g. Stores the gates and
    g = C~ as the cell writes it (the pre-activation itself under NIAF).

    ``DOT`` false (the projected LSTM): ``xg`` already holds the full pre-activations of
    the one step (the caller did the product with the projected h), and the kernel stores
    m = o tanh(C) unmasked to ``h_all``'s slot, for the caller to project.

    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh: where a program's rows of it do not fit on chip,
    each step reads them again (from L2, where they stay), BLOCK_KC columns at a time."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    # the blocks' positions in units of H (the order i, f, g, o, absent ones left out)
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    N_BLOCKS: tl.constexpr = OFF_O + 1 if HAS_O else OFF_O
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = N_BLOCKS * H

    if DOT and ON_CHIP:
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
        if DOT and ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_g.dtype)
            z_g += tl.dot(h_prev, w_g, input_precision="ieee")
            if HAS_I:
                z_i += tl.dot(h_prev, w_i, input_precision="ieee")
            if HAS_F:
                z_f += tl.dot(h_prev, w_f, input_precision="ieee")
            if HAS_O:
                z_o += tl.dot(h_prev, w_o, input_precision="ieee")
        elif DOT:  # streamed
            args = (h0_ptr, h_all_ptr, t, B, H, rows, row_ok)
            z_g = _streamed_forward(z_g, *args, w_ptr + OFF_G * H * H, units, unit_ok, BLOCK_KC)
            if HAS_I:
                z_i = _streamed_forward(z_i, *args, w_ptr, units, unit_ok, BLOCK_KC)
            if HAS_F:
                z_f = _streamed_forward(z_f, *args, w_ptr + OFF_F * H * H, units, unit_ok,
                                        BLOCK_KC)  # fmt: skip
            if HAS_O:
                z_o = _streamed_forward(z_o, *args, w_ptr + OFF_O * H * H, units, unit_ok,
                                        BLOCK_KC)  # fmt: skip
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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... (n_steps of them). Writes dz (T, B, G*H), the
    gradient of every gate pre-activation, and leaves in the fp32 buffers dh_buf the part
    of dL/dh_{t-1} that does not go through W_hh, and dc_buf dL/dC_{t-1}.

    ``DOT`` false (the projected LSTM): ``dout``'s slot at t holds dL/dm_t for the step,
    and the caller handles h's gradient (through W_hr and W_hh) itself.

    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh, as lstm_forward does."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    # the blocks' positions in units of H (the order i, f, g, o, absent ones left out)
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    N_BLOCKS: tl.constexpr = OFF_O + 1 if HAS_O else OFF_O
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = N_BLOCKS * H

    if DOT and ON_CHIP:
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
        if DOT and ON_CHIP:
            if t + 1 < T:  # what step t+1's gates (every program's units) send back via W_hh
                base = dz_ptr + _step_offset(t + 1, B, gh)
                d_g = _shared_tile(base + OFF_G * H, rows, ks, gh, full_ok).to(w_g.dtype)
                back = tl.dot(d_g, w_g, input_precision="ieee")
                if HAS_I:
                    d_i = _shared_tile(base, rows, ks, gh, full_ok).to(w_g.dtype)
                    back += tl.dot(d_i, w_i, input_precision="ieee")
                if HAS_F:
                    d_f = _shared_tile(base + OFF_F * H, rows, ks, gh, full_ok).to(w_g.dtype)
                    back += tl.dot(d_f, w_f, input_precision="ieee")
                if HAS_O:
                    d_o = _shared_tile(base + OFF_O * H, rows, ks, gh, full_ok).to(w_g.dtype)
                    back += tl.dot(d_o, w_o, input_precision="ieee")
                # an ended row's dz is 0, so its share is 0 already
                dh += back
        elif DOT:  # noqa: SIM102
            if t + 1 < T:  # streamed
                base = dz_ptr + _step_offset(t + 1, B, gh)
                dh = _lstm_streamed_back(dh, base, gh, rows, row_ok, w_ptr, units, unit_ok, H,
                                         HAS_I, HAS_F, HAS_O, BLOCK_KC)  # fmt: skip
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


# -- LSTM options: layer norms (Ba et al. 2016) and full gate recurrence (Greff et al. 2015) --
#
# The equations are lstmkit.cellmath.lstm_options'; the split of work is the C++ kernels'
# (fused_cpu/kernels.cpp, LSTMBits): the caller applies Ba's norm of the input product to
# all steps at once and hands it in, with b added, as xg; under the per-gate norm xg is
# x W_ih^T alone and b is folded into the norm's shift (``ns``). The kernels normalise the
# recurrent product (NORM_PRODUCT: over all G*H units of a row; NORM_GATES: the sum
# xg + h W_hh^T one gate block of H units at a time) and the cell (NORM_SHOWN: h = o
# tanh(LN(C_t)) with C_t carried as is; NORM_CARRIED: the carried C_t is LN(f C_{t-1} + i C~)).
# FGR adds gates_{t-1} W_gg^T to the sigmoid gates' pre-activations, gates_{t-1} (B, K*H)
# being the previous step's i, f, o (those with blocks, in that order: i and f at their
# offsets in a row of G*H, o at OFF_G), read for every unit through global memory like
# h_{t-1}; each program keeps its units' rows of W_gg on chip beside W_hh's.
#
# A norm needs every unit of a row, and a program holds BLOCK_H of them. So a step runs in
# phases with a barrier between them (as the reset-first kernels below do), each phase
# storing what the next reads to global memory: forwards PRODUCT (the recurrent product of
# the program's units into the fp32 scratch ``rec``; only with a product norm, otherwise
# GATES does the product itself), GATES (the row's statistics, read whole from ``rec`` by
# every program, the gates and the new cell before its norm, into the scratch ``cell``) and
# CELL (only with a cell norm: its statistics from ``cell``, o and h_t). Backwards OUT
# (dL/dh_t, o's gradient and the cell norm's output gradient u into ``cell``), CELL (the
# norm's backward, then the gates') and NORM (the product norm's backward, from the gates'
# gradients of the whole row, into ``drec``, which the next step's product reads). Every
# program computes a row's statistics itself from the whole row (two passes, as
# torch.nn.LayerNorm): G*H values per row against the G*H*H of the product, and no
# partial sums to combine across programs. A persistent launch runs all of a step's phases
# with a barrier after each; launches per step run each phase as a launch of its own.
# Statistics and scratch are fp32 whatever the storage dtype.
#
# The projected LSTM (``DOT`` false) splits a step as lstm_forward does: W_hh is (G*H, P),
# not (G*H, H), and h_t = m_t W_hr^T needs every unit's m_t, so the caller does the
# recurrent product (into ``rec``, before GATES) and the projection between launches of one
# step each, and the kernels the norms, FGR's product with W_gg and the gates.


@triton.jit
def _scratch_tile(ptr, rows, cols, stride, ok):
    """(BLOCK_B, n) fp32 values another thread or program stored, read past the L1 cache."""
    offsets = rows[:, None].to(tl.int64) * stride + cols[None, :]
    return tl.load(ptr + offsets, mask=ok, other=0.0, cache_modifier=".cg").to(tl.float32)


@triton.jit
def _row_sum(a):
    """(BLOCK_B,) the sum of each row: tl.sum's own code, called through the builtin
    tl.reduce. tl.sum itself is a jit function of triton.language, compiled-only when triton
    was imported before TRITON_INTERPRET was set (see _sigmoid); its combine function is only
    passed here, and the interpreter, which recognises it, sums with NumPy without calling it
    (a combine function of our own would run element by element in Python)."""
    return tl.reduce(a, 1, tl.standard._sum_combine)


# The norms read a row's values CHUNK columns at a time: a whole row at once (Ba's norm's
# G*H fp32 values) took the compiler's registers and spilled kilobytes per thread
# (tools/triton_resources.py).


@triton.jit
def _chunk(ptr, rows, c0, n, stride, row_ok, CHUNK: tl.constexpr):
    """Columns c0 .. c0 + CHUNK - 1 of each row's n fp32 values at ``ptr`` (rows ``stride``
    apart), 0 past n, and where they are."""
    cols = c0 + tl.arange(0, CHUNK)
    ok = row_ok[:, None] & (cols < n)[None, :]
    return _scratch_tile(ptr, rows, cols, stride, ok), cols, ok


@triton.jit
def _norm_stats(ptr, rows, n, stride, row_ok, eps, CHUNK: tl.constexpr):
    """(BLOCK_B, 1) mean and 1 / sqrt(var + eps) of each row's n values ``ptr[row, :n]``
    (the biased variance, as torch.nn.LayerNorm takes it, in two passes as it does)."""
    a, _, _ = _chunk(ptr, rows, 0, n, stride, row_ok, CHUNK)
    total = _row_sum(a)
    for c0 in range(CHUNK, n, CHUNK):
        a, _, _ = _chunk(ptr, rows, c0, n, stride, row_ok, CHUNK)
        total += _row_sum(a)
    mean = (total / n)[:, None]
    a, _, ok = _chunk(ptr, rows, 0, n, stride, row_ok, CHUNK)
    dev = tl.where(ok, a - mean, 0.0)
    squares = _row_sum(dev * dev)
    for c0 in range(CHUNK, n, CHUNK):
        a, _, ok = _chunk(ptr, rows, c0, n, stride, row_ok, CHUNK)
        dev = tl.where(ok, a - mean, 0.0)
        squares += _row_sum(dev * dev)
    return mean, (1.0 / tl.sqrt(squares / n + eps))[:, None]


@triton.jit
def _grad_sums(dy_ptr, dy_stride, xhat_ptr, xhat_stride, gain_ptr, rows, c0, n, row_ok,
               CHUNK: tl.constexpr):  # fmt: skip
    """(BLOCK_B,) sums over one chunk of each row of gy = gain dy and of gy xhat."""
    dy, cols, _ = _chunk(dy_ptr, rows, c0, n, dy_stride, row_ok, CHUNK)
    xhat, _, _ = _chunk(xhat_ptr, rows, c0, n, xhat_stride, row_ok, CHUNK)
    gy = tl.load(gain_ptr + cols, mask=cols < n, other=0.0).to(tl.float32)[None, :] * dy
    return _row_sum(gy), _row_sum(gy * xhat)


@triton.jit
def _norm_grad_means(dy_ptr, dy_stride, xhat_ptr, xhat_stride, gain_ptr, rows, n, row_ok,
                     CHUNK: tl.constexpr):  # fmt: skip
    """(BLOCK_B, 1) means over each row's n values of gy = gain dy and of gy xhat: the norm's
    backward is dx = rstd (gy - mean(gy) - xhat mean(gy xhat))."""
    at = (dy_ptr, dy_stride, xhat_ptr, xhat_stride, gain_ptr, rows)
    sum_gy, sum_gyx = _grad_sums(*at, 0, n, row_ok, CHUNK)
    for c0 in range(CHUNK, n, CHUNK):
        more_gy, more_gyx = _grad_sums(*at, c0, n, row_ok, CHUNK)
        sum_gy += more_gy
        sum_gyx += more_gyx
    return (sum_gy / n)[:, None], (sum_gyx / n)[:, None]


@triton.jit
def _vector(ptr, cols, ok):
    """(1, BLOCK_H) a parameter vector's entries, in fp32."""
    return tl.load(ptr + cols, mask=ok, other=0.0).to(tl.float32)[None, :]


@triton.jit
def _normed_block(rec_ptr, xg, nx, nr_ptr, ng_ptr, ns_ptr, q, H, gh, rows, units, row_ok,
                  unit_ok, ok, eps, PER_BLOCK: tl.constexpr, N_GROUPS: tl.constexpr,
                  ADD_X: tl.constexpr, CHUNK: tl.constexpr):  # fmt: skip
    """Gate block q's pre-activations for these units: gain * LN(product) + shift (+ xg,
    Ba's normalised input product with b). ``rec_ptr`` is the (B, G*H) scratch of the step's
    products; the normalised values go to ``nx``, 1/sigma to ``nr_ptr`` (B, N_GROUPS)."""
    if PER_BLOCK:  # TensorFlow's per-gate norm: block q alone
        mean, rstd = _norm_stats(rec_ptr + q * H, rows, H, gh, row_ok, eps, CHUNK)
        group = q
    else:  # Ba et al.: the whole row of G*H units
        mean, rstd = _norm_stats(rec_ptr, rows, gh, gh, row_ok, eps, CHUNK)
        group = 0
    # every program computes the same statistics from the same values: a duplicate store
    tl.store(nr_ptr + rows[:, None] * N_GROUPS + group, rstd, mask=row_ok[:, None])
    xhat = (_scratch_tile(rec_ptr + q * H, rows, units, gh, ok) - mean) * rstd
    tile = rows[:, None].to(tl.int64) * gh + q * H + units[None, :]
    tl.store(nx + tile, xhat.to(nx.dtype.element_ty), mask=ok)
    cols = q * H + units
    z = _vector(ng_ptr, cols, unit_ok) * xhat + _vector(ns_ptr, cols, unit_ok)
    if ADD_X:
        z += _rows_tile(xg + q * H, rows, units, gh, ok).to(tl.float32)
    return z


@triton.jit
def _block_product(h_prev, w, xg, q, H, gh, rows, units, ok, ADD_X: tl.constexpr):
    """Gate block q's recurrent product for these units (+ its xg)."""
    z = tl.dot(h_prev, w, input_precision="ieee")
    if ADD_X:
        z += _rows_tile(xg + q * H, rows, units, gh, ok).to(tl.float32)
    return z


@triton.jit
def _streamed_block(xg, q, H, gh, h0_ptr, h_all_ptr, t, B, rows, row_ok, w_ptr, units, unit_ok,
                    ok, ADD_X: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                    BLOCK_KC: tl.constexpr):  # fmt: skip
    """:func:`_block_product` with W_hh streamed (:func:`_streamed_forward`)."""
    if ADD_X:
        z = _rows_tile(xg + q * H, rows, units, gh, ok).to(tl.float32)
    else:
        z = tl.full((BLOCK_B, BLOCK_H), 0.0, tl.float32)  # not tl.zeros: see _sigmoid
    return _streamed_forward(z, h0_ptr, h_all_ptr, t, B, H, rows, row_ok, w_ptr + q * H * H,
                             units, unit_ok, BLOCK_KC)  # fmt: skip


@triton.jit
def _gate_weight(wgg_ptr, first, units, kks, KH, unit_ok, kk_ok, BACKWARD: tl.constexpr):
    """(KG, BLOCK_H) of W_gg (K*H, K*H) for these units of the gate block whose rows (or
    columns) start at ``first``. Forwards: those rows, transposed (what gates_{t-1} of every
    unit sends to these units). Backwards: those columns (what every unit's gate gradient
    at t+1 sends back to these units' gates at t)."""
    if BACKWARD:
        w = _weight_columns(wgg_ptr + first, units, kks, KH, unit_ok, kk_ok)
    else:
        w = _weight_rows(wgg_ptr + first * KH, units, kks, KH, unit_ok, kk_ok)
    return w


@triton.jit
def _block_unnorm(
    dz_row, nx_row, nr_row, drec_row, ng_ptr, q, H, gh, rows, units, row_ok, unit_ok, ok,
    PER_BLOCK: tl.constexpr, N_GROUPS: tl.constexpr, CHUNK: tl.constexpr,
):  # fmt: skip
    """Gate block q's gradient at the recurrent product (before its norm) for these units,
    from dz, the gradient at gain * LN(product) + shift, of the whole row."""
    if PER_BLOCK:
        mean_gy, mean_gyx = _norm_grad_means(dz_row + q * H, gh, nx_row + q * H, gh,
                                             ng_ptr + q * H, rows, H, row_ok, CHUNK)  # fmt: skip
        group = q
    else:
        mean_gy, mean_gyx = _norm_grad_means(dz_row, gh, nx_row, gh, ng_ptr, rows, gh, row_ok,
                                             CHUNK)  # fmt: skip
        group = 0
    rstd = tl.load(nr_row + rows * N_GROUPS + group, mask=row_ok, other=0.0)[:, None]
    tile = rows[:, None].to(tl.int64) * gh + q * H + units[None, :]
    dz = _scratch_tile(dz_row + q * H, rows, units, gh, ok)
    xhat = _scratch_tile(nx_row + q * H, rows, units, gh, ok)
    d_rec = rstd * (_vector(ng_ptr, q * H + units, unit_ok) * dz - mean_gy - xhat * mean_gyx)
    tl.store(drec_row + tile, d_rec.to(drec_row.dtype.element_ty), mask=ok)


@triton.jit
def lstm_options_forward(
    xg_ptr, w_ptr, wgg_ptr, h0_ptr, c0_ptr, g0_ptr, pi_ptr, pf_ptr, po_ptr,
    ng_ptr, ns_ptr, cg_ptr, cs_ptr, mask_ptr,
    acts_ptr, c_all_ptr, h_all_ptr, out_ptr, g_all_ptr, nx_ptr, nr_ptr, cx_ptr, cr_ptr,
    rec_ptr, cell_ptr, sync_ptr,
    t_begin, n_steps, B, H, eps,
    HAS_I: tl.constexpr, HAS_F: tl.constexpr, COUPLED: tl.constexpr, HAS_O: tl.constexpr,
    SQUASH_IN: tl.constexpr, SQUASH_OUT: tl.constexpr, PEEPHOLE: tl.constexpr,
    HAS_MASK: tl.constexpr, NORM_PRODUCT: tl.constexpr, NORM_GATES: tl.constexpr,
    NORM_SHOWN: tl.constexpr, NORM_CARRIED: tl.constexpr, FGR: tl.constexpr, DOT: tl.constexpr,
    PRODUCT: tl.constexpr, GATES: tl.constexpr, CELL: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    BLOCK_KG: tl.constexpr, BLOCK_N: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin .. t_begin + n_steps - 1 of the LSTM with its norms and FGR, the phases
    PRODUCT, GATES and CELL as they say (see above). Stores what lstm_forward does, and:
    g_all (T, B, K*H) the state gates_t (FGR), nx (T, B, G*H) and nr (T, B, 1 or G) the
    product norm's normalised values and 1/sigma, cx (T, B, H) and cr (T, B) the cell
    norm's. ``rec`` (B, G*H) and ``cell`` (B, 2H: C_t before its norm, then o's
    pre-activation) are fp32 scratch reused by every step.

    ``DOT`` false (the projected LSTM, one step per launch): the caller did the step's
    recurrent product with the projected h_{t-1} and left in ``rec`` what PRODUCT would
    (the product norm's input) or, without a product norm, the pre-activations xg +
    h W_hh^T; the caller runs no PRODUCT phase, and the kernel stores m = o tanh(...)
    unmasked to ``h_all``'s slot, for the caller to project (as lstm_forward does).

    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh and W_gg, as lstm_forward does W_hh."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    kks = tl.arange(0, BLOCK_KG)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    # the blocks' positions in units of H (the order i, f, g, o, absent ones left out)
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    N_BLOCKS: tl.constexpr = OFF_O + 1 if HAS_O else OFF_O
    N_SIGMOID: tl.constexpr = N_BLOCKS - 1  # K; in gates_t o sits at OFF_G
    NORM_IN: tl.constexpr = True if NORM_PRODUCT else NORM_GATES
    NORM_CELL: tl.constexpr = True if NORM_SHOWN else NORM_CARRIED
    N_GROUPS: tl.constexpr = N_BLOCKS if NORM_GATES else 1
    # a step's barriers: after PRODUCT (product norm), after GATES (cell norm), at its end
    BAR_GATES: tl.constexpr = 1 if NORM_IN else 0
    BAR_END: tl.constexpr = BAR_GATES + 1 if NORM_CELL else BAR_GATES
    N_BARRIERS: tl.constexpr = BAR_END + 1
    # the phase that does h W_hh^T (none when the caller does it)
    MULTIPLY: tl.constexpr = (PRODUCT if NORM_IN else GATES) if DOT else False
    FINISH: tl.constexpr = CELL if NORM_CELL else GATES  # the phase that does o and h_t
    gh = N_BLOCKS * H
    kh = N_SIGMOID * H
    kg_ok = row_ok[:, None] & (kks < kh)[None, :]
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K

    if MULTIPLY and ON_CHIP:
        w_g = _forward_weight(w_ptr, OFF_G, units, ks, H, unit_ok, ks < H)
        if HAS_I:
            w_i = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if HAS_F:
            w_f = _forward_weight(w_ptr, OFF_F, units, ks, H, unit_ok, ks < H)
        if HAS_O:
            w_o = _forward_weight(w_ptr, OFF_O, units, ks, H, unit_ok, ks < H)
    if FGR and GATES and ON_CHIP:  # the rows of W_gg into these units of each gate
        if HAS_I:
            r_i = _gate_weight(wgg_ptr, 0, units, kks, kh, unit_ok, kks < kh, False)
        if HAS_F:
            r_f = _gate_weight(wgg_ptr, OFF_F * H, units, kks, kh, unit_ok, kks < kh, False)
        if HAS_O:
            r_o = _gate_weight(wgg_ptr, OFF_G * H, units, kks, kh, unit_ok, kks < kh, False)
    if PEEPHOLE:  # each gate with a block has one (the caller passes a stand-in otherwise)
        if HAS_I:
            p_i = _peephole(pi_ptr, units, unit_ok)
        if HAS_F:
            p_f = _peephole(pf_ptr, units, unit_ok)
        if HAS_O:
            p_o = _peephole(po_ptr, units, unit_ok)
    if NORM_CELL and FINISH:
        c_gain = _vector(cg_ptr, units, unit_ok)
        c_shift = _vector(cs_ptr, units, unit_ok)

    tile = rows[:, None].to(tl.int64) * gh + units[None, :]  # these units in a (B, G*H) row
    own = rows[:, None].to(tl.int64) * (2 * H) + units[None, :]  # ... in the (B, 2H) scratch
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        acts = acts_ptr + _step_offset(t, B, gh) + tile
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        g_slot = _step_offset(t, B, kh) + rows[:, None].to(tl.int64) * kh + units[None, :]
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        ty = acts_ptr.dtype.element_ty
        barrier = sync_ptr + pid_b
        first = step * N_BARRIERS
        if MULTIPLY and ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_g.dtype)
        # what a streamed product of W_hh takes besides the input, the gate and its switches
        sb = (H, gh, h0_ptr, h_all_ptr, t, B, rows, row_ok, w_ptr, units, unit_ok, ok)
        if PRODUCT:  # the products for the norm; the per-gate norm's is x W_ih^T + h W_hh^T
            rec = rec_ptr + tile
            if ON_CHIP:
                z = _block_product(h_prev, w_g, xg, OFF_G, H, gh, rows, units, ok, NORM_GATES)
            else:
                z = _streamed_block(xg, OFF_G, *sb, NORM_GATES, BLOCK_B, BLOCK_H, BLOCK_KC)
            tl.store(rec + OFF_G * H, z, mask=ok)
            if HAS_I:
                if ON_CHIP:
                    z = _block_product(h_prev, w_i, xg, 0, H, gh, rows, units, ok, NORM_GATES)
                else:
                    z = _streamed_block(xg, 0, *sb, NORM_GATES, BLOCK_B, BLOCK_H, BLOCK_KC)
                tl.store(rec, z, mask=ok)
            if HAS_F:
                if ON_CHIP:
                    z = _block_product(h_prev, w_f, xg, OFF_F, H, gh, rows, units, ok,
                                       NORM_GATES)  # fmt: skip
                else:
                    z = _streamed_block(xg, OFF_F, *sb, NORM_GATES, BLOCK_B, BLOCK_H, BLOCK_KC)
                tl.store(rec + OFF_F * H, z, mask=ok)
            if HAS_O:
                if ON_CHIP:
                    z = _block_product(h_prev, w_o, xg, OFF_O, H, gh, rows, units, ok,
                                       NORM_GATES)  # fmt: skip
                else:
                    z = _streamed_block(xg, OFF_O, *sb, NORM_GATES, BLOCK_B, BLOCK_H, BLOCK_KC)
                tl.store(rec + OFF_O * H, z, mask=ok)
            _phase_barrier(barrier, first, N_SPLIT)
        if GATES:
            if NORM_IN:  # Ba's xg is LN(x W_ih^T) + b, added after the norm
                nx = nx_ptr + _step_offset(t, B, gh)
                nr = nr_ptr + _step_offset(t, B, N_GROUPS)
                normed = (H, gh, rows, units, row_ok, unit_ok, ok, eps)
                z_g = _normed_block(rec_ptr, xg, nx, nr, ng_ptr, ns_ptr, OFF_G, *normed, NORM_GATES,
                                    N_GROUPS, NORM_PRODUCT, BLOCK_N)  # fmt: skip
                if HAS_I:
                    z_i = _normed_block(rec_ptr, xg, nx, nr, ng_ptr, ns_ptr, 0, *normed, NORM_GATES,
                                        N_GROUPS, NORM_PRODUCT, BLOCK_N)  # fmt: skip
                if HAS_F:
                    z_f = _normed_block(rec_ptr, xg, nx, nr, ng_ptr, ns_ptr, OFF_F, *normed,
                                        NORM_GATES, N_GROUPS, NORM_PRODUCT, BLOCK_N)  # fmt: skip
                if HAS_O:
                    z_o = _normed_block(rec_ptr, xg, nx, nr, ng_ptr, ns_ptr, OFF_O, *normed,
                                        NORM_GATES, N_GROUPS, NORM_PRODUCT, BLOCK_N)  # fmt: skip
            elif DOT and ON_CHIP:
                z_g = _block_product(h_prev, w_g, xg, OFF_G, H, gh, rows, units, ok, True)
                if HAS_I:
                    z_i = _block_product(h_prev, w_i, xg, 0, H, gh, rows, units, ok, True)
                if HAS_F:
                    z_f = _block_product(h_prev, w_f, xg, OFF_F, H, gh, rows, units, ok, True)
                if HAS_O:
                    z_o = _block_product(h_prev, w_o, xg, OFF_O, H, gh, rows, units, ok, True)
            elif DOT:  # W_hh streamed
                z_g = _streamed_block(xg, OFF_G, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC)
                if HAS_I:
                    z_i = _streamed_block(xg, 0, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC)
                if HAS_F:
                    z_f = _streamed_block(xg, OFF_F, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC)
                if HAS_O:
                    z_o = _streamed_block(xg, OFF_O, *sb, True, BLOCK_B, BLOCK_H, BLOCK_KC)
            else:  # the projected LSTM: the caller's xg + h W_hh^T, in rec
                z_g = _scratch_tile(rec_ptr + OFF_G * H, rows, units, gh, ok)
                if HAS_I:
                    z_i = _scratch_tile(rec_ptr, rows, units, gh, ok)
                if HAS_F:
                    z_f = _scratch_tile(rec_ptr + OFF_F * H, rows, units, gh, ok)
                if HAS_O:
                    z_o = _scratch_tile(rec_ptr + OFF_O * H, rows, units, gh, ok)
            if FGR and ON_CHIP:  # Greff's FGR: every sigmoid gate reads gates_{t-1} of every unit
                g_prev = _full_h(g0_ptr, g_all_ptr, t, B, kh, rows, kks, kg_ok)
                g_prev = g_prev.to(wgg_ptr.dtype.element_ty)
                if HAS_I:
                    z_i += tl.dot(g_prev, r_i, input_precision="ieee")
                if HAS_F:
                    z_f += tl.dot(g_prev, r_f, input_precision="ieee")
                if HAS_O:
                    z_o += tl.dot(g_prev, r_o, input_precision="ieee")
            elif FGR:  # W_gg streamed, its rows into each gate's units kh wide
                gs = (g0_ptr, g_all_ptr, t, B, kh, rows, row_ok)
                if HAS_I:
                    z_i = _streamed_forward(z_i, *gs, wgg_ptr, units, unit_ok, BLOCK_KC)
                if HAS_F:
                    z_f = _streamed_forward(z_f, *gs, wgg_ptr + OFF_F * H * kh, units, unit_ok,
                                            BLOCK_KC)  # fmt: skip
                if HAS_O:
                    z_o = _streamed_forward(z_o, *gs, wgg_ptr + OFF_G * H * kh, units, unit_ok,
                                            BLOCK_KC)  # fmt: skip
            c_prev = _own_state(c0_ptr, c_all_ptr, t, B, H, rows, units, ok)
            if SQUASH_IN:
                g = _tanh(z_g)
            else:  # NIAF: the candidate is its pre-activation
                g = z_g
            if HAS_I:
                if PEEPHOLE:  # i looks at C_{t-1}
                    z_i += p_i * c_prev
                i = _sigmoid(z_i)
                written = i * g
                tl.store(acts, i.to(ty), mask=ok)
            else:  # NIG: i = 1
                written = g
            if HAS_F:
                if PEEPHOLE:  # so does f
                    z_f += p_f * c_prev
                f = _sigmoid(z_f)
                c_new = f * c_prev + written
                tl.store(acts + OFF_F * H, f.to(ty), mask=ok)
            elif COUPLED:
                c_new = c_prev + i * (g - c_prev)
            else:
                c_new = c_prev + written
            tl.store(acts + OFF_G * H, g.to(ty), mask=ok)
            if FGR:  # the state gates_t: an ended row keeps gates_{t-1}
                g_ty = g_all_ptr.dtype.element_ty
                if HAS_I:
                    kept = _own_state(g0_ptr, g_all_ptr, t, B, kh, rows, units, ok)
                    tl.store(g_all_ptr + g_slot, tl.where(live, i, kept).to(g_ty), mask=ok)
                if HAS_F:
                    kept = _own_state(g0_ptr, g_all_ptr, t, B, kh, rows, OFF_F * H + units, ok)
                    tl.store(g_all_ptr + g_slot + OFF_F * H, tl.where(live, f, kept).to(g_ty),
                             mask=ok)  # fmt: skip
            if NORM_CELL:  # the cell's norm needs every unit's C_t: to the scratch, then CELL
                tl.store(cell_ptr + own, c_new, mask=ok)
                if HAS_O:
                    tl.store(cell_ptr + own + H, z_o, mask=ok)
                _phase_barrier(barrier, first + BAR_GATES, N_SPLIT)
        if FINISH:
            if NORM_CELL:
                mean, rstd = _norm_stats(cell_ptr, rows, H, 2 * H, row_ok, eps, BLOCK_N)
                tl.store(cr_ptr + t * B + rows[:, None], rstd, mask=row_ok[:, None])
                raw = _scratch_tile(cell_ptr, rows, units, 2 * H, ok)
                xhat = (raw - mean) * rstd
                tl.store(cx_ptr + slot, xhat.to(cx_ptr.dtype.element_ty), mask=ok)
                shown = c_gain * xhat + c_shift  # Ba: o tanh(LN(C_t)); per-gate: the carried
                if NORM_CARRIED:  # TensorFlow's per-gate cell carries its norm
                    c_new = shown
                else:
                    c_new = raw
                if HAS_O:
                    z_o = _scratch_tile(cell_ptr + H, rows, units, 2 * H, ok)
                c_prev = _own_state(c0_ptr, c_all_ptr, t, B, H, rows, units, ok)
            else:
                shown = c_new
            if SQUASH_OUT:
                shown = _tanh(shown)
            if HAS_O:
                if PEEPHOLE:  # o looks at C_t, the carried state
                    z_o += p_o * c_new
                o = _sigmoid(z_o)
                tl.store(acts + OFF_O * H, o.to(ty), mask=ok)
                m = o * shown
                if FGR:
                    kept = _own_state(g0_ptr, g_all_ptr, t, B, kh, rows, OFF_G * H + units, ok)
                    o_kept = tl.where(live, o, kept).to(g_all_ptr.dtype.element_ty)
                    tl.store(g_all_ptr + g_slot + OFF_G * H, o_kept, mask=ok)
            else:  # NOG: o = 1
                m = shown
            tl.store(c_all_ptr + slot, tl.where(live, c_new, c_prev).to(c_all_ptr.dtype.element_ty),
                     mask=ok)  # fmt: skip
            if DOT:
                h_kept = _own_state(h0_ptr, h_all_ptr, t, B, H, rows, units, ok)
                tl.store(h_all_ptr + slot, tl.where(live, m, h_kept).to(h_all_ptr.dtype.element_ty),
                         mask=ok)  # fmt: skip
                tl.store(out_ptr + slot, tl.where(live, m, 0.0).to(out_ptr.dtype.element_ty),
                         mask=ok)  # fmt: skip
            else:  # the projected LSTM: m for the caller's W_hr, which masks h_t itself
                tl.store(h_all_ptr + slot, m.to(h_all_ptr.dtype.element_ty), mask=ok)
            _phase_barrier(barrier, first + BAR_END, N_SPLIT)


@triton.jit
def lstm_options_backward(
    dout_ptr, acts_ptr, c_all_ptr, c0_ptr, w_ptr, wgg_ptr, pi_ptr, pf_ptr, po_ptr,
    ng_ptr, cg_ptr, cs_ptr, nx_ptr, nr_ptr, cx_ptr, cr_ptr, mask_ptr,
    dz_ptr, drec_ptr, dzg_ptr, dcn_ptr, cell_ptr, dh_buf_ptr, dc_buf_ptr, dg_buf_ptr, sync_ptr,
    t_begin, n_steps, T, B, H,
    HAS_I: tl.constexpr, HAS_F: tl.constexpr, COUPLED: tl.constexpr, HAS_O: tl.constexpr,
    SQUASH_IN: tl.constexpr, SQUASH_OUT: tl.constexpr, PEEPHOLE: tl.constexpr,
    HAS_MASK: tl.constexpr, NORM_PRODUCT: tl.constexpr, NORM_GATES: tl.constexpr,
    NORM_SHOWN: tl.constexpr, NORM_CARRIED: tl.constexpr, FGR: tl.constexpr, DOT: tl.constexpr,
    OUT: tl.constexpr, CELL: tl.constexpr, NORM: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    BLOCK_KG: tl.constexpr, BLOCK_N: tl.constexpr, N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... in the phases OUT, CELL and NORM as they say (see
    above). Writes dz (T, B, G*H) the gradient of every gate pre-activation (after the
    norms), drec (T, B, G*H) that of the recurrent product (the caller passes dz itself
    without a product norm), dzg (T, B, K*H) the sigmoid gates' dz in the order of gates_t
    (FGR), dcn (T, B, H) the gradient at the cell norm's output (for its gain and shift).
    The fp32 buffers carry what does not go through W_hh or W_gg: dh_buf of dL/dh, dc_buf
    dL/dC, dg_buf of dL/dgates (within a step it holds the whole dL/dgates_t, from OUT to
    CELL). ``cell`` (B, 2H) is fp32 scratch: the norm's output gradient, then o's dz.

    ``DOT`` false (the projected LSTM, one step per launch): ``dout``'s slot at t holds
    dL/dm_t, and the caller carries h's gradient (through W_hr and W_hh; dh_buf is
    unused). FGR's product with W_gg stays here: gates_t has H-wide blocks either way.

    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh and W_gg, as lstm_backward does W_hh."""
    pid_b = tl.program_id(0)
    pid_h = tl.program_id(1)
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    units = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    ks = tl.arange(0, BLOCK_K)
    kks = tl.arange(0, BLOCK_KG)
    row_ok = rows < B
    unit_ok = units < H
    ok = row_ok[:, None] & unit_ok[None, :]
    full_ok = row_ok[:, None] & (ks < H)[None, :]
    OFF_F: tl.constexpr = 1 if HAS_I else 0
    OFF_G: tl.constexpr = OFF_F + 1 if HAS_F else OFF_F
    OFF_O: tl.constexpr = OFF_G + 1
    N_BLOCKS: tl.constexpr = OFF_O + 1 if HAS_O else OFF_O
    N_SIGMOID: tl.constexpr = N_BLOCKS - 1
    NORM_IN: tl.constexpr = True if NORM_PRODUCT else NORM_GATES
    NORM_CELL: tl.constexpr = True if NORM_SHOWN else NORM_CARRIED
    N_GROUPS: tl.constexpr = N_BLOCKS if NORM_GATES else 1
    # a step's barriers: after OUT (cell norm), after the gates (product norm), at its end
    BAR_GATES: tl.constexpr = 1 if NORM_CELL else 0
    BAR_END: tl.constexpr = BAR_GATES + 1 if NORM_IN else BAR_GATES
    N_BARRIERS: tl.constexpr = BAR_END + 1
    GATES: tl.constexpr = CELL if NORM_CELL else OUT  # the phase that does the gates' dz
    gh = N_BLOCKS * H
    kh = N_SIGMOID * H
    kg_ok = row_ok[:, None] & (kks < kh)[None, :]
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K

    if OUT and ON_CHIP:  # what step t+1's gates send back to h_t and gates_t
        if DOT:
            w_g = _backward_weight(w_ptr, OFF_G, units, ks, H, unit_ok, ks < H)
            if HAS_I:
                w_i = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
            if HAS_F:
                w_f = _backward_weight(w_ptr, OFF_F, units, ks, H, unit_ok, ks < H)
            if HAS_O:
                w_o = _backward_weight(w_ptr, OFF_O, units, ks, H, unit_ok, ks < H)
        if FGR:
            if HAS_I:
                r_i = _gate_weight(wgg_ptr, 0, units, kks, kh, unit_ok, kks < kh, True)
            if HAS_F:
                r_f = _gate_weight(wgg_ptr, OFF_F * H, units, kks, kh, unit_ok, kks < kh, True)
            if HAS_O:
                r_o = _gate_weight(wgg_ptr, OFF_G * H, units, kks, kh, unit_ok, kks < kh, True)
    if PEEPHOLE:
        if HAS_I:
            p_i = _peephole(pi_ptr, units, unit_ok)
        if HAS_F:
            p_f = _peephole(pf_ptr, units, unit_ok)
        if HAS_O:
            p_o = _peephole(po_ptr, units, unit_ok)
    if NORM_CELL:
        c_gain = _vector(cg_ptr, units, unit_ok)
        c_shift = _vector(cs_ptr, units, unit_ok)

    tile = rows[:, None].to(tl.int64) * gh + units[None, :]
    own = rows[:, None].to(tl.int64) * H + units[None, :]  # in a (B, H) buffer
    own2 = rows[:, None].to(tl.int64) * (2 * H) + units[None, :]  # in the (B, 2H) scratch
    g_own = rows[:, None].to(tl.int64) * kh + units[None, :]  # in a (B, K*H) buffer
    for step in range(n_steps):
        t = t_begin - step
        acts = acts_ptr + _step_offset(t, B, gh) + tile
        dz = dz_ptr + _step_offset(t, B, gh) + tile
        slot = _step_offset(t, B, H) + own
        live = _live(mask_ptr, t, B, rows, row_ok, HAS_MASK)
        ty = dz_ptr.dtype.element_ty
        barrier = sync_ptr + pid_b
        first = step * N_BARRIERS
        if OUT:
            if DOT:
                dh = _rows_tile(dh_buf_ptr, rows, units, H, ok)
                if t + 1 < T:  # an ended row's gradients at t+1 are 0: its share is 0 already
                    base = drec_ptr + _step_offset(t + 1, B, gh)
                    if ON_CHIP:
                        d_g = _shared_tile(base + OFF_G * H, rows, ks, gh, full_ok).to(w_g.dtype)
                        dh += tl.dot(d_g, w_g, input_precision="ieee")
                        if HAS_I:
                            d_i = _shared_tile(base, rows, ks, gh, full_ok).to(w_g.dtype)
                            dh += tl.dot(d_i, w_i, input_precision="ieee")
                        if HAS_F:
                            d_f = _shared_tile(base + OFF_F * H, rows, ks, gh, full_ok)
                            dh += tl.dot(d_f.to(w_g.dtype), w_f, input_precision="ieee")
                        if HAS_O:
                            d_o = _shared_tile(base + OFF_O * H, rows, ks, gh, full_ok)
                            dh += tl.dot(d_o.to(w_g.dtype), w_o, input_precision="ieee")
                    else:  # W_hh streamed
                        at = (gh, rows, row_ok, w_ptr, units, unit_ok, H)
                        dh = _lstm_streamed_back(dh, base, *at, HAS_I, HAS_F, HAS_O, BLOCK_KC)
                dh_t = dh + tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
                tl.store(dh_buf_ptr + own, tl.where(live, 0.0, dh), mask=ok)  # an ended row's
            else:  # the projected LSTM: the caller's dL/dm_t
                dh_t = tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            if FGR:  # dL/dgates_t: the carried part and what step t+1's gates send back
                if HAS_I:
                    dg_i = _rows_tile(dg_buf_ptr, rows, units, kh, ok)
                if HAS_F:
                    dg_f = _rows_tile(dg_buf_ptr + OFF_F * H, rows, units, kh, ok)
                if HAS_O:
                    dg_o = _rows_tile(dg_buf_ptr + OFF_G * H, rows, units, kh, ok)
                if t + 1 < T:
                    d_base = dzg_ptr + _step_offset(t + 1, B, kh)
                    if ON_CHIP:
                        d_next = _shared_tile(d_base, rows, kks, kh, kg_ok)
                        d_next = d_next.to(wgg_ptr.dtype.element_ty)
                        if HAS_I:
                            dg_i += tl.dot(d_next, r_i, input_precision="ieee")
                        if HAS_F:
                            dg_f += tl.dot(d_next, r_f, input_precision="ieee")
                        if HAS_O:
                            dg_o += tl.dot(d_next, r_o, input_precision="ieee")
                    else:  # W_gg streamed, its columns of each gate's units kh apart
                        at = (d_base, kh, rows, row_ok)
                        if HAS_I:
                            dg_i = _streamed_product(dg_i, *at, wgg_ptr, units, unit_ok, kh,
                                                     False, BLOCK_KC)  # fmt: skip
                        if HAS_F:
                            dg_f = _streamed_product(dg_f, *at, wgg_ptr + OFF_F * H, units,
                                                     unit_ok, kh, False, BLOCK_KC)  # fmt: skip
                        if HAS_O:
                            dg_o = _streamed_product(dg_o, *at, wgg_ptr + OFF_G * H, units,
                                                     unit_ok, kh, False, BLOCK_KC)  # fmt: skip
                if HAS_I:  # whole, for the gates (CELL may be a launch of its own)
                    tl.store(dg_buf_ptr + g_own, dg_i, mask=ok)
                if HAS_F:
                    tl.store(dg_buf_ptr + g_own + OFF_F * H, dg_f, mask=ok)
                if HAS_O:
                    tl.store(dg_buf_ptr + g_own + OFF_G * H, dg_o, mask=ok)
            # through h = o s(shown), s = tanh or (NOAF) the identity, shown = C_t or LN(C_t)
            if NORM_SHOWN:
                cx = tl.load(cx_ptr + slot, mask=ok, other=0.0).to(tl.float32)
                shown = c_gain * cx + c_shift
            else:
                shown = tl.load(c_all_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            if SQUASH_OUT:
                shown = _tanh(shown)
                d_shown = dh_t * (1.0 - shown * shown)
            else:
                d_shown = dh_t
            if HAS_O:
                o = tl.load(acts + OFF_O * H, mask=ok, other=0.0).to(tl.float32)
                d_o = dh_t * shown
                if FGR:  # o_t is also FGR's state
                    d_o += dg_o
                dz_o = tl.where(live, d_o * o * (1.0 - o), 0.0)
                tl.store(dz + OFF_O * H, dz_o.to(ty), mask=ok)
                d_shown = d_shown * o
            dc = _rows_tile(dc_buf_ptr, rows, units, H, ok)
            if NORM_SHOWN:  # u: the gradient at LN(C_t)'s output
                u = d_shown
            else:
                dct = d_shown + dc
                if PEEPHOLE and HAS_O:  # o's peephole saw C_t
                    dct += p_o * dz_o
                u = dct  # per-gate: the gradient at the carried LN(...)
            if NORM_CELL:  # the norm's backward needs u of every unit: to the scratch
                u = tl.where(live, u, 0.0)
                tl.store(dcn_ptr + slot, u.to(dcn_ptr.dtype.element_ty), mask=ok)
                tl.store(cell_ptr + own2, u, mask=ok)
                if HAS_O:
                    tl.store(cell_ptr + own2 + H, dz_o, mask=ok)
                _phase_barrier(barrier, first, N_SPLIT)
        if GATES:
            if NORM_CELL:
                cx_row = cx_ptr + _step_offset(t, B, H)
                mean_gy, mean_gyx = _norm_grad_means(cell_ptr, 2 * H, cx_row, H, cg_ptr, rows, H,
                                                     row_ok, BLOCK_N)  # fmt: skip
                rstd = tl.load(cr_ptr + t * B + rows, mask=row_ok, other=0.0)[:, None]
                u = _scratch_tile(cell_ptr, rows, units, 2 * H, ok)
                cx = tl.load(cx_ptr + slot, mask=ok, other=0.0).to(tl.float32)
                du = rstd * (c_gain * u - mean_gy - cx * mean_gyx)
                dc = _rows_tile(dc_buf_ptr, rows, units, H, ok)
                if HAS_O:
                    dz_o = _scratch_tile(cell_ptr + H, rows, units, 2 * H, ok)
                if NORM_SHOWN:  # then the carried C_t's own paths
                    dct = du + dc
                    if PEEPHOLE and HAS_O:
                        dct += p_o * dz_o
                else:  # per-gate: du is dL/d(f C_{t-1} + i C~)
                    dct = du
            if FGR:  # dL/dgates_t whole, from OUT
                if HAS_I:
                    dg_i = _rows_tile(dg_buf_ptr, rows, units, kh, ok)
                if HAS_F:
                    dg_f = _rows_tile(dg_buf_ptr + OFF_F * H, rows, units, kh, ok)
                if HAS_O:
                    dg_o = _rows_tile(dg_buf_ptr + OFF_G * H, rows, units, kh, ok)
            g = tl.load(acts + OFF_G * H, mask=ok, other=0.0).to(tl.float32)
            c_prev = _own_state(c0_ptr, c_all_ptr, t, B, H, rows, units, ok)
            if HAS_I:
                i = tl.load(acts, mask=ok, other=0.0).to(tl.float32)
            # d_i: dL/di before i's sigmoid (unused under NIG); dc_prev: dL/dC_{t-1}
            if HAS_F:
                f = tl.load(acts + OFF_F * H, mask=ok, other=0.0).to(tl.float32)
                d_i = dct * g
                d_f = dct * c_prev
                if FGR:
                    d_f += dg_f
                dz_f = d_f * f * (1.0 - f)
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
                if FGR:  # i_t is also FGR's state
                    d_i += dg_i
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
            dz_g = tl.where(live, dz_g, 0.0)
            tl.store(dz + OFF_G * H, dz_g.to(ty), mask=ok)
            if HAS_I:
                dz_i = tl.where(live, dz_i, 0.0)
                tl.store(dz, dz_i.to(ty), mask=ok)
            if HAS_F:
                dz_f = tl.where(live, dz_f, 0.0)
                tl.store(dz + OFF_F * H, dz_f.to(ty), mask=ok)
            tl.store(dc_buf_ptr + own, tl.where(live, dc_prev, dc), mask=ok)
            if FGR:  # the gates' dz for step t-1's product with W_gg; an ended row's passes by
                g_slot = dzg_ptr + _step_offset(t, B, kh) + g_own
                gty = dzg_ptr.dtype.element_ty
                if HAS_I:
                    tl.store(g_slot, dz_i.to(gty), mask=ok)
                    tl.store(dg_buf_ptr + g_own, tl.where(live, 0.0, dg_i), mask=ok)
                if HAS_F:
                    tl.store(g_slot + OFF_F * H, dz_f.to(gty), mask=ok)
                    tl.store(dg_buf_ptr + g_own + OFF_F * H, tl.where(live, 0.0, dg_f), mask=ok)
                if HAS_O:
                    tl.store(g_slot + OFF_G * H, dz_o.to(gty), mask=ok)
                    tl.store(dg_buf_ptr + g_own + OFF_G * H, tl.where(live, 0.0, dg_o), mask=ok)
            _phase_barrier(barrier, first + BAR_GATES, N_SPLIT)
        if NORM:  # back through the product's norm, for step t-1's product with W_hh
            step_gh = _step_offset(t, B, gh)
            dz_row, nx_row = dz_ptr + step_gh, nx_ptr + step_gh
            drec_row, nr_row = drec_ptr + step_gh, nr_ptr + _step_offset(t, B, N_GROUPS)
            unnorm_at = (dz_row, nx_row, nr_row, drec_row, ng_ptr)
            unnorm = (H, gh, rows, units, row_ok, unit_ok, ok)
            _block_unnorm(*unnorm_at, OFF_G, *unnorm, NORM_GATES, N_GROUPS, BLOCK_N)
            if HAS_I:
                _block_unnorm(*unnorm_at, 0, *unnorm, NORM_GATES, N_GROUPS, BLOCK_N)
            if HAS_F:
                _block_unnorm(*unnorm_at, OFF_F, *unnorm, NORM_GATES, N_GROUPS, BLOCK_N)
            if HAS_O:
                _block_unnorm(*unnorm_at, OFF_O, *unnorm, NORM_GATES, N_GROUPS, BLOCK_N)
            _phase_barrier(barrier, first + BAR_END, N_SPLIT)


# -- GRU (torch's form: r multiplies W_hn h + b_hn) ----------------------------------------


@triton.jit
def gru_forward(
    xg_ptr, w_ptr, bn_ptr, h0_ptr, mask_ptr,
    acts_ptr, hn_all_ptr, h_all_ptr, out_ptr, sync_ptr,
    t_begin, n_steps, B, H,
    HAS_BN: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """xg (T, B, 3H) holds x W_ih^T + b_ih, with b_hr and b_hz added. Stores acts (r, z, n)
    and hn = W_hn h_{t-1} + b_hn for the backward. ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh
    (:func:`_streamed_forward`)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = 3 * H
    if ON_CHIP:
        w_r = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        w_z = _forward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
        w_n = _forward_weight(w_ptr, 2, units, ks, H, unit_ok, ks < H)
    if HAS_BN:
        b_n = tl.load(bn_ptr + units, mask=unit_ok, other=0.0).to(tl.float32)[None, :]

    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        pre_r = _rows_tile(xg, rows, units, gh, ok).to(tl.float32)
        pre_z = _rows_tile(xg + H, rows, units, gh, ok).to(tl.float32)
        if ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_r.dtype)
            pre_r += tl.dot(h_prev, w_r, input_precision="ieee")
            pre_z += tl.dot(h_prev, w_z, input_precision="ieee")
            hn = tl.dot(h_prev, w_n, input_precision="ieee").to(tl.float32)
        else:
            args = (h0_ptr, h_all_ptr, t, B, H, rows, row_ok)
            pre_r = _streamed_forward(pre_r, *args, w_ptr, units, unit_ok, BLOCK_KC)
            pre_z = _streamed_forward(pre_z, *args, w_ptr + H * H, units, unit_ok, BLOCK_KC)
            hn = tl.full((BLOCK_B, BLOCK_H), 0.0, tl.float32)  # not tl.zeros: see _sigmoid
            hn = _streamed_forward(hn, *args, w_ptr + 2 * H * H, units, unit_ok, BLOCK_KC)
        r = _sigmoid(pre_r)
        z = _sigmoid(pre_z)
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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Writes dx (T, B, 3H), the gradients of the input pre-activations (r, z, n), and
    drec (T, B, 3H), those of W_hh h + b_hh (r, z, and r times n's), which also feed
    dL/dh_{t-1} through W_hh. dh_buf carries the part that does not (z h_{t-1}).
    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh (:func:`_streamed_product`)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = 3 * H
    if ON_CHIP:
        w_r = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        w_z = _backward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
        w_n = _backward_weight(w_ptr, 2, units, ks, H, unit_ok, ks < H)

    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        # two ifs, not one `and`: ON_CHIP is a compile-time constant, t a run-time value
        if ON_CHIP:
            if t + 1 < T:  # step t+1's gradients, which other programs wrote: read past L1
                base = drec_ptr + _step_offset(t + 1, B, gh)
                d_r = _shared_tile(base, rows, ks, gh, full_ok).to(w_r.dtype)
                back = tl.dot(d_r, w_r, input_precision="ieee")
                d_z = _shared_tile(base + H, rows, ks, gh, full_ok).to(w_r.dtype)
                back += tl.dot(d_z, w_z, input_precision="ieee")
                d_n = _shared_tile(base + 2 * H, rows, ks, gh, full_ok).to(w_r.dtype)
                back += tl.dot(d_n, w_n, input_precision="ieee")
                dh += back
        else:
            if t + 1 < T:
                base = drec_ptr + _step_offset(t + 1, B, gh)
                rest = (gh, rows, row_ok)
                dh = _streamed_product(dh, base, *rest, w_ptr, units, unit_ok, H, False, BLOCK_KC)
                dh = _streamed_product(dh, base + H, *rest, w_ptr + H * H, units, unit_ok, H,
                                       False, BLOCK_KC)  # fmt: skip
                dh = _streamed_product(dh, base + 2 * H, *rest, w_ptr + 2 * H * H, units,
                                       unit_ok, H, False, BLOCK_KC)  # fmt: skip
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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """xg (T, B, G*H) holds x W_ih^T + b_ih + b_hh. Stores acts (the gates, then n),
    rh_all = r h_{t-1} (T, B, H) and h_all; the phases run as GATES and CANDIDATE say.
    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh (:func:`_streamed_forward`)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    N_GATES: tl.constexpr = 1 if TIED else 2  # the candidate's block follows the gates'
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = (N_GATES + 1) * H
    if GATES and ON_CHIP:
        w_r = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if not TIED:
            w_z = _forward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
    if CANDIDATE and ON_CHIP:
        w_n = _forward_weight(w_ptr, N_GATES, units, ks, H, unit_ok, ks < H)

    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        xg = xg_ptr + _step_offset(t, B, gh)
        acts = acts_ptr + _step_offset(t, B, gh) + rows[:, None].to(tl.int64) * gh + units[None, :]
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        ty = acts_ptr.dtype.element_ty
        if GATES:
            pre_r = _rows_tile(xg, rows, units, gh, ok).to(tl.float32)
            if not TIED:
                pre_z = _rows_tile(xg + H, rows, units, gh, ok).to(tl.float32)
            if ON_CHIP:
                h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w_r.dtype)
                pre_r += tl.dot(h_prev, w_r, input_precision="ieee")
                if not TIED:
                    pre_z += tl.dot(h_prev, w_z, input_precision="ieee")
            else:
                hs = (h0_ptr, h_all_ptr, t, B, H, rows, row_ok)
                pre_r = _streamed_forward(pre_r, *hs, w_ptr, units, unit_ok, BLOCK_KC)
                if not TIED:
                    pre_z = _streamed_forward(pre_z, *hs, w_ptr + H * H, units, unit_ok,
                                              BLOCK_KC)  # fmt: skip
            r = _sigmoid(pre_r)
            tl.store(acts, r.to(ty), mask=ok)
            if TIED:  # the MGU's f keeps 1 - f of h_{t-1}
                z = 1.0 - r
            else:
                z = _sigmoid(pre_z)
                tl.store(acts + H, z.to(ty), mask=ok)
            # the reset acts here, before the candidate's product
            tl.store(rh_all_ptr + slot, (r * h).to(rh_all_ptr.dtype.element_ty), mask=ok)
            _phase_barrier(sync_ptr + pid_b, 2 * step, N_SPLIT)
        elif TIED:  # this step's GATES launch stored the gate
            z = 1.0 - tl.load(acts, mask=ok, other=0.0).to(tl.float32)
        else:
            z = tl.load(acts + H, mask=ok, other=0.0).to(tl.float32)
        if CANDIDATE:
            pre_n = _rows_tile(xg + N_GATES * H, rows, units, gh, ok).to(tl.float32)
            if ON_CHIP:
                rh = _shared_tile(rh_all_ptr + _step_offset(t, B, H), rows, ks, H, full_ok)
                pre_n += tl.dot(rh.to(w_n.dtype), w_n, input_precision="ieee")
            else:
                pre_n = _streamed_product(pre_n, rh_all_ptr + _step_offset(t, B, H), H, rows,
                                          row_ok, w_ptr + N_GATES * H * H, units, unit_ok, H,
                                          True, BLOCK_KC)  # fmt: skip
            n = _tanh(pre_n)
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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """Steps t_begin, t_begin - 1, ... Writes dpre (T, B, G*H), the gradient of every
    pre-activation (the gates', then n's). The fp32 buffer dh_buf carries between launches
    what a phase leaves: after CANDIDATE dL/dh_t, after GATES the part of dL/dh_{t-1} that
    does not go through W_h(r,z) (z h_{t-1}, r h_{t-1}, a finished sequence's pass-by).
    ``BLOCK_KC`` < ``BLOCK_K`` streams W_hh (:func:`_streamed_product`)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    N_GATES: tl.constexpr = 1 if TIED else 2
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    gh = (N_GATES + 1) * H
    if CANDIDATE and ON_CHIP:  # what step t+1's gates send back to h_t
        w_r = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
        if not TIED:
            w_z = _backward_weight(w_ptr, 1, units, ks, H, unit_ok, ks < H)
    if GATES and ON_CHIP:  # what n's pre-activation sends back to r h_{t-1}
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
                if ON_CHIP:
                    d_r = _shared_tile(base, rows, ks, gh, full_ok).to(w_r.dtype)
                    dh += tl.dot(d_r, w_r, input_precision="ieee")
                    if not TIED:
                        d_z = _shared_tile(base + H, rows, ks, gh, full_ok).to(w_r.dtype)
                        dh += tl.dot(d_z, w_z, input_precision="ieee")
                else:
                    at = (gh, rows, row_ok)
                    dh = _streamed_product(dh, base, *at, w_ptr, units, unit_ok, H, False,
                                           BLOCK_KC)  # fmt: skip
                    if not TIED:
                        dh = _streamed_product(dh, base + H, *at, w_ptr + H * H, units, unit_ok,
                                               H, False, BLOCK_KC)  # fmt: skip
            # an ended row's output is 0: its gradient goes nowhere
            d_out = tl.load(dout_ptr + slot, mask=ok, other=0.0).to(tl.float32)
            dh_t = tl.where(live, dh + d_out, dh)
            d_pre_n = tl.where(live, dh_t * (1.0 - z) * (1.0 - n * n), 0.0)  # h_t, then tanh
            tl.store(dpre + N_GATES * H, d_pre_n.to(ty), mask=ok)
            _phase_barrier(sync_ptr + pid_b, 2 * step, N_SPLIT)
        if GATES:
            n_base = dpre_ptr + _step_offset(t, B, gh) + N_GATES * H
            if ON_CHIP:
                d_n = _shared_tile(n_base, rows, ks, gh, full_ok).to(w_n.dtype)
                d_rh = tl.dot(d_n, w_n, input_precision="ieee")  # dL/d(r h_{t-1})
            else:
                d_rh = tl.full((BLOCK_B, BLOCK_H), 0.0, tl.float32)  # not tl.zeros: see _sigmoid
                d_rh = _streamed_product(d_rh, n_base, gh, rows, row_ok,
                                         w_ptr + N_GATES * H * H, units, unit_ok, H, False,
                                         BLOCK_KC)  # fmt: skip
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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """``BLOCK_KC`` < ``BLOCK_K`` streams W_hh (:func:`_streamed_forward`)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    if ON_CHIP:
        w = _forward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
    h = _own_state(h0_ptr, h_all_ptr, t_begin, B, H, rows, units, ok)
    for step in range(n_steps):
        t = t_begin + step
        slot = _step_offset(t, B, H) + rows[:, None].to(tl.int64) * H + units[None, :]
        pre = tl.load(xg_ptr + slot, mask=ok, other=0.0).to(tl.float32)
        if ON_CHIP:
            h_prev = _full_h(h0_ptr, h_all_ptr, t, B, H, rows, ks, full_ok).to(w.dtype)
            pre += tl.dot(h_prev, w, input_precision="ieee")
        else:
            pre = _streamed_forward(pre, h0_ptr, h_all_ptr, t, B, H, rows, row_ok, w_ptr, units,
                                    unit_ok, BLOCK_KC)  # fmt: skip
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
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_KC: tl.constexpr,
    N_SPLIT: tl.constexpr,
):  # fmt: skip
    """``BLOCK_KC`` < ``BLOCK_K`` streams W_hh (:func:`_streamed_product`)."""
    pid_b, rows, units, ks, row_ok, unit_ok, ok, full_ok = _program_tile(
        B, H, BLOCK_B, BLOCK_H, BLOCK_K
    )
    ON_CHIP: tl.constexpr = BLOCK_KC == BLOCK_K
    if ON_CHIP:
        w = _backward_weight(w_ptr, 0, units, ks, H, unit_ok, ks < H)
    dh_local = _rows_tile(dh_buf_ptr, rows, units, H, ok)
    for step in range(n_steps):
        t = t_begin - step
        dh = dh_local
        if t + 1 < T:
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
