"""What the modules that run their own stack of LSTM layers share (the depth-gated and the
Grid LSTM, whose layers are joined through their memory, so the shared
:class:`~lstmkit.layers.base.RecurrentLayer` loop cannot run them): torch.nn.LSTM's
constructor arguments checked once, the backend choice, ``hx = (h_0, c_0)`` split per
layer, the parameters by layer, the initialisation, the outputs put back into the input's
layout, and the repr. Legend: T time, B batch, H hidden size, L layers.

Backends (``backend=``, :class:`~lstmkit.layers.backends.Backend`):

- ``"reference"``: the layer's own Python loop over the family's step, differentiated by
  autograd (any device and dtype, differentiable traces, higher derivatives).
- ``"fused"``: one call per layer of hand-written kernels, chosen by the tensors' device
  (:func:`stack_kernels`): on CPU tensors the C++ kernels of
  :mod:`lstmkit.layers.backends.fused_cpu.stacks` (built on first use; float32, float64 or
  bfloat16), on CUDA tensors the Triton kernels of
  :mod:`lstmkit.layers.backends.fused_triton.stacks` (float16, bfloat16 or float32).
  First derivatives only; traces are recorded, detached from the autograd graph, as the
  other fused cells record them.
- ``"auto"`` (default): ``"fused"`` for an untraced call on CPU tensors of the C++ kernels'
  dtypes when the kernels build, else ``"reference"`` (a traced call takes the reference,
  whose traces are differentiable; when the kernels cannot be built it warns once). On
  CUDA tensors it takes the reference: the Triton kernels are not yet measured on a GPU,
  so, as for every other cell, ``auto`` never chooses them.

``"torch"`` and ``"manual"`` are refused: torch has no such cells, and the manual backend's
loops run the LSTM family only.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lstmkit._checks import expect_positive_int, expect_shape
from lstmkit._state import state_arg_names, state_to_tuple
from lstmkit.cellmath.params import check_forget_bias, forget_rows
from lstmkit.layers.backends import Backend, fused
from lstmkit.layers.base import _autocast_dtype, _check_dropout, _expect_input_like
from lstmkit.layers.sequence import SequenceBatch, prepare_input, restore_output
from lstmkit.trace import Trace


class MemoryJoinedStack(nn.Module):
    """The common part of a one-direction stack of LSTM layers with its own time loop.

    A subclass calls :meth:`_set_stack` in its constructor, registers its parameters with
    ``_layer_param_names`` (per layer, base name -> registered name) and returns from
    ``forward`` through :meth:`_outputs`. ``_repr_options`` names its own keyword options
    and their defaults for the repr; ``_forget_bias_prefixes`` the transforms whose forget
    gate ``forget_bias`` sets (``"bias_{prefix}ih"``)."""

    _repr_options: tuple[tuple[str, object], ...] = ()
    _layer_param_names: list[dict[str, str]]

    def _set_stack(
        self,
        family,
        input_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        forget_bias: float | None,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
    ) -> None:
        """Check and keep torch.nn.LSTM's arguments (the hidden size is the family's), the
        backend and ``recompute_every`` (None, or the steps between the states kept)."""
        owner = type(self).__name__
        self.family = family
        self.input_size = expect_positive_int(input_size, "input_size", owner)
        self.hidden_size = family.hidden_size
        self.num_layers = expect_positive_int(num_layers, "num_layers", owner)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = False
        self.dropout = _check_dropout(dropout, num_layers, owner)
        check_forget_bias(family, self.bias, forget_bias)
        self.forget_bias = forget_bias
        self.backend = backend  # validated by the setter below
        self.recompute_every = (
            None if recompute_every is None else expect_positive_int(
                recompute_every, "recompute_every", owner
            )
        )  # fmt: skip

    @property
    def backend(self) -> Backend:
        return self._backend

    @backend.setter
    def backend(self, value: Backend | str) -> None:
        backend = Backend.parse(value)
        if backend not in STACK_BACKENDS:
            offered = ", ".join(repr(b.value) for b in STACK_BACKENDS)
            raise ValueError(
                f"{type(self).__name__}: backend={backend.value!r} cannot run this layer: "
                f"{_REFUSED[backend]}; it takes {offered}"
            )
        self._backend = backend

    def resolve_backend(self, tracing: bool, device: str, dtype: torch.dtype) -> Backend:
        """The backend that runs a call on tensors of this device type and dtype: REFERENCE
        or FUSED (see the module docstring); an explicit ``"fused"`` that cannot run it is
        an error."""
        if self.backend is Backend.REFERENCE:
            return Backend.REFERENCE
        if self.backend is Backend.FUSED:
            if device == "cpu":
                self._check_cpu_kernels(dtype)
            else:
                self._check_triton_kernels(device, dtype)
            return Backend.FUSED
        if tracing or device != "cpu" or dtype not in _FUSED_DTYPES or not _fused_ready():
            return Backend.REFERENCE
        return Backend.FUSED

    def _check_cpu_kernels(self, dtype: torch.dtype) -> None:
        """An explicit ``"fused"`` on CPU tensors: the C++ kernels' dtypes, and kernels that
        build."""
        if dtype not in _FUSED_DTYPES:
            raise ValueError(
                f"{type(self).__name__}: backend='fused' runs float32, float64 and bfloat16, "
                f"got {dtype}; use backend='auto' or 'reference'"
            )
        from lstmkit.layers.backends.fused_cpu import load_ops
        from lstmkit.layers.backends.fused_cpu.stacks import KERNEL_FILE

        load_ops(KERNEL_FILE)  # a clear FusedUnavailable where they cannot be built

    def _check_triton_kernels(self, device: str, dtype: torch.dtype) -> None:
        """An explicit ``"fused"`` on other tensors: the Triton kernels, where they run."""
        from lstmkit.layers.backends import fused_triton

        owner = type(self).__name__
        reason = fused_triton.unavailable_reason(device)
        if reason is not None:
            raise ValueError(
                f"{owner}: backend='fused' cannot run {device!r} tensors here: {reason}; use "
                "backend='auto' or 'reference'"
            )
        if dtype not in fused_triton.DTYPES:
            names = ", ".join(str(d).removeprefix("torch.") for d in fused_triton.DTYPES)
            raise ValueError(
                f"{owner}: backend='fused' runs {names} on {device!r} tensors (its Triton "
                f"kernels compute in float32), got {dtype}; use backend='auto' or 'reference'"
            )

    def _fused_kernels(self, device_type: str) -> ModuleType:
        """The runners of the fused backend for tensors of this device type (looked up at
        each call, so that tests can swap :func:`stack_kernels`)."""
        return stack_kernels(device_type)

    @property
    def num_directions(self) -> int:
        return 1

    def _forget_bias_prefixes(self) -> tuple[str, ...]:
        return ("",)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.nn.LSTM; then, when
        ``forget_bias`` is set, each LSTM transform's forget-gate bias (b_if = forget_bias,
        b_hf = 0)."""
        bound = 1.0 / self.hidden_size**0.5
        for param in self.parameters():
            param.uniform_(-bound, bound)
        if self.forget_bias is not None:
            rows = forget_rows(self.family)
            for layer in range(self.num_layers):
                weights = self.layer_weights(layer)
                for prefix in self._forget_bias_prefixes():
                    weights[f"bias_{prefix}ih"][rows] = self.forget_bias
                    weights[f"bias_{prefix}hh"][rows] = 0.0

    def layer_weights(self, layer: int) -> dict[str, Tensor]:
        """One layer's parameters by base name ("weight_ih", ...)."""
        return {base: getattr(self, full) for base, full in self._layer_param_names[layer].items()}

    def compute_weights(self, layer: int, dtype: torch.dtype) -> dict[str, Tensor]:
        """:meth:`layer_weights` for a forward in ``dtype`` (x's): cast where autocast
        lowered the call, differentiably, so float32 parameters get float32 gradients."""
        return {name: w.to(dtype) for name, w in self.layer_weights(layer).items()}

    def _prepare(self, input, hx, lengths) -> tuple[SequenceBatch, list[tuple[Tensor, Tensor]]]:
        """The input as a SequenceBatch and each layer's (h_0, c_0), checked and in the dtype
        the stack computes in: its parameters', or under autocast the lower one autocast asks
        for, as every lstmkit layer does (``tests/test_autocast.py``); an input or state in
        the parameters' dtype is then cast."""
        owner = type(self).__name__
        param = next(self.parameters())
        seq = prepare_input(input, lengths, self.batch_first, self.input_size, owner)
        lowered = _autocast_dtype(param, seq.data.device.type)
        if lowered is not None and seq.data.dtype == param.dtype:
            seq = seq.to_dtype(lowered)
        dtype = lowered or param.dtype
        _expect_input_like(seq.data, param, dtype, owner)
        return seq, layer_states(hx, seq, self.num_layers, self.hidden_size, param, dtype, owner)

    def _run_stack(
        self,
        x: Tensor,
        states: list[tuple[Tensor, Tensor]],
        mask: Tensor | None,
        backend: Backend,
        record: bool,
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]], dict[str, Tensor] | None]:
        """Every layer over the steps of x (T, B, I) from ``states`` (per layer (h, c)):
        the top output (T, B, H), zero past each end, the final states per layer and, when
        ``record``, the trace tensors (L, 1, B, T, H). Each stack writes its own."""
        raise NotImplementedError

    def _run(self, x, states, mask, backend, record):
        """:meth:`_run_steps` with autocast off: x is already in the dtype the stack computes
        in (:meth:`_prepare`), and autocast's per-operator casts would lower the input
        products alone, handing the kernels mixed dtypes."""
        if not torch.amp.is_autocast_available(x.device.type):
            return self._run_steps(x, states, mask, backend, record)
        with torch.autocast(x.device.type, enabled=False):
            return self._run_steps(x, states, mask, backend, record)

    def _run_steps(self, x, states, mask, backend, record):
        """:meth:`_run_stack`, in chunks of steps, every layer within a chunk and the states
        carried from one chunk to the next, in two cases:

        - ``recompute_every`` set (and gradients wanted, no trace): checkpointed chunks of
          that many steps. The backward keeps only the chunks' starting states and reruns
          each chunk's forward (dropout's draws included: the checkpoint restores the random
          state), as ``layers/backends/recompute.py`` does for the other layers.
        - the fused kernels on a call that builds no graph and records no trace: what they
          keep for a backward is not needed, so a long call holds one chunk's, as
          ``backends/fused.py`` does for the other cells (``fused.steps_per_chunk``, sized
          by one layer's gates)."""
        steps = fused.steps_per_chunk(x.shape[1], 4 * self.hidden_size)
        if backend is Backend.FUSED and not record and steps < x.shape[0]:
            state_tensors = (t for pair in states for t in pair)
            if not fused.builds_graph(x, *state_tensors, *self.parameters()):
                return self._run_in_chunks(x, states, mask, backend, steps, self._chunk)
        every = self.recompute_every
        if every is None or record or not torch.is_grad_enabled():
            return self._run_stack(x, states, mask, backend, record)

        def checkpointed(*args):
            return checkpoint(self._chunk, *args, use_reentrant=False)

        return self._run_in_chunks(x, states, mask, backend, every, checkpointed)

    def _run_in_chunks(self, x, states, mask, backend, steps: int, run_chunk):
        """``run_chunk`` (:meth:`_chunk`'s contract) over consecutive chunks of ``steps``."""
        outputs = []
        for start in range(0, x.shape[0], steps):
            piece = slice(start, start + steps)
            flat = [tensor for pair in states for tensor in pair]
            output, *flat = run_chunk(
                x[piece], None if mask is None else mask[piece], backend, *flat
            )
            outputs.append(output)
            states = list(zip(flat[0::2], flat[1::2], strict=True))
        return torch.cat(outputs), states, None

    def _chunk(self, x, mask, backend, *flat):
        states = list(zip(flat[0::2], flat[1::2], strict=True))
        output, states, _ = self._run_stack(x, states, mask, backend, False)
        return output, *(tensor for pair in states for tensor in pair)

    def _step_mask(self, mask: Tensor | None) -> Tensor | None:
        """The kernels' (T, B) mask from the loop's (T, B, 1) one."""
        return None if mask is None else mask[..., 0].contiguous()

    def _outputs(
        self,
        output: Tensor,
        states: list[tuple[Tensor, Tensor]],
        seq: SequenceBatch,
        mask: Tensor | None,
        trace: dict[str, Tensor] | None,
    ):
        """``output, (h_n, c_n)`` as torch.nn.LSTM returns them, and the trace when given.
        output (T, B, H) in time-major order, zeroed here past each sequence's end; states
        per layer (h, c), each (B, H); trace tensors (L, 1, B, T, H)."""
        if mask is not None:
            output = output.masked_fill(~mask, 0.0)
        h_n = torch.stack([h for h, _ in states])  # (L, B, H)
        c_n = torch.stack([c for _, c in states])
        if not seq.batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        result = (restore_output(output, seq), (h_n, c_n))
        if trace is None:
            return result
        return (*result, Trace(self.family.name, trace, seq.lengths))

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        defaults = (("bias", True), ("batch_first", False), ("dropout", 0.0), *self._repr_options)
        for name, default in defaults:
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)!r}")
        if self.backend is not Backend.AUTO:
            parts.append(f"backend={self.backend.value!r}")
        if self.recompute_every is not None:
            parts.append(f"recompute_every={self.recompute_every}")
        return ", ".join(parts)


