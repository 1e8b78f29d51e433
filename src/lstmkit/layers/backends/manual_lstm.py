r"""The manual backend: the LSTM family's time loop in PyTorch with a hand-derived backward.

Autograd on the reference loop records ~20 small operations per step and accumulates the
weight gradients one step at a time. Here the forward runs without a graph and keeps only
the gate activations; the backward walks time in reverse with the derivatives below and
forms the weight gradients afterwards, each as one matrix product over all steps. Every
LSTM option is covered (peepholes, coupled, no forget gate, projection, lengths). First
derivatives only: a second derivative needs the reference backend.

Backward of one step (legend: B batch, H hidden, R output size, G gate blocks; dX is the
gradient of the loss with respect to X; m_t = o_t * tanh(C_t) is h_t before projection):

.. math::
    dm_t &= dh_t W_{hr}                 \qquad (dm_t = dh_t \text{ without projection}) \\
    dz_o &= dm_t \odot \tanh C_t \odot o_t (1 - o_t)                                   \\
    dC_t &\mathrel{+}= dm_t \odot o_t (1 - \tanh^2 C_t) + p_o \odot dz_o                \\
    dz_i &= dC_t \odot \tilde C_t \odot i_t (1 - i_t)   \qquad (\tilde C_t - C_{t-1}
            \text{ in place of } \tilde C_t \text{ when } f_t = 1 - i_t)                 \\
    dz_f &= dC_t \odot C_{t-1} \odot f_t (1 - f_t)                                      \\
    dz_g &= dC_t \odot i_t (1 - \tilde C_t^2)                                           \\
    dC_{t-1} &= dC_t \odot f_t + p_i \odot dz_i + p_f \odot dz_f                         \\
    dh_{t-1} &= dz \, W_{hh}

and, over all steps at once, dW_hh = sum_t dz_t^T h_{t-1}, db_hh = sum_t dz_t,
dp_i = sum_t dz_i C_{t-1}, dp_o = sum_t dz_o C_t, dW_hr = sum_t dh_t^T m_t; dz itself is the
gradient of the input projection x_t W_ih^T + b_ih, which autograd carries to W_ih and x.
Past a sequence's end (``mask`` False) the state passes through unchanged, so does its
gradient, and dz is zero.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.family import Weights
from lstmkit.cellmath.lstm import LSTMFamily


def run_direction(
    family: LSTMFamily,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Weights,
    mask: Tensor | None,
    reverse: bool,
    record: bool,
) -> tuple[Tensor, tuple[Tensor, ...], None]:
    """Same contract as ``reference.run_direction``, without traces."""
    if record:
        raise ValueError("the manual backend records no traces; trace with 'reference'")
    x_gates = torch.nn.functional.linear(x, weights["weight_ih"], weights.get("bias_ih"))
    h0, c0 = state
    output, h_n, c_n = _LSTMSequence.apply(
        family, reverse, mask, x_gates, h0, c0, weights["weight_hh"], weights.get("bias_hh"),
        weights.get("weight_ci"), weights.get("weight_cf"), weights.get("weight_co"),
        weights.get("weight_hr"),
    )  # fmt: skip
    return output, (h_n, c_n), None


class _LSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, family, reverse, mask, x_gates, h0, c0, w_hh, b_hh, p_i, p_f, p_o, w_hr):
        steps, batch, _ = x_gates.shape
        H, R = family.hidden_size, family.state_sizes[0]
        if b_hh is not None:  # both biases enter every step the same way: add b_hh once
            x_gates = x_gates + b_hh
        w_hh_t = w_hh.T
        acts = x_gates.new_empty(steps, batch, len(family.gates) * H)  # i, (f,) g, o
        c_prev = x_gates.new_empty(steps, batch, H)
        c_all = x_gates.new_empty(steps, batch, H)
        h_prev = x_gates.new_empty(steps, batch, R)
        m_all = x_gates.new_empty(steps, batch, H) if w_hr is not None else None
        output = x_gates.new_empty(steps, batch, R)

        h, c = h0, c0
        for t in _order(steps, reverse):
            z = torch.addmm(x_gates[t], h, w_hh_t)  # (B, G*H)
            z_i, z_f, z_g, z_o = _split(z, family)
            if p_i is not None:
                z_i = z_i + p_i * c
                if z_f is not None:
                    z_f = z_f + p_f * c
            a_i, a_f, a_g, a_o = _split(acts[t], family)
            torch.sigmoid(z_i, out=a_i)
            torch.tanh(z_g, out=a_g)
            if z_f is not None:
                torch.sigmoid(z_f, out=a_f)
                c_new = a_f * c + a_i * a_g
            elif family.coupled:
                c_new = c + a_i * (a_g - c)  # (1 - i) C_{t-1} + i C~
            else:
                c_new = c + a_i * a_g
            if p_o is not None:
                z_o = z_o + p_o * c_new
            torch.sigmoid(z_o, out=a_o)
            tanh_c = torch.tanh(c_new)
            m = a_o * tanh_c
            h_new = m @ w_hr.T if w_hr is not None else m

            c_prev[t], h_prev[t], c_all[t] = c, h, c_new
            if m_all is not None:
                m_all[t] = m
            if mask is not None:
                keep = mask[t]
                h_new = torch.where(keep, h_new, h)
                c_new = torch.where(keep, c_new, c)
            output[t] = h_new
            h, c = h_new, c_new

        if mask is not None:
            output.masked_fill_(~mask, 0.0)
        ctx.family, ctx.reverse, ctx.mask = family, reverse, mask
        ctx.has_bias = b_hh is not None
        ctx.save_for_backward(acts, c_prev, c_all, h_prev, m_all, w_hh, p_i, p_f, p_o, w_hr)
        return output, h, c

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n):
        acts, c_prev, c_all, h_prev, m_all, w_hh, p_i, p_f, p_o, w_hr = ctx.saved_tensors
        family, mask = ctx.family, ctx.mask
        steps = acts.shape[0]
        dz_all = torch.zeros_like(acts)  # (T, B, G*H)
        dh_all = torch.zeros_like(h_prev) if w_hr is not None else None  # dh_t, for dW_hr
        dh = d_h_n if d_h_n is not None else h_prev.new_zeros(h_prev.shape[1:])
        dc = d_c_n if d_c_n is not None else c_prev.new_zeros(c_prev.shape[1:])
        if d_output is None:
            d_output = torch.zeros_like(h_prev)

        for t in reversed(_order(steps, ctx.reverse)):
            i, f, g, o = _split(acts[t], family)
            dh_t = d_output[t] + dh
            dm = dh_t @ w_hr if w_hr is not None else dh_t
            tanh_c = torch.tanh(c_all[t])  # recomputed: one op per step beats a (T, B, H) buffer
            dz_o = dm * tanh_c * o * (1 - o)  # backprop through h = o tanh(C) and σ
            dc_t = dc + dm * o * (1 - tanh_c * tanh_c)  # ... and through tanh(C_t)
            if p_o is not None:
                dc_t = dc_t + p_o * dz_o  # the output gate's peephole saw C_t
            if f is not None:  # C_t = f C_{t-1} + i C~
                dz_i = dc_t * g * i * (1 - i)
                dz_f = dc_t * c_prev[t] * f * (1 - f)
                dc_prev = dc_t * f
            elif family.coupled:  # C_t = (1 - i) C_{t-1} + i C~
                dz_i = dc_t * (g - c_prev[t]) * i * (1 - i)
                dz_f = None
                dc_prev = dc_t * (1 - i)
            else:  # C_t = C_{t-1} + i C~: the error carousel passes dC on unchanged
                dz_i = dc_t * g * i * (1 - i)
                dz_f = None
                dc_prev = dc_t
            dz_g = dc_t * i * (1 - g * g)
            if p_i is not None:
                dc_prev = dc_prev + p_i * dz_i
                if dz_f is not None:
                    dc_prev = dc_prev + p_f * dz_f
            dz = dz_all[t]
            torch.cat([b for b in (dz_i, dz_f, dz_g, dz_o) if b is not None], dim=1, out=dz)
            dh_prev = dz @ w_hh  # (B, R)
            if mask is not None:  # past the end: no step happened, the gradient passes by
                keep = mask[t]
                dz.masked_fill_(~keep, 0.0)
                dh_t = torch.where(keep, dh_t, 0.0)
                dh_prev = torch.where(keep, dh_prev, dh)
                dc_prev = torch.where(keep, dc_prev, dc)
            if dh_all is not None:
                dh_all[t] = dh_t
            dh, dc = dh_prev, dc_prev

        flat_dz = dz_all.flatten(0, 1)  # (T*B, G*H)
        d_w_hh = flat_dz.T @ h_prev.flatten(0, 1)
        d_b_hh = flat_dz.sum(0) if ctx.has_bias else None
        d_p_i = d_p_f = d_p_o = None
        if p_i is not None:
            dz_i, dz_f, _, dz_o = _split(dz_all, family)
            d_p_i = (dz_i * c_prev).sum((0, 1))
            d_p_f = (dz_f * c_prev).sum((0, 1)) if dz_f is not None else None
            d_p_o = (dz_o * c_all).sum((0, 1))
        d_w_hr = dh_all.flatten(0, 1).T @ m_all.flatten(0, 1) if w_hr is not None else None
        return (None, None, None, dz_all, dh, dc, d_w_hh, d_b_hh, d_p_i, d_p_f, d_p_o, d_w_hr)


def _order(steps: int, reverse: bool) -> list[int]:
    return list(range(steps - 1, -1, -1)) if reverse else list(range(steps))


def _split(z: Tensor, family: LSTMFamily) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """The gate blocks of the last dimension as (i, f, g, o); f is None without its block."""
    blocks = dict(zip(family.gates, z.chunk(len(family.gates), dim=-1), strict=True))
    return blocks["input"], blocks.get("forget"), blocks["candidate"], blocks["output"]
