"""The C++ kernels' larger float32 and bfloat16 step products through oneDNN with the weight
packed once per call (common.h's step_operand): each kernel that takes that path, forward and
backward, against the reference loop at a size where it is taken, and the rule that chooses
it.

The other fused tests run sizes below the rule's thresholds (float32: half a million weights
and batch 16; bfloat16: 65k weights and batch 16, or a quarter million), so without this
file the oneDNN path would go unchecked. LSTMKIT_NO_ONEDNN=1 sends every product back to
ATen's GEMM: the same cells then agree with the oneDNN run to the dtype's rounding.
"""

from __future__ import annotations

import pytest
import torch
from helpers import random_loss

import lstmkit
from lstmkit.layers.backends import fused_cpu
from lstmkit.layers.depth_gated import DepthGatedLSTM
from lstmkit.layers.grid_lstm import GridLSTM

I, B, T = 16, 16, 4

# each a cell whose recurrent product (or FGR's gate product) is over half a million weights
# at this hidden size, and which of the kernels' products it takes
CASES = {
    "lstm-with-base": lambda backend: lstmkit.LSTM(I, 512, backend=backend),
    # rows split over threads (16 rows of 4H = 2048, four to a chunk): the peephole sums
    # are kept per row in the loop
    "lstm-peephole-with-base": lambda backend: lstmkit.LSTM(I, 512, peephole=True,
                                                            backend=backend),
    "lstm-ba2016-no-base": lambda backend: lstmkit.LSTM(I, 512, layer_norm="ba2016",
                                                        backend=backend),
    "lstm-fgr-gate-product": lambda backend: lstmkit.LSTM(I, 256, gate_recurrence=True,
                                                          backend=backend),
    "gru-bias-row": lambda backend: lstmkit.GRU(I, 512, backend=backend),
    "gru-cho-two-products": lambda backend: lstmkit.GRU(I, 512, reset_after=False,
                                                        backend=backend),
    "mgu": lambda backend: lstmkit.MGU(I, 768, backend=backend),
    "rnn": lambda backend: lstmkit.RNN(I, 768, backend=backend),
    # stacks.cpp's step_product, forward and backward (a strided operand there)
    "depth-gated-stack": lambda backend: DepthGatedLSTM(I, 384, 2, backend=backend),
    "grid-lstm-stack": lambda backend: GridLSTM(I, 256, 2, backend=backend),
}  # fmt: skip


def _outputs_and_grads(layer, x: torch.Tensor, lengths) -> list[torch.Tensor]:
    """Output, final state, and the gradients of x and every parameter under one fixed
    random upstream gradient (drawn in float32 whatever x's dtype, so that a float64 run
    differentiates the same loss); zero initial states."""
    x = x.detach().requires_grad_()
    output, final = layer(x, lengths=lengths)
    values = [output, *(final if isinstance(final, tuple) else (final,))]
    # through float32 copies, random_loss draws the same upstream gradient in either dtype
    loss = random_loss([v.float() for v in values], seed=5)
    return [*values, *torch.autograd.grad(loss, [x, *layer.parameters()])]


def _largest_error(ours: list[torch.Tensor], exact: list[torch.Tensor]) -> float:
    """The largest error of any tensor, relative to that tensor's largest entry."""
    return max(
        ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
        for a, b in zip(ours, exact, strict=True)
    )


def _float32_and_exact(name: str):
    """The fused float32 layer, and the reference loop in float64 on the same weights."""
    torch.manual_seed(0)
    fused = CASES[name]("fused")
    exact = CASES[name]("reference").double()
    exact.load_state_dict({k: v.double() for k, v in fused.state_dict().items()})
    return fused, exact


def test_the_rule_takes_large_float32_products_at_batch_16_and_up():
    ops = fused_cpu.load_ops()
    w_t = torch.randn(2048, 512).t()  # an LSTM's W_hh^T at H = 512
    assert ops.product_uses_onednn(w_t, 16) and ops.product_uses_onednn(w_t, 64)
    assert not ops.product_uses_onednn(w_t, 15)  # ATen's GEMM (or, at 4 and under, vec_mat)
    assert not ops.product_uses_onednn(torch.randn(512, 512), 64)  # a quarter million
    assert not ops.product_uses_onednn(w_t.double(), 64)


def test_the_rule_takes_bfloat16_products_from_smaller_sizes_where_onednn_runs_it():
    ops = fused_cpu.load_ops()
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # else emulated either way
    w_t = torch.randn(1024, 256).t().bfloat16()  # a quarter million weights
    assert ops.product_uses_onednn(w_t, 1) == native
    small = torch.randn(512, 128).t().bfloat16()  # 65k weights: from batch 16
    assert ops.product_uses_onednn(small, 16) == native
    assert not ops.product_uses_onednn(small, 4)


def test_the_switch_sends_every_product_back_to_aten(monkeypatch):
    w_t = torch.randn(2048, 512).t()
    monkeypatch.setenv("LSTMKIT_NO_ONEDNN", "1")
    assert not fused_cpu.load_ops().product_uses_onednn(w_t, 64)


def _errors_both_ways(fused, exact, x: torch.Tensor, monkeypatch) -> dict[str, float]:
    """The largest error of the fused layer against ``exact`` (float64) with its products
    through oneDNN and through ATen's GEMM, two rows ending early (the masked rows)."""
    lengths = [T] * (B - 2) + [3, 1]
    want = _outputs_and_grads(exact, x.double(), lengths)
    errors = {}
    for products, switch in (("oneDNN", "0"), ("ATen", "1")):
        monkeypatch.setenv("LSTMKIT_NO_ONEDNN", switch)
        errors[products] = _largest_error(_outputs_and_grads(fused, x, lengths), want)
    return errors


@pytest.mark.parametrize("name", list(CASES))
def test_the_onednn_products_are_float32_exact(name, monkeypatch):
    """Against the reference loop in float64: within float32's rounding, relative to each
    tensor's largest entry, as the same kernels are with ATen's GEMM (about 2e-6 both)."""
    fused, exact = _float32_and_exact(name)
    errors = _errors_both_ways(fused, exact, torch.randn(T, B, I), monkeypatch)
    assert errors["oneDNN"] < 2e-5 and errors["ATen"] < 2e-5, errors


@pytest.mark.parametrize("name", list(CASES))
def test_the_bfloat16_products_round_as_atens_do(name, monkeypatch):
    """bfloat16 on the same cells, against the reference loop in float64 on the same rounded
    weights and input: both products within bfloat16's rounding of each tensor's largest
    entry, and oneDNN's error no more than ATen's by a half."""
    fused, exact = _float32_and_exact(name)
    fused = fused.bfloat16()
    exact.load_state_dict({k: v.double() for k, v in fused.state_dict().items()})
    errors = _errors_both_ways(fused, exact, torch.randn(T, B, I).bfloat16(), monkeypatch)
    assert errors["oneDNN"] < 3e-2 and errors["ATen"] < 3e-2, errors
    assert errors["oneDNN"] < 1.5 * errors["ATen"], errors
