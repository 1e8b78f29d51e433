"""The GRU in both reset placements (torch's, after the product, and Cho et al.'s, before
it) and the MGU on the fused GPU backend: the autograd functions around fused_triton's Triton
kernels (``kernels.py``), laid out by :func:`~lstmkit.layers.backends.fused_triton.plan`.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_triton import (
    Plan,
    _absent,
    _check,
    _kernels,
    _mask_bytes,
    _on_chip,
    _shifted,
    _time_loop,
    plan,
)


def run_gru(family, x, state, weights, mask):
    _check(x)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=False)  # b_hn sits inside r's product
    (h0,) = state
    output, h_n, acts, h_all = _GRUFunction.apply(
        mask, x_gates, h0, weights["weight_hh"], weights.get("bias_hh")
    )
    return output, (h_n,), dict(acts=acts, hidden=h_all)


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mask, x_gates, h0, w_hh, b_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        steps, batch, gh = x_gates.shape
        hidden = gh // 3
        xg = x_gates.clone()
        if b_hh is not None:  # b_hr and b_hz add where x's do; b_hn goes inside r's product
            xg[..., : 2 * hidden] += b_hh[: 2 * hidden]
        b_n = _absent(xg) if b_hh is None else b_hh[2 * hidden :].contiguous()
        layout = plan(batch, hidden, 3, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        hn_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, hidden)
        output = xg.new_empty(steps, batch, hidden)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.gru_forward[layout.grid](
                xg, w_chip, b_n, h0, mask_u8, acts, hn_all, h_all, output, sync,
                t_begin, n_steps, batch, hidden, HAS_BN=b_hh is not None,
                HAS_MASK=mask is not None, N_SPLIT=sync_programs, **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.mask, ctx.layout, ctx.has_bias = mask, layout, b_hh is not None
        ctx.save_for_backward(acts, hn_all, h_all, h0, w)
        ctx.mark_non_differentiable(acts, h_all)  # handed out for traces only
        return output, h_all[-1].clone(), acts, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        acts, hn_all, h_all, h0, w = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _kernels(), ctx.layout, ctx.mask
        steps, batch, gh = acts.shape
        hidden = gh // 3
        d_output = zeros_if_none(d_output, h_all).contiguous()
        dx = torch.empty_like(acts)
        drec = torch.empty_like(acts)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, acts)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.gru_backward[layout.grid](
                d_output, acts, hn_all, h_all, h0, w_chip, mask_u8, dx, drec, dh_buf, sync,
                t_begin, n_steps, steps, batch, hidden, HAS_MASK=mask is not None,
                N_SPLIT=sync_programs, **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        back = (drec[0] @ w).float()
        dh0 = dh_buf + (back if mask is None else back * mask[0].unsqueeze(1))
        d_w_hh = drec.reshape(steps * batch, gh).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        d_b_hh = drec.sum((0, 1)) if ctx.has_bias else None
        return None, dx, dh0.to(h0.dtype), d_w_hh, d_b_hh


# -- reset before the product: Cho et al.'s GRU and the MGU --------------------------------


def run_cho_gru(family, x, state, weights, mask):
    """The GRU with ``reset_after=False``: r_t scales h_{t-1} before W_hn."""
    return _run_reset_first(False, x, state, weights, mask)


def run_mgu(family, x, state, weights, mask):
    """The MGU: Cho et al.'s GRU with r_t = f_t and z_t = 1 - f_t (kernels.py's ``TIED``)."""
    return _run_reset_first(True, x, state, weights, mask)


def _run_reset_first(tied, x, state, weights, mask):
    _check(x)
    # every b_hh block adds to a pre-activation here, b_hn too (outside r's reach)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    (h0,) = state
    output, h_n, acts, h_all = _ResetFirstFunction.apply(
        tied, mask, x_gates, h0, weights["weight_hh"]
    )
    return output, (h_n,), dict(acts=acts, hidden=h_all)


def _phases(layout: Plan, first: str, second: str) -> list[dict]:
    """The kernels' phase switches, one dict per launch of a step: both phases in one
    persistent launch, else one launch each, ``first`` then ``second`` (kernels.py: the
    candidate's product needs r h_{t-1} of every unit, so the phases meet at a barrier,
    which between launches is the launch boundary)."""
    if layout.persistent:
        return [{first: True, second: True}]
    return [{first: True, second: False}, {first: False, second: True}]


class _ResetFirstFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tied, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden = h0.shape[1]
        layout = plan(batch, hidden, gh // hidden, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        rh_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, hidden)
        output = xg.new_empty(steps, batch, hidden)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            for phase in _phases(layout, "GATES", "CANDIDATE"):
                kernels.reset_first_forward[layout.grid](
                    xg, w_chip, h0, mask_u8, acts, rh_all, h_all, output, sync,
                    t_begin, n_steps, batch, hidden, TIED=tied, **phase,
                    HAS_MASK=mask is not None, N_SPLIT=sync_programs, **layout.kernel_options,
                )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.tied, ctx.mask, ctx.layout = tied, mask, layout
        ctx.save_for_backward(acts, rh_all, h_all, h0, w)
        ctx.mark_non_differentiable(acts, h_all)  # handed out for traces only
        return output, h_all[-1].clone(), acts, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        acts, rh_all, h_all, h0, w = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _kernels(), ctx.layout, ctx.mask
        steps, batch, gh = acts.shape
        hidden = h0.shape[1]
        gate_rows = gh - hidden  # the sigmoid gates' blocks; the candidate's follows
        d_output = zeros_if_none(d_output, h_all).contiguous()
        d_pre = torch.empty_like(acts)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, acts)

        def launch(t_begin, n_steps, sync_programs, sync):
            for phase in _phases(layout, "CANDIDATE", "GATES"):  # the forward's reversed
                kernels.reset_first_backward[layout.grid](
                    d_output, acts, h_all, h0, w_chip, mask_u8, d_pre, dh_buf, sync,
                    t_begin, n_steps, steps, batch, hidden, TIED=ctx.tied, **phase,
                    HAS_MASK=mask is not None, N_SPLIT=sync_programs, **layout.kernel_options,
                )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        d_gates, d_cand = d_pre.split([gate_rows, hidden], -1)
        # an ended row's gate gradients are 0, so the product adds nothing to its carry
        dh0 = dh_buf + (d_gates[0] @ w[:gate_rows]).float()
        # the gate blocks saw h_{t-1}, the candidate's block r h_{t-1}
        d_w_gates = d_gates.reshape(-1, gate_rows).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        d_w_cand = d_cand.reshape(-1, hidden).t() @ rh_all.reshape(-1, hidden)
        return None, None, d_pre, dh0.to(h0.dtype), torch.cat([d_w_gates, d_w_cand])
