"""The vanishing gradient as a measurement: how much of the loss's gradient reaches h_t.

For a model whose loss sits at a sequence's last target step, ``dL/dh_t`` is the error
signal that reaches step t on its way back. Through a tanh RNN it is multiplied by the
recurrent Jacobian once per step and shrinks geometrically (Hochreiter 1991; Bengio et al.
1994); through an LSTM it can also travel along the cell state, where each step multiplies
it only by the forget gate (by 1 in the 1997 cell: the constant error carousel). For the
LSTMs the norm of ``dL/dc_t`` is measured too, the part of it that arrives from step t+1
along the cell state: that is the "gradient highway".

The layer's weights are copied into the matching single-step cell and the sequence is
stepped by hand, so that every h_t is a tensor of its own whose gradient autograd can keep
(the layer's fused loop never exposes them). Norms are per sequence, then averaged over
the sequences at each distance from their target step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lstmkit.experiments import objectives
from lstmkit.experiments.cells import MODERN_CELLS
from lstmkit.experiments.train import TaskModel
from lstmkit.tasks.base import Task, TaskBatch


@dataclass(frozen=True)
class GradientProfile:
    """Mean gradient norms by distance back in time (index 0 = the target step itself)."""

    cell: str
    hidden: list[float]
    """Mean ||dL/dh_t|| at each distance."""
    cell_state: list[float] | None
    """Mean ||dL/dc_t|| at each distance, for the LSTMs; None for the others."""


def _step_cell(model: TaskModel) -> torch.nn.Module:
    spec = MODERN_CELLS[model.cell_name]
    rnn = model.rnn
    cell = spec.cell(rnn.input_size, rnn.hidden_size)
    weights = {name.removesuffix("_l0"): p.detach() for name, p in rnn.named_parameters()}
    cell.load_state_dict(weights)
    return cell


def _by_distance(norms: Tensor, batch: TaskBatch) -> list[float]:
    """Average (B, T) per-step norms over sequences, indexed by distance from each
    sequence's last target step (steps after it are ignored)."""
    steps = norms.shape[1]
    last = (batch.target_mask * torch.arange(steps)).argmax(dim=1)  # (B,)
    distance = last[:, None] - torch.arange(steps)[None, :]  # (B, T)
    valid = distance >= 0
    total = torch.zeros(steps).index_add_(0, distance[valid], norms[valid])
    count = torch.zeros(steps).index_add_(0, distance[valid], torch.ones_like(norms[valid]))
    reached = count > 0
    return (total[reached] / count[reached]).tolist()


def gradient_profile(model: TaskModel, task: Task, batch: TaskBatch) -> GradientProfile:
    """Norms of dL/dh_t (and dL/dc_t) on ``batch``, the loss summed over its sequences so
    that each sequence's gradient is its own."""
    cell = _step_cell(model)
    is_lstm = MODERN_CELLS[model.cell_name].family == "lstm"
    size, steps = batch.batch_size, batch.inputs.shape[1]
    zeros = tuple(torch.zeros(size, n) for n in cell.family.state_sizes)
    state = zeros if len(zeros) > 1 else zeros[0]  # the cells take h alone, or a tuple
    hiddens, probes, outputs = [], [], []
    for t in range(steps):
        state = cell(batch.inputs[:, t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()  # autograd keeps only leaves' gradients unless asked
        hiddens.append(h)
        if is_lstm:
            # dL/dc_t as the carousel carries it: only what flows back from step t+1, not
            # the part that goes through h_t = o_t * tanh(c_t) (that one is in dL/dh_t).
            # Adding a zero leaf after h_t is computed isolates exactly that part.
            probe = torch.zeros_like(state[1], requires_grad=True)
            probes.append(probe)
            state = (h, state[1] + probe, *state[2:])
        outputs.append(model.readout(h))
    loss = objectives.loss(torch.stack(outputs, dim=1), batch, task.kind, reduction="sum")
    loss.backward()
    h_norms = torch.stack([h.grad.norm(dim=1) for h in hiddens], dim=1)  # (B, T)
    c_profile = None
    if is_lstm:
        # The last probe feeds nothing, so autograd leaves its gradient at None: zero.
        c_grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in probes]
        c_norms = torch.stack([g.norm(dim=1) for g in c_grads], dim=1)
        c_profile = _by_distance(c_norms, batch)
    return GradientProfile(model.cell_name, _by_distance(h_norms, batch), c_profile)
