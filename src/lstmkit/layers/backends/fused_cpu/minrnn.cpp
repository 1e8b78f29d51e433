// The fused CPU kernels of minGRU and minLSTM (Feng et al. 2024; lstmkit/cellmath/minrnn.py):
// the recurrence h_t = a_t h_{t-1} + (1 - a_t) h~_t, whose coefficients depend on x_t alone,
// run as one sequential pass over time, with its backward.
//
// minGRU: a_t = 1 - z_t, z_t = sigmoid(k_z); minLSTM: a_t = f'_t = f / (f + i), f = sigmoid(k_f),
// i = sigmoid(k_i) (so 1 - a_t = i'_t); both: h~_t = g(k_h), g(x) = x + 1/2 for x >= 0, else
// sigmoid(x).
//
// No unit reads another: each (row, unit) is its own scalar recurrence. So the threads split
// the units and each runs the whole time loop over its own share, with no step barrier; the
// parallel scan (cellmath/minrnn.py) buys nothing on a CPU's few cores that this does not.
// Nothing is stored for the backward beyond h: it recomputes a_t and h~_t from the
// pre-activations, which the caller keeps anyway (they are the input's projection).
//
// Legend: T time, B batch, H hidden, G gate blocks (minGRU 2: k_z, k_h; minLSTM 3: k_f, k_i,
// k_h). Masks as in kernels.cpp: past a row's end its state passes through, its output is 0,
// its gradient passes through and its pre-activation gradients are 0.

#include "common.h"

namespace {

// The units of row b from j0 to j1 - 1, for every (b, j0, j1) piece of [begin, end) in the
// flattened (B, H) order, so that each piece is contiguous in memory.
template <typename F>
void for_row_pieces(int64_t begin, int64_t end, int64_t H, const F& body) {
  while (begin < end) {
    const int64_t b = begin / H, j0 = begin % H;
    const int64_t j1 = std::min(H, j0 + (end - begin));
    body(b, j0, j1);
    begin += j1 - j0;
  }
}

// The lanes of one row's step from its pre-activations `z` (G*H), units j onward: a_t, the
// weight on h_{t-1}, and h~_t; plus what the backward needs besides: g'(k_h), and the gates'
// sigmoids (minGRU's z_t; minLSTM's f_t and i_t).
template <typename Value>
struct Coefficients {
  Value a, cand, d_cand, first, second;
};

template <typename Lane, typename scalar_t>
auto coefficients(Lane L, const scalar_t* z, int64_t H, int64_t j, bool lstm) {
  using Value = typename Lane::Value;
  const Value zero = L.splat(0), one = L.splat(1);
  const Value k = L.load(z + (lstm ? 2 : 1) * H + j);
  const Value s = L.sigmoid(k);  // g's negative branch
  const auto nonneg = k >= zero;  // a bool, or a lane mask
  Coefficients<Value> c;
  c.cand = L.where(nonneg, k + L.splat(0.5), s);
  c.d_cand = L.where(nonneg, one, s * (one - s));
  c.first = L.sigmoid(L.load(z + j));  // z_t, or f_t
  if (lstm) {
    c.second = L.sigmoid(L.load(z + H + j));  // i_t
    c.a = c.first / (c.first + c.second);     // f' (the reference's form)
  } else {
    c.second = zero;
    c.a = one - c.first;  // 1 - z_t
  }
  return c;
}

constexpr int64_t kPiece = 256;  // units per buffer: the buffers are made once per thread

// Enough units per thread that a task is worth starting: about 32k unit-steps.
int64_t columns_per_task(int64_t T) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(T, 1)); }

template <typename scalar_t>
void minrnn_forward_loop(const Tensor& x_gates, const Tensor& h0, bool lstm,
                         const c10::optional<Tensor>& mask, Tensor& h_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = h0.size(1);
  const scalar_t* xg = x_gates.data_ptr<scalar_t>();
  const scalar_t* h0p = h0.data_ptr<scalar_t>();
  scalar_t* hp = h_all.data_ptr<scalar_t>();
  const bool* keep = mask.has_value() ? mask->data_ptr<bool>() : nullptr;
  at::parallel_for(0, B * H, columns_per_task(T),
                   [&](int64_t begin, int64_t end) {
    RowBuffer<acc> h(kPiece);
    for (int64_t start = begin; start < end; start += kPiece) {
      for_row_pieces(start, std::min(end, start + kPiece), H, [&](int64_t b, int64_t j0,
                                                                  int64_t j1) {
        const int64_t n = j1 - j0;
        acc* hr = h.get();
        convert_row<acc>(h0p + b * H + j0, hr, n);
        for (int64_t t = 0; t < T; ++t) {
          scalar_t* out = hp + (t * B + b) * H + j0;
          if (keep != nullptr && !keep[t * B + b]) {  // ended: the state passes through
            convert_row<acc>(hr, out, n);
            continue;
          }
          const scalar_t* z = xg + (t * B + b) * GH;
          for_lanes<acc>(n, [&](int64_t j, auto L) {
            const auto c = coefficients(L, z, H, j0 + j, lstm);
            L.store(out + j, c.a * L.load(hr + j) + (L.splat(1) - c.a) * c.cand);
            // carry the value stored (bfloat16's rounded one), as the reference does
            L.store(hr + j, L.load(out + j));
          });
        }
      });
    }
  });
}

