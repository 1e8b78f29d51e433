"""Converting between the user's state (a tensor, or LSTM's (h, c) tuple) and the internal
tuple of state tensors that every cell family uses (``state[0]`` is h)."""

from __future__ import annotations

from torch import Tensor

from lstmkit._checks import expect_tensor


def state_arg_names(num_states: int) -> list[str]:
    """How error messages name the parts of ``hx``."""
    return ["hx"] if num_states == 1 else ["hx[0] (h_0)", "hx[1] (c_0)"]


def state_to_tuple(hx, num_states: int, owner: str) -> tuple[Tensor, ...]:
    """The user's initial state as a tuple; LSTM takes (h_0, c_0), GRU and RNN one tensor."""
    if num_states == 1:
        return (expect_tensor(hx, "hx", owner),)
    if not isinstance(hx, tuple | list) or len(hx) != num_states:
        raise TypeError(
            f"{owner}: hx must be a tuple (h_0, c_0) of {num_states} tensors, got "
            f"{type(hx).__name__}"
            + (f" of length {len(hx)}" if isinstance(hx, tuple | list) else "")
        )
    names = state_arg_names(num_states)
    return tuple(expect_tensor(s, name, owner) for s, name in zip(hx, names, strict=True))


def state_from_tuple(state: tuple[Tensor, ...]):
    """The internal tuple in the user's form: (h, c) for two states, h alone for one."""
    return state if len(state) > 1 else state[0]
