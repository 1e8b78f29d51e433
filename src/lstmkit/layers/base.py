"""The sequence layer shared by LSTM, GRU and RNN: parameters named as torch names them,
stacking, bidirection, packing and lengths, input checks, backend choice, traces."""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from lstmkit._checks import expect_like, expect_positive_int, expect_shape
from lstmkit._state import state_arg_names, state_from_tuple, state_letters, state_to_tuple
from lstmkit.cellmath.family import CellFamily, Weights
from lstmkit.cellmath.params import check_forget_bias, parameter_shapes, reset_parameters
from lstmkit.layers.backends import (
    Backend,
    choose_backend,
    fused,
    manual_lstm,
    reference,
    torch_fused,
    unsupported_reason,
)
from lstmkit.layers.backends.recompute import run_direction as recompute_run_direction
from lstmkit.layers.regularize import (
    LoopNoise,
    check_rate,
    check_recurrent_dropout,
    check_zoneout,
    drop_weight,
    loop_noise,
)
from lstmkit.layers.sequence import SequenceBatch, prepare_input, restore_output
from lstmkit.trace import Trace


class RecurrentLayer(nn.Module):
    """A multi-layer, optionally bidirectional recurrent layer of any cell family.

    ``forward(input, hx=None, *, lengths=None, return_trace=False)`` takes what torch.nn's
    layers take and returns ``(output, state)``, or ``(output, state, trace)`` with
    ``return_trace=True`` (see :mod:`lstmkit.trace`). ``lengths`` (batch,) marks how many
    steps of a padded batch are real: the output is zero past each end and the final state
    is taken at each sequence's last step, as with a PackedSequence.

    ``recompute_every=N`` keeps for the backward only the state every N steps and reruns the
    steps between them in the backward (:mod:`~lstmkit.layers.backends.recompute`): memory
    for time, on any backend but torch's. Traced calls and calls without gradients run
    without it.

    Recurrent regularisers (:mod:`~lstmkit.layers.regularize`, equations and papers there),
    all off by default:

    - ``recurrent_dropout`` in [0, 1): variational dropout (Gal & Ghahramani 2016) of
      h_{t-1} where it enters the recurrent product, one mask per sequence for all steps.
    - ``zoneout`` in [0, 1], or one rate per state tensor (the LSTM's ``(h_rate, c_rate)``):
      each unit keeps its previous value with that probability each step (Krueger et al.
      2017); at evaluation s_t = p s_(t-1) + (1 - p) s~_t.
    - ``weight_drop`` in [0, 1): DropConnect on every ``weight_hh`` (Merity et al. 2018),
      one mask per call; the parameters themselves are untouched.

    They act in training only (zoneout's expectation apart) and ``dropout``, between
    layers, is unchanged beside them. Recurrent dropout and zoneout work inside the time
    loop, so only the reference loop runs them: backend 'auto' takes it for the calls they
    act in, and the fast backends refuse them. Weight-drop runs on every backend.
    """

    def __init__(
        self,
        family: CellFamily,
        input_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        forget_bias: float | None = None,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, ...] = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.family = family
        self.input_size = expect_positive_int(input_size, "input_size", owner)
        self.hidden_size = expect_positive_int(family.hidden_size, "hidden_size", owner)
        self.num_layers = expect_positive_int(num_layers, "num_layers", owner)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.dropout = _check_dropout(dropout, num_layers, owner)
        check_forget_bias(family, self.bias, forget_bias)
        self.forget_bias = forget_bias
        # the loop regularisers first: the backend setter checks it can run them
        self._recurrent_dropout = check_recurrent_dropout(recurrent_dropout, family, owner)
        self._zoneout = check_zoneout(zoneout, family, owner)
        self.weight_drop = weight_drop
        self.backend = backend  # validated by the setter below
        self.recompute_every = _check_recompute(recompute_every, self.backend, owner)

        self._layer_param_names: list[list[dict[str, str]]] = []
        for layer in range(self.num_layers):
            layer_input = (
                self.input_size if layer == 0 else family.state_sizes[0] * self.num_directions
            )
            per_direction = []
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                names = {}
                for base, shape in parameter_shapes(family, layer_input, self.bias).items():
                    param = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
                    self.register_parameter(base + suffix, param)
                    names[base] = base + suffix
                per_direction.append(names)
            self._layer_param_names.append(per_direction)
        self.reset_parameters()

    # -- configuration ----------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def backend(self) -> Backend:
        return self._backend

    @backend.setter
    def backend(self, value: Backend | str) -> None:
        backend = Backend.parse(value)
        reason = unsupported_reason(backend, self.family)
        if reason is None:
            reason = _loop_regularizers_reason(backend, self._recurrent_dropout, self._zoneout)
        if reason is not None:
            raise ValueError(
                f"backend={backend.value!r} cannot run this layer: {reason}; use 'auto' or "
                "'reference'"
            )
        self._backend = backend

    @property
    def recurrent_dropout(self) -> float:
        return self._recurrent_dropout

    @recurrent_dropout.setter
    def recurrent_dropout(self, value: float) -> None:
        rate = check_recurrent_dropout(value, self.family, type(self).__name__)
        self._refuse_loop_regularizers(rate, self._zoneout)
        self._recurrent_dropout = rate

    @property
    def zoneout(self) -> float | tuple[float, ...]:
        """One number when every state tensor has the same rate, else one per state."""
        return _as_given(self._zoneout)

    @zoneout.setter
    def zoneout(self, value: float | tuple[float, ...]) -> None:
        rates = check_zoneout(value, self.family, type(self).__name__)
        self._refuse_loop_regularizers(self._recurrent_dropout, rates)
        self._zoneout = rates

    @property
    def weight_drop(self) -> float:
        return self._weight_drop

    @weight_drop.setter
    def weight_drop(self, value: float) -> None:
        owner = type(self).__name__
        rate = check_rate(value, "weight_drop", owner, one_allowed=False)
        if rate > 0 and "weight_hh" not in parameter_shapes(self.family, 1, True):
            raise ValueError(
                f"{owner}: weight_drop={rate} drops entries of the recurrent matrix, and the "
                f"{self.family.name} cell has none (its gates read x_t only)"
            )
        self._weight_drop = rate

    def _refuse_loop_regularizers(self, recurrent_dropout: float, zoneout) -> None:
        reason = _loop_regularizers_reason(self.backend, recurrent_dropout, zoneout)
        if reason is not None:
            raise ValueError(
                f"{type(self).__name__} has backend={self.backend.value!r}, which cannot run "
                f"this: {reason}; set backend='auto' or 'reference' first"
            )

    def reset_parameters(self) -> None:
        for directions in self._layer_param_names:
            for names in directions:
                params = {base: getattr(self, full) for base, full in names.items()}
                reset_parameters(params, self.family, self.forget_bias)

    def layer_weights(self, layer: int, direction: int) -> Weights:
        """One layer-direction's parameters by base name ("weight_ih", "weight_hh", ...)."""
        return {
            base: getattr(self, full)
            for base, full in self._layer_param_names[layer][direction].items()
        }

    @property
    def _flat_weights_names(self) -> list[str]:
        """torch's order: per layer and direction w_ih, w_hh, b_ih, b_hh, w_hr."""
        return [
            names[base]
            for directions in self._layer_param_names
            for names in directions
            for base in _TORCH_ORDER
            if base in names
        ]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Per layer and direction, the parameters in registration order, as torch's."""
        return [
            [getattr(self, full) for full in names.values()]
            for directions in self._layer_param_names
            for names in directions
        ]

    def flatten_parameters(self) -> None:
        """As torch.nn.LSTM's: a no-op on the CPU. On a GPU the torch backend still runs
        correctly on unflattened weights (torch copies them per call and warns)."""

    # -- forward ---------------------------------------------------------------------------

    def forward(self, input, hx=None, *, lengths=None, return_trace: bool = False):
        owner = type(self).__name__
        param = self.weight_ih_l0
        seq = prepare_input(input, lengths, self.batch_first, self.input_size, owner)
        device_type = seq.data.device.type
        lowered = _autocast_dtype(param, device_type)
        if lowered is not None and seq.data.dtype in (param.dtype, lowered):
            seq = seq.to_dtype(lowered)
        compute_dtype = lowered or param.dtype
        _expect_input_like(seq.data, param, compute_dtype, owner)
        initial = self._initial_state(hx, seq, owner, compute_dtype)

        recompute = (
            self.recompute_every is not None and not return_trace and torch.is_grad_enabled()
        )
        noise = loop_noise(self._recurrent_dropout, self._zoneout, self.training)
        requested = self.backend
        if noise is not None:
            # Recurrent dropout and zoneout act between the steps of the time loop, which only
            # the reference loop runs in Python, one family.step at a time; the fast backends
            # run the whole loop in one kernel. choose_backend knows nothing of them, so the
            # call asks it for the reference loop here. An explicit fast backend never gets
            # this far: the backend and regulariser setters refuse the combination.
            requested = Backend.REFERENCE
        backend = choose_backend(
            requested,
            self.family,
            return_trace,
            device_type,
            recompute,
            dtype=compute_dtype,
            # only auto weighs it: an explicit backend's call need not walk the parameters
            graph=requested is Backend.AUTO and _builds_graph(seq.data, initial, self.parameters()),
            batch=seq.batch,
        )
        # under autocast the layer runs wholly in its lower dtype, with the casts made here
        # (differentiable, so the float32 parameters get float32 gradients): autocast's own
        # per-op casting would hand the kernels mixed dtypes
        with torch.autocast(device_type, enabled=False) if lowered else contextlib.nullcontext():
            output, final, trace_tensors = self._run(
                backend, seq, initial, return_trace, recompute, lowered, noise
            )
        output = restore_output(output, seq)
        if not seq.batched:
            final = tuple(s.squeeze(1) for s in final)
        state = state_from_tuple(final)
        if not return_trace:
            return output, state
        return output, state, Trace(self.family.name, trace_tensors, seq.lengths)

    def _run(
        self,
        backend: Backend,
        seq: SequenceBatch,
        initial,
        record: bool,
        recompute: bool,
        dtype: torch.dtype | None = None,
        noise: LoopNoise | None = None,
    ):
        """The output (T, B, D*R), or a PackedSequence; final states; trace tensors or None.
        ``dtype``: run on the parameters cast to it (autocast), else on them as they are.
        ``noise``: this call's recurrent dropout and zoneout (reference backend only)."""

        def cast(weight: Tensor | None) -> Tensor | None:
            return weight if weight is None or dtype is None else weight.to(dtype)

        dropout = self.dropout if self.training else 0.0
        weights = [
            [
                {k: cast(w) for k, w in self._call_weights(layer, d).items()}
                for d in range(self.num_directions)
            ]
            for layer in range(self.num_layers)
        ]
        if backend is Backend.TORCH:
            options = (self.bias, self.num_layers, dropout, self.training, self.bidirectional)
            flat = [  # torch's order, as _flat_weights
                w[base] for layer in weights for w in layer for base in _TORCH_ORDER if base in w
            ]
            output, final = torch_fused.run(self.family, seq, initial, flat, *options)
            return output, final, None
        direction_fn = self._direction_fn(backend, record, noise)
        if recompute:
            direction_fn = partial(recompute_run_direction, direction_fn, self.recompute_every)
        return reference.run_layers(
            self.family, seq.data, initial, weights, seq.step_mask(), dropout, record,
            direction_fn, noise,
        )  # fmt: skip

    def _direction_fn(self, backend: Backend, record: bool, noise: LoopNoise | None) -> Callable:
        """What runs one layer in one direction on ``backend`` (the contract of
        :func:`~lstmkit.layers.backends.reference.run_direction`); a layer whose cell has a
        faster loop of its own (the min cells' parallel scan) overrides this."""
        return {
            Backend.FUSED: fused.run_direction,
            Backend.MANUAL: manual_lstm.run_direction,
            Backend.REFERENCE: reference.run_direction,
        }[backend]

    def _call_weights(self, layer: int, direction: int) -> Weights:
        """One layer-direction's weights for this call: the parameters, with weight-drop's
        mask on ``weight_hh`` in training (applied here, functionally, so every backend
        runs it and the parameter itself stays as it is)."""
        weights = self.layer_weights(layer, direction)
        if self.training and self._weight_drop > 0:
            weights = {**weights, "weight_hh": drop_weight(weights["weight_hh"], self._weight_drop)}
        return weights

    def _initial_state(
        self, hx, seq: SequenceBatch, owner: str, dtype: torch.dtype
    ) -> tuple[Tensor, ...]:
        """(L*D, B, size) per state tensor, in ``dtype`` (the parameters', or autocast's,
        which also takes a state in the parameters' dtype); zeros when hx is None."""
        sizes = self.family.state_sizes
        stacked = self.num_layers * self.num_directions
        if hx is None:
            return tuple(seq.data.new_zeros(stacked, seq.batch, size) for size in sizes)
        letters = state_letters(self.family)
        state = state_to_tuple(hx, letters, owner)
        names = state_arg_names(letters)
        rank = 3 if seq.batched else 2
        ranks = [s.dim() for s in state]
        if any(r != rank for r in ranks):
            kind = "batched 3-D" if seq.batched else "unbatched 2-D"
            raise ValueError(
                f"{owner}: for {kind} input the initial state must be {rank}-D, got "
                + ", ".join(f"{n} {r}-D" for n, r in zip(names, ranks, strict=True))
            )
        checked = []
        for tensor, size, name in zip(state, sizes, names, strict=True):
            if seq.batched:
                expected = (stacked, seq.batch, size)
                meaning = "(num_layers * num_directions, batch, size)"
            else:
                expected, meaning = (stacked, size), "(num_layers * num_directions, size)"
            expect_shape(tensor, expected, name, owner, meaning)
            if dtype != self.weight_ih_l0.dtype and tensor.dtype == self.weight_ih_l0.dtype:
                tensor = tensor.to(dtype)
            _expect_input_like(tensor, self.weight_ih_l0, dtype, owner, name)
            checked.append(tensor if seq.batched else tensor.unsqueeze(1))
        return tuple(checked)

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        for name, default in [
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ]:
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)}")
        if self.backend is not Backend.AUTO:
            parts.append(f"backend={self.backend.value!r}")
        if self.recompute_every is not None:
            parts.append(f"recompute_every={self.recompute_every}")
        if self.recurrent_dropout:
            parts.append(f"recurrent_dropout={self.recurrent_dropout}")
        if any(self._zoneout):
            parts.append(f"zoneout={self.zoneout}")
        if self.weight_drop:
            parts.append(f"weight_drop={self.weight_drop}")
        return ", ".join(parts)


