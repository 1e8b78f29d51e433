// Shared by lstmkit's fused CPU kernel files: row buffers, the per-step row runner, SIMD
// sigmoid and tanh, masks, and the small-batch recurrent product. Each kernel file is its
// own extension (one translation unit), so these live in an anonymous namespace and every
// library gets its own copy.

#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using at::Tensor;

// An optional parameter's data, or null where the layer has none (a peephole the cell
// lacks, a bias turned off).
template <typename T>
const T* optional_data(const c10::optional<Tensor>& p) {
  return p.has_value() ? p->data_ptr<T>() : nullptr;
}

// In place over n contiguous values: x = 1 / (1 + exp(-x)), and x = tanh(x).
template <typename T>
void sigmoid_(T* x, int64_t n) {
  using Vec = at::vec::Vectorized<T>;
  at::vec::map([](Vec v) { return Vec(T(1)) / (Vec(T(1)) + (Vec(T(0)) - v).exp()); }, x, x, n);
}

// tanh of float lanes in about a third of Sleef's time (benchmarks/tanh_speed.py). Sleef's
// tanh, which Vectorized<float> calls, took six times as long as torch.sigmoid there on this
// project's AMD EPYC, and over a quarter of the bfloat16 LSTM's elementwise time in `perf`.
// Below |x| = 1/4 the odd Taylor series to x^11 (the next term is under 1e-8 of x there);
// above it (1 - e) / (1 + e) with e = exp(-2|x|), where 1 - e > 0.39 keeps the
// subtraction from cancelling; then the sign of x. At most 2.4 ulp from float64's tanh over
// magnitudes from 1e-8 to 20 (tests/test_fused_simd_rows.py; Sleef's: 1 ulp); tanh(+-inf)
// = +-1, NaN stays NaN. Double keeps Sleef's tanh.
inline at::vec::Vectorized<float> tanh_float(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  const Vec a = x.abs();
  const Vec e = (Vec(-2.f) * a).exp();
  const Vec far = (Vec(1.f) - e) / (Vec(1.f) + e);
  const Vec a2 = a * a;
  Vec series = Vec(-1382.f / 155925.f);
  series = at::vec::fmadd(series, a2, Vec(62.f / 2835.f));
  series = at::vec::fmadd(series, a2, Vec(-17.f / 315.f));
  series = at::vec::fmadd(series, a2, Vec(2.f / 15.f));
  series = at::vec::fmadd(series, a2, Vec(-1.f / 3.f));
  const Vec near = at::vec::fmadd(series * a2, a, a);
  return Vec::blendv(far, near, a < Vec(0.25f)).copysign(x);
}

template <typename T>
void tanh_(T* x, int64_t n) {
  using Vec = at::vec::Vectorized<T>;
  if constexpr (std::is_same_v<T, float>) {
    at::vec::map(tanh_float, x, x, n);
  } else {
    at::vec::map([](Vec v) { return v.tanh(); }, x, x, n);
  }
}

// A row's elementwise arithmetic written once for two widths. for_lanes(n, body) calls
// body(j, lane) at j = 0, V, 2V, ... with a SimdLane, whose values are V at a time in
// at::vec registers, then over the remainder with a ScalarLane, one value at a time; body
// is a generic lambda, and its +, -, *, / and ?: (on a condition shared by all lanes) work
// on either; a choice per lane is lane.where(a >= b, then, otherwise). Loads and stores
// convert to and from the accumulation type, so a bfloat16 row is widened and rounded in
// SIMD too (the compiler does not vectorise loops over c10::BFloat16 on its own, nor ones
// with the variants' branches inside: the LSTM's row loops ran scalar in float32 as well).
template <typename acc>
struct ScalarLane {
  using Value = acc;
  template <typename T>
  static Value load(const T* p) { return acc(*p); }
  template <typename T>
  static void store(T* p, Value v) { *p = T(v); }
  static Value splat(acc c) { return c; }
  static Value where(bool condition, Value then, Value otherwise) {
    return condition ? then : otherwise;
  }
  static Value sigmoid(Value x) { return acc(1) / (acc(1) + std::exp(-x)); }
  static Value exp(Value x) { return std::exp(x); }
  static Value log1p(Value x) { return std::log1p(x); }
};