STACK_BACKENDS = (Backend.REFERENCE, Backend.FUSED, Backend.AUTO)
"""The backends a memory-joined stack takes (the others are refused, as ``_REFUSED`` says)."""
_REFUSED = {
    Backend.TORCH: "torch's fused kernels have no memory-joined stacks",
    Backend.MANUAL: "the manual backend's loops run the LSTM family only",
}
_FUSED_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
"""The C++ kernels' dtypes (the Triton kernels' are ``fused_triton.DTYPES``)."""


def stack_kernels(device_type: str) -> ModuleType:
    """The module whose ``run_depth_gated_layer`` and ``run_grid_layer`` run tensors of this
    device type: the C++ kernels' for CPU tensors, the Triton kernels' otherwise (the tests
    replace this function to run the Triton kernels on CPU tensors, interpreted)."""
    if device_type == "cpu":
        from lstmkit.layers.backends.fused_cpu import stacks
    else:
        from lstmkit.layers.backends.fused_triton import stacks
    return stacks


def _fused_ready() -> bool:
    """stacks.cpp's kernels can run (built on the first call); warns once when they cannot."""
    from lstmkit.layers.backends import fused_cpu
    from lstmkit.layers.backends.fused_cpu.stacks import KERNEL_FILE

    return fused_cpu.ready_or_warn(
        KERNEL_FILE, "runs the depth-gated and Grid LSTM stacks on their slower Python loop"
    )


