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

Not yet measured on a GPU: this module was written and checked under the interpreter only.
That is why ``backend="auto"`` does not choose it (it uses torch's cuDNN kernels where torch
has the cell and the Python loops elsewhere); ``backend="fused"`` runs it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.lstm_options import LAYER_NORM_EPS
from lstmkit.layers.backends.fused import gate_inputs, lstm_gate_inputs, zeros_if_none

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
    operand_columns: int | None = None,
) -> Plan:  # fmt: skip
    """The layout of one direction's programs for ``gates`` (G*H, H) blocks of W_hh, whose
    products' widest left operand has ``operand_columns`` (default H, padded).

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
    operand_k = operand_columns or block_k
    shared = 0
    if limits is None:  # programs run one after another: one holds every unit
        block_b = max(16, min(64, _next_power_of_two(batch)))
        batch_blocks = -(-batch // block_b)
        warps_tile = gates * block_k * block_h
    else:
        block_b = 16
        batch_blocks = -(-batch // block_b)
        while block_h > 16 and (
            gates * block_k * block_h * itemsize > WEIGHT_BYTES_PER_PROGRAM
            or shared_bytes(block_b, block_h, block_k, gates, itemsize, operand_k)
            > limits.shared_bytes
        ):
            block_h //= 2
        warps_tile = gates * block_k * block_h  # the warps are the budget's tile's
        if dtype == torch.float32 and FORCE_BLOCK_H is None and block_h < hidden:
            while (
                block_h > 16
                and block_k * block_h > FMA_PRODUCT_WEIGHTS
                and batch_blocks * -(-hidden // (block_h // 2)) <= limits.multiprocessors
            ):
                block_h //= 2
        shared = shared_bytes(block_b, block_h, block_k, gates, itemsize, operand_k)
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


# -- LSTM family ---------------------------------------------------------------------------


def run_lstm(family: LSTMFamily, x, state, weights, mask):
    _check(x)
    if family.layer_norm is not None or family.gate_recurrence:
        return _run_lstm_options(family, x, state, weights, mask)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    h0, c0 = state
    output, h_n, c_n, acts, c_all, h_all = _LSTMFunction.apply(
        family, mask, x_gates, h0, c0, weights["weight_hh"], weights.get("weight_ci"),
        weights.get("weight_cf"), weights.get("weight_co"), weights.get("weight_hr"),
    )  # fmt: skip
    return output, (h_n, c_n), dict(acts=acts, cell=c_all, hidden=h_all)


def _lstm_flags(family: LSTMFamily, mask, project: bool) -> dict:
    """The kernels' constexpr switches: which parts of the cell exist (kernels.py)."""
    return dict(
        HAS_I=family.input_gate, HAS_F=family.has_forget_weights, COUPLED=family.coupled,
        HAS_O=family.output_gate, SQUASH_IN=family.input_activation,
        SQUASH_OUT=family.output_activation, PEEPHOLE=family.peephole,
        HAS_MASK=mask is not None, DOT=not project,
    )  # fmt: skip


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, family, mask, x_gates, h0, c0, w_hh, p_i, p_f, p_o, w_hr):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden, out_size = c0.shape[1], h0.shape[1]
        project = w_hr is not None
        layout = plan(batch, hidden, gh // hidden, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        c_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, out_size)
        output = xg.new_empty(steps, batch, out_size)
        m_all = xg.new_empty(steps, batch, hidden) if project else None
        w = w_hh.contiguous()
        w_chip = _on_chip(w)
        peep = [(p if p is not None else _absent(xg)).contiguous() for p in (p_i, p_f, p_o)]
        mask_u8 = _mask_bytes(mask, xg)
        flags = _lstm_flags(family, mask, project)
        h0, c0 = h0.contiguous(), c0.contiguous()

        def launch(t_begin, n_steps, sync_programs, sync, source=xg, h_slots=h_all):
            kernels.lstm_forward[layout.grid](
                source, w_chip, h0, c0, *peep, mask_u8, acts, c_all, h_slots, output, sync,
                t_begin, n_steps, batch, hidden, **flags, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        if not project:
            _time_loop(launch, steps, layout, backward=False, device=xg.device)
        else:  # torch does the two products of a step; the kernel the gates between them
            sync = torch.zeros(1, dtype=torch.int32, device=xg.device)

            def step(t, h):
                torch.addmm(xg[t], h, w.t(), out=acts[t])  # pre-activations, in place
                launch(t, 1, 1, sync, source=acts, h_slots=m_all)

            _projected_forward(step, mask, h0, w_hr, m_all, h_all, output)

        ctx.family, ctx.mask, ctx.layout = family, mask, layout
        ctx.save_for_backward(acts, c_all, h_all, m_all, h0, c0, w, p_i, p_f, p_o, w_hr)
        ctx.mark_non_differentiable(acts, c_all, h_all)  # handed out for traces only
        return output, h_all[-1].clone(), c_all[-1].clone(), acts, c_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, *_):
        acts, c_all, h_all, m_all, h0, c0, w, p_i, p_f, p_o, w_hr = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask, family = _kernels(), ctx.layout, ctx.mask, ctx.family
        steps, batch, gh = acts.shape
        hidden = c0.shape[1]
        project = w_hr is not None
        d_output = zeros_if_none(d_output, h_all).contiguous()
        dz = torch.empty_like(acts)
        dc_buf = zeros_if_none(d_c_n, c0).float().contiguous()
        peep = [(p if p is not None else _absent(acts)).contiguous() for p in (p_i, p_f, p_o)]
        mask_u8 = _mask_bytes(mask, acts)
        flags = _lstm_flags(family, mask, project)

        def launch(t_begin, n_steps, sync_programs, sync, d_source, dh_buf):
            kernels.lstm_backward[layout.grid](
                d_source, acts, c_all, c0, w_chip, *peep, mask_u8, dz, dh_buf, dc_buf, sync,
                t_begin, n_steps, steps, batch, hidden, **flags, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        d_w_hr = None
        if not project:
            dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
            _time_loop(
                lambda *a: launch(*a, d_source=d_output, dh_buf=dh_buf),
                steps, layout, backward=True, device=w.device,
            )  # fmt: skip
            back = (dz[0] @ w).float()
            dh0 = dh_buf + (back if mask is None else back * mask[0].unsqueeze(1))
        else:  # torch carries dh through W_hr and W_hh; the kernel the gates
            no_local = torch.zeros(batch, hidden, dtype=torch.float32, device=acts.device)
            sync = torch.zeros(1, dtype=torch.int32, device=acts.device)
            dh0, d_w_hr = _projected_backward(
                lambda t, dm_all: launch(t, 1, 1, sync, d_source=dm_all, dh_buf=no_local),
                mask, d_output, d_h_n, h0, w, w_hr, dz, m_all, h_all,
            )  # fmt: skip

        flat = dz.reshape(steps * batch, gh)
        d_w_hh = flat.t() @ _shifted(h0, h_all).reshape(steps * batch, -1)
        d_peep = _peephole_grads(family, dz, c0, c_all)
        dc0 = dc_buf.to(c0.dtype)
        return (None, None, dz, dh0.to(h0.dtype), dc0, d_w_hh, *d_peep, d_w_hr)


# -- LSTM options: layer norms and full gate recurrence -------------------------------------


def _run_lstm_options(family: LSTMFamily, x, state, weights, mask):
    """The LSTM with ``layer_norm`` and/or ``gate_recurrence`` (kernels.py's
    lstm_options_forward/backward): the input side as the C++ kernels take it
    (:func:`fused.lstm_gate_inputs`), the state (h, C) or with FGR (h, C, gates). With
    ``proj_size`` torch does each step's products with W_hh and W_hr between the launches
    (:func:`_projected_forward`), as for the plain projected LSTM."""
    x_gates, norm_gain, norm_shift = lstm_gate_inputs(family, x, weights)
    gates0 = state[2] if family.gate_recurrence else None
    output, h_n, c_n, gates_n, acts, c_all, h_all = _LSTMOptionsFunction.apply(
        family, mask, x_gates, state[0], state[1], gates0, weights["weight_hh"],
        weights.get("weight_ci"), weights.get("weight_cf"), weights.get("weight_co"), norm_gain,
        norm_shift, weights.get("ln_weight_c"), weights.get("ln_bias_c"), weights.get("weight_gg"),
        weights.get("weight_hr"),
    )  # fmt: skip
    final = (h_n, c_n, gates_n) if family.gate_recurrence else (h_n, c_n)
    return output, final, dict(acts=acts, cell=c_all, hidden=h_all)


@dataclass(frozen=True)
class _OptionsLayout:
    """The options kernels' switches and sizes beyond :class:`Plan`'s."""

    plan: Plan
    flags: dict  # the cell's constexpr switches
    block_kg: int  # FGR's reduction over the K*H previous gates, padded
    groups: int  # the product norm's statistics per row: 1 (Ba), G (per-gate)

    def kwargs(self, sync_programs: int, phase: dict) -> dict:
        # the norms read rows in chunks of at most NORM_CHUNK columns (kernels.py)
        chunk = min(NORM_CHUNK, self.plan.block_kc)
        return dict(**self.flags, **phase, **self.plan.kernel_options, BLOCK_KG=self.block_kg,
                    BLOCK_N=chunk, N_SPLIT=sync_programs)  # fmt: skip


def _options_layout(family: LSTMFamily, mask, batch: int, dtype, device) -> _OptionsLayout:
    hidden, blocks = family.hidden_size, len(family.gates)
    gate_rows = len(family.sigmoid_gates) * hidden
    block_k = max(16, _next_power_of_two(hidden))
    block_kg = max(16, _next_power_of_two(gate_rows))
    # W_gg's rows for a program's units of each gate sit on chip beside W_hh's: in plan()'s
    # count of (block_k x block_h) weight tiles, K of block_kg / block_k each
    tiles = blocks + (len(family.sigmoid_gates) * block_kg // block_k if family.gate_recurrence
                      else 0)  # fmt: skip
    # and FGR's product takes the previous gates of every unit, wider than h
    widest = block_kg if family.gate_recurrence else block_k
    layout = plan(batch, hidden, tiles, dtype, device, operand_columns=widest)
    project = bool(family.proj_size)
    if project and layout.hidden_blocks > 1:
        # torch's products between the steps make every launch one step; with the units
        # split, each phase of a step is then a launch of its own (the boundary its barrier)
        layout = dataclasses.replace(layout, persistent=False)
    flags = _lstm_flags(family, mask, project)
    flags.update(
        NORM_PRODUCT=family.layer_norm == "ba2016", NORM_GATES=family.layer_norm == "per-gate",
        NORM_SHOWN=family.layer_norm in ("ba2016", "cell"),
        NORM_CARRIED=family.layer_norm == "per-gate", FGR=family.gate_recurrence,
    )  # fmt: skip
    groups = blocks if family.layer_norm == "per-gate" else 1
    return _OptionsLayout(layout, flags, block_kg, groups)


def _step_phases(layout: Plan, phases: dict[str, bool]) -> list[dict]:
    """The phase switches, one dict per launch of a step: every phase present (``phases``:
    name -> present) in one persistent launch, else one launch each, in order."""
    present = [name for name, here in phases.items() if here]
    if layout.persistent:
        return [{name: name in present for name in phases}]
    return [{name: name == one for name in phases} for one in present]


class _LSTMOptionsFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, family, mask, x_gates, h0, c0, gates0, w_hh, p_i, p_f, p_o, norm_gain, norm_shift,
        cell_gain, cell_shift, w_gg, w_hr,
    ):  # fmt: skip
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden = c0.shape[1]
        gate_rows = len(family.sigmoid_gates) * hidden
        norm_in = family.layer_norm in ("ba2016", "per-gate")
        norm_cell = family.layer_norm is not None
        fgr = family.gate_recurrence
        project = w_hr is not None
        layout = _options_layout(family, mask, batch, w_hh.dtype, xg.device)
        scratch = dict(dtype=torch.float32, device=xg.device)
        absent = _absent(xg)
        acts = torch.empty_like(xg)
        c_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, h0.shape[1])  # (T, B, R)
        output = torch.empty_like(h_all)
        m_all = xg.new_empty(steps, batch, hidden) if project else None  # o tanh(...), (T, B, H)
        g_all = xg.new_empty(steps, batch, gate_rows) if fgr else absent
        nx = torch.empty_like(xg) if norm_in else absent
        nr = torch.empty(steps, batch, layout.groups, **scratch) if norm_in else absent
        cx = xg.new_empty(steps, batch, hidden) if norm_cell else absent
        cr = torch.empty(steps, batch, **scratch) if norm_cell else absent
        rec = torch.empty(batch, gh, **scratch) if norm_in or project else absent
        cell = torch.empty(batch, 2 * hidden, **scratch) if norm_cell else absent
        w_chip = absent if project else _on_chip(w_hh)  # W_hh (G*H, P) stays with torch
        w_gg_chip = _on_chip(w_gg) if fgr else absent
        given = lambda p: absent if p is None else p.contiguous()  # noqa: E731
        h0, c0, g0 = h0.contiguous(), c0.contiguous(), given(gates0)
        # with a projection torch fills rec with the product, so no PRODUCT phase
        phases = _step_phases(layout.plan, dict(PRODUCT=norm_in and not project, GATES=True,
                                                CELL=norm_cell))  # fmt: skip
        h_slots = h_all if m_all is None else m_all  # the kernels' h_t, or m_t for W_hr

        def launch(t_begin, n_steps, sync_programs, sync):
            for phase in phases:
                kernels.lstm_options_forward[layout.plan.grid](
                    xg, w_chip, w_gg_chip, h0, c0, g0, given(p_i), given(p_f), given(p_o),
                    given(norm_gain), given(norm_shift), given(cell_gain), given(cell_shift),
                    _mask_bytes(mask, xg), acts, c_all, h_slots, output, g_all, nx, nr, cx, cr,
                    rec, cell, sync, t_begin, n_steps, batch, hidden, LAYER_NORM_EPS,
                    **layout.kwargs(sync_programs, phase),
                )  # fmt: skip

        if project:
            sync = torch.zeros(layout.plan.batch_blocks, dtype=torch.int32, device=xg.device)
            w_hh_t = w_hh.t()

            def step(t, h):
                # what the kernels' PRODUCT phase would leave: Ba's norm sees the product
                # alone; the per-gate norm, and the gates where no norm comes first, see
                # x_t W_ih^T (+ b) with it
                if family.layer_norm == "ba2016":
                    rec.copy_(h @ w_hh_t)
                else:
                    rec.copy_(torch.addmm(xg[t], h, w_hh_t))
                launch(t, 1, 1, sync)

            _projected_forward(step, mask, h0, w_hr, m_all, h_all, output)
        else:
            _time_loop(launch, steps, layout.plan, backward=False, device=xg.device)
        ctx.family, ctx.mask, ctx.layout = family, mask, layout
        ctx.save_for_backward(acts, c_all, h_all, g_all, nx, nr, cx, cr, h0, c0, g0, w_hh, p_i,
                              p_f, p_o, norm_gain, cell_gain, cell_shift, w_gg, m_all,
                              w_hr)  # fmt: skip
        ctx.mark_non_differentiable(acts, c_all, h_all)  # handed out for traces only
        gates_n = g_all[-1].clone() if fgr else None
        return output, h_all[-1].clone(), c_all[-1].clone(), gates_n, acts, c_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, d_gates_n, *_):
        (acts, c_all, h_all, g_all, nx, nr, cx, cr, h0, c0, g0, w_hh, p_i, p_f, p_o, norm_gain,
         cell_gain, cell_shift, w_gg, m_all, w_hr) = ctx.saved_tensors  # fmt: skip
        kernels, family, mask, layout = _kernels(), ctx.family, ctx.mask, ctx.layout
        steps, batch, gh = acts.shape
        hidden = c0.shape[1]
        gate_rows = len(family.sigmoid_gates) * hidden
        norm_in = family.layer_norm in ("ba2016", "per-gate")
        norm_cell = family.layer_norm is not None
        fgr = family.gate_recurrence
        project = w_hr is not None
        absent = _absent(acts)
        given = lambda p: absent if p is None else p.contiguous()  # noqa: E731
        d_output = zeros_if_none(d_output, h_all).contiguous()
        dz = torch.empty_like(acts)
        drec = torch.empty_like(acts) if norm_in else dz
        dzg = acts.new_empty(steps, batch, gate_rows) if fgr else absent
        dcn = acts.new_empty(steps, batch, hidden) if norm_cell else absent
        cell = absent
        if norm_cell:
            cell = torch.empty(batch, 2 * hidden, dtype=torch.float32, device=acts.device)
        # with a projection torch carries dL/dh (_projected_backward)
        dh_buf = absent if project else zeros_if_none(d_h_n, h0).float().contiguous()
        dc_buf = zeros_if_none(d_c_n, c0).float().contiguous()
        dg_buf = absent
        if fgr:
            dg_buf = zeros_if_none(d_gates_n, g0).float().contiguous()
        w_chip = absent if project else _on_chip(w_hh)
        w_gg_chip = _on_chip(w_gg) if fgr else absent
        phases = _step_phases(layout.plan, dict(OUT=True, CELL=norm_cell, NORM=norm_in))

        def launch(t_begin, n_steps, sync_programs, sync, d_source=d_output):
            for phase in phases:
                kernels.lstm_options_backward[layout.plan.grid](
                    d_source, acts, c_all, c0, w_chip, w_gg_chip, given(p_i), given(p_f),
                    given(p_o), given(norm_gain), given(cell_gain), given(cell_shift), nx, nr, cx,
                    cr, _mask_bytes(mask, acts), dz, drec, dzg, dcn, cell, dh_buf, dc_buf,
                    dg_buf, sync, t_begin, n_steps, steps, batch, hidden,
                    **layout.kwargs(sync_programs, phase),
                )  # fmt: skip

        d_w_hr = None
        if project:
            sync = torch.zeros(layout.plan.batch_blocks, dtype=torch.int32, device=acts.device)
            dh0, d_w_hr = _projected_backward(
                lambda t, dm_all: launch(t, 1, 1, sync, d_source=dm_all),
                mask, d_output, d_h_n, h0, w_hh, w_hr, drec, m_all, h_all,
            )  # fmt: skip
        else:
            _time_loop(launch, steps, layout.plan, backward=True, device=acts.device)
            # what step 0's gates send back to the initial state (an ended row's dz is 0)
            dh0 = dh_buf + (drec[0] @ w_hh).float()
        flat = drec.reshape(steps * batch, gh)
        d_w_hh = flat.t() @ _shifted(h0, h_all).reshape(steps * batch, -1)
        d_peep = _peephole_grads(family, dz, c0, c_all)
        # the norms' gains and shifts and W_gg: sums and products over all steps
        wide = lambda t: t.float()  # noqa: E731
        total = lambda t: t.sum((0, 1)).to(acts.dtype)  # noqa: E731
        d_norm_gain = d_norm_shift = d_cell_gain = d_cell_shift = d_w_gg = d_gates0 = None
        if norm_in:
            d_norm_gain, d_norm_shift = total(wide(dz) * wide(nx)), total(wide(dz))
        if norm_cell:
            d_cell_gain, d_cell_shift = total(wide(dcn) * wide(cx)), total(wide(dcn))
        if fgr:
            d_w_gg = dzg.reshape(-1, gate_rows).t() @ _shifted(g0, g_all).reshape(-1, gate_rows)
            d_gates0 = (dg_buf + (dzg[0] @ w_gg).float()).to(g0.dtype)
        # the per-gate norm acts on x_gates + the product: x_gates' gradient is the product's
        d_x_gates = drec if family.layer_norm == "per-gate" else dz
        return (None, None, d_x_gates, dh0.to(h0.dtype), dc_buf.to(c0.dtype), d_gates0, d_w_hh,
                *d_peep, d_norm_gain, d_norm_shift, d_cell_gain, d_cell_shift, d_w_gg,
                d_w_hr)  # fmt: skip