# torch's order of one layer-direction's parameters in its flat list
_TORCH_ORDER = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def _loop_regularizers_reason(
    backend: Backend, recurrent_dropout: float, zoneout: tuple[float, ...]
) -> str | None:
    """Why ``backend`` cannot run these loop regularisers, or None if it can: only the
    reference loop (and 'auto', which takes it for them) applies them between steps."""
    if backend in (Backend.AUTO, Backend.REFERENCE):
        return None
    used = []
    if recurrent_dropout > 0:
        used.append(f"recurrent_dropout={recurrent_dropout}")
    if any(zoneout):
        used.append(f"zoneout={_as_given(zoneout)}")
    if not used:
        return None
    verb = "act" if len(used) > 1 else "acts"
    return (
        f"{' and '.join(used)} {verb} between the steps of the time loop, which only the "
        "reference loop runs step by step (weight_drop runs on every backend)"
    )


def _as_given(rates: tuple[float, ...]) -> float | tuple[float, ...]:
    """Zoneout's rates as a user passes them: one number when all states share it."""
    return rates[0] if len(set(rates)) == 1 else rates


def _autocast_dtype(param: Tensor, device_type: str) -> torch.dtype | None:
    """The lower dtype autocast asks for on this device, when it is on and the parameters
    are float32 (autocast lowers float32 only); else None."""
    if param.dtype != torch.float32 or not torch.amp.is_autocast_available(device_type):
        return None  # autocast has no state at all for some devices (meta)
    if not torch.is_autocast_enabled(device_type):
        return None
    lowered = torch.get_autocast_dtype(device_type)
    return lowered if lowered in (torch.bfloat16, torch.float16) else None


