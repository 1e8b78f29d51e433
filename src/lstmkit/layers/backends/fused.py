"""The fused backend's direction loop, shared by its two sets of kernels: the C++ CPU kernels
(:mod:`.fused_cpu`) and the Triton GPU kernels (:mod:`.fused_triton`).

Both run time forwards only and keep every gate activation and state for their hand-written
backward; this module flips a reversed direction around them and turns what they kept into
the family's trace. A call that builds no autograd graph and records no trace needs none of
what they keep, so a long one runs in chunks of steps (:data:`CHUNK_VALUES`), the state
carried between them: its memory beyond the output stays that of one chunk, as
torch.nn.LSTM's keeps nothing under ``torch.no_grad()``. A runner that takes ``keep`` (the
CPU LSTM family's) is also told to keep nothing per step in such a call.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.cellmath.family import CellFamily, Weights
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.lstm_options import LAYER_NORM_EPS
from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.cellmath.minrnn import MinGRUFamily, MinLSTMFamily, MinRNNFamily
from lstmkit.cellmath.rnn import RNNFamily
from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.layers.backends.input_projection import project


def kernels_for(device_type: str) -> ModuleType:
    """The kernel set that runs tensors of this device type."""
    from lstmkit.layers.backends import fused_cpu, fused_triton

    return fused_cpu if device_type == "cpu" else fused_triton


# Which function of a kernel set runs each family: "name" in the set's package, or
# "file.name" in its module ``file`` (fused_cpu/file.py with its C++ in file.cpp; the Triton
# set's fused_triton/file.py). A family listed here must also be in backends._IMPLEMENTED.
_RUNNERS: dict[type, Callable[[CellFamily], str]] = {
    LSTMFamily: lambda family: "run_lstm",
    GRUFamily: lambda family: "run_gru" if family.reset_after else "run_cho_gru",
    MGUFamily: lambda family: "run_mgu",
    RNNFamily: lambda family: "run_rnn",
    SLSTMFamily: lambda family: "slstm.run_slstm",
    ClockworkFamily: lambda family: "clockwork.run_clockwork",
    MinGRUFamily: lambda family: "minrnn.run_minrnn",
    MinLSTMFamily: lambda family: "minrnn.run_minrnn",
}


def runner(family: CellFamily, kernels: ModuleType) -> Callable:
    """The function of ``kernels`` that runs this family's direction."""
    module, _, name = _RUNNERS[type(family)](family).rpartition(".")
    home = importlib.import_module(f"{kernels.__name__}.{module}") if module else kernels
    return getattr(home, name)


def kernel_file(family: CellFamily) -> str:
    """The C++ file (without ``.cpp``) of the fused CPU kernels that run this family."""
    from lstmkit.layers.backends.fused_cpu import KERNELS

    module, _, _ = _RUNNERS[type(family)](family).rpartition(".")
    return module or KERNELS


def run_direction(
    family: CellFamily,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Weights,
    mask: Tensor | None,
    reverse: bool,
    record: bool,
    kernels: ModuleType | None = None,
) -> tuple[Tensor, tuple[Tensor, ...], dict[str, Tensor] | None]:
    """Same contract as ``reference.run_direction``; ``kernels`` defaults to the set for
    x's device (tests pass :mod:`.fused_triton` to run it on the CPU's interpreter).

    A trace costs no extra computation: the kernels keep every gate activation and state for
    the backward anyway, and ``record`` hands them out as well (masked to 0 past each
    sequence's end, as the reference does). Unlike the reference's, these traces are not
    part of the autograd graph, and they keep those (T, B, (G + 2) H) values alive as long
    as the trace lives, also under ``torch.no_grad()``."""
    kernels = kernels_for(x.device.type) if kernels is None else kernels
    step_mask = None if mask is None else mask[..., 0].contiguous()  # (T, B)
    if reverse:  # the kernels run forward in time; a reversed direction is the flipped one
        x = x.flip(0)
        step_mask = None if step_mask is None else step_mask.flip(0)
    run = runner(family, kernels)
    if record or builds_graph(x, *state, *weights.values()):
        output, final, saved = run(family, x, state, weights, step_mask)
    else:
        run = _keeping_nothing(run)
        steps = chunk_steps(x, weights)
        output, final = _run_in_chunks(run, family, x, state, weights, step_mask, steps)
    trace = _trace(family, saved, step_mask) if record else None
    if reverse:
        output = output.flip(0)
        trace = None if trace is None else {k: v.flip(0) for k, v in trace.items()}
    return output, final, trace


CHUNK_VALUES = 1 << 22
"""A call without a graph runs in chunks of about this many values per (steps, B, gate rows)
tensor the kernels fill (16 MB in float32), and at least 16 steps (fewer, and the per-call
overhead would show)."""


def chunk_steps(x: Tensor, weights: Weights) -> int:
    """Steps per chunk for a call without a graph: ``CHUNK_VALUES`` over the values one step
    fills across the batch (its gate rows, ``weight_ih``'s, the widest thing it keeps)."""
    return steps_per_chunk(x.shape[1], weights["weight_ih"].shape[0])


def steps_per_chunk(batch: int, gate_rows: int) -> int:
    """``CHUNK_VALUES`` over the values one step fills, ``batch`` rows of ``gate_rows``; at
    least 16."""
    return max(CHUNK_VALUES // max(batch * gate_rows, 1), 16)


def builds_graph(*tensors: Tensor | None) -> bool:
    """Whether a call on these tensors (inputs, states, weights) records an autograd graph."""
    if not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in tensors)