def _projected_forward(step, mask, h0, w_hr, m_all, h_all, output) -> None:
    """The projected LSTM's steps (Sak et al. 2014): ``step(t, h_prev)`` has torch do the
    step's recurrent product and the kernels the rest of the step, which leaves m_t (before
    the projection) in ``m_all[t]``; here torch projects h_t = m_t W_hr^T, and an ended row
    keeps its h and outputs 0."""
    h, w_hr_t = h0, w_hr.t()
    for t in range(m_all.shape[0]):
        step(t, h)
        h_new = m_all[t] @ w_hr_t  # (B, P)
        if mask is None:
            h = h_new
            output[t] = h_new
        else:
            live = mask[t].unsqueeze(1)
            h = torch.where(live, h_new, h)
            output[t] = h_new * live
        h_all[t] = h


def _projected_backward(step, mask, d_output, d_h_n, h0, w_hh, w_hr, d_product, m_all,
                        h_all) -> tuple[Tensor, Tensor]:  # fmt: skip
    """_projected_forward's steps backwards: torch carries dL/dh_t through W_hr into dL/dm_t
    (``dm_all[t]``), ``step(t, dm_all)`` runs the kernels' backward of step t from it, which
    leaves in ``d_product[t]`` the gradient of the step's recurrent product, and torch
    carries that through W_hh to h_{t-1}. Returns dL/dh_0 and W_hr's gradient."""
    dh = zeros_if_none(d_h_n, h0)  # dL/dh_t from the steps after t and the final state
    dm_all = torch.empty_like(m_all)
    dh_all = torch.empty_like(h_all)  # dL/dh_t where it reached W_hr
    for t in reversed(range(h_all.shape[0])):
        dh_t = d_output[t] + dh
        live = None if mask is None else mask[t].unsqueeze(1)
        dh_all[t] = dh_t if live is None else dh_t * live  # an ended row's h passed by
        torch.mm(dh_all[t], w_hr, out=dm_all[t])
        step(t, dm_all)
        dh_prev = d_product[t] @ w_hh  # an ended row's is 0
        dh = dh_prev if live is None else torch.where(live, dh_prev, dh)
    d_w_hr = dh_all.reshape(-1, dh_all.shape[2]).t() @ m_all.reshape(-1, m_all.shape[2])
    return dh, d_w_hr


