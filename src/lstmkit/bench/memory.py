"""What a candidate keeps for its backward: the activations' memory, counted the same way for
every backend by autograd's own hook on saved tensors.

Each tensor autograd saves (by a built-in function or a custom ``autograd.Function``'s
``save_for_backward``) passes through the hook; the count is the bytes of the distinct
storages among them, leaving out the input and the parameters, which the caller holds
anyway. Views of one storage count once, as they cost memory once.

:func:`retained_bytes` asks the allocator instead, for the one case the hook cannot see:
``torch.utils.checkpoint`` keeps a chunk's inputs by reference to rerun it, not as saved
tensors, so under recomputation the hook alone would count nothing at all.
:func:`peak_bytes` asks it for the most memory a call holds at once, graph or not.
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
    its output's: all that the autograd graph keeps alive, however it keeps it."""
    with torch.enable_grad():
        output, changes = _allocations(forward)
    return sum(changes) - output.untyped_storage().nbytes()


def peak_bytes(forward: Callable[[], Tensor]) -> int:
    """The most CPU memory held at once during ``forward()`` beyond what was held before it,
    at the resolution of the operators it calls (an operator's own scratch, freed before
    it returns, is not seen)."""
    _, changes = _allocations(forward)
    held = peak = 0
    for change in changes:
        held += change
        peak = max(peak, held)
    return peak


def _allocations(forward: Callable[[], Tensor]) -> tuple[Tensor, list[int]]:
    """``forward()``'s output and, in time order, each operator's net change of allocated
    CPU memory, from the profiler's record of every allocation and free (the CPU allocator
    keeps no statistics of its own)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        output = forward()
    events = sorted(
        (e for e in p.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start
    )
    return output, [e.self_cpu_memory_usage for e in events]


def _storage_key(tensor: Tensor) -> tuple[str, int]:
    return (str(tensor.device), tensor.untyped_storage().data_ptr())


__all__ = ["peak_bytes", "retained_bytes", "saved_activation_bytes"]
