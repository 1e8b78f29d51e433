r"""The fused CPU kernels of the memory-joined stacks (``stacks.cpp``): one layer of the
depth-gated LSTM (Yao et al. 2015, Sec. 3) and one layer of the 2-D Grid LSTM (Kalchbrenner
et al. 2015, Sec. 3.1) per call, each with a hand-written backward pass.

Both stacks join their layers only at the same time step (layer k+1 at step t reads layer
k's values at step t), so the layers (:class:`~lstmkit.layers.depth_gated.DepthGatedLSTM`,
:class:`~lstmkit.layers.grid_lstm.GridLSTM`) run one layer over the whole sequence, then the
next, handing up what the layer above reads as an extra (T, B, H) input:

- depth-gated: the carried cell states c_t (the lower memory of the layer above), besides
  the hidden states h_t (its input);
- grid: the depth pair (eta_t, mu_t) of every block (with ``depth_lstm=False`` the time
  hidden vector h_t alone).

Every input-side product of all steps is one matrix product here in Python, so autograd
carries its gradient to the input, ``weight_ih`` and the biases: the depth gate's x W_xd^T +
b_d rides as a fifth block after the LSTM's four, the grid's depth transform as four more
blocks after the time transform's; ``bias_hh`` folds into the input side, where it adds
the same at every step. The kernel runs the recurrence and returns the gradient of every
pre-activation and of the recurrent parameters. Legend: T time, B batch, I input size, H
hidden size. x is (T, B, I) in forward time order; mask (T, B) bool or None (False: the
sequence has ended, its state passes through). First derivatives only.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.grid_lstm import GridLSTMFamily
from lstmkit.layers.backends.fused import zeros_if_none
from lstmkit.layers.backends.fused_cpu import load_ops
from lstmkit.layers.backends.input_projection import project

KERNEL_FILE = "stacks"
_LSTM_BLOCKS = ("input", "forget", "candidate", "output")


def _input_side(weights: dict[str, Tensor], prefixes: tuple[str, ...], extra=None):
    """The stacked input weights and biases of the transforms named by ``prefixes``
    (``weight_{p}ih``, ``bias_{p}ih + bias_{p}hh``), with ``extra`` = (weight, bias or None)
    appended as one more block."""
    w = [weights[f"weight_{p}ih"] for p in prefixes]
    has_bias = weights.get(f"bias_{prefixes[0]}ih") is not None
    b = [weights[f"bias_{p}ih"] + weights[f"bias_{p}hh"] for p in prefixes] if has_bias else None
    if extra is not None:
        w.append(extra[0])
        if b is not None:
            b.append(extra[1])
    weight = w[0] if len(w) == 1 else torch.cat(w)
    bias = None if b is None else (b[0] if len(b) == 1 else torch.cat(b))
    return weight, bias


def _defined(t: Tensor) -> Tensor | None:
    """The kernels hand an empty tensor for what the layer does not have."""
    return t if t.numel() else None


# -- depth-gated LSTM ------------------------------------------------------------------------


def run_depth_gated_layer(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weights: dict[str, Tensor],
    lower_cells: Tensor | None,
    mask: Tensor | None,
):
    """One layer of the depth-gated LSTM. ``lower_cells`` (T, B, H): c_t of the layer below,
    None for layer 0 (a plain LSTM). Returns the carried h_t and c_t (T, B, H) (h_t is not
    zeroed past a sequence's end: the layer does that), the final (h, c), and the gates and
    states by trace name (T, B, H), "depth" absent in layer 0."""
    apply = functools.partial(_DepthGatedFunction.apply, load_ops(KERNEL_FILE))
    return depth_gated_layer(apply, x, state, weights, lower_cells, mask)


def depth_gated_layer(apply, x, state, weights, lower_cells, mask):
    """:func:`run_depth_gated_layer` around a kernel set's autograd Function, ``apply(mask,
    x_gates, lower, h0, c0, w_hh, w_cd, w_ld) -> (h_all, c_all, h_n, c_n, acts)``: what the
    C++ and the Triton kernels share."""
    extra = None
    if lower_cells is not None:  # the depth gate's input part, x W_xd^T + b_d, as a 5th block
        extra = (weights["weight_xd"], weights.get("bias_d"))
    weight, bias = _input_side(weights, ("",), extra)
    x_gates = project(x, weight, bias)  # (T, B, 4H or 5H)
    h0, c0 = state
    h_all, c_all, h_n, c_n, acts = apply(
        mask, x_gates, lower_cells, h0, c0, weights["weight_hh"],
        weights.get("weight_cd"), weights.get("weight_ld"),
    )  # fmt: skip
    names = (*_LSTM_BLOCKS, "depth") if lower_cells is not None else _LSTM_BLOCKS
    saved = dict(zip(names, acts.chunk(len(names), -1), strict=True))
    return h_all, c_all, (h_n, c_n), saved | {"cell": c_all, "hidden": h_all}


class _DepthGatedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, mask, x_gates, lower, h0, c0, w_hh, w_cd, w_ld):
        ctx.set_materialize_grads(False)
        h_n, c_n, acts, c_all, h_all = ops.depth_gated_forward(
            x_gates, lower, h0, c0, w_hh, w_cd, w_ld, mask
        )
        ctx.ops, ctx.mask = ops, mask
        ctx.save_for_backward(acts, c_all, h_all, lower, h0, c0, w_hh, w_cd, w_ld)
        ctx.mark_non_differentiable(acts)  # handed out for traces only
        return h_all, c_all, h_n, c_n, acts

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h_all, d_c_all, d_h_n, d_c_n, _):
        acts, c_all, h_all, lower, h0, c0, w_hh, w_cd, w_ld = ctx.saved_tensors
        dz, d_lower, dh0, dc0, d_w_hh, d_w_cd, d_w_ld = ctx.ops.depth_gated_backward(
            zeros_if_none(d_h_all, h_all), zeros_if_none(d_c_all, c_all),
            zeros_if_none(d_h_n, h0), zeros_if_none(d_c_n, c0),
            acts, c_all, h_all, lower, h0, c0, w_hh, w_cd, w_ld, ctx.mask,
        )  # fmt: skip
        return (None, None, dz, _defined(d_lower), dh0, dc0, d_w_hh,
                _defined(d_w_cd), _defined(d_w_ld))  # fmt: skip


# -- Grid LSTM -------------------------------------------------------------------------------


def run_grid_layer(
    family: GridLSTMFamily,
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weights: dict[str, Tensor],
    lower_memory: Tensor | None,
    mask: Tensor | None,
):
    """One layer of Grid LSTM blocks. x (T, B, D): the depth hidden vectors from below (the
    input at the bottom); ``lower_memory`` (T, B, H) the depth memory from below, None for
    0. Returns what goes up, (eta, mu) with the depth transform, else (h_t carried, None);
    the final time pair (h, m); and the values by trace name (T, B, H)."""
    apply = functools.partial(_GridFunction.apply, load_ops(KERNEL_FILE))
    return grid_layer(apply, family, x, state, weights, lower_memory, mask)


def grid_layer(apply, family, x, state, weights, lower_memory, mask):
    """:func:`run_grid_layer` around a kernel set's autograd Function, ``apply(printed,
    mask, x_gates, lower, h0, m0, w_hh) -> (h_all, eta, mu, h_n, m_n, acts, m_all)``: what
    the C++ and the Triton kernels share."""
    prefixes = ("", "depth_") if family.depth_lstm else ("",)
    weight, bias = _input_side(weights, prefixes)
    x_gates = project(x, weight, bias)  # (T, B, 4H or 8H)
    w_hh = torch.cat([weights[f"weight_{p}hh"] for p in prefixes])  # both read h_{t-1}
    h0, m0 = state
    printed = family.output_form == "tanh(o*m)"
    h_all, eta, mu, h_n, m_n, acts, m_all = apply(
        printed, mask, x_gates, lower_memory, h0, m0, w_hh
    )
    gates = acts.chunk(len(prefixes) * 4, -1)
    saved = dict(zip(_LSTM_BLOCKS, gates[:4], strict=True)) | {"cell": m_all, "hidden": h_all}
    if not family.depth_lstm:  # Sec. 2.2's Stacked LSTM: the time output goes up as it is
        return h_all, None, (h_n, m_n), saved
    depth = dict(zip(_LSTM_BLOCKS, gates[4:], strict=True)) | {"cell": mu, "hidden": eta}
    saved |= {f"depth_{name}": v for name, v in depth.items()}
    return eta, mu, (h_n, m_n), saved


class _GridFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, printed, mask, x_gates, lower, h0, m0, w_hh):
        ctx.set_materialize_grads(False)
        h_n, m_n, acts, m_all, h_all, eta, mu = ops.grid_forward(
            x_gates, lower, h0, m0, w_hh, mask, printed
        )
        ctx.ops, ctx.printed, ctx.mask = ops, printed, mask
        ctx.save_for_backward(acts, m_all, h_all, eta, mu, lower, h0, m0, w_hh)
        ctx.mark_non_differentiable(acts, m_all)  # handed out for traces only
        return h_all, eta, mu, h_n, m_n, acts, m_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h_all, d_eta, d_mu, d_h_n, d_m_n, *_):
        acts, m_all, h_all, eta, mu, lower, h0, m0, w_hh = ctx.saved_tensors
        dz, d_lower, dh0, dm0, d_w_hh = ctx.ops.grid_backward(
            zeros_if_none(d_h_all, h_all), zeros_if_none(d_eta, eta), zeros_if_none(d_mu, mu),
            zeros_if_none(d_h_n, h0), zeros_if_none(d_m_n, m0),
            acts, m_all, h_all, mu, lower, h0, m0, w_hh, ctx.mask, ctx.printed,
        )  # fmt: skip
        return None, None, None, dz, _defined(d_lower), dh0, dm0, d_w_hh


__all__ = ["KERNEL_FILE", "run_depth_gated_layer", "run_grid_layer"]