template <typename acc>
struct SimdLane {
  using Value = at::vec::Vectorized<acc>;
  template <typename T>
  static Value load(const T* p) {
    if constexpr (std::is_same_v<T, acc>) {
      return Value::loadu(p);
    } else {
      Value v;
      at::vec::load_to_float(p, v);  // V bfloat16 values, widened
      return v;
    }
  }
  template <typename T>
  static void store(T* p, const Value& v) {
    if constexpr (std::is_same_v<T, acc>) {
      v.store(p);
    } else {
      at::vec::convert_from_float<T>(v, v).store(p, Value::size());  // the first V, rounded
    }
  }
  static Value splat(acc c) { return Value(c); }
  // `condition` as a comparison of two Values gives it: every bit of a lane set where true
  static Value where(const Value& condition, const Value& then, const Value& otherwise) {
    return Value::blendv(otherwise, then, condition);
  }
  static Value sigmoid(const Value& x) { return Value(1) / (Value(1) + (Value(0) - x).exp()); }
  static Value exp(const Value& x) { return x.exp(); }
  static Value log1p(const Value& x) { return x.log1p(); }
};

template <typename acc, typename F>
inline void for_lanes(int64_t n, const F& body) {
  constexpr int64_t V = at::vec::Vectorized<acc>::size();
  int64_t j = 0;
  for (; j + V <= n; j += V) body(j, SimdLane<acc>{});
  for (; j < n; ++j) body(j, ScalarLane<acc>{});
}

// A sum over a for_lanes pass: add() takes either lane's values, total() is the whole sum.
// The SIMD lanes keep V partial sums, not one chain of additions, which is also kinder to
// rounding over a long row.
template <typename acc>
struct LaneSum {
  using Vec = at::vec::Vectorized<acc>;
  Vec lanes = Vec(acc(0));
  acc rest = acc(0);
  void add(const Vec& v) { lanes = lanes + v; }
  void add(acc v) { rest += v; }
  acc total() const {
    acc parts[Vec::size()];
    lanes.store(parts);
    acc sum = rest;
    for (const acc part : parts) sum += part;
    return sum;
  }
};

// out = a + b over n values, each in its own type, summed in the accumulation type.
template <typename acc, typename A, typename B, typename D>
inline void add_row(const A* a, const B* b, D* out, int64_t n) {
  for_lanes<acc>(n, [&](int64_t j, auto L) { L.store(out + j, L.load(a + j) + L.load(b + j)); });
}

// dst = src over n values, converting between the storage and the accumulation type.
template <typename acc, typename S, typename D>
inline void convert_row(const S* src, D* dst, int64_t n) {
  for_lanes<acc>(n, [&](int64_t j, auto lane) { lane.store(dst + j, lane.load(src + j)); });
}

// The gradient of a diagonal weight (a peephole, the depth gate's w_cd and w_ld, a layer
// norm's gain and shift): over all steps and rows, the sum of a gradient times the value it
// multiplied. The backward row loops add into it as they go, one (blocks * H) row of sums
// per batch row in the accumulation type: a row is one thread's within a step and the
// steps run in turn, so no two threads add into one sum. Summing afterwards from the saved
// (T, B, H) tensors took about ten passes over them in bfloat16, each widened to float32
// first.
struct RowSums {
  Tensor sums;  // (B, blocks * H); undefined where the layer has no such weight
  int64_t H = 0;
  RowSums() = default;
  RowSums(int64_t B, int64_t blocks, int64_t H, const Tensor& like)
      : sums(at::zeros({B, blocks * H},
                       like.options().dtype(at::toOpMathType(like.scalar_type())))),
        H(H) {}
  // batch row b's sums, block after block, or null without the weight
  template <typename acc>
  acc* row(int64_t b) const {
    return sums.defined() ? sums.data_ptr<acc>() + b * sums.size(1) : nullptr;
  }
  // block k's sums over the rows, in dtype
  Tensor total(int64_t block, at::ScalarType dtype) const {
    return sums.narrow(1, block * H, H).sum(0).to(dtype);
  }
};

// A row buffer in the accumulation type, one per thread and call.
template <typename T>
struct RowBuffer {
  std::vector<T> data;
  explicit RowBuffer(int64_t n) : data(static_cast<size_t>(n)) {}
  T* get() { return data.data(); }
};

// Rows of a (B, n) tensor in parallel: small batches stay on one thread, where the grain
// keeps at::parallel_for from paying its start-up for nothing.
template <typename F>
inline void for_rows(int64_t rows, int64_t row_cost, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(row_cost, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) body(b);
  });
}

