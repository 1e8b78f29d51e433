"""Traces: what happened inside a recurrent layer, at every layer, direction and time step.

Any lstmkit sequence layer returns one when called with ``return_trace=True``::

    output, (h_n, c_n), trace = lstm(x, return_trace=True)
    trace["forget"]            # (num_layers, num_directions, batch, time, hidden_size)
    trace["forget"][0, 0, :, t, unit]

Layout: every tensor is indexed ``[layer, direction, batch, time, unit]``, whatever the
input's layout (batch_first or not, batched or not: unbatched input gives batch size 1).
Direction 1 is the reverse direction; its time index is the position in the input, not the
order of processing, so ``trace["hidden"][:, 1, :, t]`` is the reverse state after reading
positions T-1 down to t.

Names, by cell family (a family lists its own in ``trace.names``):

- LSTM: ``input``, ``forget``, ``candidate`` (C~_t), ``output`` (the gates after their
  nonlinearity), ``cell`` (C_t) and ``hidden`` (h_t, after the projection if any). The
  coupled cell reports its derived forget gate 1 - i_t; the cell without a forget gate has
  no ``forget``.
- GRU: ``reset``, ``update``, ``candidate`` (n_t) and ``hidden``.
- RNN: ``hidden``.
- MGU: ``forget`` (f_t), ``candidate`` (h~_t) and ``hidden``.
- Clockwork RNN: ``hidden`` (h_t) and ``active`` (1 where the unit's module ran at that
  step, t mod T_i = 0, else 0).
- minGRU: ``update``, ``candidate`` and ``hidden``; minLSTM: ``forget`` and ``input`` (the
  normalised f'_t and i'_t, which sum to 1), ``candidate`` and ``hidden``.
- sLSTM: ``input``, ``forget`` (the gates as applied, stabilised), ``candidate`` (z_t),
  ``output``, ``cell`` and ``normalizer`` (c_t and n_t as stored, scaled by exp(-m_t)),
  ``stabilizer`` (m_t) and ``hidden``.

For variable-length batches (packed input or ``lengths=``), steps past a sequence's end hold
zeros and ``trace.lengths`` gives each sequence's length. The tensors are part of the
autograd graph when gradients are enabled; call ``trace.detach()`` to keep only the values.
Tracing is opt-in: without ``return_trace=True`` nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Trace(Mapping[str, Tensor]):
    """Named per-step tensors of a layer, each ``(layers, directions, batch, time, size)``."""

    cell: str
    """The cell family that produced it: "lstm", "gru", "rnn"."""
    tensors: dict[str, Tensor]
    lengths: Tensor | None = None
    """Each sequence's length (batch,), or None when every sequence fills the time axis."""

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(
                f"this {self.cell} trace has no quantity {name!r}; it has {self.names}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.tensors)

    @property
    def num_layers(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    @property
    def num_directions(self) -> int:
        return next(iter(self.tensors.values())).shape[1]

    def detach(self) -> Trace:
        """The same trace cut from the autograd graph."""
        return Trace(self.cell, {k: v.detach() for k, v in self.tensors.items()}, self.lengths)
