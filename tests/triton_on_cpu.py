"""What the Triton kernels' tests share: running the fused backend's CPU tensors through
the Triton kernels under Triton's interpreter.

TRITON_INTERPRET is set before the kernels' first use in the process: they are defined when
first used, so they follow it even if torch._dynamo imported triton earlier
(tests/test_fused_triton.py has the regression tests for that order). The interpreter is
slow, so the kernels' tests run tiny sizes.
"""

from __future__ import annotations

import pytest

from lstmkit.layers.backends import fused, fused_triton

# hidden size, layers, lengths or full, direction, units per program (None: one program, one
# persistent launch; 16: the units split over two programs, launches per step)
TRITON_SHAPES = {
    "H5-L1-full-uni-one-program": (5, 1, False, False, None),
    "H20-L2-lengths-bi-split": (20, 2, True, True, 16),
}


@pytest.fixture
def triton_on_the_cpu(monkeypatch):
    """The fused backend's CPU tensors go to the Triton kernels, interpreted."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(fused, "kernels_for", lambda device_type: fused_triton)


# W_hh read from memory at every step in slices of 16 columns (FORCE_STREAMED_K), as where a
# program's rows of it do not fit on chip: H20 split over two programs, two slices (the
# second partial); H40 in one program, three
STREAMED_SHAPES = {
    "H20-L2-lengths-bi-split-streamed": (20, 2, True, True, 16),
    "H40-L1-full-uni-one-program-streamed": (40, 1, False, False, None),
}


def lay_out(monkeypatch, block_h: int | None, streamed: bool) -> None:
    """Make the plan give a program ``block_h`` units (None: all) and, if ``streamed``, read
    W_hh in slices of 16 columns."""
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", block_h)
    monkeypatch.setattr(fused_triton, "FORCE_STREAMED_K", 16 if streamed else None)


def triton_shape(name: str, monkeypatch) -> tuple:
    """The (hidden size, layers, lengths, bidirectional, units per program) of a shape of
    TRITON_SHAPES or STREAMED_SHAPES, with the plan made to lay it out so."""
    shape = {**TRITON_SHAPES, **STREAMED_SHAPES}[name]
    lay_out(monkeypatch, shape[4], name in STREAMED_SHAPES)
    return shape
