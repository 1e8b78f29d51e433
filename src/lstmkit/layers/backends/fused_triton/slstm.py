"""The sLSTM (Beck et al. 2024, "xLSTM", Sec. 2.2) as Triton kernels behind
:mod:`lstmkit.layers.backends.fused`'s runner contract, for CUDA tensors (and CPU tensors
under ``TRITON_INTERPRET=1``): every option of :class:`~lstmkit.cellmath.slstm.SLSTMFamily`.

Legend: T time, B batch, H hidden, K heads, D = H / K units per head, G = 4 gate blocks
(i, f, z, o), BLOCK_K the padded reduction length (H rounded up to a power of two).

The layout is the LSTM kernels' (fused_triton's :func:`plan`, :func:`_time_loop`): a
program owns BLOCK_H units of BLOCK_B rows, keeps its columns of the four recurrent matrices
on chip for every step it runs, and its own units' c, n, m and h in registers. The matrices
are block-diagonal (one D x D block per head), so a program needs only the rows of its
units' heads: it loads (BLOCK_S, BLOCK_H) tiles from the first row of its first unit's
head, BLOCK_S the widest such span over the programs (:func:`_heads_span`), with zeros
where a row and a unit belong to different heads. With K heads of D units a program's tiles
and products are about 1/K of a dense LSTM's of the same H (with one head, the same), and
the plan gives each program as many more units as that frees. Elementwise math is fp32
whatever the storage dtype.

What is kept for the backward, as in the C++ kernels (fused_cpu/slstm.cpp, whose comments
derive the backward): the gates as applied, the states after each step and, in the
stabilised form, ``aux`` (T, B, 2H): the share of dL/dm_t that the max sends to
log f_t + m_{t-1} (1, 0, or 1/2 on a tie, torch.maximum's rule) and d log f_t / d f~_t.
"""

from __future__ import annotations

import functools

import torch
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_triton import (
    _absent,
    _check,
    _kernels,
    _mask_bytes,
    _next_power_of_two,
    _on_chip,
    _shifted,
    _time_loop,
    plan,
)


def run_slstm(family: SLSTMFamily, x, state, weights, mask):
    """One direction, forward in time; the contract of fused_cpu/slstm.py's ``run_slstm``."""
    _check(x)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)  # b_hh enters every step alike
    output, *final, acts, c_all, n_all, m_all, h_all = _SLSTMFunction.apply(
        family.stabilized, family.forget_activation == "exp", mask, x_gates, *state,
        weights["weight_hh"],
    )  # fmt: skip
    gates = dict(zip(family.gates, acts.chunk(4, -1), strict=True))  # as applied: i', f', z, o
    saved = {**gates, "cell": c_all, "normalizer": n_all, "stabilizer": m_all, "hidden": h_all}
    return output, tuple(final), saved


def _heads_span(hidden: int, head: int):
    """The columns of R a program's products need with ``units`` units, as a function of
    units for :func:`plan` (:func:`_heads_rows`)."""
    return functools.partial(_heads_rows, hidden, head)