def _builds_graph(x: Tensor, initial: tuple[Tensor, ...], parameters) -> bool:
    """Whether the call builds an autograd graph: gradients are on and the input, a state
    or a parameter asks for one, so a backward will follow the forward."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(t.requires_grad for t in (*initial, *parameters))


def _expect_input_like(
    tensor: Tensor, param: Tensor, dtype: torch.dtype, owner: str, name: str = "input"
) -> None:
    """``tensor`` on the parameters' device, in the dtype the layer computes in: the
    parameters' own, or under autocast its lower one."""
    if dtype == param.dtype:
        expect_like(tensor, param, name, owner)
        return
    if tensor.dtype != dtype:
        raise TypeError(
            f"{owner}: under autocast the layer computes in {dtype}; {name} has dtype "
            f"{tensor.dtype}, expected {param.dtype} or {dtype}"
        )
    if tensor.device != param.device:
        expect_like(tensor.to(param.dtype), param, name, owner)  # the device error


def _check_recompute(every, backend: Backend, owner: str) -> int | None:
    if every is None:
        return None
    every = expect_positive_int(every, "recompute_every", owner)
    if backend is Backend.TORCH:
        raise ValueError(
            f"{owner}: recompute_every needs a backend that runs one direction at a time; "
            "torch's kernels run the whole layer in one call. Use backend='auto', 'fused', "
            "'manual' or 'reference'"
        )
    return every


def _check_dropout(dropout, num_layers: int, owner: str) -> float:
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Number)
        or not 0 <= dropout <= 1
    ):
        raise ValueError(f"{owner}: dropout must be a number in [0, 1], got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            f"{owner}: dropout={dropout} has no effect with num_layers=1: dropout applies "
            "between layers, to every layer's output but the last",
            stacklevel=3,
        )
    return float(dropout)


__all__ = ["RecurrentLayer"]