const bool* mask_row(const c10::optional<Tensor>& mask, int64_t t) {
  return mask.has_value() ? mask->data_ptr<bool>() + t * mask->size(1) : nullptr;
}

// The recurrent products of a step, out (B, N) = base + in (B, K) @ m (K, N).
//
// A small batch (the streaming case) runs them here on raw pointers: at batch 1 a step's
// product of H = 128 is a few microseconds of arithmetic, and ATen's fixed cost per call
// (dispatch, checks, the BLAS call's set-up) is several times that. The loop keeps SIMD
// accumulators of up to four output rows in registers and streams m's rows past them once
// for all of them, one FMA each per element of `in`. Larger batches, and a small batch's
// larger products, go to oneDNN's or ATen's GEMM, which block for the caches and threads
// (the rule is worth_packing's, below). bfloat16 runs here too, in float32: m widened once
// per call (step_operand), `in` and `base` widened as they are read, `out` rounded once.
// While its small batches went to ATen's bfloat16 GEMM, every fused cell but minGRU and
// minLSTM took 2.5 to 7.5 times as long in bfloat16 as in float32 at T = 500, B = 1,
// H = 128, forward and backward (docs/performance.md, "bfloat16 at a small batch").
constexpr int64_t kSmallBatch = 4;

// R rows' products over U vectors of columns from n0: the columns' weights are loaded once
// for all R rows, and R x U accumulators stay in registers. Row r of `in`, `base` and `out`
// starts r times its stride on.
template <int R, int U, typename S>
inline void vec_mat_block(const S* in, int64_t in_stride, const at::opmath_type<S>* m,
                          const S* base, int64_t base_stride, S* out, int64_t out_stride,
                          int64_t K, int64_t N, int64_t n0) {
  using acc = at::opmath_type<S>;
  using Vec = at::vec::Vectorized<acc>;
  using Lane = SimdLane<acc>;
  constexpr int64_t V = Vec::size();
  Vec sum[R][U];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < U; ++u)
      sum[r][u] = base != nullptr ? Lane::load(base + r * base_stride + n0 + u * V) : Vec(acc(0));
  for (int64_t k = 0; k < K; ++k) {
    const acc* row = m + k * N + n0;
    Vec w[U];
    for (int u = 0; u < U; ++u) w[u] = Vec::loadu(row + u * V);
    for (int r = 0; r < R; ++r) {
      const Vec x(acc(in[r * in_stride + k]));
      for (int u = 0; u < U; ++u) sum[r][u] = at::vec::fmadd(x, w[u], sum[r][u]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < U; ++u) Lane::store(out + r * out_stride + n0 + u * V, sum[r][u]);
}

// R rows at once, so that m is streamed once for all of them: eight vectors of columns at a
// time for one row, fewer for more (at most 8 accumulators: AVX2 has 16 registers), then
// single vectors, then the columns left one at a time.
template <int R, typename S>
void vec_mat_rows(const S* in, int64_t in_stride, const at::opmath_type<S>* m, const S* base,
                  int64_t base_stride, S* out, int64_t out_stride, int64_t K, int64_t N) {
  using acc = at::opmath_type<S>;
  constexpr int64_t V = at::vec::Vectorized<acc>::size();
  constexpr int U = R == 1 ? 8 : R == 2 ? 4 : 2;
  int64_t n0 = 0;
  for (; n0 + U * V <= N; n0 += U * V)
    vec_mat_block<R, U>(in, in_stride, m, base, base_stride, out, out_stride, K, N, n0);
  for (; n0 + V <= N; n0 += V)
    vec_mat_block<R, 1>(in, in_stride, m, base, base_stride, out, out_stride, K, N, n0);
  for (; n0 < N; ++n0)
    for (int r = 0; r < R; ++r) {
      acc sum = base != nullptr ? acc(base[r * base_stride + n0]) : acc(0);
      for (int64_t k = 0; k < K; ++k) sum += acc(in[r * in_stride + k]) * m[k * N + n0];
      out[r * out_stride + n0] = S(sum);
    }
}

// out = base + in @ m over B rows, each of `in`, `base` and `out` `*_stride` values after the
// one before (base may be null, or stride 0: one bias row for all).
template <typename S>
void vec_mat(const S* in, int64_t in_stride, const at::opmath_type<S>* m, const S* base,
             int64_t base_stride, S* out, int64_t out_stride, int64_t B, int64_t K, int64_t N) {
  for (int64_t b = 0; b < B; b += 4) {  // four rows at a time, then the one to three left
    const S* x = in + b * in_stride;
    const S* start = base == nullptr ? nullptr : base + b * base_stride;
    S* y = out + b * out_stride;
    switch (std::min<int64_t>(B - b, 4)) {
      case 1: vec_mat_rows<1>(x, in_stride, m, start, base_stride, y, out_stride, K, N); break;
      case 2: vec_mat_rows<2>(x, in_stride, m, start, base_stride, y, out_stride, K, N); break;
      case 3: vec_mat_rows<3>(x, in_stride, m, start, base_stride, y, out_stride, K, N); break;
      default: vec_mat_rows<4>(x, in_stride, m, start, base_stride, y, out_stride, K, N); break;
    }
  }
}

// The same with `in` (B, K) and `out` (B, N) contiguous.
template <typename S>
void vec_mat(const S* in, const at::opmath_type<S>* m, const S* base, int64_t base_stride,
             S* out, int64_t B, int64_t K, int64_t N) {
  vec_mat(in, K, m, base, base_stride, out, N, B, K, N);
}

// t in the accumulation type, contiguous: t itself where it already is, else a copy.
Tensor in_accumulation_type(const Tensor& t) {
  return t.to(at::toOpMathType(t.scalar_type())).contiguous();
}

// out = base + in @ m_view; base undefined (0), (B, N), or an (N,) bias for every row. `in`,
// `base` and `out` are contiguous; `m_kn`, where defined, is m as vec_mat reads it: (K, N)
// contiguous in the accumulation type (step_operand's `small`).
void add_product(Tensor& out, const Tensor& base, const Tensor& in, const Tensor& m_view,
                 const Tensor& m_kn) {
  if (m_kn.defined()) {
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, out.scalar_type(), "add_product", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* bp = base.defined() ? base.data_ptr<scalar_t>() : nullptr;
      const int64_t stride = base.defined() && base.dim() == 2 ? base.size(1) : 0;
      vec_mat(in.data_ptr<scalar_t>(), m_kn.data_ptr<acc>(), bp, stride,
              out.data_ptr<scalar_t>(), in.size(0), in.size(1), out.size(1));
    });
  } else if (base.defined()) {
    at::addmm_out(out, base, in, m_view);
  } else {
    at::mm_out(out, in, m_view);
  }
}

