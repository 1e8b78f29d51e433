"""The module shared by every cell: parameters from the family's layout, input checks, one
call of the family's step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._checks import expect_like, expect_positive_int, expect_shape, expect_tensor
from lstmkit._state import state_arg_names, state_from_tuple, state_letters, state_to_tuple
from lstmkit.cellmath.family import CellFamily
from lstmkit.cellmath.params import check_forget_bias, parameter_shapes, reset_parameters


class RecurrentCell(nn.Module):
    """One step of ``family``: ``cell(input, hx) -> next state``.

    Input ``(batch, input_size)`` or unbatched ``(input_size,)``; state tensors ``(batch, size)``
    or ``(size,)``, zeros when ``hx`` is None. With ``return_gates=True`` also returns the
    step's named quantities (the same names as a sequence layer's trace), each (batch, size).
    """

    def __init__(
        self,
        family: CellFamily,
        input_size: int,
        bias: bool = True,
        forget_bias: float | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = expect_positive_int(input_size, "input_size", owner)
        self.hidden_size = expect_positive_int(family.hidden_size, "hidden_size", owner)
        self.bias = bool(bias)
        check_forget_bias(family, self.bias, forget_bias)
        self.family = family
        self.forget_bias = forget_bias
        for name, shape in parameter_shapes(family, input_size, self.bias).items():
            self.register_parameter(
                name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_parameters(dict(self.named_parameters(recurse=False)), self.family, self.forget_bias)

    def forward(self, input: Tensor, hx=None, *, return_gates: bool = False):
        owner = type(self).__name__
        expect_tensor(input, "input", owner)
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{owner}: input must be 1-D (unbatched) or 2-D (batch, input_size), got a "
                f"{input.dim()}-D tensor of shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"{owner}: input has {input.shape[-1]} features in its last dimension; "
                f"expected input_size = {self.input_size}"
            )
        expect_like(input, self.weight_ih, "input", owner)
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        state = self._initial_state(hx, x, batched, owner)

        x_gates = F.linear(x, self.weight_ih, self.bias_ih if self.bias else None)
        state, values = self.family.step(x_gates, state, self._parameters)
        if not batched:
            state = tuple(s.squeeze(0) for s in state)
            values = {k: v.squeeze(0) for k, v in values.items()}
        user_state = state_from_tuple(state)
        return (user_state, values) if return_gates else user_state

    def _initial_state(self, hx, x: Tensor, batched: bool, owner: str) -> tuple[Tensor, ...]:
        sizes = self.family.state_sizes
        if hx is None:
            return tuple(x.new_zeros(x.shape[0], size) for size in sizes)
        letters = state_letters(self.family)
        state = state_to_tuple(hx, letters, owner)
        names = state_arg_names(letters)
        for tensor, size, name in zip(state, sizes, names, strict=True):
            expected = (x.shape[0], size) if batched else (size,)
            meaning = "(batch, size)" if batched else "(size,) for unbatched input"
            expect_shape(tensor, expected, name, owner, meaning)
            expect_like(tensor, self.weight_ih, name, owner)
        return state if batched else tuple(s.unsqueeze(0) for s in state)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"
