r"""Recurrent regularisers: variational recurrent dropout, zoneout and weight-drop.

Legend: B batch, R size of h (the output: the projection size if any, else H), H hidden
size, G gate blocks, s one state tensor (h, or the LSTM's c), p a rate.

**Recurrent dropout** (Gal & Ghahramani 2016, "A Theoretically Grounded Application of
Dropout in Recurrent Neural Networks", Sec. 4): one mask per sequence, per layer and
direction, drawn once per call and used at every step, on h_{t-1} where it enters the
recurrent product (inverted scaling, so evaluation needs no rescaling):

.. math::
    m &\sim \text{Bernoulli}(1 - p)^{B \times R}  \qquad \text{(once per call)}      \\
    z_t &= x_t W_{ih}^T + b_{ih} + \big(\tfrac{m}{1 - p} \odot h_{t-1}\big) W_{hh}^T + b_{hh}

One mask serves all gate blocks: Gal's "tied" parametrisation, where the blocks share one
stacked matrix W_hh and dropping a unit of h_{t-1} drops its column for every gate. For the
LSTM and the plain RNN h_{t-1} enters the step only through that product. The GRU also
carries h_{t-1} past every weight, in h_t = (1 - z_t) n_t + z_t h_{t-1}; Gal's masks drop
rows of weight matrices (the Bayesian reading of Sec. 3), so that term keeps the undropped
h_{t-1} (as Keras's ``recurrent_dropout`` does). The input x_t is not dropped here: torch's
``dropout`` argument (between layers, a fresh mask per step) stays as it is.

**Zoneout** (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
Activations", Sec. 3): during training each unit of each state tensor keeps its previous
value with probability p, with a fresh mask every step; at evaluation the expectation of
that noise, as with dropout (the authors' TensorFlow code, ``zoneout_tensorflow.py``, does
exactly this):

.. math::
    d_t &\sim \text{Bernoulli}(p)^{B \times |s|}  \qquad \text{(every step)}         \\
    s_t &= d_t \odot s_{t-1} + (1 - d_t) \odot \tilde s_t  \qquad \text{(training)}   \\
    s_t &= p \, s_{t-1} + (1 - p) \, \tilde s_t            \qquad \text{(evaluation)}

where \tilde s_t is the state the cell's step computes from s_{t-1}. For the LSTM, h and c
each have their own rate (Sec. 3.1: c_t zones out from the step's new c, h_t from
o_t \odot \tanh of that new c, before either is zoned out); the output at t is the zoned h_t.
p = 1 freezes the state.

**Weight-drop** (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM Language
Models", Sec. 4.1; DropConnect, Wan et al. 2013): one mask on each recurrent matrix per call,
so the same at every step and shared by the batch:

.. math::
    \tilde W_{hh} = \tfrac{M}{1 - p} \odot W_{hh}, \qquad
    M \sim \text{Bernoulli}(1 - p)^{G R \times R}  \quad (G H \times R \text{ for } W_{hh})

The parameter stays the parameter: the dropped copy is what the call passes to the backend,
so any backend runs it and saving, loading, copying and moving the layer are unaffected.

All three act in training only, apart from zoneout's expectation at evaluation. Every mask
comes from :func:`bernoulli`, from torch's global generator, in this order within a call:
weight-drop's (layer by layer, forward direction first), then for each layer and direction
in turn its recurrent-dropout mask, then per step (in the direction's order of time)
zoneout's, one per state tensor with a nonzero rate, h first.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from lstmkit.cellmath.family import CellFamily, StepResult, Weights
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.rnn import RNNFamily

# The families whose step function we know to use h_{t-1}, the state, only in the recurrent
# product, and those whose other use of it we undo (the GRU's interpolation); exact types, as
# the backends list theirs, so a changed step is not silently given the wrong placement.
_H_ONLY_IN_PRODUCT = (LSTMFamily, RNNFamily)
_H_ALSO_INTERPOLATED = (GRUFamily,)


def bernoulli(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """A bool mask on ``like``'s device, each entry True with probability ``p``. Every mask
    of this module is drawn here (tests watch this function to see the masks)."""
    return torch.rand(shape, device=like.device) < p


# -- checks ------------------------------------------------------------------------------


def check_rate(value, name: str, owner: str, *, one_allowed: bool) -> float:
    """A probability in [0, 1) (dropout: 1 would scale by 1/0), or [0, 1] (zoneout)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    upper_ok = value <= 1 if one_allowed else value < 1
    if not (value >= 0 and upper_ok):  # also False for NaN
        interval = "[0, 1]" if one_allowed else "[0, 1)"
        raise ValueError(f"{owner}: {name} must be in {interval}, got {value!r}")
    return float(value)


def check_recurrent_dropout(value, family: CellFamily, owner: str) -> float:
    rate = check_rate(value, "recurrent_dropout", owner, one_allowed=False)
    if rate > 0 and type(family) not in (*_H_ONLY_IN_PRODUCT, *_H_ALSO_INTERPOLATED):
        raise ValueError(
            f"{owner}: recurrent_dropout is implemented for the LSTM, GRU and RNN cells, whose "
            f"use of h_(t-1) outside the recurrent product is known; the {family.name!r} cell "
            f"({type(family).__name__}) is not among them. Use zoneout or weight_drop"
        )
    return rate