// Larger float32 products go through oneDNN with the weight packed once per call. On the
// project's AMD EPYC (2 threads), a step's product with ATen's float32 GEMM (MKL) against
// oneDNN's packed one took 1.2 to 1.5x as long from half a million weights up: (64, 512) x
// (512, 2048) ran at about 140 GFLOP/s against 215 (torch.nn.LSTM's own kernel is oneDNN's
// too), (64, 2048) x (2048, 512), the backward's, gained 1.2x, and the GRU's 512 x 1536
// 1.3x. With a quarter of a million weights the gain was mixed (none at 512 x 512). Those
// measurements took batch 16 and up, after one at batch 8 had lost (a third of ATen's
// speed); benchmarks/small_batch_products.py since found the packed product ahead at batch
// 8 too (0.52x ATen's time at H = 512, docs/performance/small-batch-products-b8.txt), and
// whole layers at batch 5 to 8 with half a million weights or more agreed (by hand, on
// issue 7), so float32 above batch 4 packed from half a million weights at any batch. Then
// `small_batch_products.py --dtype float32 --gates G` at batch 8, 32 and 128 found the
// packed product ahead from a quarter million weights too, for the LSTM's, GRU's and RNN's
// shapes alike (0.77 to 0.97x ATen's time at 262k, 0.72 to 0.88x at 410k to 442k; mixed,
// 0.90 to 1.14x, at 147k to 200k: docs/performance/small-batch-products-f32-mid.txt), and
// whole layers gained too (docs/performance.md, "a quarter million"), so it packs from a
// quarter million.
constexpr int64_t kPackedMinBatch = 16;  // bfloat16's products of 65k weights and up
constexpr int64_t kPackedMinWeights = int64_t(1) << 18;
// bfloat16 products gain at smaller sizes: ATen's bfloat16 GEMM is oneDNN's already, but
// unpacked, and with the base copied into the output first. On the same machine the packed
// product took 0.6 to 0.87x ATen's time for a step's shapes from a quarter million weights
// at any batch (batch 1 at 512 x 2048: 0.62x) and from 65k weights at batch 16 and up;
// at 65k weights and batch 1 to 4 it took 1.1x. Only where torch's oneDNN runs bfloat16
// natively (AVX-512 BF16 or AMX): elsewhere it is emulated either way.
constexpr int64_t kPackedBF16MinWeights = int64_t(1) << 18;
constexpr int64_t kPackedBF16MinWeightsFromBatch16 = int64_t(1) << 16;
// At batch 4 and under vec_mat runs the product up to the size below, from where the packed
// product is about as fast or faster: vec_mat is one thread that streams m once per step
// for all the rows (in float32 for bfloat16), oneDNN two that stream it in its own dtype.
// benchmarks/small_batch_products.py, the LSTM's step products at H = 128 to 1024 on the
// same machine (docs/performance/small-batch-products-b{1,2,4}.txt): float32's packed
// product took 1.22x vec_mat's time at 590k weights at batch 1, 1.0x at batch 2 and 0.94x
// at batch 4, and 0.65 to 0.95x at 1M; bfloat16's 1.77x, 1.18x and 0.84x at 262k, and 0.53
// to 0.87x at 590k. ATen's GEMM was the fastest of the three for none of the 36 shapes.
constexpr int64_t kPackedMinWeightsSmallBatch = int64_t(1) << 20;
constexpr int64_t kPackedBF16MinWeightsSmallBatch = int64_t(1) << 19;

