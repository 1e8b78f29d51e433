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
- ``"fused"``: lstmkit's own kernels, for every cell that runs through this dispatch: the
  LSTM with any of its options (projection, peepholes, CIFG, no forget gate, Greff et al.'s
  NIG, NOG, NIAF, NOAF and FGR, the layer norms), both GRU forms, the MGU, the RNN, the
  sLSTM, the Clockwork RNN, minGRU and minLSTM: C++ built on first use for CPU tensors
  (:mod:`.fused_cpu`), Triton for CUDA tensors (:mod:`.fused_triton`; it lacks FGR and the
  layer norms, and says so). The depth-gated and Grid LSTM stacks have fused kernels of
  their own, chosen by their layers (:mod:`lstmkit.layers._memory_stack`).
- ``"auto"`` (default): the fastest that can run the call: ``"torch"`` for the plain LSTM
  (but on the CPU ``"fused"`` for a projected one, and for a call that builds an autograd
  graph in bfloat16 at H >= 512 or batch 1, in float32 at H >= 1024 with a batch of 16 or
  fewer) and for the plain GRU and RNN off the CPU,
  ``"fused"`` for everything else on the CPU, else ``"manual"`` for the LSTM variants, else
  ``"reference"``. When the fused kernels cannot be built (no C++ compiler), ``auto``
  warns once and takes the next in that list.
  On a GPU ``auto`` does not take the Triton kernels yet: they are checked under Triton's
  CPU interpreter but have not been run on a GPU (see fused_triton's docstring).
  A traced call runs ``"reference"``, whose traces are part of the autograd graph;
  ``"fused"`` also records traces, detached from it, at no extra computation; the other
  backends record nothing.

An explicit choice that cannot run the layer is an error, never silently replaced.
"""

from __future__ import annotations

import dataclasses
from enum import Enum

import torch

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.cellmath.family import CellFamily
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.cellmath.minrnn import MinGRUFamily, MinLSTMFamily
from lstmkit.cellmath.rnn import RNNFamily
from lstmkit.cellmath.slstm import SLSTMFamily


class Backend(str, Enum):
    AUTO = "auto"
    REFERENCE = "reference"
    MANUAL = "manual"
    TORCH = "torch"
    FUSED = "fused"

    @classmethod
    def parse(cls, value: Backend | str) -> Backend:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(b.value) for b in cls)
            raise ValueError(f"backend must be one of {choices}, got {value!r}") from None


def unsupported_reason(backend: Backend, family: CellFamily) -> str | None:
    """Why ``backend`` cannot run this family, or None if it can.

    The reference loop runs every family. The others implement a fixed list of families,
    by exact type, and of options (:data:`_IMPLEMENTED`): a family they do not list, or an
    option set away from its default that they do not list, is refused by name. So a new
    cell, or a new option of an old one, runs on the reference loop until a backend is
    taught it and its list says so; it never reaches kernels that would ignore it."""
    if backend in (Backend.REFERENCE, Backend.AUTO):
        return None
    who = _BACKEND_WORDS[backend]
    implemented = _IMPLEMENTED[backend]
    if type(family) not in implemented:
        return f"{who} do not have the {family.name} cell"
    missing = [
        f"{f.name}={getattr(family, f.name)!r}"
        for f in dataclasses.fields(family)
        if f.name != "hidden_size"
        and getattr(family, f.name) != f.default
        and f.name not in implemented[type(family)]
    ]
    if missing:
        return f"{who} have no {', '.join(missing)}"
    return None


_BACKEND_WORDS = {
    Backend.TORCH: "torch's fused kernels",
    Backend.MANUAL: "the manual backend's loops",
    Backend.FUSED: "lstmkit's fused kernels",
}
# per backend: the families it runs and, for each, the options (dataclass fields) it
# implements away from their defaults
_LSTM_VARIANTS = frozenset({"proj_size", "peephole", "coupled", "forget_gate"})
# Greff et al. (2015)'s ablations NIG, NOG, NIAF and NOAF, which the fused kernels (C++ and
# Triton) also run; FGR (gate_recurrence) and layer_norm only the C++ ones (fused_triton's
# run_lstm refuses them by name: this table is per backend, not per device)
_GREFF_ABLATIONS = frozenset({"input_gate", "output_gate", "input_activation", "output_activation"})
_IMPLEMENTED: dict[Backend, dict[type, frozenset[str]]] = {
    Backend.TORCH: {
        LSTMFamily: frozenset({"proj_size"}),
        GRUFamily: frozenset(),
        RNNFamily: frozenset({"nonlinearity"}),
    },
    Backend.MANUAL: {LSTMFamily: _LSTM_VARIANTS},
    Backend.FUSED: {
        LSTMFamily: _LSTM_VARIANTS | _GREFF_ABLATIONS | {"gate_recurrence", "layer_norm"},
        GRUFamily: frozenset({"reset_after"}),  # Cho et al.'s form as well as torch's
        MGUFamily: frozenset(),
        ClockworkFamily: frozenset({"periods"}),  # any increasing periods (Sec. 3)
        RNNFamily: frozenset({"nonlinearity"}),
        SLSTMFamily: frozenset({"num_heads", "forget_activation", "stabilized"}),
        MinGRUFamily: frozenset(),
        MinLSTMFamily: frozenset(),
    },
}


def choose_backend(
    requested: Backend,
    family: CellFamily,
    tracing: bool,
    device_type: str = "cpu",
    recompute: bool = False,
    *,
    dtype: torch.dtype = torch.float32,
    graph: bool = False,
    batch: int | None = None,
) -> Backend:
    """The backend that runs this call. ``recompute``: the layer recomputes activations in
    the backward (``recompute_every``), which needs a backend that runs one direction at a
    time, so not torch's, which runs every layer and step in one call. ``dtype`` is what the
    call computes in, ``graph`` whether it builds an autograd graph (a backward will
    follow) and ``batch`` its sequences (None: not known); ``auto`` weighs them for the
    plain LSTM on the CPU (:func:`_torch_lstm_wins`)."""
    if requested is Backend.TORCH and recompute:
        raise ValueError(
            "recompute_every needs a backend that runs one direction at a time, and torch's "
            "kernels run the whole layer in one call; use backend='auto', 'fused', 'manual' "
            "or 'reference'"
        )
    if requested is Backend.AUTO:
        if tracing:  # the reference's traces are differentiable; the fused ones are not
            return Backend.REFERENCE
        # torch's GRU and RNN backward passes are not fused, and lstmkit's kernels beat them
        # on the CPU (performance.md); its LSTM kernel (oneDNN) mostly wins (below)
        torch_can = unsupported_reason(Backend.TORCH, family) is None and not recompute
        if torch_can and (device_type != "cpu" or _torch_lstm_wins(family, dtype, graph, batch)):
            return Backend.TORCH
        fused_can = unsupported_reason(Backend.FUSED, family) is None
        if device_type == "cpu" and fused_can and _fused_cpu_ready(family):
            return Backend.FUSED
        if torch_can:
            return Backend.TORCH
        if unsupported_reason(Backend.MANUAL, family) is None:
            return Backend.MANUAL
        return Backend.REFERENCE
    if requested not in (Backend.REFERENCE, Backend.FUSED) and tracing:
        raise ValueError(
            f"return_trace=True needs the gates, which the {requested.value!r} backend does not "
            "record; use backend='auto', 'fused' or 'reference' for traced calls"
        )
    if requested is Backend.FUSED and device_type != "cpu":
        from lstmkit.layers.backends import fused_triton

        reason = fused_triton.unavailable_reason(device_type)
        if reason is not None:
            raise ValueError(
                f"backend='fused' cannot run {device_type!r} tensors here: {reason}. "
                "Use backend='auto' there"
            )
    return requested


# the plain LSTM's sizes where lstmkit's kernels train faster than torch's
# (benchmarks/lstm_auto_grid.py): in bfloat16 a hidden size of at least this, or a batch of
# one; in float32 a hidden size of at least this with a batch of at most this
FUSED_BFLOAT16_HIDDEN = 512
FUSED_FLOAT32_HIDDEN = 1024
FUSED_FLOAT32_MAX_BATCH = 16


def _torch_lstm_wins(
    family: CellFamily, dtype: torch.dtype, graph: bool, batch: int | None
) -> bool:
    """Whether torch's LSTM kernel (oneDNN) runs this CPU call, for the LSTM family (what
    torch runs of it: the plain cell, with or without projection).

    Not for a projection: oneDNN has none, and torch's CPU fallback for it is a loop of ATen
    calls that took 1.06 to 5x lstmkit's time at every size measured, forward and
    forward+backward, in float32 and bfloat16 (``benchmarks/lstm_auto_grid.py
    --proj-size``). Without one, torch's kernel runs a forward alone: in bfloat16 it was the
    faster at all but one size measured (1% slower there); in float32 lstmkit's forward was
    faster at some large sizes but not consistently. A call that will be differentiated goes
    to lstmkit's kernels where they trained faster in every run: in bfloat16 at H >= 512 or
    batch 1 (at worst 1% slower there, and up to 1.5x slower at a smaller H with a larger
    batch), in float32 at H >= 1024 with a batch of 16 or fewer (0.41 to 0.99x torch's time
    at T of 16, 64 and 256; at the large size, B=64, and at most smaller H torch's was the
    faster). docs/performance.md, "auto in bfloat16" and "auto's rule beyond one bfloat16
    layer"."""
    if not isinstance(family, LSTMFamily) or family.proj_size:
        return False
    if not graph:
        return True
    if dtype == torch.bfloat16:
        return family.hidden_size < FUSED_BFLOAT16_HIDDEN and batch != 1
    if dtype == torch.float32 and batch is not None:
        wide = family.hidden_size >= FUSED_FLOAT32_HIDDEN
        return not (wide and batch <= FUSED_FLOAT32_MAX_BATCH)
    return True


def _fused_cpu_ready(family: CellFamily) -> bool:
    """The family's fused CPU kernels can run (built on first call); warns once when they
    cannot."""
    from lstmkit.layers.backends import fused, fused_cpu

    return fused_cpu.ready_or_warn(
        fused.kernel_file(family),
        "falls back to torch's kernels where torch has the cell and to the slower Python "
        "loops elsewhere",
    )


__all__ = [
    "FUSED_BFLOAT16_HIDDEN",
    "FUSED_FLOAT32_HIDDEN",
    "FUSED_FLOAT32_MAX_BATCH",
    "Backend",
    "choose_backend",
    "unsupported_reason",
]
