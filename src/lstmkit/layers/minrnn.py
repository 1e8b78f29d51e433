"""``MinGRU`` and ``MinLSTM``: sequence layers of Feng et al.'s (2024) minimal RNNs, trained
with a parallel scan over time. Equations and the scan: :mod:`lstmkit.cellmath.minrnn`.

Everything but the time loop is :class:`~lstmkit.layers.base.RecurrentLayer`'s: stacking,
bidirection, packing and ``lengths=``, dropout between layers, traces, autocast. On the
reference backend, in ``mode="parallel"`` (the default) each layer-direction runs
:func:`run_direction_parallel` in place of the step loop; ``mode="sequential"`` runs the step
loop, the same model one step at a time (what the cells in :mod:`lstmkit.cells.minrnn` do
for generation). Traced calls step in either mode: the trace is the step loop's per-step
record.

Backends: ``"fused"`` runs the recurrence as one pass over time in C++ on the CPU (and in
Triton on CUDA tensors), keeping nothing but h for its backward; ``"auto"`` takes it on the
CPU. ``"reference"`` runs the parallel scan (``mode="parallel"``) or the step loop
(``mode="sequential"``); ``mode`` is the reference backend's choice and the fused kernels
ignore it. The scan is for accelerators, where its few passes over (T, B, H) tensors run in
parallel; on the CPU the fused loop is faster (``lstmkit bench``, docs/cells.md).

Legend: T time, B batch, I input size, G gate blocks, H hidden size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import Weights
from lstmkit.cellmath.minrnn import MinGRUFamily, MinLSTMFamily, MinRNNFamily, parallel_scan
from lstmkit.layers.backends import Backend, reference
from lstmkit.layers.base import RecurrentLayer
from lstmkit.layers.regularize import LoopNoise

Mode = Literal["parallel", "sequential"]
MODES: tuple[Mode, ...] = get_args(Mode)


def run_direction_parallel(
    family: MinGRUFamily | MinLSTMFamily,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Weights,
    mask: Tensor | None,
    reverse: bool,
    record: bool,
) -> tuple[Tensor, tuple[Tensor, ...], dict[str, Tensor] | None]:
    """:func:`lstmkit.layers.backends.reference.run_direction`'s contract, all steps at once
    by the parallel scan. x (T, B, I); mask (T, B, 1), True on a prefix of each column (as
    ``SequenceBatch.step_mask`` and recomputation's chunks of it make it), or None.

    Padded steps are never fed to the scan as "keep h" steps: a = 1, b = 0 needs
    log b = -inf, and torch's logcumsumexp gives NaN gradients for a leading run of -inf,
    which a reverse direction's padding would be. A forward direction's padding comes
    after each sequence's end, so it changes nothing before it, and the final state is read
    at each sequence's last step. A reverse direction reverses each sequence within its own
    length, so its padding also comes last, and puts the outputs back in input order.
    A traced call (``record``) runs the step loop, whose per-step record is the trace.
    """
    if record:
        return reference.run_direction(family, x, state, weights, mask, reverse, record)
    (h0,) = state  # (B, H)
    x_gates = F.linear(x, weights["weight_ih"], weights.get("bias_ih"))  # (T, B, G*H)
    lengths = None if mask is None else mask.sum(0)  # (B, 1)
    if reverse:
        x_gates = _reverse_in_time(x_gates, lengths)  # in processing order
    log_a, log_b = family.log_coefficients(x_gates)  # (T, B, H) each
    h = parallel_scan(log_a, log_b, h0)  # (T, B, H)
    final = h[-1] if lengths is None else _at_last_step(h, lengths, h0)
    if reverse:
        h = _reverse_in_time(h, lengths)  # reversing twice is the identity: input order
    if mask is not None:
        h = h.masked_fill(~mask, 0.0)
    return h, (final,), None


def _reverse_in_time(values: Tensor, lengths: Tensor | None) -> Tensor:
    """values (T, B, F) with each sequence reversed within its length, lengths (B, 1), and
    its padding left where it is: position t reads L-1-t for t < L, else t."""
    if lengths is None:
        return values.flip(0)
    steps, batch, features = values.shape
    t = torch.arange(steps, device=values.device).view(steps, 1, 1)  # (T, 1, 1)
    order = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)  # (T, B, 1)
    # contiguous, not expanded: with a stride-0 index, torch's CPU backward of gather
    # (scatter_add_) took over 100 ms on a (4, 2, 9) tensor here (torch 2.13)
    return values.gather(0, order.expand(steps, batch, features).contiguous())


def _at_last_step(h: Tensor, lengths: Tensor, h0: Tensor) -> Tensor:
    """Each sequence's state after its last real step: h (T, B, H) at L-1, lengths (B, 1);
    h0 where L = 0 (a recomputation chunk wholly past a sequence's end)."""
    index = (lengths - 1).clamp(min=0).unsqueeze(0).expand(1, -1, h.shape[2]).contiguous()
    last = h.gather(0, index).squeeze(0)  # index (1, B, H), contiguous as above; last (B, H)
    return torch.where(lengths > 0, last, h0)


class MinRNNLayer(RecurrentLayer):
    """What MinGRU and MinLSTM share: the choice of ``mode`` and the parallel time loop.

    Arguments as torch.nn.GRU's (``input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None``), plus
    keyword-only ``backend`` and ``recompute_every`` (see
    :class:`~lstmkit.layers.base.RecurrentLayer`; ``'fused'`` runs them, and ``'auto'``
    takes it on the CPU; torch's and the manual backend's kernels do not have them) and
    ``mode``, the reference backend's time loop:
    ``"parallel"`` (default) computes all steps at once by the log-space parallel scan,
    ``"sequential"`` one step at a time; both compute the same model. ``forward(input,
    hx=None, *, lengths=None, return_trace=False)`` returns ``(output, h_n)``; ``hx`` may
    have any sign (the scan treats h_0 exactly, see :mod:`lstmkit.cellmath.minrnn`).
    Parameters per layer and direction: ``weight_ih_l{k}`` (G*H, ·) and ``bias_ih_l{k}``
    (G*H,) only, no recurrent matrix.
    """

    family_class: type[MinRNNFamily]
    """The cell each subclass runs, built at ``hidden_size``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        mode: Mode = "parallel",
    ) -> None:
        super().__init__(
            self.family_class(hidden_size),
            input_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            backend=backend,
            recompute_every=recompute_every,
        )
        self.mode = mode

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value not in MODES:
            choices = ", ".join(repr(m) for m in MODES)
            raise ValueError(f"{type(self).__name__}: mode must be one of {choices}, got {value!r}")
        self._mode = value

    def _direction_fn(self, backend: Backend, record: bool, noise: LoopNoise | None) -> Callable:
        """The parallel scan where RecurrentLayer would run the reference step loop, in
        parallel mode, untraced and without loop noise (recurrent dropout and zoneout act
        between the steps, so the step loop runs them)."""
        if self.mode == "parallel" and backend is Backend.REFERENCE and not record and not noise:
            return run_direction_parallel
        return super()._direction_fn(backend, record, noise)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.mode == "parallel" else f"{text}, mode={self.mode!r}"


class MinGRU(MinRNNLayer):
    """minGRU (Feng et al. 2024, Section 3.1): z_t = σ(Linear_z(x_t)),
    h_t = (1 - z_t) h_{t-1} + z_t g(Linear_h(x_t)); gate blocks (update, candidate), G = 2.
    Arguments: :class:`MinRNNLayer`'s."""

    family_class = MinGRUFamily


class MinLSTM(MinRNNLayer):
    """minLSTM (Feng et al. 2024, Section 3.2): f_t = σ(Linear_f(x_t)), i_t = σ(Linear_i(x_t)),
    normalised to f'_t + i'_t = 1, h_t = f'_t h_{t-1} + i'_t g(Linear_h(x_t)); gate blocks
    (forget, input, candidate), G = 3. Arguments: :class:`MinRNNLayer`'s."""

    family_class = MinLSTMFamily


__all__ = ["MODES", "MinGRU", "MinLSTM", "MinRNNLayer", "Mode", "run_direction_parallel"]
