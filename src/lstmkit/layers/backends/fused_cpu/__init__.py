r"""The fused CPU backend: every cell's time loop and backward pass in C++ (``kernels.cpp``
for the LSTM family, the GRUs, the MGU and the RNN; a file per cell for the others, all
sharing ``common.h``).

The kernels are a torch C++ extension compiled on first use with the system's C++ compiler
and cached by torch (``~/.cache/torch_extensions`` or ``$TORCH_EXTENSIONS_DIR``); later
processes load the cached library in well under a second. Where no compiler is found the
backend reports itself unavailable (``unavailable_reason``), and ``auto`` warns once and
falls back to torch's kernels or the Python loops.

Each direction of a layer is one call (through ``backends.fused``, which flips reversed
directions and builds traces): the input projection of all steps is one matrix
product here in Python, with ``bias_hh`` folded in where it is exact (autograd carries it
to ``weight_ih``, the biases and the input),
and the kernel runs the recurrence, keeping for the backward only the gate activations and
the states. The backward returns the gradient of every gate pre-activation, from which the
weight gradients are single products over all steps. ``run_lstm``, ``run_gru`` (torch's
form), ``run_cho_gru`` (``reset_after=False``), ``run_mgu`` and ``run_rnn`` take x (T, B, I)
in forward time order and a (T, B) mask or None, and return the
outputs (T, B, R), the final state and what ``fused.trace`` reads (T time, B batch, G gate
blocks, H hidden, R output size).
First derivatives only, like the manual backend: use ``reference`` for double backward.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.lstm_options import LAYER_NORM_EPS
from lstmkit.layers.backends.fused import gate_inputs, lstm_gate_inputs, zeros_if_none

_HERE = Path(__file__).parent
_COMMON_HEADER = _HERE / "common.h"
KERNELS = "kernels"
"""The kernel file of the LSTM family, the GRUs, the MGU and the RNN (``kernels.cpp``); each
other cell's kernels are a file of their own, built the first time that cell runs."""
# kernels.cpp's LSTMBits: which parts of the LSTM cell exist, one bit each
_LSTM_BITS = {
    "input_gate": 1,  # NIG (Greff et al. 2015) clears it: i_t = 1
    "forget_block": 2,  # f_t has weights of its own
    "coupled": 4,  # CIFG: f_t = 1 - i_t
    "output_gate": 8,  # NOG clears it: o_t = 1
    "input_activation": 16,  # NIAF clears it: C~ is its pre-activation
    "output_activation": 32,  # NOAF clears it: h_t = o_t C_t
    "norm_product": 64,  # layer_norm="ba2016": LN of the recurrent product (all G*H units)
    "norm_gates": 128,  # layer_norm="per-gate": LN of each gate block of the summed product
    "norm_shown_cell": 256,  # "ba2016", "cell": h_t = o_t tanh(LN(C_t)), C_t carried as is
    "norm_carried_cell": 512,  # "per-gate": the carried C_t is LN(f C_{t-1} + i C~)
    "gate_recurrence": 1024,  # FGR (Greff et al. 2015): the gates read gates_{t-1}
}


class FusedUnavailable(RuntimeError):
    """The fused CPU kernels could not be built or loaded on this machine."""


@functools.cache
def _load(kernel_file: str = KERNELS) -> str | None:
    """Build (once per source version, cached by torch) and load ``<kernel_file>.cpp``.
    Returns None when its kernels are ready, else why not.

    Each kernel file is an extension of its own, registering its operators into the one
    ``torch.ops.lstmkit_fused`` namespace: a cell's kernels are compiled the first time that
    cell runs, and a first LSTM does not wait for the sLSTM's."""
    if os.environ.get("LSTMKIT_NO_FUSED"):
        return "LSTMKIT_NO_FUSED is set"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r}) to build the fused kernels"
    from torch.utils import cpp_extension

    capability, flags = _simd_flags()
    name = f"lstmkit_fused_{kernel_file}_{capability.lower()}"
    if not _is_built(cpp_extension, name):  # a minute of silence deserves a word first
        print(
            f"lstmkit: building the fused CPU kernels {kernel_file}.cpp (once; about a minute)",
            file=sys.stderr,
        )
    # torch rebuilds when a source or a flag changes, not when an included header does: the
    # shared header's hash goes into the flags
    header = hashlib.sha256(_COMMON_HEADER.read_bytes()).hexdigest()[:16]
    try:
        cpp_extension.load(
            name=name,
            sources=[str(_HERE / f"{kernel_file}.cpp")],
            # OpenMP: at::parallel_for over batch rows
            extra_cflags=["-O3", "-fopenmp", *flags, f"-DLSTMKIT_COMMON_H={header}"],
            extra_ldflags=["-fopenmp"],
            extra_include_paths=[str(_HERE)],
            is_python_module=False,
            verbose=False,
        )
    except Exception as error:  # a compiler error is a reason to fall back, not to crash
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return f"building the fused kernels ({kernel_file}.cpp) failed: {first}"
    return None


