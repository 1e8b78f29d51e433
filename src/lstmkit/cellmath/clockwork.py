r"""The Clockwork RNN of Koutník, Greff, Gomez & Schmidhuber (2014), "A Clockwork RNN",
ICML, Sec. 3: a plain (Elman) RNN whose hidden units are split into modules that run at
their own clock rates.

Sec. 3 partitions the hidden layer into g modules of k units each (H = g k) and gives module
i a clock period T_i, with T_1 < ... < T_g. The paper's experiments use the exponential
series T_i = 2^{i-1}, and it states that the choice of periods is arbitrary. The hidden
state follows the simple RNN's equation, which Sec. 3 restates

.. math::
    y_H^{(t)} = f_H\big(W_H \, y_H^{(t-1)} + W_I \, x^{(t)}\big)

with W_H and W_I partitioned into g block-rows, one per module. At step t only the modules
with t mod T_i = 0 are executed: their block-rows of the equation are evaluated, and every other
module keeps the value it had at step t - 1. Written per module (rows of module i; bias
terms as torch's, both ``bias_ih`` and ``bias_hh``; ``bias=False`` gives the equation as printed):

.. math::
    h^{(i)}_t = \begin{cases}
        \tanh\big(x_t W_{I,i}^T + b_{ih,i} + h_{t-1} W_{H,i}^T + b_{hh,i}\big)
            & \text{if } t \bmod T_i = 0 \\
        h^{(i)}_{t-1} & \text{otherwise}
    \end{cases}

Connections (Sec. 3): each module is fully connected within itself, and module j feeds
module i only if T_i < T_j: the slower modules feed the faster ones, never the reverse.
With the modules sorted by increasing period, block (i, j) of W_H (rows the receiving
module i, columns the sending module j, as torch's ``weight_hh``) is nonzero only for
j >= i, so W_H is block-upper-triangular; the hidden state travels "right to left", from
slow modules to fast ones. W_I is full: every module, when it runs, reads all of x_t.

The nonlinearity f_H is tanh here, the simple RNN's (and torch.nn.RNN's default); the
equation above writes a generic f_H.

Choices lstmkit makes where the paper leaves room:

- **Where t starts.** Sec. 3 gives the rule t mod T_i = 0 without fixing whether the
  first input is step 0 or step 1.
  lstmkit counts from t = 0, so every module is executed at the first step (0 mod T_i = 0
  for all i): each module's first value comes from the first input instead of the initial
  state being held for T_i - 1 steps, and the schedule then repeats with period
  lcm(T_1, ..., T_g) from the start of each sequence.
- **The clock is state.** ``step`` receives no time index, so the step count is the second
  state tensor: ``clock`` (B, 1), the number of steps this row has taken, which is the t of
  its next step. Each layer and direction starts its own count at 0, so a reverse direction
  counts t = 0 at its own first step (the sequence's last element), and with ``lengths``
  (or a PackedSequence) a row's clock stops where its sequence ends, as if it ran alone.
  The user's state is therefore ``(h, clock)``, as the LSTM's is ``(h, c)``: passing the
  final state back in continues the schedule where it stopped, which is what truncated
  backpropagation through time over consecutive chunks needs (a clock kept outside the
  state would restart at every chunk). The clock is stored modulo L = lcm(T_1, ..., T_g),
  which leaves t mod T_i unchanged for every module, in the parameters' floating dtype (so
  that it travels with h through every layer's state checks). It counts exactly while L is
  at most the largest integer that dtype holds exactly (2^24 in float32, 256 in
  bfloat16); a larger L is refused with an error rather than counted wrongly. The clock has
  no gradient.
- **The mask.** ``weight_hh`` is stored whole, (H, H), as torch.nn.RNN's, so weights move
  between the two; the step multiplies it by the fixed block-upper-triangular mask, so an
  entry below the diagonal blocks never acts and its gradient is exactly zero. Those
  g(g-1)/2 k^2 entries still count as parameters (the paper counts only the used ones);
  they start at zero, so the stored matrix is the W_H that acts.
- **Equal modules.** As in the paper, all modules have k = H / g units: g must divide H.
- **Compute.** The paper saves the work of the modules that do not run; this reference step
  computes every row and keeps the inactive ones, so it costs what a plain RNN step costs.

Shapes (legend: B batch, I input size, H hidden size, g modules, k = H / g units per module):
one gate block, the hidden pre-activation itself; ``weight_ih`` (H, I) full; ``weight_hh``
(H, H), used as ``weight_hh * mask``, where ``mask[r, c] = 1`` if unit c's period is at
least unit r's; ``bias_ih`` and ``bias_hh`` (H,); state h (B, H) and clock (B, 1). Units
0..k-1 are module 1 (period T_1), the next k module 2, and so on.

Initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.nn.RNN, then the
masked entries of ``weight_hh`` set to 0 (:meth:`ClockworkFamily.zero_masked_`, applied by
the cell and layer modules).

Trace names: ``hidden`` (h_t) and ``active`` (1 where the unit's module was executed at
that step, else 0).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import InitVar, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import StepResult, Weights


def exponential_periods(num_modules: int) -> tuple[int, ...]:
    """The paper's periods T_i = 2^{i-1}, i = 1..num_modules: (1, 2, 4, ...)."""
    if isinstance(num_modules, bool) or not isinstance(num_modules, numbers.Integral):
        raise ValueError(f"num_modules must be a positive integer, got {num_modules!r}")
    if num_modules < 1:
        raise ValueError(f"num_modules must be a positive integer, got {num_modules!r}")
    return tuple(2**i for i in range(int(num_modules)))


