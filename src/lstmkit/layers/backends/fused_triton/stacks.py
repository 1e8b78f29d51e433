r"""The memory-joined stacks as Triton kernels (``stacks_kernels.py``): one layer of the
depth-gated LSTM (Yao et al. 2015, Sec. 3) and one layer of 2-D Grid LSTM blocks
(Kalchbrenner et al. 2015, Sec. 3.1) per call, for CUDA tensors (and CPU tensors under
``TRITON_INTERPRET=1``), with hand-written backward passes.

The contract and the split of work are those of :mod:`..fused_cpu.stacks` (whose docstring
says why a layer can run over all steps before the next): every input-side product of all
steps is one matrix product here, so autograd carries it to the input, ``weight_ih``, the
biases, ``weight_xd`` and ``bias_d``; the kernels run the recurrence and return the gradient
of every pre-activation; the recurrent weight gradients (and the depth gate's w_cd, w_ld)
are single products or sums over all steps, done here by torch. The layout is the LSTM
kernels' (fused_triton's :func:`~..fused_triton.plan`, :func:`~..fused_triton._time_loop`).

Legend: T time, B batch, I input size, H hidden size. x is (T, B, I) in forward time order;
mask (T, B) bool or None (False: the sequence has ended, its state passes through).
float16, bfloat16 and float32, computed in float32; first derivatives only.

Not yet measured on a GPU, like the rest of the Triton set: ``backend="auto"`` does not
choose these kernels, ``backend="fused"`` on CUDA tensors runs them.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.grid_lstm import GridLSTMFamily
from lstmkit.layers.backends.fused import zeros_if_none
from lstmkit.layers.backends.fused_cpu.stacks import depth_gated_layer, grid_layer
from lstmkit.layers.backends.fused_triton import (
    _absent,
    _check,
    _kernels,
    _mask_bytes,
    _on_chip,
    _shifted,
    _time_loop,
    plan,
)


@functools.cache
def _stacks_kernels():
    # imported on first use: triton reads TRITON_INTERPRET when the kernels are defined;
    # the shared LSTM kernels are loaded first, so that _check_kernel_mode sees the setting
    _kernels()
    from lstmkit.layers.backends.fused_triton import stacks_kernels

    return stacks_kernels


def _optional(t: Tensor | None, like: Tensor) -> Tensor:
    """A kernel's pointer argument: the tensor, or a stand-in its flag says not to read."""
    return _absent(like) if t is None else t.contiguous()


def _flags(layout, mask) -> dict:
    return dict(HAS_MASK=mask is not None, **layout.kernel_options)


# -- depth-gated LSTM ----------------------------------------------------------------------


def run_depth_gated_layer(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weights: dict[str, Tensor],
    lower_cells: Tensor | None,
    mask: Tensor | None,
):
    """One layer of the depth-gated LSTM; the contract of fused_cpu/stacks.py's
    ``run_depth_gated_layer``: the carried h_t and c_t (T, B, H), the final (h, c) and the
    gates and states by trace name ("depth" absent in layer 0)."""
    _check(x)
    return depth_gated_layer(_DepthGatedFunction.apply, x, state, weights, lower_cells, mask)


