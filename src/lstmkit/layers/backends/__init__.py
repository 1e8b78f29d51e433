"""Backends: who runs the time loop of a sequence layer.

A typed choice, validated once when the layer is built, dispatched in one place
(:func:`choose_backend`):

- ``"reference"``: lstmkit's own loop in plain PyTorch over the family's step function
  (``lstmkit.cellmath``). Runs every cell and option, on any device and dtype, records
  traces. The oracle every faster backend is tested against.
- ``"manual"``: the LSTM family's loop in PyTorch with a hand-derived backward pass
  (:mod:`.manual_lstm`): no autograd graph per step, the weight gradients as one product
  over all steps. Every LSTM option; first derivatives only.
- ``"torch"``: torch's fused kernels (oneDNN on CPU, cuDNN on GPU) through ``torch._VF``,
  the functions torch.nn.LSTM/GRU/RNN call. Only the configurations torch has: the plain
  LSTM (with or without projection), GRU and RNN.
- ``"auto"`` (default): the fastest that can run the layer: ``"torch"``, else ``"manual"``
  for the LSTM variants, else ``"reference"``. A traced call always runs ``"reference"``,
  the only one that records gates.

An explicit choice that cannot run the layer is an error, never silently replaced.
"""

from __future__ import annotations

from enum import Enum

from lstmkit.cellmath.family import CellFamily
from lstmkit.cellmath.lstm import LSTMFamily


class Backend(str, Enum):
    AUTO = "auto"
    REFERENCE = "reference"
    MANUAL = "manual"
    TORCH = "torch"

    @classmethod
    def parse(cls, value: Backend | str) -> Backend:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(b.value) for b in cls)
            raise ValueError(f"backend must be one of {choices}, got {value!r}") from None


def unsupported_reason(backend: Backend, family: CellFamily) -> str | None:
    """Why ``backend`` cannot run this family, or None if it can."""
    if backend is Backend.TORCH:
        return torch_unsupported_reason(family)
    if backend is Backend.MANUAL and not isinstance(family, LSTMFamily):
        return f"the manual backend has only the LSTM family, not {family.name}"
    return None


def torch_unsupported_reason(family: CellFamily) -> str | None:
    """Why torch's fused kernels cannot run this family, or None if they can."""
    if isinstance(family, LSTMFamily):
        options = [
            name
            for name, on in [
                ("peephole=True", family.peephole),
                ("coupled=True", family.coupled),
                ("forget_gate=False", not family.forget_gate),
            ]
            if on
        ]
        if options:
            return f"torch's fused LSTM has no {', '.join(options)}"
        return None
    if family.name in ("gru", "rnn"):
        return None
    return f"torch has no fused kernel for the {family.name} cell"


def choose_backend(requested: Backend, family: CellFamily, tracing: bool) -> Backend:
    """The backend that runs this call."""
    if requested is Backend.AUTO:
        if tracing:
            return Backend.REFERENCE
        for candidate in (Backend.TORCH, Backend.MANUAL):
            if unsupported_reason(candidate, family) is None:
                return candidate
        return Backend.REFERENCE
    if requested is not Backend.REFERENCE and tracing:
        raise ValueError(
            f"return_trace=True needs the gates, which the {requested.value!r} backend does not "
            "record; use backend='auto' or 'reference' for traced calls"
        )
    return requested


__all__ = ["Backend", "choose_backend", "unsupported_reason"]