// Returns output (T, B, H) (0 past each row's end), h_n (B, H) and h_all (T, B, H), the
// carried state after each step.
std::vector<Tensor> minrnn_forward(const Tensor& x_gates_in, const Tensor& h0_in, bool lstm,
                                   const c10::optional<Tensor>& mask) {
  const Tensor x_gates = x_gates_in.contiguous(), h0 = h0_in.contiguous();
  const int64_t T = x_gates.size(0), H = h0.size(1);
  TORCH_CHECK(x_gates.size(2) == (lstm ? 3 : 2) * H, "minrnn_forward: ", x_gates.size(2),
              " pre-activations per row for hidden size ", H, "; expected ", (lstm ? 3 : 2) * H);
  auto h_all = at::empty({T, x_gates.size(1), H}, x_gates.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "minrnn_forward", [&] {
    minrnn_forward_loop<scalar_t>(x_gates, h0, lstm, mask, h_all);
  });
  Tensor output = mask.has_value() ? h_all * mask->unsqueeze(2) : h_all.clone();
  return {output, h_all[T - 1].clone(), h_all};
}

template <typename scalar_t>
void minrnn_backward_loop(const Tensor& d_output, const Tensor& d_h_n, const Tensor& x_gates,
                          const Tensor& h_all, const Tensor& h0, bool lstm,
                          const c10::optional<Tensor>& mask, Tensor& dz_all, Tensor& dh0) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = h0.size(1);
  const scalar_t* xg = x_gates.data_ptr<scalar_t>();
  const scalar_t* hp = h_all.data_ptr<scalar_t>();
  const scalar_t* h0p = h0.data_ptr<scalar_t>();
  const scalar_t* dout = d_output.data_ptr<scalar_t>();
  const scalar_t* dhn = d_h_n.data_ptr<scalar_t>();
  scalar_t* dz = dz_all.data_ptr<scalar_t>();
  scalar_t* dh0p = dh0.data_ptr<scalar_t>();
  const bool* keep = mask.has_value() ? mask->data_ptr<bool>() : nullptr;
  at::parallel_for(0, B * H, columns_per_task(T),
                   [&](int64_t begin, int64_t end) {
    RowBuffer<acc> dh(kPiece);
    for (int64_t start = begin; start < end; start += kPiece) {
      for_row_pieces(start, std::min(end, start + kPiece), H, [&](int64_t b, int64_t j0,
                                                                  int64_t j1) {
        const int64_t n = j1 - j0;
        acc* dhr = dh.get();
        convert_row<acc>(dhn + b * H + j0, dhr, n);
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t row = t * B + b;
          scalar_t* dzr = dz + row * GH + j0;
          if (keep != nullptr && !keep[row]) {  // ended: the gradient passes by (the output
            // there is the constant 0, so d_output adds nothing)
            for (int64_t k = 0; k < (lstm ? 3 : 2); ++k)
              std::fill(dzr + k * H, dzr + k * H + n, scalar_t(0));
            continue;
          }
          const scalar_t* z = xg + row * GH;
          const scalar_t* dout_t = dout + row * H + j0;
          const scalar_t* h_prev = t > 0 ? hp + (row - B) * H + j0 : h0p + b * H + j0;
          for_lanes<acc>(n, [&](int64_t j, auto L) {
            const auto one = L.splat(1), zero = L.splat(0);
            const auto c = coefficients(L, z, H, j0 + j, lstm);
            const auto d = L.load(dhr + j) + L.load(dout_t + j);  // dL/dh_t
            const auto da = d * (L.load(h_prev + j) - c.cand);
            L.store(dzr + (lstm ? 2 : 1) * H + j, d * (one - c.a) * c.d_cand);
            if (lstm) {  // a = f / (f + i): da/df = i / (f+i)^2, da/di = -f / (f+i)^2
              const auto f = c.first, i = c.second, sum = f + i;
              const auto scale = da / (sum * sum);
              L.store(dzr + j, scale * i * f * (one - f));
              L.store(dzr + H + j, zero - scale * f * i * (one - i));
            } else {  // a = 1 - z
              L.store(dzr + j, zero - da * c.first * (one - c.first));
            }
            L.store(dhr + j, d * c.a);
          });
        }
        convert_row<acc>(dhr, dh0p + b * H + j0, n);
      });
    }
  });
}

// Returns d_x_gates (T, B, G*H), the gradient of every pre-activation, and dh0 (B, H).
std::vector<Tensor> minrnn_backward(const Tensor& d_output, const Tensor& d_h_n,
                                    const Tensor& x_gates, const Tensor& h_all, const Tensor& h0,
                                    bool lstm, const c10::optional<Tensor>& mask) {
  auto dz_all = at::empty_like(x_gates);
  auto dh0 = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "minrnn_backward", [&] {
    minrnn_backward_loop<scalar_t>(d_output.contiguous(), d_h_n.contiguous(),
                                   x_gates.contiguous(), h_all, h0.contiguous(), lstm, mask,
                                   dz_all, dh0);
  });
  return {dz_all, dh0};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_fused, m) {
  m.def("minrnn_forward(Tensor x_gates, Tensor h0, bool lstm, Tensor? mask) -> Tensor[]",
        &minrnn_forward);
  m.def(
      "minrnn_backward(Tensor d_output, Tensor d_h_n, Tensor x_gates, Tensor h_all, Tensor h0, "
      "bool lstm, Tensor? mask) -> Tensor[]",
      &minrnn_backward);
}
