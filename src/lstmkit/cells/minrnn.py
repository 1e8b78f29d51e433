"""``MinGRUCell`` and ``MinLSTMCell``: one step of Feng et al.'s (2024) minimal RNNs, for
generation one token at a time. Equations: :mod:`lstmkit.cellmath.minrnn`.

The same parameter names as one layer-direction of :class:`~lstmkit.layers.minrnn.MinGRU`
and :class:`~lstmkit.layers.minrnn.MinLSTM` without the suffix (``weight_ih``, ``bias_ih``),
so a trained layer's ``weight_ih_l0`` and ``bias_ih_l0`` load into the cell as they are.
"""

from __future__ import annotations

from lstmkit.cellmath.minrnn import MinGRUFamily, MinLSTMFamily
from lstmkit.cells.base import RecurrentCell


class MinGRUCell(RecurrentCell):
    """One minGRU step: ``h_1 = cell(input, h_0)``. Args as torch.nn.GRUCell (``input_size,
    hidden_size, bias=True, device=None, dtype=None``); parameters ``weight_ih`` (2H, I) and
    ``bias_ih`` (2H,) only."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(MinGRUFamily(hidden_size), input_size, bias, None, device, dtype)


class MinLSTMCell(RecurrentCell):
    """One minLSTM step: ``h_1 = cell(input, h_0)`` (one state tensor: minLSTM has no cell
    state). Args as torch.nn.GRUCell; parameters ``weight_ih`` (3H, I) and ``bias_ih`` (3H,)
    only."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(MinLSTMFamily(hidden_size), input_size, bias, None, device, dtype)


__all__ = ["MinGRUCell", "MinLSTMCell"]