// The operand of a step's product, prepared once per call: `small`, m as vec_mat reads it
// ((K, N) contiguous in the accumulation type), or `packed`, oneDNN's copy of m's transpose
// (N, K), or neither (ATen's GEMM).
struct StepOperand {
  Tensor small;
  Tensor packed;
};

// Whether the switch `name` (an environment variable) is off: unset, empty or "0". Read per
// call, not once: a call is many steps, and tests flip the switches between calls.
bool switch_off(const char* name) {
  const char* flag = std::getenv(name);
  return flag == nullptr || std::string(flag).empty() || std::string(flag) == "0";
}

// LSTMKIT_NO_ONEDNN=1 keeps every product with ATen (to compare the two, or to step around
// a oneDNN problem).
bool onednn_allowed() { return at::hasMKLDNN() && switch_off("LSTMKIT_NO_ONEDNN"); }

bool onednn_runs_bfloat16() {
  static const bool native = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("mkldnn::_is_mkldnn_bf16_supported", "")
                                 .typed<bool()>()
                                 .call();
  return native;
}

// Whether a step's product with m at this batch is worth packing (the thresholds above).
bool worth_packing(const Tensor& m_view, int64_t batch) {
  const int64_t weights = m_view.numel();
  switch (m_view.scalar_type()) {
    case at::kFloat:
      if (batch <= kSmallBatch) return weights >= kPackedMinWeightsSmallBatch;
      return weights >= kPackedMinWeights;
    case at::kBFloat16:
      if (!onednn_runs_bfloat16()) return false;
      if (batch <= kSmallBatch) return weights >= kPackedBF16MinWeightsSmallBatch;
      return weights >= kPackedBF16MinWeights ||
             (batch >= kPackedMinBatch && weights >= kPackedBF16MinWeightsFromBatch16);
    default:
      return false;
  }
}

// oneDNN's copy of m's transpose, laid out for products at this batch
Tensor packed_operand(const Tensor& m_view, int64_t batch) {
  static const auto reorder =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_reorder_linear_weight", "")
          .typed<Tensor(const Tensor&, std::optional<int64_t>)>();
  return reorder.call(m_view.t().contiguous(), batch);
}

// Above batch 4 vec_mat still runs a product of up to a million of batch x weights, where
// ATen's fixed cost per call is most of a product's time and packing does not pay. In
// benchmarks/small_batch_products.py (docs/performance/small-batch-products-b{8,16,32}.txt)
// vec_mat took 0.03 to 0.3x the faster other path's time at H = 16, batch 8 to 32, in
// float32 and bfloat16, and about the same at a million (batch 16, H = 128: 1.04x in
// float32, 0.98x in bfloat16).
constexpr int64_t kVecMatMaxWork = int64_t(1) << 20;  // batch x weights

