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
- ``forget_gate=False``: the original 1997 cell, C_t = C_{t-1} + i_t * C~_t (Greff's NFG).
- ``proj_size > 0``: the projection of Sak et al. (2014), as in torch.nn.LSTM.

Greff et al. (2015, "LSTM: A Search Space Odyssey") compare eight variants of the vanilla LSTM,
each removing or adding one component; each is a field here (CIFG is ``coupled``, NFG
``forget_gate=False``, NP the default ``peephole=False``), and they combine where the result
is still a cell:

- ``input_gate=False`` (NIG): i_t = 1, so C_t = f_t C_{t-1} + C~_t.
- ``output_gate=False`` (NOG): o_t = 1, so h_t = tanh(C_t).
- ``input_activation=False`` (NIAF): the candidate is its pre-activation, no tanh:
  C~_t = x_t W_{ig}^T + b_{ig} + h_{t-1} W_{hg}^T + b_{hg}.
- ``output_activation=False`` (NOAF): h_t = o_t * C_t, no tanh.
- ``gate_recurrence=True`` (FGR, "full gate recurrence": recurrent connections between all
  the gates, nine more recurrent matrices): every sigmoid gate also reads the previous step's
  gate activations. For the full cell

  .. math::
      i_t &= \sigma(\dots + i_{t-1} R_{ii}^T + f_{t-1} R_{fi}^T + o_{t-1} R_{oi}^T) \\
      f_t &= \sigma(\dots + i_{t-1} R_{if}^T + f_{t-1} R_{ff}^T + o_{t-1} R_{of}^T) \\
      o_t &= \sigma(\dots + i_{t-1} R_{io}^T + f_{t-1} R_{fo}^T + o_{t-1} R_{oo}^T)

  where ``...`` is the gate's pre-activation above (peephole included) and R_{ba} carries
  gate b into gate a. With a gate removed or coupled, only the gates with weights of their
  own take part (a coupled f_{t-1} = 1 - i_{t-1} would add nothing i_{t-1} does not). The
  previous activations are state: the state is (h, C, gates_{t-1}) with gates_{t-1}
  (B, K*H) their concatenation in gate order, zeros at the start like h_0 and C_0. Without
  FGR the state stays (h, C).

  Where this comes from: the description of FGR found for Greff et al. is one sentence,
  recurrent connections "between all the gates" with "nine additional recurrent weight
  matrices" (quoted in several write-ups of the paper; the paper's full text was not at hand,
  so whether it also prints the equations is unchecked). Nine is three gates times three
  previous gate activations, which fixes the equations above; the block input C~ takes no
  part (it is not a gate). A TensorFlow reimplementation of the eight variants
  (github.com/debajyotidatta/RecurrentArchitectures, ``variants/fgr.py``) writes the same nine
  matrices R_ii ... R_oo, each gate reading i_{t-1}, f_{t-1} and o_{t-1}.
- ``layer_norm``: the layer-normalised LSTM of Ba et al. (2016), ``"ba2016"``:

  .. math::
      (i_t, f_t, \tilde C_t, o_t)^{pre} &= \mathrm{LN}(h_{t-1} W_h^T; \alpha_1, \beta_1)
          + \mathrm{LN}(x_t W_x^T; \alpha_2, \beta_2) + b                              \\
      h_t &= o_t \odot \tanh(\mathrm{LN}(C_t; \alpha_3, \beta_3))

  (then peepholes and the nonlinearities as above), and the alternatives ``"per-gate"``
  (TensorFlow's LayerNormBasicLSTMCell: each gate block of the summed product normalised on
  its own, and the cell state carried normalised) and ``"cell"`` (only LN(C_t) before the
  output tanh). Where each norm sits, and how b relates to the shifts beta:
  :mod:`lstmkit.cellmath.lstm_options`.

Gate order and shapes (legend: B batch, I input size, H hidden size, P projection size,
R = P if P > 0 else H, G number of gate blocks, K number of sigmoid gates with weights):

- gate blocks in ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, R), ``bias_ih`` and ``bias_hh``
  (G*H,) are torch's ``input, forget, candidate, output`` (i, f, g, o); a gate that is
  removed (``input_gate``, ``output_gate``, ``forget_gate``) or derived (``coupled``) has no
  block, and the others keep their order: the coupled cell is (i, g, o), G = 3; NIG is
  (f, g, o). The plain cell's layout is torch's exactly, so weights move between
  torch.nn.LSTM and lstmkit.
- ``weight_ci``, ``weight_cf``, ``weight_co`` (H,): peepholes, each only when its gate has
  weights of its own.
- ``weight_hr`` (P, H): the projection.
- ``weight_gg`` (K*H, K*H): the gate recurrence; ``ln_*``: the norms' gains and shifts (see
  :mod:`lstmkit.cellmath.lstm_options`).
- state: h (B, R), C (B, H), and with gate recurrence gates_{t-1} (B, K*H).

Initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H)), as torch does, so the plain
cell starts from the same distribution; ``forget_bias`` (handled by the cell and layer
modules) then sets the forget-gate bias, as Jozefowicz et al. (2015) recommend with 1.0. The
norms' gains start at 1 and their shifts at 0 (:meth:`LSTMFamily.initial_constants`, applied
by :func:`lstmkit.cellmath.params.reset_parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lstmkit.cellmath import lstm_options
from lstmkit.cellmath.family import StepResult, Weights


@dataclass(frozen=True)
class LSTMFamily:
    """The structural options of one LSTM cell; see the module docstring for the equations."""

    hidden_size: int
    proj_size: int = 0
    peephole: bool = False
    coupled: bool = False
    forget_gate: bool = True
    input_gate: bool = True
    output_gate: bool = True
    input_activation: bool = True
    output_activation: bool = True
    gate_recurrence: bool = False
    layer_norm: str | None = None

    name = "lstm"

    def __post_init__(self) -> None:
        lstm_options.check_options(self)

    @property
    def has_forget_weights(self) -> bool:
        """Whether the forget gate has weights of its own (not coupled, not removed)."""
        return self.forget_gate and not self.coupled

    @property
    def gates(self) -> tuple[str, ...]:
        present = {
            "input": self.input_gate,
            "forget": self.has_forget_weights,
            "candidate": True,
            "output": self.output_gate,
        }
        return tuple(gate for gate, here in present.items() if here)

    @property
    def sigmoid_gates(self) -> tuple[str, ...]:
        """The gates with weights of their own, in gate order (the candidate is no gate)."""
        return tuple(gate for gate in self.gates if gate != "candidate")

    @property
    def state_sizes(self) -> tuple[int, ...]:
        sizes = (self.proj_size or self.hidden_size, self.hidden_size)
        if self.gate_recurrence:  # FGR: the previous gate activations are state too
            sizes += (len(self.sigmoid_gates) * self.hidden_size,)
        return sizes

    @property
    def state_names(self) -> tuple[str, ...]:
        """What each state tensor holds, for messages about ``hx``: h, C and FGR's gates."""
        return ("h", "c", "gates") if self.gate_recurrence else ("h", "c")

    @property
    def trace_names(self) -> tuple[str, ...]:
        present = {
            "input": self.input_gate,
            "forget": self.forget_gate,  # the coupled cell reports its derived 1 - i_t
            "candidate": True,
            "output": self.output_gate,
        }
        return (*(gate for gate, here in present.items() if here), "cell", "hidden")

    def variant_options(self) -> list[str]:
        """The options that differ from the plain cell, as they are passed: for reprs."""
        options = [f"{name}=True" for name in ("peephole", "coupled") if getattr(self, name)]
        for name in ("forget_gate", "input_gate", "output_gate"):
            if not getattr(self, name):
                options.append(f"{name}=False")
        for name in ("input_activation", "output_activation"):
            if not getattr(self, name):
                options.append(f"{name}=False")
        if self.gate_recurrence:
            options.append("gate_recurrence=True")
        if self.layer_norm is not None:
            options.append(f"layer_norm={self.layer_norm!r}")
        return options

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        extra: dict[str, tuple[int, ...]] = {}
        if self.proj_size:  # first, so a plain projected LSTM lists its parameters as torch does
            extra["weight_hr"] = (self.proj_size, self.hidden_size)
        if self.peephole:
            for gate in self.sigmoid_gates:
                extra[f"weight_c{gate[0]}"] = (self.hidden_size,)
        extra.update(lstm_options.option_parameters(self))
        return extra

    def initial_constants(self) -> dict[str, float]:
        """Parameters that start at a constant instead of the uniform draw (name -> value):
        the norms' gains at 1 and shifts at 0."""
        return lstm_options.constant_initialisation(self)

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step of the equations above. ``x_gates`` = x_t W_ih^T + b_ih, (B, G*H)."""
        h_prev, c_prev = state[0], state[1]
        z = lstm_options.preactivations(self, x_gates, h_prev, weights)  # (B, G*H)
        z = dict(zip(self.gates, z.chunk(len(self.gates), dim=-1), strict=True))
        if self.gate_recurrence:  # FGR: each gate reads every gate's previous activation
            lstm_options.add_gate_recurrence(self, z, state[2], weights)
        if self.peephole:  # the input and forget gates look at C_{t-1}
            for gate in ("input", "forget"):
                if gate in z:
                    z[gate] = z[gate] + weights[f"weight_c{gate[0]}"] * c_prev

        i = torch.sigmoid(z["input"]) if self.input_gate else None  # NIG: i_t = 1
        g = torch.tanh(z["candidate"]) if self.input_activation else z["candidate"]  # NIAF
        written = g if i is None else i * g
        if self.coupled:
            f = 1 - i
            c = f * c_prev + written
        elif self.forget_gate:
            f = torch.sigmoid(z["forget"])
            c = f * c_prev + written
        else:  # 1997: the cell state is a pure accumulator, the "constant error carousel"
            f = None
            c = c_prev + written
        c = lstm_options.carried_cell(self, c, weights)  # per-gate: TensorFlow carries LN(C_t)

        o = None  # NOG: o_t = 1
        if self.output_gate:
            if self.peephole:  # the output gate looks at C_t, the state it is about to expose
                z["output"] = z["output"] + weights["weight_co"] * c
            o = torch.sigmoid(z["output"])
        shown = lstm_options.exposed_cell(self, c, weights)
        squashed = torch.tanh(shown) if self.output_activation else shown  # NOAF: no tanh
        h = squashed if o is None else o * squashed
        if self.proj_size:
            h = h @ weights["weight_hr"].T  # (B, P)

        gate_values = {"input": i, "forget": f, "output": o}
        values = {name: v for name, v in gate_values.items() if v is not None}
        values |= {"candidate": g, "cell": c, "hidden": h}
        if not self.gate_recurrence:
            return StepResult((h, c), values)
        previous = torch.cat([gate_values[gate] for gate in self.sigmoid_gates], dim=-1)
        return StepResult((h, c, previous), values)  # previous: (B, K*H)
