"""The Clockwork RNN (Koutník et al. 2014, Sec. 3) on the fused CPU backend: the glue between
:mod:`lstmkit.cellmath.clockwork` and the C++ kernels of ``clockwork.cpp``.

What is done here, once per call, in Python: the input projection of all steps (both biases
folded in, autograd carries it to ``weight_ih``, the biases and x), W_H times the
block-upper-triangular mask (autograd turns the kernels' full (H, H) weight gradient into
exactly 0 on the masked entries), and the clock's schedule: each row's t mod L at every step
(:func:`clock_phases`), counted from the row's own clock and stopped where its sequence has
ended. The kernels run the recurrence and its backward (legend: T time, B batch, H hidden).
The Triton kernels (``fused_triton/clockwork.py``) share this schedule and the final clock.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.layers.backends.fused import gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_cpu import load_ops

KERNEL_FILE = "clockwork"


def clock_phases(family: ClockworkFamily, clock: Tensor, mask: Tensor | None, steps: int):
    """(T, B) int64: t mod L for row b at step t, L = lcm(periods), from the row's clock (B, 1)
    at the call's start; a row's count stops at the steps its sequence has ended (``mask``
    (T, B) false there), as the reference's ``torch.where`` holds its clock. Module i runs at
    step t of row b when ``phases[t, b] % T_i == 0`` (Sec. 3)."""
    family.check_clock_dtype(clock)  # the reference's step refuses the same dtypes
    start = torch.remainder(clock.detach()[:, 0], family.cycle).long()  # (B,)
    if mask is None:
        taken = torch.arange(steps, device=clock.device)[:, None]  # (T, 1)
    else:  # the steps this row has taken before step t
        live = mask.long()
        taken = live.cumsum(0) - live  # (T, B)
    return torch.remainder(start + taken, family.cycle)


def final_clock(family: ClockworkFamily, clock: Tensor, mask: Tensor | None, steps: int):
    """The clock after the call, as the reference's steps leave it: its first step stores
    remainder(clock + 1, L) in the clock's dtype, each later one adds 1 modulo L; a row that
    took no step keeps its clock as given. No gradient (the schedule is not differentiable)."""
    clock = clock.detach()
    taken = (
        torch.full_like(clock, steps, dtype=torch.long)
        if mask is None
        else mask.long().sum(0)[:, None]
    )  # (B, 1)
    first = torch.remainder(clock + 1, family.cycle)
    later = torch.remainder(first.long() + taken - 1, family.cycle).to(clock.dtype)
    return torch.where(taken > 0, later, clock)


def active_units(family: ClockworkFamily, phases: Tensor, like: Tensor) -> Tensor:
    """(T, B, H): 1 where the unit's module ran at that step, else 0, in ``like``'s dtype
    (the trace ``active``)."""
    periods = torch.tensor(family.periods, device=phases.device).repeat_interleave(
        family.module_size
    )  # (H,)
    return (torch.remainder(phases[..., None], periods) == 0).to(like.dtype)


class ClockworkSaved(dict):
    """What the kernels kept, for ``fused._trace``: ``hidden`` (h_t) at once, ``active``
    formed from the schedule only when a trace asks for it (a (T, B, H) pass otherwise
    spent on every call)."""

    def __init__(self, family: ClockworkFamily, hidden: Tensor, phases: Tensor) -> None:
        super().__init__(hidden=hidden)
        self._family, self._phases = family, phases

    def __missing__(self, name: str) -> Tensor:
        if name != "active":
            raise KeyError(name)
        self["active"] = active_units(self._family, self._phases, self["hidden"])
        return self["active"]


def run_clockwork(family: ClockworkFamily, x, state, weights, mask):
    """One direction, x (T, B, I) in forward time order; state (h0 (B, H), clock (B, 1));
    mask (T, B) or None. Returns the outputs (T, B, H), (h_n, clock_n) and the saved values."""
    ops = load_ops(KERNEL_FILE)
    h0, clock = state
    steps = x.shape[0]
    phases = clock_phases(family, clock, mask, steps)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    # Sec. 3: the block-upper-triangular W_H, formed once for the call
    w_active = family.loop_weights(weights)["weight_hh_active"]
    output, h_n, h_all = _ClockworkFunction.apply(
        ops, family.periods, phases, mask, x_gates, h0, w_active
    )
    clock_n = final_clock(family, clock, mask, steps)
    return output, (h_n, clock_n), ClockworkSaved(family, h_all, phases)


class _ClockworkFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, periods, phases, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace output's gradient
        output, h_n, h_all = ops.clockwork_forward(
            x_gates.contiguous(), h0.contiguous(), w_hh.contiguous(), phases, list(periods), mask
        )
        ctx.ops, ctx.periods, ctx.mask = ops, list(periods), mask
        ctx.save_for_backward(h_all, h0, w_hh, phases)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_n, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, _):
        h_all, h0, w_hh, phases = ctx.saved_tensors
        d_pre, dh0, d_w_hh = ctx.ops.clockwork_backward(
            zeros_if_none(d_output, h_all).contiguous(),
            zeros_if_none(d_h_n, h0).contiguous(),
            h_all, h0.contiguous(), w_hh.contiguous(), phases, ctx.periods, ctx.mask,
        )  # fmt: skip
        return None, None, None, None, d_pre, dh0, d_w_hh