// LSTMKIT_NO_VEC_MAT=1 sends the products vec_mat would take to oneDNN or ATen instead, so
// that the tests' small sizes can run the path large ones take (the several-headed sLSTM's
// and the Clockwork RNN's own small-batch paths do not read it).
bool vec_mat_allowed() { return switch_off("LSTMKIT_NO_VEC_MAT"); }

// A product runs in vec_mat above batch 4 while it is small, and at batch 4 and under unless
// it is worth packing; else packed where that is worth it, else ATen's GEMM.
StepOperand step_operand(const Tensor& m_view, int64_t batch) {
  StepOperand op;
  const bool vec_mat_ok = vec_mat_allowed();
  const bool small =
      vec_mat_ok && batch > kSmallBatch && batch * m_view.numel() <= kVecMatMaxWork;
  if (!small && onednn_allowed() && worth_packing(m_view, batch)) {
    op.packed = packed_operand(m_view, batch);
  } else if (small || (vec_mat_ok && batch <= kSmallBatch)) {
    op.small = in_accumulation_type(m_view);
  }
  return op;
}

// base + in @ m_view with a prepared operand, in oneDNN's own fresh tensor where m is packed
// (a (B, N) base joins as its fused addition, an (N,) one as its bias), else written into
// `out` as add_product writes it. Returns the tensor that holds the result: a loop that only
// reads it can skip the copy into `out` (at B=64, H=512 the LSTM forward's copies took
// about an eighth of its loop's time).
Tensor product_result(Tensor& out, const Tensor& base, const Tensor& in, const Tensor& m_view,
                      const StepOperand& op) {
  if (!op.packed.defined()) {
    add_product(out, base, in, m_view, op.small);
    return out;
  }
  if (base.defined() && base.dim() == 2) {
    static const auto linear_add =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("mkldnn::_linear_pointwise", "binary")
            .typed<Tensor(const Tensor&, const Tensor&, const Tensor&,
                          const std::optional<Tensor>&, c10::string_view)>();
    return linear_add.call(in, base, op.packed, std::nullopt, "add");
  }
  static const auto linear =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                        c10::string_view, c10::List<std::optional<at::Scalar>>,
                        std::optional<c10::string_view>)>();
  const std::optional<Tensor> bias = base.defined() ? std::optional<Tensor>(base) : std::nullopt;
  return linear.call(in, op.packed, bias, "none", c10::List<std::optional<at::Scalar>>(),
                     std::nullopt);
}

// add_product with a prepared operand: the result always lands in `out`.
void add_product(Tensor& out, const Tensor& base, const Tensor& in, const Tensor& m_view,
                 const StepOperand& op) {
  const Tensor result = product_result(out, base, in, m_view, op);
  if (!result.is_same(out)) out.copy_(result);
}

// ------------------------------------------------------------------------------------
// The time loops' row runner
// ------------------------------------------------------------------------------------
//
// The time loops are templates over the element type, dispatched once per call, and
// address every step's slices by pointer: at batch 1 a step is a few microseconds of work,
// and building a handful of tensor views per step (acts[t], c_all[t], ...) would cost as
// much again. Tensors appear in the loops only where ATen or oneDNN does the work (larger
// products, projections).

// Runs rows 0..B-1 of a step through body(b, buffers...): on this thread with buffers made
// once per call for a small batch, else split over threads with buffers per chunk.
template <typename acc>
struct StepRows {
  int64_t rows, grain;
  std::vector<int64_t> sizes;
  std::vector<RowBuffer<acc>> serial;  // the small batch's buffers, reused every step
  StepRows(int64_t rows, int64_t row_cost, std::vector<int64_t> buffer_sizes)
      : rows(rows),
        grain(std::max<int64_t>(1, 32768 / std::max<int64_t>(row_cost, 1))),
        sizes(std::move(buffer_sizes)) {
    if (rows <= kSmallBatch)
      for (int64_t n : sizes) serial.emplace_back(n);
  }
  template <typename F>
  void run(const F& body, bool one_thread = false) {
    if (!serial.empty()) {
      for (int64_t b = 0; b < rows; ++b) body(b, serial);
      return;
    }
    auto chunk = [&](int64_t begin, int64_t end) {
      std::vector<RowBuffer<acc>> buffers;
      for (int64_t n : sizes) buffers.emplace_back(n);
      for (int64_t b = begin; b < end; ++b) body(b, buffers);
    };
    if (one_thread) {
      chunk(0, rows);
    } else {
      at::parallel_for(0, rows, grain, chunk);
    }
  }
};

}  // namespace