def layer_states(
    hx,
    seq: SequenceBatch,
    num_layers: int,
    hidden: int,
    param: Tensor,
    dtype: torch.dtype,
    owner: str,
) -> list[tuple[Tensor, Tensor]]:
    """Per layer the pair (h_0, c_0), each (B, H); zeros when hx is None. ``hx`` is
    (h_0, c_0), each (num_layers, B, H), or (num_layers, H) for unbatched input."""
    if hx is None:
        zeros = seq.data.new_zeros(num_layers, seq.batch, hidden)
        return [(zeros[k], zeros[k]) for k in range(num_layers)]
    state = state_to_tuple(hx, ("h", "c"), owner)
    names = state_arg_names(("h", "c"))
    if seq.batched:
        expected, meaning = (num_layers, seq.batch, hidden), "(num_layers, batch, hidden_size)"
    else:
        expected, meaning = (num_layers, hidden), "(num_layers, hidden_size) for unbatched input"
    checked = []
    for tensor, name in zip(state, names, strict=True):
        expect_shape(tensor, expected, name, owner, meaning)
        if dtype != param.dtype and tensor.dtype == param.dtype:
            tensor = tensor.to(dtype)  # under autocast, as the other layers take it
        _expect_input_like(tensor, param, dtype, owner, name)
        checked.append(tensor if seq.batched else tensor.unsqueeze(1))
    h_0, c_0 = checked
    return [(h_0[k], c_0[k]) for k in range(num_layers)]
