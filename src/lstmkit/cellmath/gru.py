r"""The gated recurrent unit (Cho et al. 2014), in torch's form and in the paper's.

.. math::
    r_t &= \sigma(x_t W_{ir}^T + b_{ir} + h_{t-1} W_{hr}^T + b_{hr})              \\
    z_t &= \sigma(x_t W_{iz}^T + b_{iz} + h_{t-1} W_{hz}^T + b_{hz})              \\
    n_t &= \tanh(x_t W_{in}^T + b_{in} + r_t \odot (h_{t-1} W_{hn}^T + b_{hn}))
        \quad (\text{reset\_after=True, torch's and cuDNN's form})                 \\
    n_t &= \tanh(x_t W_{in}^T + b_{in} + (r_t \odot h_{t-1}) W_{hn}^T + b_{hn})
        \quad (\text{reset\_after=False, Cho et al.'s form})                      \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

The two forms differ only in where the reset gate acts on the candidate's recurrent term.
Cho et al. (2014, Sect. 2.3; arXiv 1406.1078v3) reset h_{t-1} *before* its matrix product,
U (r_t * h_{t-1}); Keras's GRU documentation bases that form on v3 and the other order on
the paper's first arXiv version (v1). torch.nn.GRU and cuDNN apply the reset *after* the
product, which lets one product h_{t-1} W_hh^T serve all three gate blocks at once. ONNX's
GRU operator names the choice ``linear_before_reset`` (1 for torch's form, 0 for Cho's),
Keras names it ``reset_after`` as lstmkit does. Both forms have the same parameters, so the
same weights run either; torch's is the default, so weights move between torch.nn.GRU and
lstmkit unchanged. The update gate z_t plays both the LSTM's forget (z) and input (1 - z)
roles: a coupled gate, like CIFG. The last line is Cho et al.'s own convention (z_t weights
h_{t-1}, 1 - z_t the candidate) and torch's; minGRU (:mod:`lstmkit.cellmath.minrnn`) swaps
the two roles.

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
    """The GRU cell; see the module docstring for the equations. ``reset_after``: True for
    torch's form (the reset gate scales h_{t-1} W_hn^T + b_hn), False for Cho et al.'s (it
    scales h_{t-1} before W_hn)."""

    hidden_size: int
    reset_after: bool = True

    name = "gru"
    gates = ("reset", "update", "candidate")
    trace_names = ("reset", "update", "candidate", "hidden")

    def __post_init__(self) -> None:
        if not isinstance(self.reset_after, bool):
            raise ValueError(
                f"reset_after must be True (torch's GRU) or False (Cho et al.'s), got "
                f"{self.reset_after!r}"
            )

    def variant_options(self) -> list[str]:
        """The options that differ from torch's GRU, as they are passed: for reprs."""
        return [] if self.reset_after else ["reset_after=False"]

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih, (B, 3H)."""
        (h_prev,) = state
        x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
        w_hh, b_hh = weights["weight_hh"], weights.get("bias_hh")
        if self.reset_after:  # one product of h_{t-1} serves all three blocks
            h_r, h_z, h_n = F.linear(h_prev, w_hh, b_hh).chunk(3, dim=-1)  # each (B, H)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
        else:  # Cho et al.: the candidate's product must wait for r_t
            rows = [2 * self.hidden_size, self.hidden_size]  # (r, z) blocks, then n
            w_rz, w_n = w_hh.split(rows)
            b_rz, b_n = (None, None) if b_hh is None else b_hh.split(rows)
            h_r, h_z = F.linear(h_prev, w_rz, b_rz).chunk(2, dim=-1)  # each (B, H)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + F.linear(r * h_prev, w_n, b_n))
        h = (1 - z) * n + z * h_prev

        return StepResult((h,), {"reset": r, "update": z, "candidate": n, "hidden": h})