@functools.cache  # plan() asks for a few unit counts at every call, the same each time
def _heads_rows(hidden: int, head: int, units: int) -> int:
    """The widest span of whole heads that any program of ``units`` units touches, padded
    to a power of two, at least 16 (a product's least) and at most the padded H, the dense
    span."""
    widest = max(
        min(hidden, ((min(first + units, hidden) - 1) // head + 1) * head) - first // head * head
        for first in range(0, hidden, units)
    )
    return min(max(16, _next_power_of_two(hidden)), max(16, _next_power_of_two(widest)))


def _layout(batch: int, hidden: int, head: int, dtype, device):
    """The plan and the kernels' BLOCK_S for an sLSTM of heads of ``head`` units."""
    span = _heads_span(hidden, head)
    layout = plan(batch, hidden, 4, dtype, device, reduction=span)
    return layout, span(layout.block_h)


def _flags(stabilized: bool, exp_forget: bool, mask, layout, block_s: int) -> dict:
    return dict(
        STABILIZED=stabilized, EXP_FORGET=exp_forget, HAS_MASK=mask is not None,
        BLOCK_S=block_s, **layout.kernel_options,
    )  # fmt: skip


class _SLSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, stabilized, exp_forget, mask, x_gates, h0, c0, n0, m0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _slstm_kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden, head = gh // 4, w_hh.shape[2]
        layout, block_s = _layout(batch, hidden, head, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        aux = xg.new_empty(steps, batch, 2 * hidden) if stabilized else _absent(xg)
        c_all, n_all, m_all, h_all, output = (xg.new_empty(steps, batch, hidden) for _ in range(5))
        first = [s.contiguous() for s in (h0, c0, n0, m0)]
        w = w_hh.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.slstm_forward[layout.grid](
                xg, w_chip, *first, mask_u8, acts, aux, c_all, n_all, m_all, h_all, output,
                sync, t_begin, n_steps, batch, hidden, head, N_SPLIT=sync_programs,
                **_flags(stabilized, exp_forget, mask, layout, block_s),
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.stabilized, ctx.exp_forget, ctx.mask = stabilized, exp_forget, mask
        ctx.layout, ctx.block_s = layout, block_s
        ctx.save_for_backward(acts, aux, c_all, n_all, h_all, *first, w)
        ctx.mark_non_differentiable(acts, c_all, n_all, m_all, h_all)  # for traces only
        finals = (s[-1].clone() for s in (h_all, c_all, n_all, m_all))
        return output, *finals, acts, c_all, n_all, m_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, d_n_n, d_m_n, *_):
        acts, aux, c_all, n_all, h_all, h0, c0, n0, m0, w = ctx.saved_tensors
        kernels, layout, mask = _slstm_kernels(), ctx.layout, ctx.mask
        steps, batch, gh = acts.shape
        hidden, heads, head = gh // 4, w.shape[1], w.shape[2]
        w_chip = _on_chip(w)
        d_output = zeros_if_none(d_output, h_all).contiguous()
        d_pre = torch.empty_like(acts)
        # fp32 carries between launches: the part of dL/dh that does not go through R (an
        # ended row's pass-by), and dL/dc, dL/dn, dL/dm
        buffers = [
            zeros_if_none(g, like).float().contiguous()
            for g, like in ((d_h_n, h0), (d_c_n, c0), (d_n_n, n0), (d_m_n, m0))
        ]
        mask_u8 = _mask_bytes(mask, acts)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.slstm_backward[layout.grid](
                d_output, acts, aux, c_all, n_all, c0, n0, w_chip, mask_u8, d_pre, *buffers,
                sync, t_begin, n_steps, steps, batch, hidden, head, N_SPLIT=sync_programs,
                **_flags(ctx.stabilized, ctx.exp_forget, mask, layout, ctx.block_s),
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        # step 0's pre-activation gradients back to h0 through the blocks (0 for ended rows)
        per_head = d_pre[0].reshape(batch, 4, heads, head)
        back = torch.einsum("bgki,gkij->bkj", per_head.float(), w.float()).reshape(batch, hidden)
        dh0, dc0, dn0, dm0 = buffers
        dh0 = dh0 + back
        # dL/dR_g block k: the sum over steps and rows of dpre_{g,k} (x) h_{t-1, k}
        h_prev = _shifted(h0, h_all).reshape(steps * batch, heads, head)
        d_w = torch.einsum("ngki,nkj->gkij", d_pre.reshape(steps * batch, 4, heads, head), h_prev)
        return (None, None, None, d_pre, dh0.to(h0.dtype), dc0.to(c0.dtype), dn0.to(n0.dtype),
                dm0.to(m0.dtype), d_w)  # fmt: skip


@functools.cache
def _slstm_kernels():
    # imported on first use: triton reads TRITON_INTERPRET when the kernels are defined;
    # the shared LSTM kernels are loaded first, so that _check_kernel_mode sees the setting
    _kernels()
    from lstmkit.layers.backends.fused_triton import slstm_kernels

    return slstm_kernels
