"""The sLSTM (Beck et al. 2024, "xLSTM", Sec. 2.2) on the fused CPU backend: the time loop and
its hand-written backward in C++ (``slstm.cpp``, built on first use), every option of
:class:`~lstmkit.cellmath.slstm.SLSTMFamily`: heads, the sigmoid and exponential forget
gates, the stabilised and the plain form.

Legend: T time, B batch, I input size, H hidden, K heads, D = H / K, G = 4 gate blocks.

The input projection of all steps is one product here (autograd carries it to ``weight_ih``,
the biases and x), with ``bias_hh`` folded in: the reference adds it to every step's
pre-activations after the recurrent product, the same (G*H,) vector each step, so adding it
once to x W_ih^T + b_ih changes only the order of two additions. The kernels' backward
returns the gradient of every pre-activation, of the initial (h, c, n, m) and of the
recurrent blocks; first derivatives only.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_cpu import load_ops

KERNEL_FILE = "slstm"


def run_slstm(family: SLSTMFamily, x, state, weights, mask):
    """One direction, forward in time. x (T, B, I); state (h, c, n, m), each (B, H); mask
    (T, B) or None. Returns the output (T, B, H), the final (h, c, n, m) and the values of
    the family's trace names (T, B, H) each."""
    ops = load_ops(KERNEL_FILE)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)  # (T, B, G*H)
    output, *final, acts, c_all, n_all, m_all, h_all = _SLSTMFunction.apply(
        ops, family.stabilized, family.forget_activation == "exp", mask, x_gates, *state,
        weights["weight_hh"],
    )  # fmt: skip
    gates = dict(zip(family.gates, acts.chunk(4, -1), strict=True))  # as applied: i', f', z, o
    saved = {
        **gates,
        "cell": c_all,
        "normalizer": n_all,
        "stabilizer": m_all,
        "hidden": h_all,
    }
    return output, tuple(final), saved


class _SLSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, stabilized, exp_forget, mask, x_gates, h0, c0, n0, m0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        h0, c0, n0, m0 = (s.contiguous() for s in (h0, c0, n0, m0))
        w = w_hh.contiguous()
        output, h_n, c_n, n_n, m_n, acts, aux, c_all, n_all, m_all, h_all = ops.slstm_forward(
            x_gates.contiguous(), h0, c0, n0, m0, w, mask, stabilized, exp_forget
        )
        ctx.ops, ctx.stabilized, ctx.exp_forget, ctx.mask = ops, stabilized, exp_forget, mask
        ctx.save_for_backward(acts, aux, c_all, n_all, h_all, h0, c0, n0, m0, w)
        ctx.mark_non_differentiable(acts, c_all, n_all, m_all, h_all)  # for traces only
        return output, h_n, c_n, n_n, m_n, acts, c_all, n_all, m_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, d_n_n, d_m_n, *_):
        acts, aux, c_all, n_all, h_all, h0, c0, n0, m0, w = ctx.saved_tensors
        d_pre, dh0, dc0, dn0, dm0, d_w = ctx.ops.slstm_backward(
            zeros_if_none(d_output, h_all).contiguous(),
            zeros_if_none(d_h_n, h0).contiguous(),
            zeros_if_none(d_c_n, c0).contiguous(),
            zeros_if_none(d_n_n, n0).contiguous(),
            zeros_if_none(d_m_n, m0).contiguous(),
            acts, aux, c_all, n_all, h_all, h0, c0, n0, w, ctx.mask, ctx.stabilized,
            ctx.exp_forget,
        )  # fmt: skip
        return None, None, None, None, d_pre, dh0, dc0, dn0, dm0, d_w
