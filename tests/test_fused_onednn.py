"""The C++ kernels' step products on their three paths (common.h's step_operand): oneDNN's
product with the weight packed once per call, taken by larger float32 and bfloat16 products;
vec_mat, the kernels' own loop, taken by small batches (in float32 for bfloat16); and ATen's
GEMM. Each kernel that takes the oneDNN path, forward and backward, against the reference
loop at a size where it is taken; the three paths on one product against float64; and the
rule that chooses among them.

The other fused tests run sizes below the rule's thresholds for packing (float32: half a
million weights; bfloat16: 65k weights and batch 16, or a quarter million; at batch 4 and
under, a million weights or half a million), so without this
file the oneDNN path would go unchecked. LSTMKIT_NO_ONEDNN=1 sends every product back to
ATen's GEMM (or vec_mat at a small batch): the same cells then agree with the oneDNN run to
the dtype's rounding. (LSTMKIT_NO_VEC_MAT=1 likewise keeps products from vec_mat, which
above batch 4 takes those of up to a million of batch x weights: the other grids use it to
reach ATen's path at batch 6.)
"""

from __future__ import annotations

import pytest
import torch
from helpers import random_loss

import lstmkit
from lstmkit.layers.backends import fused_cpu
from lstmkit.layers.depth_gated import DepthGatedLSTM
from lstmkit.layers.grid_lstm import GridLSTM
from lstmkit.layers.slstm import SLSTM

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
    # slstm.cpp: one head's product takes the rule (several heads' a bmm)
    "slstm-one-head": lambda backend: SLSTM(I, 512, backend=backend),
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


def _path(m_view: torch.Tensor, batch: int) -> str:
    return fused_cpu.load_ops().product_path(m_view, batch)


def _w_t(hidden: int, dtype=torch.float32) -> torch.Tensor:
    """An LSTM's W_hh^T (4 hidden x hidden weights), the view the forward's product takes."""
    return torch.randn(4 * hidden, hidden).t().to(dtype)


def test_the_rule_packs_float32_products_from_a_quarter_million_weights_above_batch_4():
    w_t = _w_t(512)  # a million weights
    assert _path(w_t, 5) == _path(w_t, 16) == _path(w_t, 64) == "onednn"
    assert _path(_w_t(384), 8) == "onednn"  # 590k
    assert _path(torch.randn(512, 512), 64) == "onednn"  # a quarter million: the RNN's
    assert _path(_w_t(256), 8) == _path(_w_t(256), 128) == "onednn"  # the LSTM's
    assert _path(torch.randn(3 * 296, 296), 32) == "onednn"  # the GRU's, 263k
    assert _path(_w_t(255), 32) == _path(torch.randn(511, 511), 64) == "aten"  # just under
    assert _path(w_t.double(), 64) == "aten"


def test_a_small_batch_takes_vec_mat_up_to_a_million_weights_or_half_a_million_in_bfloat16():
    """At batch 4 and under, float32 packs from a million weights, bfloat16 from half a
    million where oneDNN runs it natively (benchmarks/small_batch_products.py); float64
    always takes vec_mat there."""
    small, quarter, large = _w_t(128), _w_t(256), _w_t(384)  # 64k, 262k, 590k weights
    million = _w_t(512)
    assert [_path(w, b) for w in (small, quarter, large) for b in (1, 4)] == ["vec_mat"] * 6
    assert [_path(million, b) for b in (1, 4)] == ["onednn", "onednn"]
    assert _path(million.double(), 4) == "vec_mat"
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # else emulated either way
    packs = "onednn" if native else "vec_mat"
    assert [_path(quarter.bfloat16(), b) for b in (1, 4)] == ["vec_mat", "vec_mat"]
    assert [_path(large.bfloat16(), b) for b in (1, 4)] == [packs, packs]


def test_the_rule_takes_bfloat16_products_from_smaller_sizes_where_onednn_runs_it():
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    packs = "onednn" if native else "aten"
    quarter = _w_t(256, torch.bfloat16)  # a quarter million weights: from batch 5 on
    assert _path(quarter, 5) == packs
    small = _w_t(128, torch.bfloat16)  # 65k weights: from batch 16, past vec_mat's million
    assert _path(small, 17) == packs
    assert _path(_w_t(200, torch.bfloat16), 8) == "aten"  # 160k: neither


def test_above_batch_4_vec_mat_takes_up_to_a_million_of_batch_times_weights():
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        assert _path(_w_t(16, dtype), 32) == "vec_mat"  # 1k weights
        assert _path(_w_t(64, dtype), 64) == "vec_mat"  # 16k weights: a million
        assert _path(_w_t(128, dtype), 16) == "vec_mat"  # 65k weights: a million
    assert _path(_w_t(64), 65) == _path(_w_t(128), 17) == "aten"  # float32: past it


def test_the_switches_send_products_to_aten(monkeypatch):
    monkeypatch.setenv("LSTMKIT_NO_ONEDNN", "1")
    assert _path(_w_t(512), 64) == "aten"
    assert _path(_w_t(512), 4) == _path(_w_t(512, torch.bfloat16), 1) == "vec_mat"
    monkeypatch.setenv("LSTMKIT_NO_ONEDNN", "0")
    monkeypatch.setenv("LSTMKIT_NO_VEC_MAT", "1")
    assert _path(_w_t(128), 1) == _path(_w_t(16), 32) == "aten"
    assert _path(_w_t(512), 4) == "onednn"  # packing as before


# (B, K) @ (K, N) with N = 150: vec_mat's unrolled block of 8 vectors, then single vectors,
# then a remainder, in every build (a vector is 4 to 16 values)
PRODUCT_SHAPES = {"B1": 1, "B3": 3}
BASES = {
    "no-base": lambda gen: None,
    "rows-base": lambda gen: torch.randn(3, 150, generator=gen),
    "bias": lambda gen: torch.randn(150, generator=gen),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("path", ["vec_mat", "onednn", "aten"])
@pytest.mark.parametrize("base_kind", list(BASES))
@pytest.mark.parametrize("batch", list(PRODUCT_SHAPES.values()), ids=list(PRODUCT_SHAPES))
def test_every_path_gives_the_product_to_the_dtypes_rounding(batch, base_kind, path, dtype):
    """Against the float64 product of the same (rounded) operands, repeated on one prepared
    operand as a time loop repeats it: within half a step of the dtype (2^-8 of the value
    for bfloat16, whose vec_mat sums in float32 and rounds once), plus float32's sums (1e-6
    of the terms' magnitudes)."""
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 37, generator=gen).to(dtype)
    m_view = torch.randn(150, 37, generator=gen).t().to(dtype)  # a transposed view, as W^T
    base = BASES[base_kind](gen)
    if base is not None:
        base = (base[:batch] if base.dim() == 2 else base).to(dtype)
    ours = fused_cpu.load_ops().product_via(base, x, m_view, path, 3)
    assert ours.dtype == dtype and ours.shape == (batch, 150)
    exact = x.double() @ m_view.double() + (0 if base is None else base.double())
    scale = x.double().abs() @ m_view.double().abs() + (0 if base is None else base.double().abs())
    step = 2.0**-8 if dtype == torch.bfloat16 else 2.0**-23
    error = (ours.double() - exact).abs()
    assert (error <= step * exact.abs() + 1e-6 * scale).all(), error.max()


def test_product_via_names_a_wrong_path():
    with pytest.raises(RuntimeError, match="path must be vec_mat, onednn or aten, got gemv"):
        fused_cpu.load_ops().product_via(None, torch.ones(1, 2), torch.ones(2, 3), "gemv")


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
