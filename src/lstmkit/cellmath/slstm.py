r"""The sLSTM cell of Beck et al. (2024), "xLSTM: Extended Long Short-Term Memory", Sec. 2.2:
exponential gating, a normaliser state, a stabiliser state, and heads whose recurrence is
block-diagonal ("memory mixing" within a head, none across heads).

Forward pass (Sec. 2.2), with x_t the input and h_{t-1} the previous hidden state; every
pre-activation is ``\tilde a_t = W_a x_t + R_a h_{t-1} + b_a`` for a in {z, i, f, o}:

.. math::
    z_t &= \tanh(\tilde z_t)                                      \\
    i_t &= \exp(\tilde i_t)                                        \\
    f_t &= \sigma(\tilde f_t) \quad\text{or}\quad \exp(\tilde f_t) \\
    o_t &= \sigma(\tilde o_t)                                      \\
    c_t &= f_t \odot c_{t-1} + i_t \odot z_t                       \\
    n_t &= f_t \odot n_{t-1} + i_t                                 \\
    h_t &= o_t \odot c_t / n_t

The exponential input gate overflows (``exp`` passes the float32 range at 88.7, float64's at
709.8), so Sec. 2.2 stabilises it with a third state m_t, a running log-scale:

.. math::
    m_t  &= \max(\log f_t + m_{t-1},\ \tilde i_t)              \\
    i'_t &= \exp(\tilde i_t - m_t)                              \\
    f'_t &= \exp(\log f_t + m_{t-1} - m_t)

and runs the same c_t and n_t updates with i'_t, f'_t in place of i_t, f_t. Both new gates
are at most 1 (one of them is exactly 1), so nothing overflows. By induction the stabilised
c_t and n_t are the plain ones times exp(-m_t): their ratio, and so h_t, is the same; Sec.
2.2 states, with the proof in the appendix, that neither the output nor the loss's
gradients change. With a sigmoid forget gate log f_t = logsigmoid(f~_t), computed as such
because log(sigmoid(f~_t)) rounds to log(0) = -inf for very negative f~_t and its gradient
to nan; with an exponential forget gate log f_t = f~_t.

Heads (Sec. 2.2, "memory mixing"): the hidden units are split into ``num_heads`` heads of
H/heads units; each R_a is block-diagonal, one dense (H/heads, H/heads) block per head, so
a unit's gates see the previous hidden state of its own head only. One head is the full
recurrent matrix of an LSTM. Only the blocks are stored: the step multiplies head by head.

Options (fields of :class:`SLSTMFamily`):

- ``forget_activation``: ``"sigmoid"`` (default) or ``"exp"``, the two forget gates of
  Sec. 2.2.
- ``stabilized``: True (default) runs the stabilised form above. False runs the plain
  equations, which overflow as described; it is there to check the stabilisation and to
  show what it prevents. The plain form keeps m_t = m_{t-1} and uses i_t = exp(i~_t -
  m_{t-1}): from the zero state (m = 0) that is exactly the paper's plain form, and from a
  state the stabilised form left, where the stored c and n are the true ones times
  exp(-m), it continues on the same scale instead of mixing two.

Initial state: zeros for h, c, n and m. Sec. 2.2 gives no initial state; with c_0 = n_0 = 0
the value of m_0 does not change h (the ratio is scale-free), and 0 makes the plain form
start exactly as written. Step 1 from zeros gives c_1 / n_1 = z_1 exactly, so h_1 = o_1 z_1,
finite in the stabilised form unless exp(i~_1 - max(log f_1, i~_1)) underflows to 0 (i~_1
more than about 103 (float32) or 745 (float64) below log f_1: then n_1 = 0 and h_1 = 0/0),
and in the plain form while exp(i~_1) neither overflows nor underflows.

The authors' code treats that first step differently. In NX-AI/xlstm, both the CUDA kernel
(``xlstm/blocks/slstm/src/cuda/slstm_pointwise.cu``) and the PyTorch reference
(``xlstm/blocks/slstm/src/vanilla/slstm.py``) set the stabiliser to m_t = i~_t, not the max,
where n_{t-1} = 0 (per unit in the kernel; in the reference only when all of n is zero), so
i'_1 = 1 and n_1 = 1 exactly and the underflow above cannot happen. lstmkit keeps the max at
every step, as Sec. 2.2 writes it. Any sequence m_t run through the stabilised updates
leaves the stored c_t and n_t equal to the true ones times exp(-m_t), so from the zero state
both give the same h at every step in exact arithmetic; only the stored c, n and m differ,
and the underflow case above. The CUDA kernel's backward also gives m no gradient; here
autograd differentiates through the max, which changes nothing in exact arithmetic since h
does not depend on m.

Trace names: ``input`` and ``forget`` are the gates as applied (i'_t and f'_t in the
stabilised form), ``candidate`` z_t, ``output`` o_t, ``cell`` and ``normalizer`` the stored
c_t and n_t (the true ones times exp(-m_t) when stabilised), ``stabilizer`` m_t, ``hidden``
h_t.

Gate order and shapes (legend: B batch, I input size, H hidden size, K heads, D = H / K
units per head, G = 4 gate blocks):

- gate blocks in ``weight_ih`` (G*H, I), ``bias_ih`` and ``bias_hh`` (G*H,): ``input,
  forget, candidate, output`` (i, f, z, o), torch's LSTM order, so one head's parameters
  have the shapes and order of torch.nn.LSTM's (``weight_hh.reshape(4 * H, H)``).
- ``weight_hh`` (G, K, D, D): the blocks of the block-diagonal R; ``weight_hh[g, k]`` is
  head k's block of gate g, rows the units it drives, columns the units it reads, as in
  torch's (G*H, H) layout. R_g = block_diag(weight_hh[g, 0], ..., weight_hh[g, K-1]).
- state (h, c, n, m), each (B, H).

Initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H)), as lstmkit's other cells and
torch do. ``forget_bias`` (in the cell and layer modules) sets the total forget-gate bias;
lstmkit does not claim a value from the paper for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_positive_int
from lstmkit.cellmath.family import StepResult, Weights

FORGET_ACTIVATIONS = ("sigmoid", "exp")


@dataclass(frozen=True)
class SLSTMFamily:
    """The structural options of one sLSTM cell; see the module docstring for the equations."""

    hidden_size: int
    num_heads: int = 1
    forget_activation: str = "sigmoid"
    stabilized: bool = True

    name = "slstm"
    gates = ("input", "forget", "candidate", "output")
    state_names = ("h", "c", "n", "m")
    zoneout_only_h = (
        "would keep some of c, n and m at their old values and not the others, which together "
        "are one cell value (c and n scaled by exp(-m))"
    )
    """Why zoneout may act on h alone (:func:`lstmkit.layers.regularize.check_zoneout`)."""
    trace_names = (
        "input",
        "forget",
        "candidate",
        "output",
        "cell",
        "normalizer",
        "stabilizer",
        "hidden",
    )

    def __post_init__(self) -> None:
        check_positive_int(self.num_heads, "num_heads")
        if self.forget_activation not in FORGET_ACTIVATIONS:
            raise ValueError(
                f"forget_activation must be one of {', '.join(map(repr, FORGET_ACTIVATIONS))} "
                f"(the sigmoid or the exponential forget gate of Beck et al. 2024, Sec. 2.2), "
                f"got {self.forget_activation!r}"
            )
        if not isinstance(self.stabilized, bool):
            raise TypeError(f"stabilized must be True or False, got {self.stabilized!r}")
        hidden = self.hidden_size
        # a bad hidden_size itself is left to the module's own check, which names the module
        valid_hidden = isinstance(hidden, int) and not isinstance(hidden, bool) and hidden > 0
        if valid_hidden and hidden % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide hidden_size={hidden}: each head "
                f"owns hidden_size / num_heads units; choose num_heads among "
                f"{[k for k in range(1, hidden + 1) if hidden % k == 0]}"
            )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def state_sizes(self) -> tuple[int, int, int, int]:
        return (self.hidden_size,) * 4

    def variant_options(self) -> list[str]:
        """The options that differ from the defaults, as they are passed: for reprs."""
        options = []
        if self.num_heads != 1:
            options.append(f"num_heads={self.num_heads}")
        if self.forget_activation != "sigmoid":
            options.append(f"forget_activation={self.forget_activation!r}")
        if not self.stabilized:
            options.append("stabilized=False")
        return options

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        return {}

    def parameter_layout(self, input_size: int, bias: bool) -> dict[str, tuple[int, ...]]:
        """weight_ih (G*H, I), weight_hh as its blocks (G, K, D, D), the biases (G*H,)."""
        rows = len(self.gates) * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (rows, input_size),
            "weight_hh": (len(self.gates), self.num_heads, self.head_size, self.head_size),
        }
        if bias:
            shapes["bias_ih"] = (rows,)
            shapes["bias_hh"] = (rows,)
        return shapes

    def recurrent(self, h: Tensor, weight_hh: Tensor) -> Tensor:
        """h_{t-1} R_g^T for every gate g, with R_g block-diagonal: (B, H) -> (B, G*H)."""
        batch = h.shape[0]
        heads = h.reshape(batch, self.num_heads, self.head_size)  # (B, K, D)
        mixed = torch.einsum("bkj,gkij->bgki", heads, weight_hh)  # (B, G, K, D)
        return mixed.reshape(batch, len(self.gates) * self.hidden_size)  # (B, G*H)

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step of the equations above. ``x_gates`` = x_t W_ih^T + b_ih, (B, G*H)."""
        h_prev, c_prev, n_prev, m_prev = state
        pre = x_gates + self.recurrent(h_prev, weights["weight_hh"])  # (B, G*H)
        bias_hh = weights.get("bias_hh")
        if bias_hh is not None:
            pre = pre + bias_hh
        i_pre, f_pre, z_pre, o_pre = pre.chunk(4, dim=-1)  # each (B, H)

        z = torch.tanh(z_pre)
        o = torch.sigmoid(o_pre)
        if self.stabilized:
            log_f = F.logsigmoid(f_pre) if self.forget_activation == "sigmoid" else f_pre
            m = torch.maximum(log_f + m_prev, i_pre)
            i = torch.exp(i_pre - m)  # i'_t <= 1
            f = torch.exp(log_f + m_prev - m)  # f'_t <= 1
        else:  # the plain form, on the fixed scale m_0 (0 from the zero state)
            m = m_prev
            i = torch.exp(i_pre - m_prev)
            f = torch.sigmoid(f_pre) if self.forget_activation == "sigmoid" else torch.exp(f_pre)
        c = f * c_prev + i * z
        n = f * n_prev + i
        h = o * (c / n)

        values = {
            "input": i,
            "forget": f,
            "candidate": z,
            "output": o,
            "cell": c,
            "normalizer": n,
            "stabilizer": m,
            "hidden": h,
        }
        return StepResult((h, c, n, m), values)
