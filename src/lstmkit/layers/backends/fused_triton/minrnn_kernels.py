"""Triton kernels of minGRU and minLSTM: h_t = a_t h_{t-1} + (1 - a_t) h~_t per unit, with
a_t and h~_t from that step's pre-activations alone (equations: lstmkit.cellmath.minrnn;
the C++ twin: fused_cpu/minrnn.cpp).

No unit reads another, so there is no product and no barrier: the grid splits the B x H
units into blocks, and each program runs the whole time loop over its own block, keeping h
in registers. Imported on first use, like kernels.py, so that the kernels follow
TRITON_INTERPRET as it is then.

Legend: T time, B batch, H hidden, G gate blocks (minGRU 2: k_z, k_h; minLSTM 3: k_f, k_i,
k_h). Masks: ``mask[t, b]`` false means sequence b has ended; its state passes through,
its output is 0, its gradient passes through and its pre-activation gradients are 0.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lstmkit.layers.backends.fused_triton.kernels import _sigmoid


@triton.jit
def _coefficients(xg_ptr, base, H, ok, LSTM: tl.constexpr):
    """a_t, h~_t, and what the backward reuses: the pre-activation k_h, and z_t (minGRU) or
    f_t and i_t (minLSTM), for the units at ``base`` (offsets of their first block)."""
    k_a = tl.load(xg_ptr + base, mask=ok, other=0.0).to(tl.float32)
    if LSTM:
        k_h = tl.load(xg_ptr + base + 2 * H, mask=ok, other=0.0).to(tl.float32)
        f = _sigmoid(k_a)
        i = _sigmoid(tl.load(xg_ptr + base + H, mask=ok, other=0.0).to(tl.float32))
        a = f / (f + i)  # f', the reference's form
    else:
        k_h = tl.load(xg_ptr + base + H, mask=ok, other=0.0).to(tl.float32)
        f = _sigmoid(k_a)  # z_t
        i = f
        a = 1.0 - f
    s = _sigmoid(k_h)
    candidate = tl.where(k_h >= 0.0, k_h + 0.5, s)  # g(k_h)
    return a, candidate, k_h, s, f, i


@triton.jit
def minrnn_forward(
    xg_ptr, h0_ptr, mask_ptr, h_all_ptr, out_ptr, T, B, H,
    LSTM: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # flat (b, j) units
    ok = cols < B * H
    rows, units = (cols // H).to(tl.int64), cols % H
    h = tl.load(h0_ptr + cols, mask=ok, other=0.0).to(tl.float32)
    for t in range(T):
        row = t * B + rows  # (t, b) as one index, int64 from rows
        base = row * ((3 if LSTM else 2) * H) + units
        a, candidate, _, _, _, _ = _coefficients(xg_ptr, base, H, ok, LSTM)
        new = a * h + (1.0 - a) * candidate
        if HAS_MASK:
            live = tl.load(mask_ptr + row, mask=ok, other=0) != 0
        else:
            live = ok
        # carry the stored value, as the reference does in the tensors' dtype
        h = tl.where(live, new, h).to(h_all_ptr.dtype.element_ty)
        slot = row * H + units
        tl.store(h_all_ptr + slot, h, mask=ok)
        tl.store(out_ptr + slot, tl.where(live, h, 0.0).to(out_ptr.dtype.element_ty), mask=ok)
        h = h.to(tl.float32)


@triton.jit
def minrnn_backward(
    dout_ptr, dhn_ptr, xg_ptr, h_all_ptr, h0_ptr, mask_ptr, dz_ptr, dh0_ptr, T, B, H,
    LSTM: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < B * H
    rows, units = (cols // H).to(tl.int64), cols % H
    dh = tl.load(dhn_ptr + cols, mask=ok, other=0.0).to(tl.float32)
    for back in range(T):
        t = T - 1 - back
        row = t * B + rows  # (t, b) as one index, int64 from rows
        base = row * ((3 if LSTM else 2) * H) + units
        a, candidate, k_h, s, f, i = _coefficients(xg_ptr, base, H, ok, LSTM)
        if t > 0:
            h_prev = tl.load(h_all_ptr + (row - B) * H + units, mask=ok, other=0.0)
        else:
            h_prev = tl.load(h0_ptr + cols, mask=ok, other=0.0)
        if HAS_MASK:
            live = tl.load(mask_ptr + row, mask=ok, other=0) != 0
        else:
            live = ok
        d = dh + tl.load(dout_ptr + row * H + units, mask=ok, other=0.0).to(tl.float32)
        da = d * (h_prev.to(tl.float32) - candidate)
        dg = tl.where(k_h >= 0.0, 1.0, s * (1.0 - s))
        d_k_h = tl.where(live, d * (1.0 - a) * dg, 0.0)
        if LSTM:  # a = f / (f + i)
            scale = da / ((f + i) * (f + i))
            d_k_a = tl.where(live, scale * i * f * (1.0 - f), 0.0)
            d_k_i = tl.where(live, -scale * f * i * (1.0 - i), 0.0)
            tl.store(dz_ptr + base + H, d_k_i.to(dz_ptr.dtype.element_ty), mask=ok)
            tl.store(dz_ptr + base + 2 * H, d_k_h.to(dz_ptr.dtype.element_ty), mask=ok)
        else:  # a = 1 - z
            d_k_a = tl.where(live, -da * f * (1.0 - f), 0.0)
            tl.store(dz_ptr + base + H, d_k_h.to(dz_ptr.dtype.element_ty), mask=ok)
        tl.store(dz_ptr + base, d_k_a.to(dz_ptr.dtype.element_ty), mask=ok)
        dh = tl.where(live, d * a, dh)  # an ended step: the gradient passes by
    tl.store(dh0_ptr + cols, dh.to(dh0_ptr.dtype.element_ty), mask=ok)