def _peephole_grads(family: LSTMFamily, dz: Tensor, c0: Tensor, c_all: Tensor) -> list:
    """The peephole weights' gradients (p_i, p_f, p_o), each gate's dz times the state it
    looked at, summed over steps and rows (None where the cell has no peephole of that gate:
    each gate with a block has one, family.extra_parameters)."""
    grads = [None, None, None]
    if family.peephole:
        by_gate = dict(zip(family.gates, dz.chunk(len(family.gates), -1), strict=True))
        c_prev = _shifted(c0, c_all)
        seen = {"input": c_prev, "forget": c_prev, "output": c_all}  # C_{t-1}; o sees C_t
        for k, gate in enumerate(("input", "forget", "output")):
            if gate in family.sigmoid_gates:
                grads[k] = (by_gate[gate] * seen[gate]).sum((0, 1))
    return grads


# -- GRU -----------------------------------------------------------------------------------


def run_gru(family, x, state, weights, mask):
    _check(x)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=False)  # b_hn sits inside r's product
    (h0,) = state
    output, h_n, acts, h_all = _GRUFunction.apply(
        mask, x_gates, h0, weights["weight_hh"], weights.get("bias_hh")
    )
    return output, (h_n,), dict(acts=acts, hidden=h_all)


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mask, x_gates, h0, w_hh, b_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        steps, batch, gh = x_gates.shape
        hidden = gh // 3
        xg = x_gates.clone()
        if b_hh is not None:  # b_hr and b_hz add where x's do; b_hn goes inside r's product
            xg[..., : 2 * hidden] += b_hh[: 2 * hidden]
        b_n = _absent(xg) if b_hh is None else b_hh[2 * hidden :].contiguous()
        layout = plan(batch, hidden, 3, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        hn_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, hidden)
        output = xg.new_empty(steps, batch, hidden)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.gru_forward[layout.grid](
                xg, w_chip, b_n, h0, mask_u8, acts, hn_all, h_all, output, sync,
                t_begin, n_steps, batch, hidden, HAS_BN=b_hh is not None,
                HAS_MASK=mask is not None, N_SPLIT=sync_programs, **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.mask, ctx.layout, ctx.has_bias = mask, layout, b_hh is not None
        ctx.save_for_backward(acts, hn_all, h_all, h0, w)
        ctx.mark_non_differentiable(acts, h_all)  # handed out for traces only
        return output, h_all[-1].clone(), acts, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        acts, hn_all, h_all, h0, w = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _kernels(), ctx.layout, ctx.mask
        steps, batch, gh = acts.shape
        hidden = gh // 3
        d_output = zeros_if_none(d_output, h_all).contiguous()
        dx = torch.empty_like(acts)
        drec = torch.empty_like(acts)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, acts)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.gru_backward[layout.grid](
                d_output, acts, hn_all, h_all, h0, w_chip, mask_u8, dx, drec, dh_buf, sync,
                t_begin, n_steps, steps, batch, hidden, HAS_MASK=mask is not None,
                N_SPLIT=sync_programs, **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        back = (drec[0] @ w).float()
        dh0 = dh_buf + (back if mask is None else back * mask[0].unsqueeze(1))
        d_w_hh = drec.reshape(steps * batch, gh).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        d_b_hh = drec.sum((0, 1)) if ctx.has_bias else None
        return None, dx, dh0.to(h0.dtype), d_w_hh, d_b_hh


# -- reset before the product: Cho et al.'s GRU and the MGU --------------------------------


def run_cho_gru(family, x, state, weights, mask):
    """The GRU with ``reset_after=False``: r_t scales h_{t-1} before W_hn."""
    return _run_reset_first(False, x, state, weights, mask)


def run_mgu(family, x, state, weights, mask):
    """The MGU: Cho et al.'s GRU with r_t = f_t and z_t = 1 - f_t (kernels.py's ``TIED``)."""
    return _run_reset_first(True, x, state, weights, mask)


def _run_reset_first(tied, x, state, weights, mask):
    _check(x)
    # every b_hh block adds to a pre-activation here, b_hn too (outside r's reach)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    (h0,) = state
    output, h_n, acts, h_all = _ResetFirstFunction.apply(
        tied, mask, x_gates, h0, weights["weight_hh"]
    )
    return output, (h_n,), dict(acts=acts, hidden=h_all)


def _phases(layout: Plan, first: str, second: str) -> list[dict]:
    """The kernels' phase switches, one dict per launch of a step: both phases in one
    persistent launch, else one launch each, ``first`` then ``second`` (kernels.py: the
    candidate's product needs r h_{t-1} of every unit, so the phases meet at a barrier,
    which between launches is the launch boundary)."""
    if layout.persistent:
        return [{first: True, second: True}]
    return [{first: True, second: False}, {first: False, second: True}]


class _ResetFirstFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tied, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden = h0.shape[1]
        layout = plan(batch, hidden, gh // hidden, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        rh_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, hidden)
        output = xg.new_empty(steps, batch, hidden)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            for phase in _phases(layout, "GATES", "CANDIDATE"):
                kernels.reset_first_forward[layout.grid](
                    xg, w_chip, h0, mask_u8, acts, rh_all, h_all, output, sync,
                    t_begin, n_steps, batch, hidden, TIED=tied, **phase,
                    HAS_MASK=mask is not None, N_SPLIT=sync_programs, **layout.kernel_options,
                )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.tied, ctx.mask, ctx.layout = tied, mask, layout
        ctx.save_for_backward(acts, rh_all, h_all, h0, w)
        ctx.mark_non_differentiable(acts, h_all)  # handed out for traces only
        return output, h_all[-1].clone(), acts, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        acts, rh_all, h_all, h0, w = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _kernels(), ctx.layout, ctx.mask
        steps, batch, gh = acts.shape
        hidden = h0.shape[1]
        gate_rows = gh - hidden  # the sigmoid gates' blocks; the candidate's follows
        d_output = zeros_if_none(d_output, h_all).contiguous()
        d_pre = torch.empty_like(acts)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, acts)

        def launch(t_begin, n_steps, sync_programs, sync):
            for phase in _phases(layout, "CANDIDATE", "GATES"):  # the forward's reversed
                kernels.reset_first_backward[layout.grid](
                    d_output, acts, h_all, h0, w_chip, mask_u8, d_pre, dh_buf, sync,
                    t_begin, n_steps, steps, batch, hidden, TIED=ctx.tied, **phase,
                    HAS_MASK=mask is not None, N_SPLIT=sync_programs, **layout.kernel_options,
                )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        d_gates, d_cand = d_pre.split([gate_rows, hidden], -1)
        # an ended row's gate gradients are 0, so the product adds nothing to its carry
        dh0 = dh_buf + (d_gates[0] @ w[:gate_rows]).float()
        # the gate blocks saw h_{t-1}, the candidate's block r h_{t-1}
        d_w_gates = d_gates.reshape(-1, gate_rows).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        d_w_cand = d_cand.reshape(-1, hidden).t() @ rh_all.reshape(-1, hidden)
        return None, None, d_pre, dh0.to(h0.dtype), torch.cat([d_w_gates, d_w_cand])


# -- RNN -----------------------------------------------------------------------------------


def run_rnn(family, x, state, weights, mask):
    _check(x)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    (h0,) = state
    relu = family.nonlinearity == "relu"
    output, h_n, h_all = _RNNFunction.apply(relu, mask, x_gates, h0, weights["weight_hh"])
    return output, (h_n,), dict(hidden=h_all)


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, relu, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, hidden = xg.shape
        layout = plan(batch, hidden, 1, w_hh.dtype, xg.device)
        h_all = torch.empty_like(xg)
        output = torch.empty_like(xg)
        w, h0 = w_hh.contiguous(), h0.contiguous()
        w_chip = _on_chip(w)
        mask_u8 = _mask_bytes(mask, xg)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.rnn_forward[layout.grid](
                xg, w_chip, h0, mask_u8, h_all, output, sync, t_begin, n_steps, batch, hidden,
                RELU=relu, HAS_MASK=mask is not None, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=False, device=xg.device)
        ctx.relu, ctx.mask, ctx.layout = relu, mask, layout
        ctx.save_for_backward(h_all, h0, w)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_all[-1].clone(), h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        h_all, h0, w = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask = _kernels(), ctx.layout, ctx.mask
        steps, batch, hidden = h_all.shape
        d_output = zeros_if_none(d_output, h_all).contiguous()
        d_pre = torch.empty_like(h_all)
        dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
        mask_u8 = _mask_bytes(mask, h_all)

        def launch(t_begin, n_steps, sync_programs, sync):
            kernels.rnn_backward[layout.grid](
                d_output, h_all, w_chip, mask_u8, d_pre, dh_buf, sync, t_begin, n_steps, steps,
                batch, hidden, RELU=ctx.relu, HAS_MASK=mask is not None, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        _time_loop(launch, steps, layout, backward=True, device=w.device)
        back = (d_pre[0] @ w).float()
        dh0 = dh_buf + (back if mask is None else back * mask[0].unsqueeze(1))
        d_w_hh = d_pre.reshape(steps * batch, hidden).t() @ _shifted(h0, h_all).reshape(-1, hidden)
        return None, None, d_pre, dh0.to(h0.dtype), d_w_hh
