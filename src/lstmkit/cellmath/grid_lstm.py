r"""The 2-D Grid LSTM over time and depth of Kalchbrenner, Danihelka & Graves (2015), "Grid
Long Short-Term Memory" (arXiv:1507.01526): a stacked sequence model whose blocks have LSTM
cells along depth as well as along time.

The LSTM transform (Sec. 2.1). It maps the concatenated hidden input H and a memory m to a
new hidden vector and memory, ``(h', m') = LSTM(H, m, W)``:

.. math::
    g^u &= \sigma(W^u H), \quad g^f = \sigma(W^f H), \quad g^o = \sigma(W^o H),
    \quad g^c = \tanh(W^c H)                                                      \\
    m'  &= g^f \odot m + g^u \odot g^c                                            \\
    h'  &= \tanh(g^o \odot m')

A 2-D block (Sec. 3.1, "Grid LSTM Blocks") at time t and layer k receives two hidden vectors
and two memories: along time (h^k_{t-1}, m^k_{t-1}) from the block before it, along depth
(h^{k-1}_t, \mu^{k-1}_t) from the block below. Both of its transforms read the same
concatenation H = [h^{k-1}_t ; h^k_{t-1}], each with its own weights and its own memory:

.. math::
    (h^k_t, m^k_t)     &= \mathrm{LSTM}(H, m^k_{t-1}, W^{time}_k)   \\
    (\eta^k_t, \mu^k_t) &= \mathrm{LSTM}(H, \mu^{k-1}_t, W^{depth}_k)

The time pair goes on to step t+1 of layer k, the depth pair (\eta, \mu) up to layer k+1 at
step t. The network's output at step t is the top block's depth hidden vector \eta^{L-1}_t.
At the bottom the depth input is the sequence, \eta^{-1}_t = I x_t, the input projected into
the grid (Sec. 2.1 writes I x_t in H), and the depth memory is zero, \mu^{-1}_t = 0 (a
choice here: the input supplies a hidden vector, no memory, like h_0 = c_0 = 0). With
weights of its own per layer the projection I folds into layer 0's input weights (W I is one
matrix), so \eta^{-1}_t = x_t; with the weights shared along depth (Sec. 3.5, the "tied"
Grid LSTM) every block needs an H-wide depth input, and I (H, input_size) is a parameter.

The Stacked LSTM (Sec. 2.2) is this grid without LSTM cells along depth: each block hands
its time output h^k_t straight up, (\eta^k_t, \mu^k_t) = (h^k_t, none). ``depth_lstm=False``
runs that model; with torch's output form below it is exactly a stacked torch.nn.LSTM.

Options (fields of :class:`GridLSTMFamily`):

- ``depth_lstm``: True (default) for the 2-D Grid LSTM; False for the Stacked LSTM.
- ``output_form``: ``"o*tanh(m)"`` (default), h' = g^o \odot \tanh(m'), torch.nn.LSTM's
  output, so weights and results move to and from torch; or ``"tanh(o*m)"``, h' =
  \tanh(g^o \odot m'), Sec. 2.1's equation as printed. Both transforms use the same form.

Written with torch's separate input and recurrent matrices and biases, W H = H_depth
W_ih^T + b_ih + H_time W_hh^T + b_hh per transform (the paper's W acts on the
concatenation; its biases are implicit).

Gate order and shapes (legend: B batch, H hidden size, D the block's depth-input size:
input_size for layer 0 with weights per layer, else H):

- time transform: ``weight_ih`` (4H, D), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh``
  (4H,), torch's blocks ``input, forget, candidate, output`` (g^u, g^f, g^c, g^o), so its
  weights are torch.nn.LSTM's.
- depth transform (``depth_lstm``): ``weight_depth_ih`` (4H, D), ``weight_depth_hh`` (4H,
  H), ``bias_depth_ih``, ``bias_depth_hh`` (4H,), the same block order.
- state: the time pair h (B, H), m (B, H). The depth pair lives within one step only.

Initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H)), torch's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import Weights

OUTPUT_FORMS = ("o*tanh(m)", "tanh(o*m)")
_GATES = ("input", "forget", "candidate", "output")


class BlockResult(NamedTuple):
    state: tuple[Tensor, Tensor]
    """The time pair (h^k_t, m^k_t), for step t+1 of this layer."""
    depth_hidden: Tensor
    """\\eta^k_t (B, H), for the block above (or the output, at the top)."""
    depth_memory: Tensor | None
    """\\mu^k_t (B, H), for the block above; None without LSTM cells along depth."""
    values: dict[str, Tensor]
    """The gates, memories and hidden vectors of both transforms, each (B, H)."""


@dataclass(frozen=True)
class GridLSTMFamily:
    """One block of a 2-D Grid LSTM; see the module docstring for the equations."""

    hidden_size: int
    depth_lstm: bool = True
    output_form: str = "o*tanh(m)"

    name = "grid-lstm"
    gates = _GATES
    state_names = ("h", "c")

    def __post_init__(self) -> None:
        if self.output_form not in OUTPUT_FORMS:
            raise ValueError(f"output_form must be one of {OUTPUT_FORMS}, got {self.output_form!r}")

    @property
    def state_sizes(self) -> tuple[int, int]:
        return (self.hidden_size, self.hidden_size)

    @property
    def trace_names(self) -> tuple[str, ...]:
        time = (*_GATES, "cell", "hidden")
        if not self.depth_lstm:
            return time
        return (*time, *(f"depth_{name}" for name in time))

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        return {}

    def block_shapes(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        """The parameters of one block whose depth input has ``input_size`` features."""
        rows = 4 * self.hidden_size
        prefixes = ("", "depth_") if self.depth_lstm else ("",)
        shapes: dict[str, tuple[int, ...]] = {}
        for p in prefixes:
            shapes |= {
                f"weight_{p}ih": (rows, input_size),
                f"weight_{p}hh": (rows, self.hidden_size),
            }
            if bias:
                shapes |= {f"bias_{p}ih": (rows,), f"bias_{p}hh": (rows,)}
        return shapes

    def transform(
        self, pre: Tensor, memory: Tensor | None
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Sec. 2.1's LSTM(H, m, W) from its pre-activations W H (B, 4H); memory None is 0."""
        z_u, z_f, z_c, z_o = pre.chunk(4, dim=-1)
        g_u, g_f, g_o = torch.sigmoid(z_u), torch.sigmoid(z_f), torch.sigmoid(z_o)
        g_c = torch.tanh(z_c)
        new_memory = g_u * g_c if memory is None else g_f * memory + g_u * g_c
        if self.output_form == "o*tanh(m)":
            hidden = g_o * torch.tanh(new_memory)
        else:  # Sec. 2.1 as printed: the output gate inside the tanh
            hidden = torch.tanh(g_o * new_memory)
        values = dict(zip(_GATES, (g_u, g_f, g_c, g_o), strict=True))
        return hidden, new_memory, values | {"cell": new_memory, "hidden": hidden}

    def block(
        self,
        depth_hidden: Tensor,
        depth_memory: Tensor | None,
        state: tuple[Tensor, Tensor],
        weights: Weights,
    ) -> BlockResult:
        """One block. ``depth_hidden`` (B, I) and ``depth_memory`` (B, H) or None come from
        below; ``state`` is the time pair from step t-1."""
        h_prev, m_prev = state

        def pre(prefix: str) -> Tensor:  # W H with H = [depth_hidden ; h_prev], (B, 4H)
            return F.linear(
                depth_hidden, weights[f"weight_{prefix}ih"], weights.get(f"bias_{prefix}ih")
            ) + F.linear(h_prev, weights[f"weight_{prefix}hh"], weights.get(f"bias_{prefix}hh"))

        h, m, values = self.transform(pre(""), m_prev)
        if not self.depth_lstm:  # Sec. 2.2, the Stacked LSTM: the time output goes up as it is
            return BlockResult((h, m), h, None, values)
        eta, mu, depth_values = self.transform(pre("depth_"), depth_memory)
        values |= {f"depth_{name}": v for name, v in depth_values.items()}
        return BlockResult((h, m), eta, mu, values)


__all__ = ["OUTPUT_FORMS", "BlockResult", "GridLSTMFamily"]