class _DepthGatedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mask, x_gates, lower, h0, c0, w_hh, w_cd, w_ld):
        ctx.set_materialize_grads(False)  # no zero tensors for unused outputs' gradients
        kernels = _stacks_kernels()
        xg = x_gates.contiguous()
        steps, batch, hidden = xg.shape[0], xg.shape[1], h0.shape[1]
        depth = lower is not None
        # the depth gate is diagonal: 4 blocks of W_hh
        layout = plan(batch, hidden, 4, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        c_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, hidden)
        w = w_hh.contiguous()
        w_chip = _on_chip(w)
        h0, c0 = h0.contiguous(), c0.contiguous()
        low, p_cd, p_ld = (_optional(t, xg) for t in (lower, w_cd, w_ld))
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.depth_gated_forward[layout.grid](
                xg, w_chip, h0, c0, low, p_cd, p_ld, mask_u8, acts, c_all, h_all, sync,
                t_begin, n_steps, batch, hidden, DEPTH=depth, N_SPLIT=sync_programs,
                **_flags(layout, mask),
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.mask, ctx.layout = mask, layout
        ctx.save_for_backward(acts, c_all, h_all, lower, h0, c0, w, w_cd, w_ld)
        ctx.mark_non_differentiable(acts)  # handed out for traces only
        return h_all, c_all, h_all[-1].clone(), c_all[-1].clone(), acts

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h_all, d_c_all, d_h_n, d_c_n, _):
        acts, c_all, h_all, lower, h0, c0, w, w_cd, w_ld = ctx.saved_tensors
        kernels, layout, mask = _stacks_kernels(), ctx.layout, ctx.mask
        steps, batch, hidden = acts.shape[0], acts.shape[1], h0.shape[1]
        depth = lower is not None
        w_chip = _on_chip(w)
        d_h_seq = zeros_if_none(d_h_all, h_all).contiguous()
        d_c_seq = zeros_if_none(d_c_all, c_all).contiguous()
        dz = torch.empty_like(acts)
        d_lower = torch.empty_like(c_all) if depth else _absent(acts)
        # fp32 carries between launches: dL/dh's pass-by part and dL/dc
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        dc_buf = zeros_if_none(d_c_n, c0).float().contiguous()
        low, p_cd, p_ld = (_optional(t, acts) for t in (lower, w_cd, w_ld))
        mask_u8 = _mask_bytes(mask, acts)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.depth_gated_backward[layout.grid](
                d_h_seq, d_c_seq, acts, c_all, c0, low, w_chip, p_cd, p_ld, mask_u8, dz,
                d_lower, dh_buf, dc_buf, sync, t_begin, n_steps, steps, batch, hidden,
                DEPTH=depth, N_SPLIT=sync_programs, **_flags(layout, mask),
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        dz_lstm = dz[..., : 4 * hidden]  # the blocks with a recurrent matrix
        # step 0's pre-activation gradients back to h0 (an ended row's are 0)
        dh0 = dh_buf + (dz_lstm[0] @ w).float()
        h_prev = _shifted(h0, h_all).reshape(steps * batch, hidden)
        d_w_hh = dz_lstm.reshape(steps * batch, 4 * hidden).t() @ h_prev
        d_w_cd = d_w_ld = None
        if depth:  # the diagonal weights: sums over steps and rows, in fp32
            dz_d = dz[..., 4 * hidden :].float()
            d_w_cd = (dz_d * _shifted(c0, c_all).float()).sum((0, 1)).to(w_cd.dtype)
            d_w_ld = (dz_d * lower.float()).sum((0, 1)).to(w_ld.dtype)
        return (None, dz, d_lower if depth else None, dh0.to(h0.dtype), dc_buf.to(c0.dtype),
                d_w_hh, d_w_cd, d_w_ld)  # fmt: skip


# -- Grid LSTM -----------------------------------------------------------------------------


def run_grid_layer(
    family: GridLSTMFamily,
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weights: dict[str, Tensor],
    lower_memory: Tensor | None,
    mask: Tensor | None,
):
    """One layer of Grid LSTM blocks; the contract of fused_cpu/stacks.py's
    ``run_grid_layer``: what goes up ((eta, mu), or (h_t carried, None) without the depth
    transform), the final time pair (h, m), and the values by trace name (T, B, H)."""
    _check(x)
    return grid_layer(_GridFunction.apply, family, x, state, weights, lower_memory, mask)


def _grid_flags(printed: bool, depth: bool, lower, layout, mask) -> dict:
    return dict(DEPTH=depth, HAS_LOWER=lower is not None, PRINTED=printed,
                **_flags(layout, mask))  # fmt: skip


class _GridFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, printed, mask, x_gates, lower, h0, m0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for unused outputs' gradients
        kernels = _stacks_kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden = h0.shape[1]
        depth = gh == 8 * hidden
        layout = plan(batch, hidden, gh // hidden, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        m_all, h_all = (xg.new_empty(steps, batch, hidden) for _ in range(2))
        eta, mu = (xg.new_empty(steps, batch, hidden) if depth else None for _ in range(2))
        w = w_hh.contiguous()
        w_chip = _on_chip(w)
        h0, m0 = h0.contiguous(), m0.contiguous()
        low, eta_out, mu_out = (_optional(t, xg) for t in (lower, eta, mu))
        mask_u8 = _mask_bytes(mask, xg)
        flags = _grid_flags(printed, depth, lower, layout, mask)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.grid_forward[layout.grid](
                xg, w_chip, h0, m0, low, mask_u8, acts, m_all, h_all, eta_out, mu_out, sync,
                t_begin, n_steps, batch, hidden, N_SPLIT=sync_programs, **flags,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.printed, ctx.mask, ctx.layout = printed, mask, layout
        ctx.save_for_backward(acts, m_all, h_all, mu, lower, h0, m0, w)
        ctx.mark_non_differentiable(acts, m_all)  # handed out for traces only
        return h_all, eta, mu, h_all[-1].clone(), m_all[-1].clone(), acts, m_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h_all, d_eta, d_mu, d_h_n, d_m_n, *_):
        acts, m_all, h_all, mu, lower, h0, m0, w = ctx.saved_tensors
        kernels, layout, mask = _stacks_kernels(), ctx.layout, ctx.mask
        steps, batch, gh = acts.shape
        hidden = h0.shape[1]
        depth = mu is not None
        w_chip = _on_chip(w)
        d_h_seq = zeros_if_none(d_h_all, h_all).contiguous()
        d_eta = zeros_if_none(d_eta, mu).contiguous() if depth else _absent(acts)
        d_mu = zeros_if_none(d_mu, mu).contiguous() if depth else _absent(acts)
        dz = torch.empty_like(acts)
        d_lower = torch.empty_like(m_all) if lower is not None else _absent(acts)
        # fp32 carries between launches: dL/dh's pass-by part and dL/dm
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        dm_buf = zeros_if_none(d_m_n, m0).float().contiguous()
        mu_in, low = _optional(mu, acts), _optional(lower, acts)
        mask_u8 = _mask_bytes(mask, acts)
        flags = _grid_flags(ctx.printed, depth, lower, layout, mask)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.grid_backward[layout.grid](
                d_h_seq, d_eta, d_mu, acts, m_all, mu_in, low, m0, w_chip, mask_u8, dz, d_lower,
                dh_buf, dm_buf, sync, t_begin, n_steps, steps, batch, hidden,
                N_SPLIT=sync_programs, **flags,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        # both transforms read h0 at step 0; the depth one's gradients are there even for
        # rows that have ended
        dh0 = dh_buf + (dz[0] @ w).float()
        h_prev = _shifted(h0, h_all).reshape(steps * batch, hidden)
        d_w_hh = dz.reshape(steps * batch, gh).t() @ h_prev
        return (None, None, dz, d_lower if lower is not None else None, dh0.to(h0.dtype),
                dm_buf.to(m0.dtype), d_w_hh)  # fmt: skip


__all__ = ["run_depth_gated_layer", "run_grid_layer"]
