r"""The gated recurrent unit (Cho et al. 2014), in the form torch.nn.GRU computes.

.. math::
    r_t &= \sigma(x_t W_{ir}^T + b_{ir} + h_{t-1} W_{hr}^T + b_{hr})              \\
    z_t &= \sigma(x_t W_{iz}^T + b_{iz} + h_{t-1} W_{hz}^T + b_{hz})              \\
    n_t &= \tanh(x_t W_{in}^T + b_{in} + r_t \odot (h_{t-1} W_{hn}^T + b_{hn}))   \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

The reset gate multiplies the recurrent term *after* its matrix product ("linear before
reset", ONNX GRU's ``linear_before_reset=1``); Cho et al. reset h_{t-1} before it. torch and
cuDNN use the form above, and so does lstmkit, so weights move between them. The update
gate z_t plays both the LSTM's forget (z) and input (1 - z) roles: a coupled gate, like CIFG.

Gate order and shapes (B batch, I input, H hidden): gate blocks ``reset, update, candidate``
(r, z, n) in ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh`` (3H,);
state h (B, H). Initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import SingleStateFamily, StepResult, Weights


@dataclass(frozen=True)
class GRUFamily(SingleStateFamily):
    """The GRU cell; see the module docstring for the equations."""

    hidden_size: int

    name = "gru"
    gates = ("reset", "update", "candidate")
    trace_names = ("reset", "update", "candidate", "hidden")

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih, (B, 3H)."""
        (h_prev,) = state
        h_gates = F.linear(h_prev, weights["weight_hh"], weights.get("bias_hh"))  # (B, 3H)
        x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
        h_r, h_z, h_n = h_gates.chunk(3, dim=-1)

        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h_prev

        return StepResult((h,), {"reset": r, "update": z, "candidate": n, "hidden": h})
