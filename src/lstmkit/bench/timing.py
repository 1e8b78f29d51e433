"""Timing several candidates fairly on a shared, noisy machine.

Every repeat runs each candidate once, in turn, instead of timing one candidate's repeats
back to back: a slow moment of the machine (another process, a frequency drop) then hits
all candidates alike and cancels in their ratios. The median of the repeats is reported,
because one interrupted run moves a mean but not a median. Warm-up rounds go first and are
not counted: they pay for one-time costs (allocator growth, oneDNN's and cuDNN's kernel
choice, lazy CUDA initialisation).

GPU kernels run asynchronously, so the clock is read only after ``torch.cuda.synchronize``;
on the CPU that call is skipped.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Timing:
    """One candidate's result: its median seconds, or why it could not be timed."""

    seconds: float | None
    error: str | None = None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so the clock measures it and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of one ``fn()``, with the device idle before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def describe_error(err: BaseException) -> str:
    """One line for a table row: the exception's type and its message's first line."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def interleaved_medians(
    calls: Mapping[K, Callable[[], object]],
    device: torch.device,
    *,
    repeats: int,
    warmup: int,
    tick: Callable[[], None] = lambda: None,
) -> dict[K, Timing]:
    """The median seconds of each call over ``repeats`` rounds after ``warmup`` rounds.

    Each round runs every call once, in the mapping's order. A call that raises (out of
    memory, a dtype its kernel lacks) gets its error instead of a time and is left out of
    the later rounds; the others go on. ``tick`` runs once per call and round, failed calls
    included, so a progress bar reaches its total.
    """
    samples: dict[K, list[float]] = {key: [] for key in calls}
    errors: dict[K, str] = {}
    for round_ in range(warmup + repeats):
        for key, fn in calls.items():
            if key not in errors:
                try:
                    seconds = time_call(fn, device)
                except Exception as err:  # the row reports it; the other candidates go on
                    errors[key] = describe_error(err)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()  # give what the failed call held back
                else:
                    if round_ >= warmup:
                        samples[key].append(seconds)
            tick()
    return {
        key: Timing(None, errors[key]) if key in errors else Timing(statistics.median(samples[key]))
        for key in calls
    }


__all__ = ["Timing", "describe_error", "interleaved_medians", "synchronize", "time_call"]
