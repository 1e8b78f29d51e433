"""Input checks shared by cells, sequence layers and the models built on them.

Every message names the argument, what was expected and what was given, the way
torch.nn.modules.rnn does, so a user can fix the call without reading our code.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor


def shape_str(shape) -> str:
    """(3,) for one dimension, (2, 3) for two: Python's tuple notation."""
    return str(tuple(int(s) for s in shape))


def expect_tensor(value, name: str, owner: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def expect_shape(tensor: Tensor, expected: tuple, name: str, owner: str, meaning: str) -> None:
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(
            f"{owner}: {name} has shape {shape_str(tensor.shape)}; expected {meaning} = "
            f"{shape_str(expected)}"
        )


def expect_like(tensor: Tensor, reference: Tensor, name: str, owner: str) -> None:
    """The same floating dtype and device as the module's parameters."""
    if tensor.dtype != reference.dtype:
        raise TypeError(
            f"{owner}: {name} has dtype {tensor.dtype}, but the parameters are "
            f"{reference.dtype}; convert one of them (e.g. module.to({tensor.dtype}))"
        )
    if tensor.device != reference.device:
        raise ValueError(
            f"{owner}: {name} is on device {tensor.device}, but the parameters are on "
            f"{reference.device}; move one of them"
        )


def expect_positive_int(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return value


def check_positive_int(value, name: str) -> int:
    """``value`` when it is an integer >= 1 (a NumPy integer too, a bool never)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def expect_lengths(lengths, batch: int, steps: int, owner: str) -> Tensor:
    """Sequence lengths as a CPU int64 tensor (batch,), each in [1, steps]."""
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{owner}: lengths must be a 1-D tensor or sequence of integers, got "
                f"{type(lengths).__name__}"
            ) from None
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise TypeError(f"{owner}: lengths must hold integers, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.numel() != batch:
        raise ValueError(
            f"{owner}: lengths has shape {shape_str(lengths.shape)}; expected one length per "
            f"sequence = ({batch},)"
        )
    lengths = lengths.to("cpu", torch.int64)
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > steps:
        raise ValueError(
            f"{owner}: lengths must lie in [1, {steps}] (the input has {steps} time steps), "
            f"got values from {low} to {high}"
        )
    return lengths