def check_periods(periods) -> tuple[int, ...]:
    """``periods`` as a tuple of positive integers in strictly increasing order, or an error
    naming what is wrong."""
    if isinstance(periods, str | bytes) or not isinstance(periods, Sequence):
        raise TypeError(
            "periods must be a sequence of positive integers in increasing order, e.g. "
            f"(1, 2, 4, 8), got {type(periods).__name__} {periods!r}"
        )
    if len(periods) == 0:
        raise ValueError("periods must name at least one module's period, got an empty sequence")
    for k, period in enumerate(periods):
        if isinstance(period, bool) or not isinstance(period, numbers.Integral) or period < 1:
            raise ValueError(
                f"periods[{k}] must be a positive integer (a clock period in steps), got "
                f"{period!r} in periods={tuple(periods)!r}"
            )
    for k in range(1, len(periods)):
        if periods[k] <= periods[k - 1]:
            raise ValueError(
                "periods must be strictly increasing (module i's period T_i < T_(i+1), as "
                f"in Koutnik et al. 2014, Sec. 3), got periods={tuple(periods)!r}: "
                f"periods[{k}] = {periods[k]} is not greater than periods[{k - 1}] = "
                f"{periods[k - 1]}"
            )
    return tuple(int(p) for p in periods)


def resolve_periods(periods, num_modules) -> tuple[int, ...]:
    """The periods from exactly one of ``periods`` (any increasing sequence) and
    ``num_modules`` (the paper's exponential series)."""
    if periods is None and num_modules is None:
        raise TypeError(
            "the Clockwork RNN needs its modules: pass num_modules=g (periods 1, 2, 4, ..., "
            "2**(g-1), the paper's) or periods=(T_1, ..., T_g)"
        )
    if periods is not None and num_modules is not None:
        raise TypeError(
            f"pass num_modules or periods, not both: got num_modules={num_modules!r} and "
            f"periods={periods!r}"
        )
    return check_periods(periods) if periods is not None else exponential_periods(num_modules)


