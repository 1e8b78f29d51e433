"""``GridLSTM``: the 2-D Grid LSTM over time and depth of Kalchbrenner et al. (2015), "Grid
Long Short-Term Memory", as a stacked sequence layer.

Equations, block layout, parameter shapes and initialisation: :mod:`lstmkit.cellmath.grid_lstm`.

Each block hands a hidden vector and a memory up to the block above at the same step, so a
layer cannot run over the whole sequence before the next starts, as the shared
:class:`~lstmkit.layers.base.RecurrentLayer` loop does: this loop goes step by step, and
within a step from the bottom block to the top: that is ``backend="reference"``, plain
PyTorch (autograd differentiates it). A block at step t reads only step t's values from
below, so ``backend="fused"`` runs the grid layer by layer instead, each layer one call of
the C++ kernels of :mod:`lstmkit.layers.backends.fused_cpu.stacks` (CPU tensors) or the
Triton kernels of :mod:`lstmkit.layers.backends.fused_triton.stacks` (CUDA tensors) that
hands the depth pair of all steps up to the next; ``"auto"`` picks (see
:mod:`lstmkit.layers._memory_stack`).
Legend: T time, B batch, I input size, H hidden size, L layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._checks import expect_positive_int
from lstmkit.cellmath.grid_lstm import GridLSTMFamily
from lstmkit.layers._memory_stack import MemoryJoinedStack
from lstmkit.layers.backends import Backend


class GridLSTM(MemoryJoinedStack):
    """A 2-D Grid LSTM (time x depth) with torch.nn.LSTM's interface.

    Positional arguments and defaults are torch.nn.LSTM's (without ``proj_size``):
    ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None``. ``bidirectional=True`` is refused: a
    block's depth transform reads the time vector of one direction, and a grid with two time
    directions would need blocks of three inputs, which is another model. ``dropout`` acts
    on the depth hidden vector each block hands up (every layer's but the last), as
    torch.nn.LSTM's on each layer's output; the depth memory goes up undropped.

    Keyword-only:

    - ``depth_lstm``: True (default) for LSTM cells along depth; False for the paper's
      Stacked LSTM baseline (Sec. 2.2), which is then exactly a stacked torch.nn.LSTM.
    - ``tied``: False (default) gives every layer weights of its own; True shares one set
      along depth (Sec. 3.5) and projects the input into the grid with ``weight_in``.
    - ``output_form``: ``"o*tanh(m)"`` (default) or the paper's printed ``"tanh(o*m)"``.
    - ``forget_bias``: the total forget-gate bias of every transform (None keeps the
      uniform initialisation).
    - ``backend``: ``"auto"`` (default), ``"reference"`` or ``"fused"``
      (:mod:`lstmkit.layers._memory_stack`). With dropout the fused backend draws each
      layer's mask for all steps at once, the reference one step at a time: the same
      distribution, other random numbers.
    - ``recompute_every=N``: keep for the backward only the states every N steps and rerun
      the steps between them (either backend).

    Parameters, untied, per layer k (I_0 = input_size, I_k = H): the time transform's
    ``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (4H,), torch.nn.LSTM's names and shapes, and the depth transform's
    ``weight_depth_ih_l{k}``, ``weight_depth_hh_l{k}``, ``bias_depth_ih_l{k}``,
    ``bias_depth_hh_l{k}`` of the same shapes. Tied: one set of those without the ``_l{k}``
    suffix (I_k = H for all), and ``weight_in`` (H, input_size).

    ``forward(input, hx=None, *, lengths=None, return_trace=False)`` takes what
    torch.nn.LSTM takes (a (T, B, I) tensor, (B, T, I) with batch_first, unbatched (T, I),
    or a PackedSequence) and lstmkit's ``lengths=``; it returns ``output, (h_n, c_n)``:
    output (T, B, H), the top block's depth hidden vector at each step, in the input's
    layout; h_n and c_n (num_layers, B, H) are each layer's time pair (h, m) at each
    sequence's last step ((num_layers, H) unbatched). ``hx`` is ``(h_0, c_0)`` of those
    shapes, zeros when None; the depth pair starts at the input each step and needs none.
    With ``return_trace=True`` a :class:`~lstmkit.trace.Trace` follows, each tensor
    (num_layers, 1, B, T, H): the time transform's ``input, forget, candidate, output,
    cell, hidden`` and, with ``depth_lstm``, the depth transform's under ``depth_*`` (on the
    fused backend detached from the autograd graph). Under autocast it runs wholly in
    autocast's lower dtype, as the other layers do.
    """

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
        depth_lstm: bool = True,
        tied: bool = False,
        output_form: str = "o*tanh(m)",
        forget_bias: float | None = None,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if bidirectional:
            raise ValueError(
                f"{owner}: bidirectional=True is not offered: a 2-D block has one time "
                "input; two time directions make a different grid (blocks of three inputs)"
            )
        hidden_size = expect_positive_int(hidden_size, "hidden_size", owner)
        family = GridLSTMFamily(hidden_size, bool(depth_lstm), output_form)
        self._set_stack(
            family, input_size, num_layers, bias, batch_first, dropout, forget_bias, backend,
            recompute_every,
        )  # fmt: skip
        self.tied = bool(tied)

        def add(name: str, shape: tuple[int, ...]) -> None:
            self.register_parameter(
                name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            )

        # base name -> registered name, per layer; tied layers all point at one set
        self._layer_param_names: list[dict[str, str]] = []
        if self.tied:
            add("weight_in", (hidden_size, self.input_size))  # Sec. 2.1's I: x into the grid
            names = {}
            for base, shape in self.family.block_shapes(hidden_size, self.bias).items():
                add(base, shape)
                names[base] = base
            self._layer_param_names = [names] * self.num_layers
        else:
            for layer in range(self.num_layers):
                layer_input = self.input_size if layer == 0 else hidden_size
                names = {}
                for base, shape in self.family.block_shapes(layer_input, self.bias).items():
                    add(f"{base}_l{layer}", shape)
                    names[base] = f"{base}_l{layer}"
                self._layer_param_names.append(names)
        self.reset_parameters()

    @property
    def depth_lstm(self) -> bool:
        return self.family.depth_lstm

    @property
    def output_form(self) -> str:
        return self.family.output_form

    _repr_options = (("depth_lstm", True), ("tied", False), ("output_form", "o*tanh(m)"))

    def _forget_bias_prefixes(self) -> tuple[str, ...]:
        """Both transforms' forget gates, the time one's and (with depth_lstm) the depth one's."""
        return ("", "depth_") if self.depth_lstm else ("",)

    def forward(self, input, hx=None, *, lengths=None, return_trace: bool = False):
        seq, states = self._prepare(input, hx, lengths)
        mask = seq.step_mask()  # (T, B, 1) or None
        backend = self.resolve_backend(return_trace, seq.data.device.type, seq.data.dtype)
        output, finals, trace = self._run(seq.data, states, mask, backend, return_trace)
        return self._outputs(output, finals, seq, mask, trace)  # (T, B, H)

    def _run_stack(self, x, states, mask, backend, record):
        """The grid over x's steps (see :meth:`MemoryJoinedStack._run_stack` for the
        contract): block by block, step-major, on the reference backend; layer by layer on
        the fused kernels."""
        states = list(states)  # each layer's entry is replaced as it steps
        weights = [self.compute_weights(layer, x.dtype) for layer in range(self.num_layers)]
        bottom = x  # (T, B, I): the depth input of layer 0
        if self.tied:
            bottom = F.linear(bottom, self.weight_in.to(x.dtype))  # (T, B, H)
        dropout = self.dropout if self.training else 0.0
        if backend is Backend.FUSED:
            output, trace = self._forward_fused(bottom, states, weights, mask, dropout, record)
            return output, states, trace

        outputs, recorded = [], []
        for t in range(x.shape[0]):
            up, up_memory = bottom[t], None  # the depth memory enters the grid at zero
            step_values = []
            for layer in range(self.num_layers):
                result = self.family.block(up, up_memory, states[layer], weights[layer])
                new_state = result.state
                if mask is not None:  # past a sequence's end its state stays as it was
                    new_state = tuple(
                        torch.where(mask[t], n, s)
                        for n, s in zip(new_state, states[layer], strict=True)
                    )
                states[layer] = new_state
                up, up_memory = result.depth_hidden, result.depth_memory
                if dropout > 0 and layer < self.num_layers - 1:
                    up = F.dropout(up, dropout, training=True)
                step_values.append(result.values)
            outputs.append(up)
            if record:
                recorded.append(step_values)

        trace = self._trace(recorded, mask) if record else None
        return torch.stack(outputs), states, trace

    def _forward_fused(
        self,
        bottom: Tensor,
        states: list[tuple[Tensor, Tensor]],
        weights: list[dict[str, Tensor]],
        mask: Tensor | None,
        dropout: float,
        record: bool,
    ):
        """The grid layer by layer on the fused kernels: layer k's depth pair of all steps is
        layer k+1's input. Updates ``states`` to the final time pairs; returns the top depth
        hidden vectors (T, B, H) and, when ``record``, the trace (L, 1, B, T, H) per name."""
        kernels = self._fused_kernels(bottom.device.type)
        step_mask = self._step_mask(mask)
        up, up_memory, saved = bottom, None, []
        for layer in range(self.num_layers):
            up, up_memory, states[layer], values = kernels.run_grid_layer(
                self.family, up, states[layer], weights[layer], up_memory, step_mask
            )
            if dropout > 0 and layer < self.num_layers - 1:  # eta going up; mu undropped
                up = F.dropout(up, dropout, training=True)
            saved.append(values)
        if not record:
            return up, None
        trace = {}
        for name in self.family.trace_names:
            values = torch.stack([s[name] for s in saved]).detach()  # (L, T, B, H)
            if mask is not None:
                values = values.masked_fill(~mask, 0.0)
            trace[name] = values.unsqueeze(1).transpose(2, 3)
        return up, trace

    def _trace(self, recorded: list[list[dict[str, Tensor]]], mask: Tensor | None):
        """recorded[t][layer][name] (B, H) -> name: (L, 1, B, T, H), zero past each end."""
        tensors = {}
        for name in self.family.trace_names:
            values = torch.stack(
                [
                    torch.stack([layers[k][name] for layers in recorded])
                    for k in range(self.num_layers)
                ]
            )  # (L, T, B, H)
            if mask is not None:
                values = values.masked_fill(~mask, 0.0)
            tensors[name] = values.unsqueeze(1).transpose(2, 3)
        return tensors


__all__ = ["GridLSTM"]
