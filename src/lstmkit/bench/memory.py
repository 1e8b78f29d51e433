"""What a candidate keeps for its backward: the activations' memory, counted the same way for
every backend by autograd's own hook on saved tensors.

Each tensor autograd saves (by a built-in function or a custom ``autograd.Function``'s
``save_for_backward``) passes through the hook; the count is the bytes of the distinct
storages among them, leaving out the input and the parameters, which the caller holds
anyway. Views of one storage count once, as they cost memory once.

:func:`retained_bytes` asks the allocator instead, for the one case the hook cannot see:
``torch.utils.checkpoint`` keeps a chunk's inputs by reference to rerun it, not as saved
tensors, so under recomputation the hook alone would count nothing at all.
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


def retained_bytes(forward: Callable[[], Tensor]) -> int:
    """Bytes of CPU memory allocated during ``forward()`` and still held once it returns, less
    its output's: all that the autograd graph keeps alive, however it keeps it. Read from
    the profiler's record of every allocation and free, so it needs no allocator statistics
    (which the CPU allocator does not keep)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.enable_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        output = forward()
    allocated = sum(event.self_cpu_memory_usage for event in p.events())
    return allocated - output.untyped_storage().nbytes()


def _storage_key(tensor: Tensor) -> tuple[str, int]:
    return (str(tensor.device), tensor.untyped_storage().data_ptr())


__all__ = ["retained_bytes", "saved_activation_bytes"]
