r"""The depth-gated LSTM of Yao, Cohn, Vylomova, Duh & Dyer (2015), "Depth-Gated LSTM"
(arXiv:1508.03790, Sec. 3, "depth-gated LSTM"): in a stack of LSTMs, a depth gate adds the
memory cell of the layer below, at the same time step, to this layer's memory cell. The
abstract puts it as "a linear dependence between lower and upper layer recurrent units ...
gated through a gating function ... of the lower layer memory cell, the input to and the
past memory cell of this layer".

For layer L+1 >= 1 of the stack, whose input is the output of layer L (x_t = h_t^L):

.. math::
    i_t &= \sigma(x_t W_{ii}^T + b_{ii} + h_{t-1}^{L+1} W_{hi}^T + b_{hi})               \\
    f_t &= \sigma(x_t W_{if}^T + b_{if} + h_{t-1}^{L+1} W_{hf}^T + b_{hf})               \\
    g_t &= \tanh(x_t W_{ig}^T + b_{ig} + h_{t-1}^{L+1} W_{hg}^T + b_{hg})                \\
    o_t &= \sigma(x_t W_{io}^T + b_{io} + h_{t-1}^{L+1} W_{ho}^T + b_{ho})               \\
    d_t &= \sigma(x_t W_{xd}^T + b_d + w_{cd} \odot c_{t-1}^{L+1} + w_{ld} \odot c_t^{L}) \\
    c_t^{L+1} &= d_t \odot c_t^{L} + f_t \odot c_{t-1}^{L+1} + i_t \odot g_t             \\
    h_t^{L+1} &= o_t \odot \tanh(c_t^{L+1})

The depth gate d_t reads the three things the paper names: this layer's input x_t (a full
matrix W_xd), this layer's previous memory c_{t-1}^{L+1} and the lower layer's memory
c_t^L, each through a diagonal weight (vectors w_cd and w_ld, like peepholes). Layer 0 has
no memory below it and is a plain LSTM (the equations without d_t).

Choices beside the paper:

- The LSTM part is torch.nn.LSTM's cell, so its four parameters per layer are torch's and
  move to and from torch.nn.LSTM; with the depth gate shut (d_t = 0) the stack is exactly a
  stacked torch.nn.LSTM. The paper reviews the LSTM with peepholes, and the authors'
  workshop code (ws15mt/cnn, ``cnn/dglstm.cc``) also couples the forget gate (f = 1 - i),
  feeds layer 0 a depth-gated projection of its input, gives the input and output gates
  full (H, H) matrices on the cell state, and scales each layer's input by a learned scalar
  exp(s) (its "self stabilizer"); none of these is taken here.
- The depth gate itself is the one in that code: for layers above the first it sums a bias,
  a full matrix on the layer's input, and elementwise (vector) weights on this layer's
  previous memory and on the lower layer's current memory, then adds the gate times the
  lower memory to the new cell state; the equations above are that, with lstmkit's names.
- The step needs h_t from the full c_t (depth term included), so it computes the LSTM
  itself instead of calling :meth:`lstmkit.cellmath.lstm.LSTMFamily.step`, which would
  return h_t of the cell without the depth term.

Gate order and shapes (legend: B batch, I this layer's input size, H hidden size):

- ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,): torch's
  blocks ``input, forget, candidate, output`` (i, f, g, o).
- layers >= 1 only: ``weight_xd`` (H, I), ``bias_d`` (H,) (with bias=True), ``weight_cd``
  (H,) and ``weight_ld`` (H,).
- state: h (B, H), c (B, H); the lower layer's memory c_t^L (B, H) is an input of the step.

Initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H)), torch's, so the LSTM part
starts as torch.nn.LSTM's does and the depth gate starts near half open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import StepResult, Weights


class DepthInput(NamedTuple):
    """What layer L+1's step takes from below, beside its input x_t."""

    gate_input: Tensor
    """x_t W_xd^T + b_d (B, H): the depth gate's input part, computed for all steps at once."""
    lower_cell: Tensor
    """c_t^L (B, H): the memory cell of the layer below at the same step."""


@dataclass(frozen=True)
class DepthGatedLSTMFamily:
    """One layer of a depth-gated LSTM; see the module docstring for the equations."""

    hidden_size: int

    name = "depth-gated-lstm"
    gates = ("input", "forget", "candidate", "output")
    state_names = ("h", "c")
    trace_names = ("input", "forget", "candidate", "output", "depth", "cell", "hidden")

    @property
    def state_sizes(self) -> tuple[int, int]:
        return (self.hidden_size, self.hidden_size)

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        """None for the LSTM part; the depth gate's depend on the layer: :meth:`depth_shapes`."""
        return {}

    def lstm_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        """torch.nn.LSTM's four parameters of one layer."""
        rows = 4 * self.hidden_size
        shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, self.hidden_size)}
        if bias:
            shapes |= {"bias_ih": (rows,), "bias_hh": (rows,)}
        return shapes

    def depth_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        """The depth gate's parameters, for layers >= 1."""
        hidden = self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {"weight_xd": (hidden, input_size)}
        if bias:
            shapes["bias_d"] = (hidden,)
        return shapes | {"weight_cd": (hidden,), "weight_ld": (hidden,)}

    def depth_gate_input(self, x: Tensor, weights: Weights) -> Tensor:
        """x W_xd^T + b_d for every step at once: (T, B, I) -> (T, B, H)."""
        return F.linear(x, weights["weight_xd"], weights.get("bias_d"))

    def step(
        self,
        x_gates: Tensor,
        state: tuple[Tensor, ...],
        weights: Weights,
        depth: DepthInput | None = None,
    ) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih (B, 4H); ``depth`` None for layer 0."""
        h_prev, c_prev = state
        z = x_gates + F.linear(h_prev, weights["weight_hh"], weights.get("bias_hh"))  # (B, 4H)
        z_i, z_f, z_g, z_o = z.chunk(4, dim=-1)
        i, f, o = torch.sigmoid(z_i), torch.sigmoid(z_f), torch.sigmoid(z_o)
        g = torch.tanh(z_g)
        c = f * c_prev + i * g
        values = {"input": i, "forget": f, "candidate": g, "output": o}
        if depth is not None:  # Sec. 3: the gated linear path from the memory cell below
            d = torch.sigmoid(
                depth.gate_input
                + weights["weight_cd"] * c_prev
                + weights["weight_ld"] * depth.lower_cell
            )
            c = c + d * depth.lower_cell
            values["depth"] = d
        h = o * torch.tanh(c)
        return StepResult((h, c), values | {"cell": c, "hidden": h})


__all__ = ["DepthGatedLSTMFamily", "DepthInput"]
