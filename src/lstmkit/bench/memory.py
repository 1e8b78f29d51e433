"""What a candidate keeps for its backward: the activations' memory, counted the same way for
every backend by autograd's own hook on saved tensors.

Each tensor autograd saves (by a built-in function or a custom ``autograd.Function``'s
``save_for_backward``) passes through the hook; the count is the bytes of the distinct
storages among them, leaving out the input and the parameters, which the caller holds
anyway. Views of one storage count once, as they cost memory once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


def saved_activation_bytes(
    forward: Callable[[Tensor], Tensor], x: Tensor, held: Iterable[Tensor]
) -> int:
    """Bytes autograd keeps from one ``forward(x)`` for its backward, without the storages of
    x and of ``held`` (the parameters)."""
    skip = {_storage_key(t) for t in (x, *held)}
    storages: dict[tuple[str, int], int] = {}

    def pack(tensor: Tensor) -> Tensor:
        key = _storage_key(tensor)
        if key not in skip:
            storages[key] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward(x)
    return sum(storages.values())


def _storage_key(tensor: Tensor) -> tuple[str, int]:
    return (str(tensor.device), tensor.untyped_storage().data_ptr())


__all__ = ["saved_activation_bytes"]
