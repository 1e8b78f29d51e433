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
#include <torch/library.h>

#include <algorithm>
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

template <typename T>
void tanh_(T* x, int64_t n) {
  using Vec = at::vec::Vectorized<T>;
  at::vec::map([](Vec v) { return v.tanh(); }, x, x, n);
}

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
// (dispatch, checks, the BLAS call's set-up) is several times that. The loop keeps eight
// SIMD accumulators of the output row in registers and streams m's rows past them, one FMA
// each per element of `in`. Larger batches go to ATen's GEMM, which blocks for the caches
// and threads; so does bfloat16, which this CPU has no arithmetic for.
constexpr int64_t kSmallBatch = 4;

template <typename T>
void vec_mat(const T* in, const T* m, const T* base, int64_t base_stride, T* out, int64_t B,
             int64_t K, int64_t N) {
  using Vec = at::vec::Vectorized<T>;
  constexpr int64_t V = Vec::size();
  constexpr int kUnroll = 8;
  for (int64_t b = 0; b < B; ++b) {
    const T* x = in + b * K;
    const T* start = base == nullptr ? nullptr : base + b * base_stride;
    T* y = out + b * N;
    int64_t n0 = 0;
    for (; n0 + kUnroll * V <= N; n0 += kUnroll * V) {
      Vec acc[kUnroll];
      for (int u = 0; u < kUnroll; ++u)
        acc[u] = start != nullptr ? Vec::loadu(start + n0 + u * V) : Vec(T(0));
      for (int64_t k = 0; k < K; ++k) {
        const Vec xk(x[k]);
        const T* row = m + k * N + n0;
        for (int u = 0; u < kUnroll; ++u)
          acc[u] = at::vec::fmadd(xk, Vec::loadu(row + u * V), acc[u]);
      }
      for (int u = 0; u < kUnroll; ++u) acc[u].store(y + n0 + u * V);
    }
    for (; n0 + V <= N; n0 += V) {
      Vec acc = start != nullptr ? Vec::loadu(start + n0) : Vec(T(0));
      for (int64_t k = 0; k < K; ++k) acc = at::vec::fmadd(Vec(x[k]), Vec::loadu(m + k * N + n0), acc);
      acc.store(y + n0);
    }
    for (; n0 < N; ++n0) {
      T acc = start != nullptr ? start[n0] : T(0);
      for (int64_t k = 0; k < K; ++k) acc += x[k] * m[k * N + n0];
      y[n0] = acc;
    }
  }
}

// m as vec_mat reads it, (K, N) contiguous, when the small path applies; else undefined.
// `m_view` is the same operand as ATen takes it (often a transposed view).
Tensor small_batch_operand(const Tensor& m_view, int64_t batch) {
  const auto dtype = m_view.scalar_type();
  if (batch > kSmallBatch || (dtype != at::kFloat && dtype != at::kDouble)) return Tensor();
  return m_view.contiguous();
}

// out = base + in @ m_view; base undefined (0), (B, N), or an (N,) bias for every row. `in`,
// `base` and `out` are contiguous; `m_kn` is small_batch_operand(m_view, B).
void add_product(Tensor& out, const Tensor& base, const Tensor& in, const Tensor& m_view,
                 const Tensor& m_kn) {
  if (m_kn.defined()) {
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "add_product", [&] {
      const scalar_t* bp = base.defined() ? base.data_ptr<scalar_t>() : nullptr;
      const int64_t stride = base.defined() && base.dim() == 2 ? base.size(1) : 0;
      vec_mat(in.data_ptr<scalar_t>(), m_kn.data_ptr<scalar_t>(), bp, stride,
              out.data_ptr<scalar_t>(), in.size(0), in.size(1), out.size(1));
    });
  } else if (base.defined()) {
    at::addmm_out(out, base, in, m_view);
  } else {
    at::mm_out(out, in, m_view);
  }
}

// ------------------------------------------------------------------------------------
// The time loops' row runner
// ------------------------------------------------------------------------------------
//
// The time loops are templates over the element type, dispatched once per call, and
// address every step's slices by pointer: at batch 1 a step is a few microseconds of work,
// and building a handful of tensor views per step (acts[t], c_all[t], ...) would cost as
// much again. Tensors appear in the loops only where ATen does the work (large batches,
// bfloat16, projections).

template <typename T>
constexpr bool kHasVecMat = std::is_same_v<T, float> || std::is_same_v<T, double>;

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