def _keeping_nothing(run: Callable) -> Callable:
    """``run`` told to keep nothing for a backward, where it takes that option (``keep``)."""
    return functools.partial(run, keep=False) if _takes_keep(run) else run


@functools.cache
def _takes_keep(run: Callable) -> bool:
    """Whether a runner takes ``keep``: read once per runner, not on every call (a
    signature costs more than a small batch-1 step)."""
    return "keep" in inspect.signature(run).parameters


def _run_in_chunks(run, family, x, state, weights, mask, steps: int):
    """The output and final state of ``run`` over consecutive chunks of ``steps`` steps,
    each starting from the state the last one ended in: the same steps as one call (the
    kernels' arithmetic per step does not depend on the call's length), with a chunk's
    activations freed before the next."""
    if steps >= x.shape[0]:
        output, state, _ = run(family, x, state, weights, mask)
        return output, state
    output = None
    for start in range(0, x.shape[0], steps):
        piece = slice(start, start + steps)
        part, state, _ = run(family, x[piece], state, weights,
                             None if mask is None else mask[piece])  # fmt: skip
        if output is None:
            output = part.new_empty((x.shape[0], *part.shape[1:]))
        output[piece] = part
    return output, state


def _trace(family: CellFamily, saved: dict[str, Tensor], mask: Tensor | None):
    """The family's trace tensors (T, B, size) from what the kernels kept; all in kernel
    time order, ``mask`` (T, B) included."""
    if isinstance(family, LSTMFamily):
        gates = dict(zip(family.gates, saved["acts"].chunk(len(family.gates), -1), strict=True))
        if family.coupled:
            gates["forget"] = 1 - gates["input"]
        values = {**gates, "cell": saved["cell"], "hidden": saved["hidden"]}
    elif isinstance(family, GRUFamily):  # either form: the acts are (r, z, n)
        reset, update, candidate = saved["acts"].chunk(3, -1)
        values = dict(reset=reset, update=update, candidate=candidate, hidden=saved["hidden"])
    elif isinstance(family, MGUFamily):
        forget, candidate = saved["acts"].chunk(2, -1)
        values = dict(forget=forget, candidate=candidate, hidden=saved["hidden"])
    elif isinstance(family, RNNFamily):
        values = {"hidden": saved["hidden"]}
    elif isinstance(family, MinRNNFamily):  # the gates from the pre-activations, all at once
        hidden = saved["hidden"]
        previous = torch.cat([saved["h0"].unsqueeze(0), hidden[:-1]])  # (T, B, H)
        values = family.step(saved["x_gates"], (previous,), {}).values | {"hidden": hidden}
    else:  # the later cells' runners keep their values under the family's trace names
        values = saved
    trace = {name: values[name].detach() for name in family.trace_names}
    if mask is not None:  # past a sequence's end the reference reports zeros
        trace = {name: v.masked_fill(~mask[..., None], 0.0) for name, v in trace.items()}
    return trace


def gate_inputs(x: Tensor, weights: Weights, fold_hidden_bias: bool) -> Tensor:
    """x W_ih^T + b_ih for every step as one product. ``fold_hidden_bias``: b_hh enters every
    step the same way (the LSTM's and the RNN's), so it joins b_ih here, which saves a pass
    over the (T, B, G*H) result forwards and a sum over it backwards."""
    bias = weights.get("bias_ih")
    if fold_hidden_bias and bias is not None:
        bias = bias + weights["bias_hh"]
    return project(x, weights["weight_ih"], bias)


def lstm_gate_inputs(family: LSTMFamily, x: Tensor, weights: Weights) -> tuple[Tensor, ...]:
    """What the LSTM kernels take from the input side, for all steps at once (autograd
    carries it): x_gates (T, B, G*H), and the gain and shift of the norm the kernels apply to
    the products (None without one).

    Where the norms sit is :mod:`lstmkit.cellmath.lstm_options`'s. Ba et al.'s norm of the
    input product (``"ba2016"``) does not depend on the recurrence, so it is done here, and
    b = b_ih + b_hh after it; the kernels normalise the recurrent product. TensorFlow's
    per-gate norm acts on the sum of both products, so x_gates is x W_ih^T alone and b joins
    the norm's shift (both come after the norm)."""
    if family.layer_norm not in ("ba2016", "per-gate"):
        return gate_inputs(x, weights, fold_hidden_bias=True), None, None
    product = project(x, weights["weight_ih"], None)  # (T, B, G*H)
    bias = weights.get("bias_ih")
    bias = None if bias is None else bias + weights["bias_hh"]
    if family.layer_norm == "ba2016":
        x_gates = F.layer_norm(
            product, product.shape[-1:], weights["ln_weight_ih"], weights["ln_bias_ih"],
            LAYER_NORM_EPS,
        )  # fmt: skip
        x_gates = x_gates if bias is None else x_gates + bias
        return x_gates, weights["ln_weight_hh"], weights["ln_bias_hh"]
    shift = weights["ln_bias_gates"]
    return product, weights["ln_weight_gates"], shift if bias is None else shift + bias


def zeros_if_none(grad: Tensor | None, like: Tensor) -> Tensor:
    """autograd hands None for an output nobody used."""
    return torch.zeros_like(like) if grad is None else grad
