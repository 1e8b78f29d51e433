r"""The fused GPU backend: every cell's time loop and backward pass as Triton kernels
(``kernels.py``), for CUDA tensors; on the CPU under ``TRITON_INTERPRET=1``, which is how
the tests check them on a machine without a GPU.

The split of work is the CPU backend's: the input projection of all steps is one matrix
product here (autograd carries it to ``weight_ih``, the biases and the input); the kernels
run the recurrence, keeping the gate activations and states; their backward returns the
gradient of every gate pre-activation, from which the weight gradients (and the peephole
and bias gradients) are single products or sums over all steps, done here by torch.

How a call is laid out (:func:`plan`): batch rows in blocks of 16 on a GPU (16 to 64 under
the interpreter), hidden units in blocks sized so that a program's share of ``W_hh`` and its
other tiles fit the GPU's shared memory, one program per block pair. Where even the
smallest block's rows of ``W_hh`` (and FGR's ``W_gg``) do not fit, every cell's kernels
read them from L2 at every step, a slice of columns at a time. When all the programs fit
on the GPU at once, one launch runs every step (persistent, a grid barrier per step);
otherwise, and under the interpreter, one launch per step. The projected LSTM
(``proj_size``, with or without the norms and FGR) runs one launch per step (per phase of
a step where its units are split) with torch's products for the recurrence and the
projection between them.

This module holds what every cell shares: whether Triton can run, the layout (:func:`plan`),
the time loop with its barrier check, and small helpers. Each family's autograd functions
around its kernels are a module of their own: ``lstm.py`` (every LSTM option), ``gru.py``
(both GRUs and the MGU), ``rnn.py``, ``slstm.py``, ``clockwork.py``, ``minrnn.py`` and
``stacks.py`` (the depth-gated and Grid LSTM stacks); the first three's runners are
imported at the end of this module, where :func:`lstmkit.layers.backends.fused.runner`
looks them up by name.

Not yet measured on a GPU: this package was written and checked under the interpreter only.
That is why ``backend="auto"`` does not choose it (it uses torch's cuDNN kernels where torch
has the cell and the Python loops elsewhere); ``backend="fused"`` runs it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

# the kernels compute in float32: float64 would need every cast and product widened
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# on-chip weights per program: a program's rows of W_hh for every gate, in bytes. The
# compiler keeps them in shared memory (tools/triton_resources.py); this much leaves room
# for h's tile in an H100's 227 KiB, and spreads a layer over more programs
WEIGHT_BYTES_PER_PROGRAM = 128 * 1024
# float32 products run on the FMA units (input_precision="ieee"), and Triton's compiler
# loads such a product's operands into registers whole before its multiply-adds: with a
# (512, 64) weight tile (the RNN's and the Clockwork RNN's at H=512) sm_90's compiler gave
# each thread 32 registers and 10 KB of stack, with (512, 16) (the LSTM's per gate) or
# (256, 32) none (tools/triton_resources.py). So where a float32 layer's units are split
# over programs anyway, a program takes no more units than keep each product's weight tile
# within this many values, as long as all programs still run at once, with the warps of
# the larger tile; a layer whose units all fit one program keeps it whole, with no barrier
# to meet at every step.
FMA_PRODUCT_WEIGHTS = 8192
# tests set these to force a split of the hidden units over several programs, and W_hh
# streamed in slices of this many columns
FORCE_BLOCK_H: int | None = None
FORCE_STREAMED_K: int | None = None


class TritonUnavailable(RuntimeError):
    """The Triton kernels cannot run these tensors here."""


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def unavailable_reason(device_type: str) -> str | None:
    """Why the Triton kernels cannot run tensors of this device type, or None if they can."""
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (pip install triton; torch's CUDA wheels bring it)"
    if device_type == "cuda":
        return (
            "TRITON_INTERPRET is set, and the interpreter runs CPU tensors"
            if interpreting()
            else None
        )
    if device_type == "cpu":
        if interpreting():
            return None
        return "the Triton kernels run CUDA tensors (CPU tensors only under TRITON_INTERPRET=1)"
    return f"the Triton kernels run CUDA tensors, not {device_type!r} ones"


@functools.cache
def _kernels():
    # imported on first use: triton reads TRITON_INTERPRET when the kernels are defined
    from lstmkit.layers.backends.fused_triton import kernels

    return kernels


def _check_kernel_mode() -> None:
    """The kernels are defined for the interpreter or for the compiler once, at import, so a
    process that changes TRITON_INTERPRET after their first use would hand CPU tensors to
    compiled kernels (or CUDA tensors to the interpreter) and fail deep inside Triton."""
    interpreted = type(_kernels().lstm_forward).__name__ == "InterpretedFunction"
    if interpreted != interpreting():
        loaded = "on" if interpreted else "off"
        raise TritonUnavailable(
            f"the Triton kernels were loaded with TRITON_INTERPRET {loaded} and it has "
            "changed since; set it once, before the first fused call of the process"
        )


def _check(x: Tensor) -> None:
    reason = unavailable_reason(x.device.type)
    if reason is not None:
        raise TritonUnavailable(f"the fused backend cannot run this call: {reason}")
    _check_kernel_mode()
    if x.dtype not in DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in DTYPES)
        raise TypeError(
            f"the Triton kernels take {names}, got {x.dtype}; use backend='reference' for it"
        )


# -- layout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How one direction's recurrence is spread over programs."""

    block_b: int  # batch rows per program
    block_h: int  # hidden units per program
    block_k: int  # the padded length of the products' reduction (H rounded up)
    batch_blocks: int
    hidden_blocks: int
    persistent: bool  # one launch for all steps, with a grid barrier per step
    num_warps: int
    shared: int  # at most this many bytes of shared memory per program (0: interpreted)
    streamed_k: int | None = None  # W_hh read each step, this many columns at a time
    num_stages: int = 3  # the compiler's software pipelining (3: Triton's default)

    @property
    def block_kc(self) -> int:
        """Columns of W_hh per product: all (block_k) when they stay on chip."""
        return self.streamed_k or self.block_k

    @property
    def grid(self) -> tuple[int, int]:
        return (self.batch_blocks, self.hidden_blocks)

    @property
    def kernel_options(self) -> dict:
        """What every recurrent kernel's launch takes from the plan: its tile's constexprs
        and the compiler's warps and pipelining stages."""
        return dict(BLOCK_B=self.block_b, BLOCK_H=self.block_h, BLOCK_K=self.block_k,
                    BLOCK_KC=self.block_kc, num_warps=self.num_warps,
                    num_stages=self.num_stages)  # fmt: skip

    @property
    def sync_programs(self) -> int:
        """Programs that meet at each step's barrier (1: no barrier)."""
        return self.hidden_blocks if self.persistent else 1


