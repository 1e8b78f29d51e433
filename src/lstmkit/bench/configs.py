"""The sizes ``lstmkit bench`` times, as named presets taken from the benchmarks the field
reports, so a figure here can be read next to the one published for the same shape.

Legend: T steps, B batch, I input size, H hidden size; one layer, one direction.

- ``fastrnns``: PyTorch's own RNN benchmark (``benchmarks/fastrnns`` in the PyTorch
  repository), whose defaults are T=100, B=64, I=H=512. The size torch's kernels are tuned
  for, where the matrix products dominate.
- ``streaming``: batch-1 streaming (speech, online control): B=1 and long sequences, where
  every step is a few tiny operations and the fixed cost per operation is the whole time.
- ``deepbench``: Baidu DeepBench's recurrent training kernels span H=512..2048,
  B=16..128, T=25..150 with I=H; these are a few points across those ranges, not its full
  list.
- ``flashrnn``: the shape FlashRNN (Pöppel et al. 2024) reports its LSTM speed at:
  B=16, T=1024, H=768.
- ``default``: what a bare ``lstmkit bench`` runs, chosen to finish in a few minutes on two
  CPU cores: fastrnns and the shorter streaming point.
- ``quick``: tiny sizes, seconds in all: a smoke test of the command, not a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchSize:
    """One shape of a single-layer recurrent layer's input and state."""

    name: str
    """Shown as the header of the size's block, e.g. ``"streaming-T500-H128"``."""
    T: int
    """Steps per sequence."""
    B: int
    """Sequences per batch."""
    I: int
    """Input features per step."""
    H: int
    """Hidden units."""
    source: str
    """Where this shape comes from."""


def _point(prefix: str, T: int, B: int, H: int, source: str) -> BenchSize:
    """A point with I = H, named after what varies within its preset."""
    return BenchSize(f"{prefix}-T{T}-B{B}-H{H}", T, B, H, H, source)


FASTRNNS = BenchSize("fastrnns", 100, 64, 512, 512, "PyTorch fastrnns defaults")
STREAMING = (
    _point("streaming", 500, 1, 128, "batch-1 streaming"),
    _point("streaming", 1000, 1, 256, "batch-1 streaming"),
)
DEEPBENCH = tuple(
    _point("deepbench", T, B, H, "DeepBench training range")
    for T, B, H in ((25, 16, 512), (25, 64, 1024), (25, 128, 2048), (150, 32, 1536))
)
FLASHRNN = BenchSize("flashrnn", 1024, 16, 768, 768, "FlashRNN (Pöppel et al. 2024)")
QUICK = (
    BenchSize("quick-a", 6, 2, 3, 4, "smoke test"),
    BenchSize("quick-b", 5, 1, 4, 4, "smoke test"),
)

PRESETS: dict[str, tuple[BenchSize, ...]] = {
    "default": (FASTRNNS, STREAMING[0]),
    "fastrnns": (FASTRNNS,),
    "streaming": STREAMING,
    "deepbench": DEEPBENCH,
    "flashrnn": (FLASHRNN,),
    "quick": QUICK,
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def preset_sizes(names: Sequence[str]) -> tuple[BenchSize, ...]:
    """The sizes of the named presets in order, each size once (``default`` and
    ``fastrnns`` share a size)."""
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        raise ValueError(
            f"unknown size preset {unknown[0]!r}; expected one of {', '.join(PRESET_NAMES)}"
        )
    sizes = (size for name in names for size in PRESETS[name])
    return tuple(dict.fromkeys(sizes))


__all__ = ["PRESETS", "PRESET_NAMES", "BenchSize", "preset_sizes"]
