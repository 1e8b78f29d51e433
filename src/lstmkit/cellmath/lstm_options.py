r"""The LSTM options that need more than a switch in the step: their checks, their parameters
and the layer-normalised pre-activations. The equations are in :mod:`lstmkit.cellmath.lstm`;
this module keeps its ``step`` short enough to read like them.

Layer normalisation (Ba et al. 2016, Sec. 3.1 for the recurrent form, the LSTM equations of
their supplementary material) of a vector a of n units, with gain alpha and shift beta:

.. math::
    \mathrm{LN}(a; \alpha, \beta) = \alpha \odot \frac{a - \mu}{\sqrt{\sigma^2 + \epsilon}}
        + \beta, \quad \mu = \frac{1}{n} \sum_j a_j, \quad
        \sigma^2 = \frac{1}{n} \sum_j (a_j - \mu)^2

with epsilon = 1e-5, torch.nn.LayerNorm's default (Ba et al. write no epsilon; it only keeps a
constant vector finite).

Where the norms go (``layer_norm``):

- ``"ba2016"``: Ba et al. exactly. The recurrent product h_{t-1} W_hh^T and the input product
  x_t W_ih^T are each normalised over all their G*H units with their own gain and shift, then
  the bias b is added; C_t is normalised before the output tanh, and the state carries C_t
  itself, not its norm.
- ``"per-gate"``: TensorFlow's ``tf.contrib.rnn.LayerNormBasicLSTMCell`` exactly. The summed
  product x_t W_ih^T + h_{t-1} W_hh^T is normalised one gate block (H units) at a time, each
  block with its own gain and shift, then b is added (TensorFlow adds its constant
  ``forget_bias`` there). The new cell state is normalised and *carried* normalised: C_t is
  LN(f_t C_{t-1} + i_t C~_t), so the next step reads the normalised state.
- ``"cell"``: only Ba's third norm: C_t normalised before the output tanh, carried as it is.

Biases. The caller computes x_t W_ih^T + b_ih for all steps at once (see
:mod:`lstmkit.cellmath.family`), but Ba's norms act on the products alone and b comes after
them. So for ``"ba2016"`` and ``"per-gate"`` the step takes b_ih back out of ``x_gates``,
normalises, and adds b = b_ih + b_hh after the norms: Ba's equation exactly, up to the one
rounding of that subtraction. b is redundant with the shifts beta (Ba's own equation has the
same redundancy: beta_1 + beta_2 + b is one offset), and keeping torch's b_ih and b_hh lets
``forget_bias`` set the forget gate's offset after the norm, as TensorFlow's constant does;
``bias=False`` leaves the shifts alone as the offset. ``"cell"`` changes nothing before the
gates, so there the biases are torch's.

Parameters (each (size,), registered through ``extra_parameters``; gains start at 1 and shifts
at 0, as Ba et al. and TensorFlow start them, so every norm starts as the plain normalisation):

- ``"ba2016"``: ``ln_weight_hh``, ``ln_bias_hh``, ``ln_weight_ih``, ``ln_bias_ih`` (G*H), and
  ``ln_weight_c``, ``ln_bias_c`` (H).
- ``"per-gate"``: ``ln_weight_gates``, ``ln_bias_gates`` (G*H, one H-block per gate, in the
  gate order), and ``ln_weight_c``, ``ln_bias_c`` (H).
- ``"cell"``: ``ln_weight_c``, ``ln_bias_c`` (H).

Full gate recurrence (``gate_recurrence``, Greff et al. 2015, variant FGR): ``weight_gg`` (K*H,
K*H), K the number of sigmoid gates with weights of their own (3 for the full cell, so 9 H x H
blocks, Greff's "nine additional recurrent weight matrices"); block (a, b) carries gate b's
previous activation into gate a's pre-activation. Initialised as every other matrix,
U(-1/sqrt(H), 1/sqrt(H)).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import Weights

LAYER_NORMS = ("ba2016", "per-gate", "cell")
"""The placements of ``layer_norm``; None is the cell without norms."""

LAYER_NORM_EPS = 1e-5
"""The epsilon under the square root of every norm (torch.nn.LayerNorm's default)."""

_NORMS_BEFORE_GATES = ("ba2016", "per-gate")
_NORMS_OF_EXPOSED_CELL = ("ba2016", "cell")


def check_options(family) -> None:
    """Refuse option combinations that define no cell, saying why."""
    if family.layer_norm is not None and family.layer_norm not in LAYER_NORMS:
        choices = ", ".join(repr(name) for name in LAYER_NORMS)
        raise ValueError(f"layer_norm must be None or one of {choices}, got {family.layer_norm!r}")
    if family.coupled and not family.forget_gate:
        raise ValueError(
            "coupled=True defines the forget gate as 1 - input gate, and forget_gate=False "
            "removes the forget gate; the two cannot be combined: choose one"
        )
    if family.coupled and not family.input_gate:
        raise ValueError(
            "coupled=True sets the forget gate to 1 - input gate, and input_gate=False fixes the "
            "input gate at 1, so there is no input gate to couple to (the forget gate would be "
            "0 at every step): choose one"
        )
    if family.peephole and not family.sigmoid_gates:
        raise ValueError(
            "peephole=True connects the cell state to the gates, and this cell has none "
            "(input_gate=False, no forget gate, output_gate=False)"
        )
    if family.gate_recurrence and not family.sigmoid_gates:
        raise ValueError(
            "gate_recurrence=True feeds the gates' previous activations back into them, and "
            "this cell has no gates (input_gate=False, no forget gate, output_gate=False)"
        )
    if family.gate_recurrence and family.layer_norm in _NORMS_BEFORE_GATES:
        raise ValueError(
            f"gate_recurrence=True with layer_norm={family.layer_norm!r}: the norms act on the "
            "recurrent product, and neither Greff et al. nor Ba et al. say whether the gate "
            "recurrence belongs inside or outside them; use layer_norm='cell' or None with it"
        )
    hidden = family.hidden_size
    if family.layer_norm is not None and isinstance(hidden, int) and 0 < hidden < 2:
        raise ValueError(
            f"layer_norm={family.layer_norm!r} needs hidden_size >= 2: the norm of a single "
            f"unit is always its shift, whatever the input; got hidden_size={hidden}"
        )


def option_parameters(family) -> dict[str, tuple[int, ...]]:
    """The parameters of full gate recurrence and of the norms (name -> shape)."""
    hidden, rows = family.hidden_size, len(family.gates) * family.hidden_size
    extra: dict[str, tuple[int, ...]] = {}
    if family.gate_recurrence:
        size = len(family.sigmoid_gates) * hidden
        extra["weight_gg"] = (size, size)
    if family.layer_norm == "ba2016":
        for product in ("hh", "ih"):
            extra[f"ln_weight_{product}"] = (rows,)
            extra[f"ln_bias_{product}"] = (rows,)
    elif family.layer_norm == "per-gate":
        extra["ln_weight_gates"] = (rows,)
        extra["ln_bias_gates"] = (rows,)
    if family.layer_norm is not None:
        extra["ln_weight_c"] = (hidden,)
        extra["ln_bias_c"] = (hidden,)
    return extra


def constant_initialisation(family) -> dict[str, float]:
    """The parameters that start at a constant, not U(-1/sqrt(H), 1/sqrt(H)): every norm's
    gain at 1 and shift at 0 (Ba et al.; TensorFlow's ``norm_gain=1.0, norm_shift=0.0``)."""
    return {
        name: 1.0 if name.startswith("ln_weight") else 0.0
        for name in option_parameters(family)
        if name.startswith("ln_")
    }


def preactivations(family, x_gates: Tensor, h_prev: Tensor, weights: Weights) -> Tensor:
    """The gates' pre-activations (B, G*H) from ``x_gates`` = x_t W_ih^T + b_ih and h_{t-1},
    normalised as ``family.layer_norm`` places the norms (before peepholes and gate
    recurrence, which the step adds)."""
    if family.layer_norm not in _NORMS_BEFORE_GATES:
        return x_gates + F.linear(h_prev, weights["weight_hh"], weights.get("bias_hh"))
    bias_ih, bias_hh = weights.get("bias_ih"), weights.get("bias_hh")
    # the norms see the products alone (Ba's W_x x_t): take back the bias the caller folded in
    x_product = x_gates if bias_ih is None else x_gates - bias_ih  # (B, G*H)
    h_product = F.linear(h_prev, weights["weight_hh"])  # (B, G*H)
    if family.layer_norm == "ba2016":
        z = _norm(h_product, weights["ln_weight_hh"], weights["ln_bias_hh"]) + _norm(
            x_product, weights["ln_weight_ih"], weights["ln_bias_ih"]
        )
    else:
        z = _norm_per_gate(
            x_product + h_product, len(family.gates), weights["ln_weight_gates"],
            weights["ln_bias_gates"],
        )  # fmt: skip
    return z if bias_ih is None else z + (bias_ih + bias_hh)


def add_gate_recurrence(family, z: dict[str, Tensor], previous: Tensor, weights: Weights) -> None:
    """Greff's FGR: add to each sigmoid gate's pre-activation in ``z`` (name -> (B, H)) its
    row of blocks of ``weight_gg`` times the previous activations ``previous`` (B, K*H)."""
    recurrent = F.linear(previous, weights["weight_gg"])  # (B, K*H)
    terms = recurrent.chunk(len(family.sigmoid_gates), dim=-1)
    for gate, term in zip(family.sigmoid_gates, terms, strict=True):
        z[gate] = z[gate] + term


def carried_cell(family, c: Tensor, weights: Weights) -> Tensor:
    """The cell state the next step reads: TensorFlow's per-gate cell carries its norm."""
    return _cell_norm(c, weights) if family.layer_norm == "per-gate" else c


def exposed_cell(family, c: Tensor, weights: Weights) -> Tensor:
    """The cell state the output squashes: Ba et al. normalise it there (``"ba2016"``,
    ``"cell"``); the per-gate cell's state is normalised already."""
    return _cell_norm(c, weights) if family.layer_norm in _NORMS_OF_EXPOSED_CELL else c


def _cell_norm(c: Tensor, weights: Weights) -> Tensor:
    return _norm(c, weights["ln_weight_c"], weights["ln_bias_c"])


def _norm(a: Tensor, gain: Tensor, shift: Tensor) -> Tensor:
    return F.layer_norm(a, a.shape[-1:], gain, shift, LAYER_NORM_EPS)


def _norm_per_gate(a: Tensor, blocks: int, gain: Tensor, shift: Tensor) -> Tensor:
    """Each of the ``blocks`` gate blocks of ``a`` (B, blocks*H) normalised on its own."""
    per_block = a.unflatten(-1, (blocks, -1))  # (B, blocks, H)
    normalised = F.layer_norm(per_block, per_block.shape[-1:], eps=LAYER_NORM_EPS)
    return normalised.flatten(-2) * gain + shift  # (B, blocks*H)