@dataclass(frozen=True)
class GPULimits:
    """What a plan must fit on one GPU."""

    multiprocessors: int  # programs that can run at once, one per multiprocessor
    shared_bytes: int  # the most shared memory one program may have (the opt-in maximum)


H100_LIMITS = GPULimits(multiprocessors=132, shared_bytes=232448)
"""An H100 SXM's, as its driver reports them (tools/triton_resources.py plans for it)."""


def gpu_limits(device: torch.device) -> GPULimits | None:
    """The limits of the GPU that runs ``device``'s tensors; None under the interpreter,
    whose programs run one after another on the CPU with no such limits."""
    if interpreting() or device.type != "cuda":
        return None
    from triton.runtime import driver  # what Triton checks a launch against

    index = device.index if device.index is not None else torch.cuda.current_device()
    properties = driver.active.utils.get_device_properties(index)
    return GPULimits(properties["multiprocessor_count"], properties["max_shared_mem"])


def plan(
    batch: int, hidden: int, gates: int, dtype: torch.dtype, device: torch.device,
    operand_columns: int | None = None, reduction: Callable[[int], int] | None = None,
) -> Plan:  # fmt: skip
    """The layout of one direction's programs for ``gates`` (G*H, H) blocks of W_hh, whose
    products' widest left operand has ``operand_columns`` (default H, padded). A program's
    products reduce over every unit's h_{t-1} (H, padded), or, where ``reduction`` is given,
    over ``reduction(units)`` columns with that many units on chip: the sLSTM's block-diagonal
    R needs only its units' heads' columns.

    On a GPU a program takes 16 batch rows, the fewest a tensor-core product takes: with 32
    or 64, sm_90's compiler spilled registers to local memory in the LSTM's kernels
    (tools/triton_resources.py; the counts are in docs/performance.md). Its units are as
    many as keep the weight tiles within WEIGHT_BYTES_PER_PROGRAM and all its tiles within
    the GPU's shared memory (:func:`shared_bytes`), at least 16; in float32, where they are
    split over programs, also within :data:`FMA_PRODUCT_WEIGHTS` a product. Where even 16
    units' rows of W_hh do not fit, the kernels read them from L2 at every step, in slices
    of columns that fit (:func:`streamed_shared_bytes`); a GPU too small for even 16-column
    slices is refused with :class:`TritonUnavailable`. Where the programs cannot all run at once (a
    launch per step), the kernels stream W_hh too: no step would reuse it on chip."""
    block_k = max(16, _next_power_of_two(hidden))
    limits = gpu_limits(device)
    itemsize = torch.empty((), dtype=dtype).element_size()
    streamed_k = FORCE_STREAMED_K
    block_h = block_k if FORCE_BLOCK_H is None else FORCE_BLOCK_H

    def span(units: int) -> int:  # the columns a program's products reduce over
        return block_k if reduction is None else reduction(units)

    def on_chip_bytes(units: int) -> int:  # shared_bytes at this many units a program
        return shared_bytes(block_b, units, span(units), gates, itemsize, operand_columns)

    shared = 0
    if limits is None:  # programs run one after another: one holds every unit
        block_b = max(16, min(64, _next_power_of_two(batch)))
        batch_blocks = -(-batch // block_b)
        warps_tile = gates * span(block_h) * block_h
    else:
        block_b = 16
        batch_blocks = -(-batch // block_b)
        while block_h > 16 and (
            gates * span(block_h) * block_h * itemsize > WEIGHT_BYTES_PER_PROGRAM
            or on_chip_bytes(block_h) > limits.shared_bytes
        ):
            block_h //= 2
        warps_tile = gates * span(block_h) * block_h  # the warps are the budget's tile's
        if dtype == torch.float32 and FORCE_BLOCK_H is None and block_h < hidden:
            while (
                block_h > 16
                and span(block_h) * block_h > FMA_PRODUCT_WEIGHTS
                and batch_blocks * -(-hidden // (block_h // 2)) <= limits.multiprocessors
            ):
                block_h //= 2
        shared = on_chip_bytes(block_h)
        if streamed_k is not None or shared > limits.shared_bytes:
            streamed_k = streamed_k or min(block_k // 2, STREAMED_SLICE)
            while streamed_k > 16 and (
                streamed_shared_bytes(block_b, block_h, streamed_k, itemsize) > limits.shared_bytes
            ):
                streamed_k //= 2
            shared = streamed_shared_bytes(block_b, block_h, streamed_k, itemsize)
        if shared > limits.shared_bytes:
            name = str(dtype).removeprefix("torch.")
            raise TritonUnavailable(
                f"the Triton kernels cannot fit hidden size {hidden} in {name} on this GPU: "
                f"a program needs {shared} bytes of shared memory at its smallest tile "
                f"({block_b} rows, {block_h} units, W_hh streamed {streamed_k} columns at a "
                f"time), the GPU allows {limits.shared_bytes}; backend='reference' runs it"
            )
    hidden_blocks = -(-hidden // block_h)
    if hidden_blocks == 1:
        persistent = True
    elif limits is None:
        persistent = False  # a spin barrier needs every program running at once
    else:
        persistent = batch_blocks * hidden_blocks <= limits.multiprocessors
        if not persistent and streamed_k is None:
            # a launch per step reads W_hh once either way, so nothing is kept on chip
            # across steps; on chip, sm_90's compiler held the weight tiles in registers
            # and spilled 5 to 7 KB per thread in the bfloat16 backwards at DeepBench's
            # B=64, H=1024 (tools/triton_resources.py), streamed it does not
            streamed_k = min(block_k // 2, STREAMED_SLICE)
            shared = streamed_shared_bytes(block_b, block_h, streamed_k, itemsize)
    return Plan(
        block_b, block_h, block_k, batch_blocks, hidden_blocks, persistent,
        num_warps=8 if warps_tile >= 16384 else 4, shared=shared, streamed_k=streamed_k,
        num_stages=3 if streamed_k is None else STREAMED_STAGES,
    )  # fmt: skip


def shared_bytes(
    block_b: int, block_h: int, block_k: int, gates: int, itemsize: int,
    operand_k: int | None = None,
) -> int:  # fmt: skip
    """At most the shared memory one program takes with its weights on chip, as Triton's
    compiler lays the kernels out for sm_90: each product's operands go through shared
    memory, the gates' weight tiles (K, BLOCK_H) held for the whole launch and one left
    operand at a time, (BLOCK_B, ``operand_k``): h's or dz's (``block_k``), FGR's previous
    gates (wider). Some kernels also pass a (BLOCK_B, BLOCK_H) tile through it to change
    its layout, counted here in float32. tools/triton_resources.py compiles every kernel
    and checks its shared memory against the plan's count."""
    operands = itemsize * (gates * block_k * block_h + block_b * (operand_k or block_k))
    return operands + 4 * block_b * block_h


# Streamed products pipeline the loads of their slices over this many stages, and take at
# most this many columns a slice: with 512, sm_90's compiler spilled 2.6 to 10 times as
# much in the LSTM's and GRU's streamed kernels at FlashRNN's float32 size
# (tools/triton_resources.py)
STREAMED_STAGES = 2
STREAMED_SLICE = 256
# the layer norms read a row's values this many columns at a time (at most: the slice where
# W_hh is streamed, so that the tests' 16-column slices cover several chunks)
NORM_CHUNK = 256


def streamed_shared_bytes(block_b: int, block_h: int, block_kc: int, itemsize: int) -> int:
    """At most the shared memory one program takes with W_hh streamed in slices of
    ``block_kc`` columns: each gate's product is a loop of its own over the slices, whose
    (BLOCK_B, KC) tile of h or dz and (KC, BLOCK_H) tile of W_hh are in flight for each
    pipelining stage (:data:`STREAMED_STAGES`), whatever the number of gates; and the
    layout change of :func:`shared_bytes`."""
    return STREAMED_STAGES * itemsize * block_kc * (block_b + block_h) + 4 * block_b * block_h


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _time_loop(launch, steps: int, layout: Plan, backward: bool, device) -> None:
    """Run ``launch(t_begin, n_steps, sync_programs, sync)`` over all steps: once when
    persistent, else once per step (backwards from the last for a backward pass). ``sync``
    holds the barrier's counters, one per batch block, zero at the start."""
    sync = torch.zeros(layout.batch_blocks, dtype=torch.int32, device=device)
    if layout.persistent:
        launch(steps - 1 if backward else 0, steps, layout.sync_programs, sync)
        if layout.sync_programs > 1:
            _check_barrier(sync, layout)
        return
    for t in reversed(range(steps)) if backward else range(steps):
        launch(t, 1, 1, sync)


class GridBarrierGaveUp(RuntimeError):
    """A persistent launch's programs were not all running at once: its results are wrong."""


def _check_barrier(sync: Tensor, layout: Plan) -> None:
    """Raise if a barrier of the launch that used ``sync`` gave up (``kernels.SPIN_LIMIT``).
    Reading the counters waits for the launch to finish, which costs the overlap of the next
    launches' set-up with it, not GPU time; under CUDA graph capture, which cannot wait,
    the check is skipped."""
    if sync.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    if int(sync.max()) & _kernels().GAVE_UP.value:
        raise GridBarrierGaveUp(
            f"the Triton kernels' grid barrier gave up waiting: the {layout.sync_programs} "
            f"programs of a batch block were not all running at once on this GPU (the plan "
            f"counted on {layout.batch_blocks * layout.sync_programs} programs fitting its "
            f"multiprocessors; another process's kernels may hold some), so this call's "
            f"results are wrong; backend='reference' runs without the barrier"
        )


def _absent(like: Tensor) -> Tensor:
    """Stands for a pointer a kernel does not read (its flag is off)."""
    return like.new_empty(1)


def _on_chip(w_hh: Tensor) -> Tensor:
    """W_hh as the kernels' products take it: in its own dtype on a GPU; in float32 for
    bfloat16 under the interpreter, whose NumPy has no bfloat16 arithmetic (it would add
    the raw bits)."""
    if interpreting() and w_hh.dtype == torch.bfloat16:
        return w_hh.float().contiguous()
    return w_hh.contiguous()


def _mask_bytes(mask: Tensor | None, like: Tensor) -> Tensor:
    return _absent(like) if mask is None else mask.to(torch.uint8).contiguous()


def _shifted(first: Tensor, all_steps: Tensor) -> Tensor:
    """(T, B, n): the state before each step, ``first`` then all but the last."""
    return torch.cat([first.unsqueeze(0), all_steps[:-1]], 0)


# The modules that run a family's kernels. Each imports plan() and the helpers above by
# name, so the tools that lay the kernels out for a GPU this machine lacks replace those
# names in every one of them (tools/compile_triton_kernels.py, tools/triton_resources.py).
FAMILY_MODULES = ("lstm", "gru", "rnn", "slstm", "clockwork", "minrnn", "stacks")

# The runners fused.runner() looks up by name in this package, as in fused_cpu's; they live in
# modules of their own, which import the layout and helpers above (hence last here).
from lstmkit.layers.backends.fused_triton.gru import run_cho_gru, run_gru, run_mgu  # noqa: E402, F401
from lstmkit.layers.backends.fused_triton.lstm import run_lstm  # noqa: E402, F401
from lstmkit.layers.backends.fused_triton.rnn import run_rnn  # noqa: E402, F401
