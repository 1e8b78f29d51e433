"""The parameter layout every cell family shares, and its initialisation.

Base names follow torch.nn.LSTM/GRU/RNN: ``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``, then the family's extras (``weight_hr``, peepholes). Sequence layers append
torch's suffixes (``_l0``, ``_l1_reverse``); cells use the base names as they are.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lstmkit.cellmath.family import CellFamily


def parameter_shapes(family: CellFamily, input_size: int, bias: bool) -> dict[str, tuple]:
    """Base name -> shape for one cell (one layer and direction of a sequence layer).

    A family whose parameters are not torch's layout (no recurrent matrix, or a
    block-diagonal one) defines ``parameter_layout(input_size, bias)`` returning the whole
    mapping itself; ``weight_ih`` (G*H, I) and ``bias_ih`` (G*H,) must stay in it, because
    the layers compute the input projection of all steps from them."""
    own_layout = getattr(family, "parameter_layout", None)
    if own_layout is not None:
        return own_layout(input_size, bias)
    gate_rows = len(family.gates) * family.hidden_size
    shapes: dict[str, tuple] = {
        "weight_ih": (gate_rows, input_size),
        "weight_hh": (gate_rows, family.state_sizes[0]),
    }
    if bias:
        shapes["bias_ih"] = (gate_rows,)
        shapes["bias_hh"] = (gate_rows,)
    shapes.update(family.extra_parameters())
    return shapes


def check_forget_bias(family: CellFamily, bias: bool, forget_bias: float | None) -> None:
    """Refuse a forget_bias that has no forget-gate bias to set, saying why."""
    if forget_bias is None:
        return
    if "forget" not in family.gates:
        why = (
            "coupled=True derives the forget gate as 1 - input gate"
            if getattr(family, "coupled", False)
            else f"this {family.name} cell has no forget gate"
        )
        raise ValueError(f"forget_bias={forget_bias} has no forget-gate bias to set: {why}")
    if getattr(family, "forget_gate_erases", False):
        raise ValueError(
            f"forget_bias={forget_bias} would make the {family.name} cell forget more, not "
            "less: its 'forget' gate keeps the old state when closed and erases it when open; "
            "set the bias through the parameters if that is what you want"
        )
    if not bias:
        raise ValueError(
            f"forget_bias={forget_bias} needs bias=True: with bias=False there is none"
        )


@torch.no_grad()
def reset_parameters(
    params: dict[str, Tensor], family: CellFamily, forget_bias: float | None
) -> None:
    """Initialise one cell's parameters (base name -> tensor) in place.

    Every parameter from U(-1/sqrt(H), 1/sqrt(H)), torch's initialisation, so a plain cell
    starts from the distribution torch.nn's does. With ``forget_bias=b`` the forget gate's
    total bias b_if + b_hf is b (b_if = b, b_hf = 0): Gers et al. (2000) and Jozefowicz et al.
    (2015) start the forget gate open so gradients flow through C_t early in training.
    """
    bound = 1.0 / math.sqrt(family.hidden_size) if family.hidden_size > 0 else 0.0
    for tensor in params.values():
        tensor.uniform_(-bound, bound)
    # parameters that start at a constant (layer norm's gains at 1 and shifts at 0)
    for name, value in getattr(family, "initial_constants", dict)().items():
        params[name].fill_(value)
    if forget_bias is not None:
        rows = forget_rows(family)
        params["bias_ih"][rows] = forget_bias
        if "bias_hh" in params:  # cells without a recurrent matrix have no recurrent bias
            params["bias_hh"][rows] = 0.0


def forget_rows(family: CellFamily) -> slice:
    """The rows of the forget-gate block in the stacked gate parameters."""
    block = family.gates.index("forget")
    return slice(block * family.hidden_size, (block + 1) * family.hidden_size)
