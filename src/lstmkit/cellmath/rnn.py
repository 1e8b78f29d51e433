r"""The plain (Elman) recurrent network, in the form torch.nn.RNN computes.

.. math::
    h_t = \phi(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}), \qquad \phi = \tanh
    \text{ or } \mathrm{ReLU}

No gate protects the state: every step multiplies it by W_hh and squashes it, which is why
its gradient vanishes (or explodes) over long lags (Hochreiter 1991; Bengio et al. 1994),
the problem the LSTM's cell state was designed to solve.

Shapes (B batch, I input, H hidden): ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih``
and ``bias_hh`` (H,); state h (B, H). Initialisation: U(-1/sqrt(H), 1/sqrt(H)), as torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import SingleStateFamily, StepResult, Weights

Nonlinearity = Literal["tanh", "relu"]
NONLINEARITIES: tuple[Nonlinearity, ...] = ("tanh", "relu")


@dataclass(frozen=True)
class RNNFamily(SingleStateFamily):
    """The plain RNN cell; see the module docstring for the equation."""

    hidden_size: int
    nonlinearity: Nonlinearity = "tanh"

    name = "rnn"
    gates = ("hidden",)  # one block: the pre-activation of h_t itself
    trace_names = ("hidden",)

    def __post_init__(self) -> None:
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity must be one of {NONLINEARITIES}, got {self.nonlinearity!r}"
            )

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih, (B, H)."""
        (h_prev,) = state
        z = x_gates + F.linear(h_prev, weights["weight_hh"], weights.get("bias_hh"))
        h = torch.tanh(z) if self.nonlinearity == "tanh" else torch.relu(z)
        return StepResult((h,), {"hidden": h})
