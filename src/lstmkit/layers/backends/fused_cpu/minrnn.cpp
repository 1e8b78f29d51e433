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

// a_t and h~_t of units [0, n) of one row from its pre-activations `z` (G*H) at offset j0.
template <typename scalar_t, typename acc>
void coefficients(const scalar_t* z, int64_t H, int64_t j0, int64_t n, bool lstm, acc* a,
                  acc* cand, acc* s) {
  const scalar_t* k_h = z + (lstm ? 2 : 1) * H + j0;
  for (int64_t j = 0; j < n; ++j) s[j] = acc(k_h[j]);
  sigmoid_(s, n);  // g's negative branch
  for (int64_t j = 0; j < n; ++j) {
    const acc k = acc(k_h[j]);
    cand[j] = k >= acc(0) ? k + acc(0.5) : s[j];
  }
  for (int64_t j = 0; j < n; ++j) a[j] = acc(z[j0 + j]);
  sigmoid_(a, n);  // z_t, or f_t
  if (lstm) {
    for (int64_t j = 0; j < n; ++j) s[j] = acc(z[H + j0 + j]);
    sigmoid_(s, n);  // i_t
    for (int64_t j = 0; j < n; ++j) a[j] = a[j] / (a[j] + s[j]);  // f' (the reference's form)
  } else {
    for (int64_t j = 0; j < n; ++j) a[j] = acc(1) - a[j];  // 1 - z_t
  }
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
    RowBuffer<acc> a(kPiece), cand(kPiece), s(kPiece), h(kPiece);
    for (int64_t start = begin; start < end; start += kPiece) {
      for_row_pieces(start, std::min(end, start + kPiece), H, [&](int64_t b, int64_t j0,
                                                                  int64_t j1) {
        const int64_t n = j1 - j0;
        for (int64_t j = 0; j < n; ++j) h.get()[j] = acc(h0p[b * H + j0 + j]);
        for (int64_t t = 0; t < T; ++t) {
          scalar_t* out = hp + (t * B + b) * H + j0;
          if (keep != nullptr && !keep[t * B + b]) {  // ended: the state passes through
            for (int64_t j = 0; j < n; ++j) out[j] = scalar_t(h.get()[j]);
            continue;
          }
          coefficients<scalar_t, acc>(xg + (t * B + b) * GH, H, j0, n, lstm, a.get(),
                                      cand.get(), s.get());
          for (int64_t j = 0; j < n; ++j) {
            const acc next = a.get()[j] * h.get()[j] + (acc(1) - a.get()[j]) * cand.get()[j];
            out[j] = scalar_t(next);
            h.get()[j] = acc(out[j]);  // carry the stored value, as the reference does
          }
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
    RowBuffer<acc> a(kPiece), cand(kPiece), s(kPiece), dh(kPiece);
    for (int64_t start = begin; start < end; start += kPiece) {
      for_row_pieces(start, std::min(end, start + kPiece), H, [&](int64_t b, int64_t j0,
                                                                  int64_t j1) {
        const int64_t n = j1 - j0;
        for (int64_t j = 0; j < n; ++j) dh.get()[j] = acc(dhn[b * H + j0 + j]);
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t row = t * B + b;
          scalar_t* dzr = dz + row * GH;
          const scalar_t* dout_t = dout + row * H + j0;
          if (keep != nullptr && !keep[row]) {  // ended: the gradient passes by (the output
            // there is the constant 0, so d_output adds nothing)
            for (int64_t k = 0; k < (lstm ? 3 : 2); ++k)
              for (int64_t j = 0; j < n; ++j) dzr[k * H + j0 + j] = scalar_t(0);
            continue;
          }
          const scalar_t* z = xg + row * GH;
          coefficients<scalar_t, acc>(z, H, j0, n, lstm, a.get(), cand.get(), s.get());
          const scalar_t* h_prev = t > 0 ? hp + (row - B) * H + j0 : h0p + b * H + j0;
          const scalar_t* k_h = z + (lstm ? 2 : 1) * H + j0;
          for (int64_t j = 0; j < n; ++j) {
            const acc d = dh.get()[j] + acc(dout_t[j]);  // dL/dh_t
            const acc aj = a.get()[j], c = cand.get()[j], k = acc(k_h[j]);
            const acc da = d * (acc(h_prev[j]) - c);
            // g'(k) = 1 for k >= 0, sigmoid'(k) below (s holds i_t for minLSTM: recompute)
            const acc sk = acc(1) / (acc(1) + std::exp(-k));
            const acc dg = k >= acc(0) ? acc(1) : sk * (acc(1) - sk);
            dzr[(lstm ? 2 : 1) * H + j0 + j] = scalar_t(d * (acc(1) - aj) * dg);
            if (lstm) {  // a = f / (f + i): da/df = i / (f+i)^2, da/di = -f / (f+i)^2
              const acc f = acc(1) / (acc(1) + std::exp(-acc(z[j0 + j])));
              const acc i = s.get()[j];
              const acc sum = f + i, scale = da / (sum * sum);
              dzr[j0 + j] = scalar_t(scale * i * f * (acc(1) - f));
              dzr[H + j0 + j] = scalar_t(-scale * f * i * (acc(1) - i));
            } else {  // a = 1 - z
              const acc zt = acc(1) - aj;
              dzr[j0 + j] = scalar_t(-da * zt * (acc(1) - zt));
            }
            dh.get()[j] = d * aj;
          }
        }
        for (int64_t j = 0; j < n; ++j) dh0p[b * H + j0 + j] = scalar_t(dh.get()[j]);
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
