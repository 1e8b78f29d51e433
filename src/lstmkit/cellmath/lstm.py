r"""The LSTM cell family: Hochreiter & Schmidhuber (1997) with the forget gate of Gers et al.
(2000), and the variants torch lacks.

Equations (Olah 2015, "Understanding LSTM Networks", written with torch's separate input and
recurrent weights; ``[h_{t-1}, x_t] W^T`` in Olah's notation is ``x_t W_i^T + h_{t-1} W_h^T``):

.. math::
    i_t     &= \sigma(x_t W_{ii}^T + b_{ii} + h_{t-1} W_{hi}^T + b_{hi} + p_i \odot C_{t-1})  \\
    f_t     &= \sigma(x_t W_{if}^T + b_{if} + h_{t-1} W_{hf}^T + b_{hf} + p_f \odot C_{t-1})  \\
    \tilde C_t &= \tanh(x_t W_{ig}^T + b_{ig} + h_{t-1} W_{hg}^T + b_{hg})                 \\
    C_t     &= f_t \odot C_{t-1} + i_t \odot \tilde C_t                                    \\
    o_t     &= \sigma(x_t W_{io}^T + b_{io} + h_{t-1} W_{ho}^T + b_{ho} + p_o \odot C_t)  \\
    h_t     &= o_t \odot \tanh(C_t)   \quad (\text{then } h_t W_{hr}^T \text{ if projected})

Variants (each a field of :class:`LSTMFamily`):

- ``peephole``: the p terms above (Gers & Schmidhuber 2000): the input and forget gates look
  at C_{t-1}, the output gate at C_t. Diagonal, so each is a vector (``weight_ci``,
  ``weight_cf``, ``weight_co``), as in Graves (2013) and the ONNX LSTM operator's ``P``.
- ``coupled``: the coupled input-forget gate, CIFG (Greff et al. 2015): f_t = 1 - i_t, so the
  cell forgets exactly as much as it writes. Same as ONNX's ``input_forget=1``.
- ``forget_gate=False``: the original 1997 cell, C_t = C_{t-1} + i_t * C~_t.
- ``proj_size > 0``: the projection of Sak et al. (2014), as in torch.nn.LSTM.

Gate order and shapes (legend: B batch, I input size, H hidden size, P projection size,
R = P if P > 0 else H, G number of gate blocks):

- gate blocks in ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, R), ``bias_ih`` and ``bias_hh``
  (G*H,) are torch's ``input, forget, candidate, output`` (i, f, g, o); the variants without
  a free forget gate (coupled, no forget gate) drop the f block: (i, g, o), G = 3. The plain
  cell's layout is torch's exactly, so weights move between torch.nn.LSTM and lstmkit.
- ``weight_ci``, ``weight_cf``, ``weight_co`` (H,): peepholes; ``weight_cf`` only when the
  forget gate has weights of its own.
- ``weight_hr`` (P, H): the projection.
- state: h (B, R), C (B, H).

Initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H)), as torch does, so the plain
cell starts from the same distribution; ``forget_bias`` (handled by the cell and layer
modules) then sets the forget-gate bias, as Jozefowicz et al. (2015) recommend with 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import StepResult, Weights


@dataclass(frozen=True)
class LSTMFamily:
    """The structural options of one LSTM cell; see the module docstring for the equations."""

    hidden_size: int
    proj_size: int = 0
    peephole: bool = False
    coupled: bool = False
    forget_gate: bool = True

    name = "lstm"

    def __post_init__(self) -> None:
        if self.coupled and not self.forget_gate:
            raise ValueError(
                "coupled=True defines the forget gate as 1 - input gate, and forget_gate=False "
                "removes the forget gate; the two cannot be combined: choose one"
            )

    @property
    def has_forget_weights(self) -> bool:
        """Whether the forget gate has weights of its own (not coupled, not removed)."""
        return self.forget_gate and not self.coupled

    @property
    def gates(self) -> tuple[str, ...]:
        if self.has_forget_weights:
            return ("input", "forget", "candidate", "output")
        return ("input", "candidate", "output")

    @property
    def state_sizes(self) -> tuple[int, int]:
        return (self.proj_size or self.hidden_size, self.hidden_size)

    @property
    def trace_names(self) -> tuple[str, ...]:
        gates = ("input", "forget", "candidate", "output") if self.forget_gate else self.gates
        return (*gates, "cell", "hidden")

    def variant_options(self) -> list[str]:
        """The options that differ from the plain cell, as they are passed: for reprs."""
        options = [f"{name}=True" for name in ("peephole", "coupled") if getattr(self, name)]
        if not self.forget_gate:
            options.append("forget_gate=False")
        return options

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        extra: dict[str, tuple[int, ...]] = {}
        if self.proj_size:  # first, so a plain projected LSTM lists its parameters as torch does
            extra["weight_hr"] = (self.proj_size, self.hidden_size)
        if self.peephole:
            extra["weight_ci"] = (self.hidden_size,)
            if self.has_forget_weights:
                extra["weight_cf"] = (self.hidden_size,)
            extra["weight_co"] = (self.hidden_size,)
        return extra

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step of the equations above. ``x_gates`` = x_t W_ih^T + b_ih, (B, G*H)."""
        h_prev, c_prev = state
        z = x_gates + F.linear(h_prev, weights["weight_hh"], weights.get("bias_hh"))  # (B, G*H)
        z = dict(zip(self.gates, z.chunk(len(self.gates), dim=-1), strict=True))
        if self.peephole:  # the input and forget gates look at C_{t-1}
            z["input"] = z["input"] + weights["weight_ci"] * c_prev
            if self.has_forget_weights:
                z["forget"] = z["forget"] + weights["weight_cf"] * c_prev

        i = torch.sigmoid(z["input"])
        g = torch.tanh(z["candidate"])
        if self.coupled:
            f = 1 - i
            c = f * c_prev + i * g
        elif self.forget_gate:
            f = torch.sigmoid(z["forget"])
            c = f * c_prev + i * g
        else:  # 1997: the cell state is a pure accumulator, the "constant error carousel"
            f = None
            c = c_prev + i * g

        if self.peephole:  # the output gate looks at C_t, the state it is about to expose
            z["output"] = z["output"] + weights["weight_co"] * c
        o = torch.sigmoid(z["output"])
        h = o * torch.tanh(c)
        if self.proj_size:
            h = h @ weights["weight_hr"].T  # (B, P)

        values = {"input": i, "candidate": g, "output": o, "cell": c, "hidden": h}
        if f is not None:
            values["forget"] = f
        return StepResult((h, c), values)
