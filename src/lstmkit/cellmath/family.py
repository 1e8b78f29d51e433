"""What every cell family provides, so one time loop can run any of them.

A family is a frozen dataclass of structural options. The time loop needs from it:

- ``gates``: the names of the gate blocks stacked in ``weight_ih`` and ``weight_hh``, in
  order. ``weight_ih`` has shape ``(len(gates) * hidden_size, input_size)``.
- ``state_sizes``: the size of each state tensor; ``state[0]`` is always the hidden state
  ``h_t``, which is also the cell's output at step t.
- ``extra_parameters``: parameters beyond torch's four (name -> shape), e.g. peepholes.
- ``trace_names``: the names of the quantities ``step`` reports, state included.
- ``step(x_gates, state, weights)``: one time step. ``x_gates`` is the input projection
  ``x_t W_ih^T + b_ih`` computed for all steps at once by the caller, because that product
  does not depend on the recurrence and one large matrix product is faster than T small ones.
- optionally ``loop_weights(weights)``: what every step derives from the parameters alone,
  added to ``weights`` once per call by the loop (the Clockwork RNN's masked W_H). A
  product formed inside ``step`` would be formed, and kept for the backward, once per step.
  ``step`` must also work without it: the one-step cells call it with the parameters.
- optionally ``zoneout_only_h``: why zoneout may act on h alone, where keeping the other
  state tensors' old values would break them (the Clockwork RNN's clock, the sLSTM's
  scaled c, n and m); the regularisers' check refuses a rate for them with this reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from torch import Tensor

Weights = Mapping[str, Tensor | None]
"""One layer-direction's parameters by base name ("weight_hh", "bias_hh", "weight_ci", ...)."""


class StepResult(NamedTuple):
    state: tuple[Tensor, ...]
    """The new state; ``state[0]`` is h_t."""
    values: dict[str, Tensor]
    """Every named quantity of this step (gates, candidate, state), each (B, size)."""


class CellFamily(Protocol):
    name: str
    hidden_size: int

    @property
    def gates(self) -> tuple[str, ...]: ...

    @property
    def state_sizes(self) -> tuple[int, ...]: ...

    @property
    def trace_names(self) -> tuple[str, ...]: ...

    def extra_parameters(self) -> dict[str, tuple[int, ...]]: ...

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult: ...


class SingleStateFamily:
    """What the GRU and the plain RNN share: one state tensor, h, and no extra parameters."""

    hidden_size: int

    @property
    def state_sizes(self) -> tuple[int]:
        return (self.hidden_size,)

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        return {}