def _is_built(cpp_extension, name: str) -> bool:
    """Whether torch's cache already holds a library for ``name`` (it may still rebuild it
    when the source changed; then the message is merely missing)."""
    try:
        folder = Path(cpp_extension._get_build_directory(name, verbose=False))
    except Exception:  # a private helper of torch's: if it moves, just say nothing
        return True
    return (folder / f"{name}.so").exists()


def _simd_flags() -> tuple[str, list[str]]:
    """The SIMD level torch picked for this CPU, and the flags that build at::vec for it.

    ATen compiles each of its kernels once per level and names the code after it
    (``at::vec::CPU_CAPABILITY``), so defining the same macros here gives the kernels torch's
    own SIMD exp and tanh without clashing with torch's copies."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability == "AVX512":
        avx512 = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
        return capability, [*avx512, "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"]
    if capability == "AVX2":
        return capability, ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return "DEFAULT", ["-DCPU_CAPABILITY=DEFAULT"]


def unavailable_reason(kernel_file: str = KERNELS) -> str | None:
    """Why the fused CPU kernels of ``kernel_file`` cannot run here, or None if they can
    (builds them)."""
    return _load(kernel_file)


_warned_unavailable: set[str] = set()
"""The kernel files whose ``auto`` fallback has been announced (once each per process)."""


def ready_or_warn(kernel_file: str, fallback: str) -> bool:
    """Whether ``kernel_file``'s kernels can run (builds them on the first call). When they
    cannot, warns once per kernel file, saying why and what ``backend='auto'`` does instead
    (``fallback``, e.g. "runs the cell on its Python loop")."""
    reason = unavailable_reason(kernel_file)
    if reason is not None and kernel_file not in _warned_unavailable:
        _warned_unavailable.add(kernel_file)
        message = f"lstmkit: {reason}; backend='auto' {fallback}"
        warnings.warn(message, RuntimeWarning, stacklevel=_user_frame_level())
    return reason is None


def _user_frame_level() -> int:
    """The ``stacklevel`` that points a warning at the user's line: the first frame outside
    lstmkit and torch (a layer is reached through ``nn.Module.__call__``, so no fixed level
    is right for every caller)."""
    inside = (str(Path(__file__).parents[3]), str(Path(torch.__file__).parent))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def load_ops(kernel_file: str = KERNELS):
    reason = _load(kernel_file)
    if reason is not None:
        raise FusedUnavailable(f"the fused backend is unavailable: {reason}")
    return torch.ops.lstmkit_fused


# -- LSTM family ---------------------------------------------------------------------------


def _lstm_variant(family: LSTMFamily) -> int:
    """The family's options as kernels.cpp's bitmask; the kernels derive the gate blocks'
    offsets from it, as ``LSTMFamily.gates`` lays them out."""
    present = {
        "input_gate": family.input_gate,
        "forget_block": family.has_forget_weights,
        "coupled": family.coupled,
        "output_gate": family.output_gate,
        "input_activation": family.input_activation,
        "output_activation": family.output_activation,
        "norm_product": family.layer_norm == "ba2016",
        "norm_gates": family.layer_norm == "per-gate",
        "norm_shown_cell": family.layer_norm in ("ba2016", "cell"),
        "norm_carried_cell": family.layer_norm == "per-gate",
        "gate_recurrence": family.gate_recurrence,
    }
    return sum(_LSTM_BITS[name] for name, here in present.items() if here)


def run_lstm(family: LSTMFamily, x, state, weights, mask, keep: bool = True):
    """``keep=False`` is for a call that builds no autograd graph and records no trace
    (``fused.run_direction``'s chunks): the kernel keeps nothing per step, and no saved
    values come back."""
    ops = load_ops()
    x_gates, norm_gain, norm_shift = lstm_gate_inputs(family, x, weights)
    gates0 = state[2] if family.gate_recurrence else None  # FGR: the state is (h, C, gates)
    inputs = (
        ops, _lstm_variant(family), mask, x_gates, state[0], state[1], gates0,
        weights["weight_hh"], weights.get("weight_ci"), weights.get("weight_cf"),
        weights.get("weight_co"), weights.get("weight_hr"), norm_gain, norm_shift,
        weights.get("ln_weight_c"), weights.get("ln_bias_c"), weights.get("weight_gg"),
    )  # fmt: skip
    if keep:
        output, h_n, c_n, gates_n, acts, c_all, h_all = _LSTMFunction.apply(*inputs)
        saved = dict(acts=acts, cell=c_all, hidden=h_all)
    else:
        output, h_n, c_n, gates_n = _lstm_forward(*inputs, keep=False)[:4]
        saved = None
    final = (h_n, c_n, gates_n) if family.gate_recurrence else (h_n, c_n)
    return output, final, saved


def _lstm_forward(
    ops, variant, mask, x_gates, h0, c0, gates0, w_hh, p_i, p_f, p_o, w_hr, norm_gain,
    norm_shift, cell_gain, cell_shift, w_gg, keep: bool,
) -> list[Tensor]:  # fmt: skip
    """kernels.cpp's lstm_forward on contiguous tensors: the output, the final state and (with
    ``keep``) what the backward reads."""
    return ops.lstm_forward(
        *_contiguous(x_gates, h0, c0, gates0, w_hh, p_i, p_f, p_o, w_hr, norm_gain, norm_shift,
                     cell_gain, cell_shift, w_gg),
        mask, variant, LAYER_NORM_EPS, keep,
    )  # fmt: skip


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, ops, variant, mask, x_gates, h0, c0, gates0, w_hh, p_i, p_f, p_o, w_hr,
        norm_gain, norm_shift, cell_gain, cell_shift, w_gg,
    ):  # fmt: skip
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        (output, h_n, c_n, gates_n, acts, c_all, h_all, m_all, norm_xhat, norm_rstd, cell_xhat,
         cell_rstd, gates_all) = _lstm_forward(
            ops, variant, mask, x_gates, h0, c0, gates0, w_hh, p_i, p_f, p_o, w_hr, norm_gain,
            norm_shift, cell_gain, cell_shift, w_gg, keep=True,
        )  # fmt: skip
        # what the backward reads, as the kernel read it
        gates0, w_hh, p_i, p_f, p_o, w_hr, norm_gain, cell_gain, cell_shift, w_gg = _contiguous(
            gates0, w_hh, p_i, p_f, p_o, w_hr, norm_gain, cell_gain, cell_shift, w_gg
        )
        ctx.ops, ctx.variant, ctx.mask = ops, variant, mask
        ctx.save_for_backward(
            acts, c_all, h_all, m_all, norm_xhat, norm_rstd, cell_xhat, cell_rstd, gates_all,
            h0, c0, gates0, w_hh, p_i, p_f, p_o, w_hr, norm_gain, cell_gain, cell_shift, w_gg,
        )  # fmt: skip
        ctx.mark_non_differentiable(acts, c_all, h_all)  # handed out for traces only
        return output, h_n, c_n, gates_n, acts, c_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, d_gates_n, *_):
        saved = ctx.saved_tensors
        h_all, h0, c0, gates0 = saved[2], *saved[9:12]
        grads = ctx.ops.lstm_backward(
            zeros_if_none(d_output, h_all).contiguous(), zeros_if_none(d_h_n, h0).contiguous(),
            zeros_if_none(d_c_n, c0).contiguous(),
            None if d_gates_n is None or gates0 is None else d_gates_n.contiguous(),
            *saved[:9], h0.contiguous(), c0.contiguous(), gates0, *saved[12:], ctx.mask,
            ctx.variant,
        )  # fmt: skip
        # the kernels' gradients come in the order of forward's inputs from x_gates on
        return (None, None, None, *(_defined(g) for g in grads))


# -- GRU -----------------------------------------------------------------------------------


def run_gru(family, x, state, weights, mask):
    ops = load_ops()
    x_gates = gate_inputs(x, weights, fold_hidden_bias=False)  # b_hn sits inside r's product
    (h0,) = state
    output, h_n, acts, h_all = _GRUFunction.apply(
        ops, mask, x_gates, h0, weights["weight_hh"], weights.get("bias_hh")
    )
    return output, (h_n,), dict(acts=acts, hidden=h_all)


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, mask, x_gates, h0, w_hh, b_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        output, h_n, acts, hn_all, h_all = ops.gru_forward(
            x_gates.contiguous(), h0.contiguous(), w_hh.contiguous(),
            None if b_hh is None else b_hh.contiguous(), mask,
        )  # fmt: skip
        ctx.ops, ctx.mask, ctx.has_bias = ops, mask, b_hh is not None
        ctx.save_for_backward(acts, hn_all, h_all, h0, w_hh)
        ctx.mark_non_differentiable(acts, h_all)  # handed out for traces only
        return output, h_n, acts, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        acts, hn_all, h_all, h0, w_hh = ctx.saved_tensors
        dx, dh0, d_w_hh, d_b_hh = ctx.ops.gru_backward(
            zeros_if_none(d_output, h_all).contiguous(),
            zeros_if_none(d_h_n, h0).contiguous(),
            acts, hn_all, h_all, h0.contiguous(), w_hh.contiguous(), ctx.mask,
        )  # fmt: skip
        return None, None, dx, dh0, d_w_hh, d_b_hh if ctx.has_bias else None


# -- reset before the product: Cho et al.'s GRU and the MGU --------------------------------


def run_cho_gru(family, x, state, weights, mask):
    """The GRU with ``reset_after=False``: r_t scales h_{t-1} before W_hn."""
    return _run_reset_first(False, x, state, weights, mask)


def run_mgu(family, x, state, weights, mask):
    """The MGU: Cho et al.'s GRU with r_t = f_t and z_t = 1 - f_t (kernels.cpp's ``tied``)."""
    return _run_reset_first(True, x, state, weights, mask)


def _run_reset_first(tied, x, state, weights, mask):
    ops = load_ops()
    # every b_hh block adds to a pre-activation here, b_hn too (outside r's reach)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    (h0,) = state
    output, h_n, acts, h_all = _ResetFirstFunction.apply(
        ops, tied, mask, x_gates, h0, weights["weight_hh"]
    )
    return output, (h_n,), dict(acts=acts, hidden=h_all)


class _ResetFirstFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, tied, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        output, h_n, acts, rh_all, h_all = ops.reset_first_forward(
            x_gates.contiguous(), h0.contiguous(), w_hh.contiguous(), tied, mask
        )
        ctx.ops, ctx.tied, ctx.mask = ops, tied, mask
        ctx.save_for_backward(acts, rh_all, h_all, h0, w_hh)
        ctx.mark_non_differentiable(acts, h_all)  # handed out for traces only
        return output, h_n, acts, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        acts, rh_all, h_all, h0, w_hh = ctx.saved_tensors
        d_pre, dh0, d_w_hh = ctx.ops.reset_first_backward(
            zeros_if_none(d_output, h_all).contiguous(),
            zeros_if_none(d_h_n, h0).contiguous(),
            acts, rh_all, h_all, h0.contiguous(), w_hh.contiguous(), ctx.tied, ctx.mask,
        )  # fmt: skip
        return None, None, None, d_pre, dh0, d_w_hh


# -- RNN -----------------------------------------------------------------------------------


def run_rnn(family, x, state, weights, mask):
    ops = load_ops()
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    (h0,) = state
    relu = family.nonlinearity == "relu"
    output, h_n, h_all = _RNNFunction.apply(ops, relu, mask, x_gates, h0, weights["weight_hh"])
    return output, (h_n,), dict(hidden=h_all)


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, relu, mask, x_gates, h0, w_hh):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        output, h_n, h_all = ops.rnn_forward(
            x_gates.contiguous(), h0.contiguous(), w_hh.contiguous(), relu, mask
        )
        ctx.ops, ctx.relu, ctx.mask = ops, relu, mask
        ctx.save_for_backward(h_all, h0, w_hh)
        ctx.mark_non_differentiable(h_all)  # handed out for traces only
        return output, h_n, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, *_):
        h_all, h0, w_hh = ctx.saved_tensors
        d_pre, dh0, d_w_hh = ctx.ops.rnn_backward(
            zeros_if_none(d_output, h_all).contiguous(),
            zeros_if_none(d_h_n, h0).contiguous(),
            h_all, h0.contiguous(), w_hh.contiguous(), ctx.relu, ctx.mask,
        )  # fmt: skip
        return None, None, None, d_pre, dh0, d_w_hh


def _contiguous(*tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    """Each tensor contiguous, None kept."""
    return tuple(None if t is None else t.contiguous() for t in tensors)


def _defined(t: Tensor | None) -> Tensor | None:
    """The kernels return an undefined tensor (None here) for absent parameters."""
    return t if t is not None and t.numel() else None
