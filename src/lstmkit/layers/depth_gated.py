"""``DepthGatedLSTM``: a stacked LSTM whose layers are joined through their memory cells by a
depth gate (Yao et al. 2015, "Depth-Gated LSTM", Sec. 3).

Equations, gate order, parameter shapes and initialisation: :mod:`lstmkit.cellmath.depth_gated`.

Layer L+1 needs the memory cell c_t^L of layer L at every step, which the shared
:class:`~lstmkit.layers.base.RecurrentLayer` loop does not hand from one layer to the next.
Layer-by-layer order still works: layer L runs over the whole sequence and keeps its cell
states (T, B, H); layer L+1 then runs with them as an extra input per step.
``backend="reference"`` runs the time loop here, plain PyTorch (autograd differentiates it);
``backend="fused"`` runs each layer as one call of the C++ kernels of
:mod:`lstmkit.layers.backends.fused_cpu.stacks` (CPU tensors) or the Triton kernels of
:mod:`lstmkit.layers.backends.fused_triton.stacks` (CUDA tensors); ``"auto"`` picks (see
:mod:`lstmkit.layers._memory_stack`). Legend: T time, B batch, I input size, H hidden size,
L layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._checks import expect_positive_int
from lstmkit.cellmath.depth_gated import DepthGatedLSTMFamily, DepthInput
from lstmkit.layers._memory_stack import MemoryJoinedStack
from lstmkit.layers.backends import Backend


class DepthGatedLSTM(MemoryJoinedStack):
    """A multi-layer depth-gated LSTM with torch.nn.LSTM's interface.

    Positional arguments and defaults are torch.nn.LSTM's (without ``proj_size``):
    ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None``. ``bidirectional=True`` is refused: the
    paper's depth gate joins the memory of one direction's layers, and which cell a reverse
    layer would read (its own direction's, or both) is a choice the paper does not make.
    ``dropout`` acts on each layer's output h before it is the next layer's input, as
    torch.nn.LSTM's; the cell state c^L reaches the layer above through the depth gate
    undropped. Keyword-only ``forget_bias`` sets every layer's total forget-gate bias (None
    keeps the uniform initialisation); keyword-only ``backend``: ``"auto"`` (default),
    ``"reference"`` or ``"fused"`` (:mod:`lstmkit.layers._memory_stack`), and
    ``recompute_every=N``: keep for the backward only the states every N steps and rerun
    the steps between them (on either backend).

    Parameters, per layer k: torch.nn.LSTM's ``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}``
    (4H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), with I_0 = input_size and I_k = H;
    for k >= 1 also the depth gate's ``weight_xd_l{k}`` (H, H), ``bias_d_l{k}`` (H,),
    ``weight_cd_l{k}`` (H,) and ``weight_ld_l{k}`` (H,). With one layer it is torch.nn.LSTM.

    ``forward(input, hx=None, *, lengths=None, return_trace=False)`` takes what
    torch.nn.LSTM takes (a (T, B, I) tensor, (B, T, I) with batch_first, unbatched (T, I),
    or a PackedSequence) and lstmkit's ``lengths=`` beside a padded batch; it returns
    ``output, (h_n, c_n)``: output (T, B, H) in the input's layout (packed if packed), h_n
    and c_n (num_layers, B, H) at each sequence's last step ((num_layers, H) unbatched);
    ``hx`` is ``(h_0, c_0)`` of those shapes, zeros when None. With ``return_trace=True`` a
    :class:`~lstmkit.trace.Trace` follows, each tensor (num_layers, 1, B, T, H), names
    ``input, forget, candidate, output, depth, cell, hidden`` (``depth`` is 0 in layer 0,
    which has no memory below it); on the fused backend the trace is detached from the
    autograd graph. Under autocast it runs wholly in autocast's lower dtype, as the other
    layers do.
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
        forget_bias: float | None = None,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if bidirectional:
            raise ValueError(
                f"{owner}: bidirectional=True is not offered: the depth gate joins the memory "
                "cells of one direction's layers, and the paper defines no reverse stack"
            )
        family = DepthGatedLSTMFamily(expect_positive_int(hidden_size, "hidden_size", owner))
        self._set_stack(
            family, input_size, num_layers, bias, batch_first, dropout, forget_bias, backend,
            recompute_every,
        )  # fmt: skip

        self._layer_param_names: list[dict[str, str]] = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else hidden_size
            shapes = self.family.lstm_shapes(layer_input, self.bias)
            if layer > 0:  # layer 0 has no memory cell below it: a plain LSTM
                shapes |= self.family.depth_shapes(layer_input, self.bias)
            names = {}
            for base, shape in shapes.items():
                param = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
                self.register_parameter(f"{base}_l{layer}", param)
                names[base] = f"{base}_l{layer}"
            self._layer_param_names.append(names)
        self.reset_parameters()

    def forward(self, input, hx=None, *, lengths=None, return_trace: bool = False):
        seq, states = self._prepare(input, hx, lengths)
        mask = seq.step_mask()  # (T, B, 1) or None
        backend = self.resolve_backend(return_trace, seq.data.device.type, seq.data.dtype)
        output, finals, trace = self._run(seq.data, states, mask, backend, return_trace)
        return self._outputs(output, finals, seq, None, trace)  # each layer zeroed its own ends

    def _run_stack(self, x, states, mask, backend, record):
        """Layer by layer: each over all of x's steps, handing its outputs and cell states
        up to the next (see :meth:`MemoryJoinedStack._run_stack` for the contract)."""
        run_layer = self._run_layer_fused if backend is Backend.FUSED else self._run_layer
        lower_cells = None
        finals, traces = [], []
        for layer in range(self.num_layers):
            output, cells, final, trace = run_layer(
                layer, x, states[layer], lower_cells, mask, record
            )
            finals.append(final)
            traces.append(trace)
            x, lower_cells = output, cells
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)

        tensors = None
        if record:
            tensors = {
                name: torch.stack([t[name] for t in traces]).unsqueeze(1).transpose(2, 3)
                for name in self.family.trace_names
            }  # (L, T, B, H) -> (L, 1, B, T, H)
        return x, finals, tensors

    def _run_layer(
        self,
        layer: int,
        x: Tensor,
        state: tuple[Tensor, Tensor],
        lower_cells: Tensor | None,
        mask: Tensor | None,
        record: bool,
    ):
        """One layer over all steps. x (T, B, I_k); lower_cells (T, B, H), layer k-1's c_t,
        None for layer 0. Returns the output (T, B, H), this layer's cells (T, B, H) for
        the layer above, the final (h, c) and, when ``record``, the trace (T, B, H) each."""
        weights = self.compute_weights(layer, x.dtype)
        # the input products do not depend on the recurrence: one product for all steps
        x_gates = F.linear(x, weights["weight_ih"], weights.get("bias_ih")).unbind(0)
        gate_input = None
        if lower_cells is not None:
            gate_input = self.family.depth_gate_input(x, weights).unbind(0)
        outputs, cells, recorded = [], [], []
        for t in range(x.shape[0]):
            depth = None if lower_cells is None else DepthInput(gate_input[t], lower_cells[t])
            new_state, values = self.family.step(x_gates[t], state, weights, depth)
            if mask is not None:  # past a sequence's end its state stays as it was
                new_state = tuple(
                    torch.where(mask[t], n, s) for n, s in zip(new_state, state, strict=True)
                )
            state = new_state
            outputs.append(state[0])
            cells.append(state[1])
            if record:
                recorded.append(values)
        output = torch.stack(outputs)  # (T, B, H)
        if mask is not None:
            output = output.masked_fill(~mask, 0.0)
        if not record:
            return output, torch.stack(cells), state, None
        zeros = torch.zeros_like(output)
        trace = {  # layer 0 has no depth gate: its path from below is shut, d = 0
            name: torch.stack([v.get(name, zeros[0]) for v in recorded])
            for name in self.family.trace_names
        }
        if mask is not None:
            trace = {name: v.masked_fill(~mask, 0.0) for name, v in trace.items()}
        return output, torch.stack(cells), state, trace

    def _run_layer_fused(
        self,
        layer: int,
        x: Tensor,
        state: tuple[Tensor, Tensor],
        lower_cells: Tensor | None,
        mask: Tensor | None,
        record: bool,
    ):
        """:meth:`_run_layer`'s contract, on the fused kernels: the layer is one call."""
        kernels = self._fused_kernels(x.device.type)
        hidden, cells, final, saved = kernels.run_depth_gated_layer(
            x, state, self.compute_weights(layer, x.dtype), lower_cells, self._step_mask(mask)
        )
        output = hidden if mask is None else hidden.masked_fill(~mask, 0.0)
        if not record:
            return output, cells, final, None
        zeros = torch.zeros_like(output)  # layer 0 has no depth gate: d = 0
        trace = {name: saved.get(name, zeros).detach() for name in self.family.trace_names}
        if mask is not None:
            trace = {name: v.masked_fill(~mask, 0.0) for name, v in trace.items()}
        return output, cells, final, trace


__all__ = ["DepthGatedLSTM"]
