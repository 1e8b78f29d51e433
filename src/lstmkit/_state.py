"""Converting between the user's state (a tensor, or LSTM's (h, c) tuple) and the internal
tuple of state tensors that every cell family uses (``state[0]`` is h)."""

from __future__ import annotations

from torch import Tensor

from lstmkit._checks import expect_tensor


def state_letters(family) -> tuple[str, ...]:
    """The letters of a family's state tensors: its ``state_names`` where it has them (the
    sLSTM's h, c, n, m), else h and c as the LSTM's."""
    count = len(family.state_sizes)
    return tuple(getattr(family, "state_names", ("h", "c")))[:count] if count > 1 else ("h",)


def state_arg_names(letters: tuple[str, ...]) -> list[str]:
    """How error messages name the parts of ``hx``."""
    if len(letters) == 1:
        return ["hx"]
    return [f"hx[{k}] ({letter}_0)" for k, letter in enumerate(letters)]


def state_to_tuple(hx, letters: tuple[str, ...], owner: str) -> tuple[Tensor, ...]:
    """The user's initial state as a tuple: one tensor for a single state (GRU, RNN), else a
    tuple in the family's order ((h_0, c_0) for the LSTM)."""
    if len(letters) == 1:
        return (expect_tensor(hx, "hx", owner),)
    if not isinstance(hx, tuple | list) or len(hx) != len(letters):
        expected = ", ".join(f"{letter}_0" for letter in letters)
        raise TypeError(
            f"{owner}: hx must be a tuple ({expected}) of {len(letters)} tensors, got "
            f"{type(hx).__name__}"
            + (f" of length {len(hx)}" if isinstance(hx, tuple | list) else "")
        )
    names = state_arg_names(letters)
    return tuple(expect_tensor(s, name, owner) for s, name in zip(hx, names, strict=True))


def state_from_tuple(state: tuple[Tensor, ...]):
    """The internal tuple in the user's form: (h, c) for two states, h alone for one."""
    return state if len(state) > 1 else state[0]