def check_zoneout(value, family: CellFamily, owner: str) -> tuple[float, ...]:
    """One rate per state tensor: a number for all of them, or a tuple with one each. A
    family whose other state tensors must not zone out says why in ``zoneout_only_h``."""
    count = len(family.state_sizes)
    if isinstance(value, tuple | list):
        if len(value) != count:
            what = {1: "one, for h", 2: "two, (h_rate, c_rate)"}.get(count, f"{count}, h first")
            raise ValueError(
                f"{owner}: zoneout takes one number, or one rate per state tensor: {what} for "
                f"the {family.name!r} cell, got {len(value)} values {tuple(value)!r}"
            )
        rates = tuple(
            check_rate(v, f"zoneout[{k}]", owner, one_allowed=True) for k, v in enumerate(value)
        )
    else:
        rates = (check_rate(value, "zoneout", owner, one_allowed=True),) * count
    only_h = getattr(family, "zoneout_only_h", None)
    if only_h is not None and any(rates[1:]):
        zeros = ", ".join(["0.0"] * (count - 1))
        raise ValueError(
            f"{owner}: zoneout={value!r} {only_h}; give (h_rate, {zeros}) to zone out h alone"
        )
    return rates


# -- weight-drop ---------------------------------------------------------------------------


def drop_weight(weight: Tensor, p: float) -> Tensor:
    """DropConnect: ``weight`` with each entry zeroed with probability p and the rest scaled
    by 1/(1-p); differentiable, the parameter itself untouched."""
    keep = bernoulli(tuple(weight.shape), 1 - p, weight)
    return weight * keep.to(weight.dtype) / (1 - p)


# -- recurrent dropout and zoneout: the time loop's part ----------------------------------


@dataclass(frozen=True)
class LoopNoise:
    """What recurrent dropout and zoneout do in one call; build with :func:`loop_noise`."""

    recurrent_dropout: float
    """0 unless training."""
    zoneout: tuple[float, ...]
    """Per state tensor."""
    training: bool

    def for_direction(self, family: CellFamily, batch: int, like: Tensor) -> NoisyFamily:
        """``family`` with this call's noise for one layer and direction: its recurrent
        dropout mask is drawn now, once for the whole sequence."""
        scale = None
        if self.recurrent_dropout > 0:
            p = self.recurrent_dropout
            keep = bernoulli((batch, family.state_sizes[0]), 1 - p, like)
            scale = keep.to(like.dtype) / (1 - p)  # (B, R)
        return NoisyFamily(family, scale, self.zoneout, self.training)


def loop_noise(recurrent_dropout: float, zoneout: tuple[float, ...], training: bool):
    """The noise of this call, or None when neither acts (then every backend can run it)."""
    recurrent_dropout = recurrent_dropout if training else 0.0
    if recurrent_dropout == 0 and not any(zoneout):
        return None
    return LoopNoise(recurrent_dropout, zoneout, training)


@dataclass(frozen=True)
class NoisyFamily:
    """A cell family whose step applies one direction's recurrent dropout and zoneout around
    the wrapped family's own step, which stays unchanged. The reference loop runs it like
    any family; so does recomputation, whose checkpoints replay the same zoneout masks
    (torch.utils.checkpoint restores the generator's state), and the recurrent dropout mask
    is fixed before the loop starts."""

    family: CellFamily
    h_scale: Tensor | None
    """(B, R): 0 or 1/(1-p) per unit of h, one mask per sequence; None: no recurrent dropout."""
    zoneout: tuple[float, ...]
    training: bool

    # the CellFamily protocol, delegated
    @property
    def name(self) -> str:
        return self.family.name

    @property
    def hidden_size(self) -> int:
        return self.family.hidden_size

    @property
    def gates(self) -> tuple[str, ...]:
        return self.family.gates

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return self.family.state_sizes

    @property
    def trace_names(self) -> tuple[str, ...]:
        return self.family.trace_names

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        return self.family.extra_parameters()

    def loop_weights(self, weights: Weights) -> Weights:
        prepare = getattr(self.family, "loop_weights", None)
        return weights if prepare is None else prepare(weights)

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        new_state, values = self._dropped_step(x_gates, state, weights)
        if any(self.zoneout):
            new_state = tuple(
                self._zone(rate, previous, candidate)
                for rate, previous, candidate in zip(self.zoneout, state, new_state, strict=True)
            )
            # the trace reports the state the layer carries on, the zoned one
            values = dict(values)
            for name, tensor in zip(("hidden", "cell"), new_state, strict=False):
                if name in values:
                    values[name] = tensor
        return StepResult(new_state, values)

    def _dropped_step(self, x_gates, state, weights) -> StepResult:
        if self.h_scale is None:
            return self.family.step(x_gates, state, weights)
        h_prev = state[0]
        # the step sees the dropped h_{t-1}; in the LSTM and RNN it only meets W_hh there
        new_state, values = self.family.step(x_gates, (h_prev * self.h_scale, *state[1:]), weights)
        if type(self.family) in _H_ALSO_INTERPOLATED:
            # the GRU's interpolation h_t = (1 - z) n + z h_{t-1} involves no weight, so no
            # mask (Gal Sec. 3 drops weight rows): redo it with the undropped h_{t-1}
            z, n = values["update"], values["candidate"]
            h = (1 - z) * n + z * h_prev
            new_state, values = (h,), {**values, "hidden": h}
        return StepResult(new_state, values)

    def _zone(self, rate: float, previous: Tensor, candidate: Tensor) -> Tensor:
        if rate == 0:
            return candidate
        if not self.training:  # the expectation of the training rule
            return rate * previous + (1 - rate) * candidate
        stay = bernoulli(tuple(candidate.shape), rate, candidate)  # fresh every step
        return torch.where(stay, previous, candidate)


__all__ = [
    "LoopNoise",
    "NoisyFamily",
    "bernoulli",
    "check_rate",
    "check_recurrent_dropout",
    "check_zoneout",
    "drop_weight",
    "loop_noise",
]
