r"""The minimal gated unit, MGU (Zhou, Wu, Zhang & Zhou 2016, "Minimal Gated Unit for
Recurrent Neural Networks"): a GRU with one gate, written with torch's separate input and
recurrent weights (the paper's ``W [h_{t-1}, x_t] + b`` is ``x_t W_i^T + h_{t-1} W_h^T``
plus the two biases here).

.. math::
    f_t       &= \sigma(x_t W_{if}^T + b_{if} + h_{t-1} W_{hf}^T + b_{hf})                \\
    \tilde h_t &= \tanh(x_t W_{ih}^T + b_{ih} + (f_t \odot h_{t-1}) W_{hh}^T + b_{hh})     \\
    h_t       &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde h_t

The one gate f_t does both of the GRU's jobs: it is the reset gate (it scales h_{t-1}
before the candidate's recurrent product, as in Cho et al.'s GRU) and it is the update gate
(it mixes h_{t-1} and the candidate). Zhou et al. call it the forget gate, but its sense is
the reverse of the LSTM's: f_t near 1 *discards* h_{t-1} for the candidate, f_t near 0 keeps
it. So an MGU is exactly Cho et al.'s GRU with r_t = f_t and z_t = 1 - f_t (torch's
convention h_t = (1 - z_t) n_t + z_t h_{t-1}), i.e. a GRU whose update-gate rows are the
negated forget-gate rows, since 1 - sigma(a) = sigma(-a).

Gate order and shapes (B batch, I input, H hidden): gate blocks ``forget, candidate``
(f, h~) in ``weight_ih`` (2H, I), ``weight_hh`` (2H, H), ``bias_ih`` and ``bias_hh`` (2H,),
named as torch.nn.GRU names its parameters; state h (B, H). Initialisation:
U(-1/sqrt(H), 1/sqrt(H)) for every parameter, torch's GRU initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import SingleStateFamily, StepResult, Weights


@dataclass(frozen=True)
class MGUFamily(SingleStateFamily):
    """The MGU cell; see the module docstring for the equations."""

    hidden_size: int

    name = "mgu"
    gates = ("forget", "candidate")
    # the paper's name, but the opposite sense to the LSTM's: f = 1 replaces h_{t-1} with
    # the candidate, so forget_bias (which opens the gate to keep memory) is refused
    forget_gate_erases = True
    trace_names = ("forget", "candidate", "hidden")

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih, (B, 2H)."""
        (h_prev,) = state
        x_f, x_h = x_gates.chunk(2, dim=-1)  # each (B, H)
        w_f, w_h = weights["weight_hh"].chunk(2)  # each (H, H)
        b_hh = weights.get("bias_hh")
        b_f, b_h = (None, None) if b_hh is None else b_hh.chunk(2)

        f = torch.sigmoid(x_f + F.linear(h_prev, w_f, b_f))
        # the candidate sees only the part of h_{t-1} the gate lets through (the reset role)
        candidate = torch.tanh(x_h + F.linear(f * h_prev, w_h, b_h))
        # ... and the same gate mixes it in (the update role): f_t = 1 replaces h_{t-1}
        h = (1 - f) * h_prev + f * candidate

        return StepResult((h,), {"forget": f, "candidate": candidate, "hidden": h})