@dataclass(frozen=True)
class ClockworkFamily:
    """The Clockwork RNN cell; see the module docstring for the equations and choices.

    ``ClockworkFamily(hidden_size, periods=(1, 2, 4, 8))`` or
    ``ClockworkFamily(hidden_size, num_modules=4)`` (the same periods, the paper's
    exponential series). ``num_modules`` only builds ``periods`` and is not kept.
    """

    hidden_size: int
    periods: tuple[int, ...] | None = None
    num_modules: InitVar[int | None] = None

    name = "clockwork"
    gates = ("hidden",)  # one block: the pre-activation of h_t itself, as the plain RNN's
    state_names = ("h", "clock")
    trace_names = ("hidden", "active")
    zoneout_only_h = "would zone out the clock state, which must count every step"
    """Why zoneout may act on h alone (:func:`lstmkit.layers.regularize.check_zoneout`)."""

    def __post_init__(self, num_modules: int | None) -> None:
        object.__setattr__(self, "periods", resolve_periods(self.periods, num_modules))
        hidden = self.hidden_size
        # a bad hidden_size itself is left to the module's own check, which names the module
        valid_hidden = isinstance(hidden, int) and not isinstance(hidden, bool) and hidden > 0
        if valid_hidden and hidden % len(self.periods):
            g = len(self.periods)
            raise ValueError(
                f"{g} modules (periods={self.periods}) must divide hidden_size={hidden}: "
                f"each module has hidden_size / {g} units; choose a hidden_size that is a "
                f"multiple of {g}, or a number of modules among "
                f"{[m for m in range(1, hidden + 1) if hidden % m == 0]}"
            )

    @property
    def module_size(self) -> int:
        """k: the units in each module."""
        return self.hidden_size // len(self.periods)

    @property
    def cycle(self) -> int:
        """L = lcm(T_1, ..., T_g): the schedule repeats every L steps; the clock counts mod L."""
        return math.lcm(*self.periods)

    @property
    def state_sizes(self) -> tuple[int, int]:
        return (self.hidden_size, 1)

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        return {}

    def variant_options(self) -> list[str]:
        """The options as they are passed: for reprs."""
        exponential = self.periods == exponential_periods(len(self.periods))
        if exponential:
            return [f"num_modules={len(self.periods)}"]
        return [f"periods={self.periods}"]

    def unit_periods(self, like: Tensor) -> Tensor:
        """Each hidden unit's period, (H,), in ``like``'s dtype and device."""
        periods = torch.tensor(self.periods, dtype=like.dtype, device=like.device)
        return periods.repeat_interleave(self.module_size)  # (H,)

    def connected(self, like: Tensor) -> Tensor:
        """(H, H) bool: True where unit c may feed unit r (T_c >= T_r: a module as slow or
        slower feeds a faster one). Block-upper-triangular, rows receiving, as ``weight_hh``."""
        unit = self.unit_periods(like)
        return unit[None, :] >= unit[:, None]  # [r, c]: T_c >= T_r

    def recurrent_mask(self, like: Tensor) -> Tensor:
        """:meth:`connected` as 0 and 1 in ``like``'s dtype, for multiplying ``weight_hh``."""
        return self.connected(like).to(like.dtype)

    @torch.no_grad()
    def zero_masked_(self, weight_hh: Tensor) -> None:
        """Set the entries of ``weight_hh`` that the mask removes to 0, in place, so that
        the stored matrix is the W_H that acts."""
        weight_hh.masked_fill_(~self.connected(weight_hh), 0.0)

    def check_clock_dtype(self, clock: Tensor) -> None:
        """Refuse a dtype that cannot count to L exactly (bfloat16 stops at 256)."""
        if not clock.dtype.is_floating_point:
            raise TypeError(f"the clock state must be floating point, got {clock.dtype}")
        exact = 2 / torch.finfo(clock.dtype).eps  # the largest n with 0..n all exact
        if self.cycle > exact:
            raise ValueError(
                f"the Clockwork RNN's clock counts steps modulo lcm{self.periods} = "
                f"{self.cycle}, which {clock.dtype} cannot count exactly (its integers are "
                f"exact up to {int(exact)}); run in float32 or float64 (without autocast) or "
                "choose periods with a smaller least common multiple"
            )

    def loop_weights(self, weights: Weights) -> Weights:
        """``weights`` with the W_H that acts, ``weight_hh`` times the mask, as
        ``"weight_hh_active"``: one masked matrix for a whole sequence, where a product per
        step would keep T copies of it for the backward."""
        return {**weights, "weight_hh_active": self._active_weight(weights)}

    def _active_weight(self, weights: Weights) -> Tensor:
        # Sec. 3: block-upper-triangular W_H, slower modules feed faster ones only
        return weights["weight_hh"] * self.recurrent_mask(weights["weight_hh"])

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step of the equations above. ``x_gates`` = x_t W_ih^T + b_ih, (B, H);
        state (h_{t-1} (B, H), clock (B, 1)), the clock holding this step's t mod L."""
        h_prev, clock = state
        self.check_clock_dtype(clock)
        # Sec. 3: module i is executed at step t when t mod T_i = 0
        active = torch.remainder(clock, self.unit_periods(clock)) == 0  # (B, H)
        w_hh = weights.get("weight_hh_active")
        if w_hh is None:  # a single step, not a loop (see loop_weights)
            w_hh = self._active_weight(weights)
        z = x_gates + F.linear(h_prev, w_hh, weights.get("bias_hh"))
        h = torch.where(active, torch.tanh(z), h_prev)  # the others keep their value
        next_clock = torch.remainder(clock + 1, self.cycle)  # t + 1, mod L
        return StepResult((h, next_clock), {"hidden": h, "active": active.to(h.dtype)})


def check_clock(clock: Tensor, owner: str, name: str = "hx[1] (clock_0)") -> None:
    """A user's clock state: whole numbers >= 0 (steps already taken), or an error."""
    if not isinstance(clock, Tensor) or not clock.dtype.is_floating_point:
        return  # the shape and dtype checks of the module name these faults
    bad = ~torch.isfinite(clock) | (clock < 0) | (clock != torch.floor(clock))
    if bool(bad.any()):
        example = clock[bad].flatten()[0].item()
        raise ValueError(
            f"{owner}: {name} must hold whole numbers >= 0 (the steps each row has already "
            f"taken, as a final state returns them), got {example!r}"
        )
