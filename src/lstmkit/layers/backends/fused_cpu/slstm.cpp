// lstmkit's fused CPU kernels for the sLSTM of Beck et al. (2024), "xLSTM", Sec. 2.2: the
// time loop and its hand-written backward pass, in C++ over ATen. The equations, options and
// shapes are lstmkit/cellmath/slstm.py's; this file follows them step for step.
//
// Legend: T time, B batch, H hidden, K heads, D = H / K units per head, G = 4 gate blocks in
// the order (i, f, z, o). Rows of the (T, B, G*H) tensors are gate-major (g*H + k*D + u), as
// the family lays them out; the per-step product buffers are head-major (K, B, G*D), the
// layout of one head's product.
//
// The recurrent matrices are block-diagonal (one dense D x D block per gate and head), so a
// step's product is K products of (B, D) with (D, G*D). With one head (the registry's sLSTM)
// it is an ordinary product and takes the other kernels' rule (common.h's step_operand:
// vec_mat, oneDNN's packed weights or ATen's GEMM). With several, a small batch runs them
// here on raw pointers (vec_mat, each head's operand written contiguous once per call), a
// larger batch as one at::bmm over the heads. The caller does the input projection of all
// steps and folds bias_hh into it: both enter every pre-activation at every step the same
// way. Every loop runs forward in time; the caller flips a reverse direction.
//
// Masks: mask[t, b] false means sequence b has ended; all four states pass through, the
// output is 0, and in the backward every state's gradient passes through and the
// pre-activation gradients are 0, as the reference loop's torch.where gives.
//
// Elementwise math runs in at::opmath_type (float for bfloat16) on per-row buffers, the
// backward's carried gradients of c, n and m too; what is stored is in the tensors' dtype.

#include "common.h"

namespace {

// The sizes of one call, and the recurrent blocks in the two layouts the products take.
struct Shape {
  int64_t T, B, H, K, D;
  Shape(const Tensor& x_gates, const Tensor& w_hh)
      : T(x_gates.size(0)),
        B(x_gates.size(1)),
        H(x_gates.size(2) / 4),
        K(w_hh.size(1)),
        D(w_hh.size(2)) {
    TORCH_CHECK(w_hh.dim() == 4 && w_hh.size(0) == 4 && w_hh.size(3) == D,
                "slstm: weight_hh must be (4, K, D, D), got ", w_hh.sizes());
    TORCH_CHECK(x_gates.size(2) == 4 * K * D, "slstm: x_gates has ", x_gates.size(2),
                " columns, expected 4 * K * D = ", 4 * K * D);
  }
};

// (K, G*D, D): row g*D + u of head k is unit u's row of R_g's block k, as the backward's
// product dL/dh_{t-1} = dL/dpre R takes it. With one head, a view of w_hh (4, 1, D, D).
Tensor backward_operand(const Tensor& w_hh) {
  const int64_t K = w_hh.size(1), D = w_hh.size(2);
  return w_hh.permute({1, 0, 2, 3}).reshape({K, 4 * D, D}).contiguous();
}

// (K, D, G*D): its transpose, the forward's h_{t-1} R^T, contiguous per head.
Tensor forward_operand(const Tensor& w_hh) {
  return backward_operand(w_hh).transpose(1, 2).contiguous();
}

// How a call runs its steps' products, forward and backward alike. One head: an ordinary
// product, by the other kernels' rule (common.h's step_operand) on `head`, its (rows, cols)
// operand. Several heads: vec_mat per head at a small batch on `heads` (K, rows, cols),
// else one bmm over them. vec_mat runs on raw pointers wherever it runs: tensor views per
// step would cost as much at batch 1.
struct HeadProducts {
  StepOperand op;        // the one head's
  Tensor vec_mat_heads;  // where vec_mat runs: the operand per head in the accumulation type
  HeadProducts(const Tensor& head, const Tensor& heads, int64_t K, int64_t B) {
    if (K == 1) {
      op = step_operand(head, B);
      vec_mat_heads = op.small;
    } else if (B <= kSmallBatch) {
      vec_mat_heads = in_accumulation_type(heads);
    }
  }
  bool vec_mat() const { return vec_mat_heads.defined(); }
};

// Kept per step for the backward besides the gates and states, stabilised form only:
// aux[.., 0:H] the share of dL/dm_t that goes to log f_t + m_{t-1} through the max (1 where
// it is the larger, 0 where i~_t is, 1/2 on a tie: torch.maximum's rule, which the reference
// differentiates), aux[.., H:2H] d log f_t / d f~_t (sigma(-f~_t) for the sigmoid forget
// gate, 1 for the exponential one).
template <typename scalar_t>
void slstm_forward_loop(const Tensor& x_gates, const Tensor& h0, const Tensor& c0,
                        const Tensor& n0, const Tensor& m0, const Tensor& w_hh,
                        const c10::optional<Tensor>& mask, bool stabilized, bool exp_forget,
                        Tensor& acts, Tensor& aux, Tensor& c_all, Tensor& n_all, Tensor& m_all,
                        Tensor& h_all) {
  using acc = at::opmath_type<scalar_t>;
  const Shape s(x_gates, w_hh);
  const int64_t T = s.T, B = s.B, H = s.H, K = s.K, D = s.D, GH = 4 * H, GD = 4 * D;
  // one head: its (D, G*D) operand as a view of W_hh, whose rows are already the layout
  // oneDNN packs from (a contiguous copy per call cost 8% of an evaluation forward, which
  // runs in chunks of steps); several: (K, D, G*D), contiguous per head
  const Tensor w_fwd = K == 1 ? Tensor() : forward_operand(w_hh);
  const Tensor head = K == 1 ? backward_operand(w_hh)[0].t() : Tensor();
  const HeadProducts products(head, w_fwd, K, B);
  const bool small = products.vec_mat();
  const acc* wf = small ? products.vec_mat_heads.data_ptr<acc>() : nullptr;
  Tensor rec = at::empty({K, B, GD}, x_gates.options());  // h_{t-1} R^T, head-major
  Tensor rec_head = rec[0];
  const scalar_t* xg_p = x_gates.data_ptr<scalar_t>();
  scalar_t* rec_p = rec.data_ptr<scalar_t>();
  scalar_t* acts_p = acts.data_ptr<scalar_t>();
  scalar_t* aux_p = stabilized ? aux.data_ptr<scalar_t>() : nullptr;
  scalar_t* c_p = c_all.data_ptr<scalar_t>();
  scalar_t* n_p = n_all.data_ptr<scalar_t>();
  scalar_t* m_p = m_all.data_ptr<scalar_t>();
  scalar_t* h_p = h_all.data_ptr<scalar_t>();
  StepRows<acc> rows(B, 24 * H, {GH});  // the pre-activations, then the gates

  for (int64_t t = 0; t < T; ++t) {
    const int64_t prev = (t - 1) * B * H;
    const scalar_t* hp = t > 0 ? h_p + prev : h0.data_ptr<scalar_t>();
    const scalar_t* cp = t > 0 ? c_p + prev : c0.data_ptr<scalar_t>();
    const scalar_t* np_ = t > 0 ? n_p + prev : n0.data_ptr<scalar_t>();
    const scalar_t* mp = t > 0 ? m_p + prev : m0.data_ptr<scalar_t>();
    // the rows read the product from rec_in: rec, or oneDNN's result where it lies (kept
    // alive by `product` until the rows are done)
    const scalar_t* rec_in = rec_p;
    Tensor product;
    if (small) {  // one vec_mat per head over the rows: heads read only their own D units
      for (int64_t k = 0; k < K; ++k)
        vec_mat<scalar_t>(hp + k * D, H, wf + k * D * GD, nullptr, 0, rec_p + k * B * GD, GD,
                          B, D, GD);
    } else if (K == 1) {  // oneDNN's or ATen's
      product = product_result(rec_head, Tensor(), t > 0 ? h_all[t - 1] : h0, head, products.op);
      rec_in = product.data_ptr<scalar_t>();
    } else {
      const Tensor h_prev = t > 0 ? h_all[t - 1] : h0;
      at::bmm_out(rec, h_prev.view({B, K, D}).transpose(0, 1), w_fwd);  // (K, B, G*D)
    }
    const bool* keep = mask_row(mask, t);
    const int64_t here = t * B * H;
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc* pre = buf[0].get();
      const scalar_t* xr = xg_p + (t * B + b) * GH;
      for (int64_t g = 0; g < 4; ++g)
        for (int64_t k = 0; k < K; ++k) {
          const int64_t col = g * H + k * D;
          add_row<acc>(xr + col, rec_in + (k * B + b) * GD + g * D, pre + col, D);
        }
      acc *ig = pre, *fg = pre + H, *zg = pre + 2 * H, *og = pre + 3 * H;
      tanh_(zg, H);     // z_t
      sigmoid_(og, H);  // o_t
      const scalar_t* m_prev = mp + b * H;
      const bool live = keep == nullptr || keep[b];
      scalar_t* m_out = m_p + here + b * H;
      if (stabilized) {
        scalar_t* ar = aux_p + (t * B + b) * 2 * H;
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto one = L.splat(1), zero = L.splat(0), f_pre = L.load(fg + j);
          // log f_t, and d log f_t / d f~_t for the backward: for the sigmoid forget gate
          // both from e = exp(-|f~|), log sigma(f~) = min(f~, 0) - log1p(e) (torch's
          // log_sigmoid, which neither overflows nor rounds to log 0: cellmath/slstm.py
          // says why) and sigma(-f~) = e / (1 + e) for f~ >= 0, else 1 / (1 + e); the
          // exponential gate's log f is f~ itself
          auto log_f = f_pre, slope = one;
          if (!exp_forget) {
            const auto e = L.exp(L.where(f_pre >= zero, zero - f_pre, f_pre));
            log_f = L.where(f_pre >= zero, zero, f_pre) - L.log1p(e);
            slope = L.where(f_pre >= zero, e, one) / (one + e);
          }
          // m_t = max(log f_t + m_{t-1}, i~_t), then i' = exp(i~ - m), f' = exp(a - m); the
          // max's share of dL/dm_t to a: 1 where a is larger, 0 where i~ is, 1/2 on a tie
          const auto m_prev_j = L.load(m_prev + j), i_pre = L.load(ig + j);
          const auto a = log_f + m_prev_j, m = L.where(a > i_pre, a, i_pre);
          L.store(ar + j, L.where(a > i_pre, one, L.where(a < i_pre, zero, L.splat(0.5))));
          L.store(ar + H + j, slope);
          L.store(ig + j, L.exp(i_pre - m));
          L.store(fg + j, L.exp(a - m));
          L.store(m_out + j, live ? m : m_prev_j);
        });
      } else {  // the plain form on the fixed scale m_{t-1}: i = exp(i~ - m_{t-1})
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto m_prev_j = L.load(m_prev + j), f_pre = L.load(fg + j);
          L.store(ig + j, L.exp(L.load(ig + j) - m_prev_j));
          L.store(fg + j, exp_forget ? L.exp(f_pre) : L.sigmoid(f_pre));
          L.store(m_out + j, m_prev_j);
        });
      }
      // the gates are kept even for an ended row: its gradients are masked to 0 anyway
      convert_row<acc>(pre, acts_p + (t * B + b) * GH, GH);
      const int64_t row = b * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto f = L.load(fg + j), i = L.load(ig + j);
        const auto c_old = L.load(cp + row + j), n_old = L.load(np_ + row + j);
        const auto c = f * c_old + i * L.load(zg + j);
        const auto n = f * n_old + i;
        L.store(c_p + here + row + j, live ? c : c_old);
        L.store(n_p + here + row + j, live ? n : n_old);
        L.store(h_p + here + row + j, live ? L.load(og + j) * (c / n) : L.load(hp + row + j));
      });
    });
  }
}

// x_gates (T, B, G*H) = x W_ih^T + b_ih + b_hh; h0, c0, n0, m0 (B, H); w_hh (G, K, D, D).
// Returns output (T, B, H), the final h, c, n, m, and for the backward and the trace:
// acts (T, B, G*H) the gates as applied (i', f', z, o), aux (T, B, 2H) (stabilised form
// only, else empty), and the states after each step c_all, n_all, m_all, h_all (T, B, H).
std::vector<Tensor> slstm_forward(const Tensor& x_gates_in, const Tensor& h0_in,
                                  const Tensor& c0_in, const Tensor& n0_in, const Tensor& m0_in,
                                  const Tensor& w_hh_in, const c10::optional<Tensor>& mask,
                                  bool stabilized, bool exp_forget) {
  const Tensor x_gates = x_gates_in.contiguous(), w_hh = w_hh_in.contiguous();
  const Tensor h0 = h0_in.contiguous(), c0 = c0_in.contiguous();
  const Tensor n0 = n0_in.contiguous(), m0 = m0_in.contiguous();
  const Shape s(x_gates, w_hh);
  const auto opts = x_gates.options();
  auto acts = at::empty({s.T, s.B, 4 * s.H}, opts);
  auto aux = stabilized ? at::empty({s.T, s.B, 2 * s.H}, opts) : at::empty({0}, opts);
  auto c_all = at::empty({s.T, s.B, s.H}, opts), n_all = at::empty({s.T, s.B, s.H}, opts);
  auto m_all = at::empty({s.T, s.B, s.H}, opts), h_all = at::empty({s.T, s.B, s.H}, opts);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "slstm_forward", [&] {
    slstm_forward_loop<scalar_t>(x_gates, h0, c0, n0, m0, w_hh, mask, stabilized, exp_forget,
                                 acts, aux, c_all, n_all, m_all, h_all);
  });
  Tensor output = mask.has_value() ? h_all * mask->unsqueeze(2) : h_all.clone();
  const int64_t last = s.T - 1;
  return {output, h_all[last].clone(), c_all[last].clone(), n_all[last].clone(),
          m_all[last].clone(), acts, aux, c_all, n_all, m_all, h_all};
}

// Backward, per step and unit, from the upstream gradients G_h (dL/dh_t, the output's and
// the next step's), G_c, G_n, G_m (the next step's, or the final states'), with q = c/n:
//   h = o q:            d o~ = G_h q o (1 - o),  dc = G_c + G_h o / n,  dn = G_n - G_h o q / n
//   c = f c' + i z, n = f n' + i:
//                       di = dc z + dn,  df = dc c' + dn n',  d z~ = dc i (1 - z^2),
//                       dL/dc_{t-1} = dc f,  dL/dn_{t-1} = dn f
// Stabilised, with a = log f + m_{t-1}, i = exp(i~ - m), f = exp(a - m), m = max(a, i~):
//   g_a = df f,  g_i = di i,  g_m = G_m - g_a - g_i   (m is a state and scales both gates)
//   g_a += share g_m,  g_i += (1 - share) g_m          (the max; share from the forward)
//   d i~ = g_i,  dL/dm_{t-1} = g_a,  d f~ = g_a dlogf/df~
// Plain (m_t = m_{t-1}, i = exp(i~ - m_{t-1})):
//   d i~ = di i,  dL/dm_{t-1} = G_m - di i,  d f~ = df f (1 - f) (sigmoid) or df f (exp)
template <typename scalar_t>
void slstm_backward_loop(const Tensor& d_output, const Tensor& acts, const Tensor& aux,
                         const Tensor& c_all, const Tensor& n_all, const Tensor& c0,
                         const Tensor& n0, const Tensor& w_hh, const c10::optional<Tensor>& mask,
                         bool stabilized, bool exp_forget, Tensor& dh, Tensor& dc, Tensor& dn,
                         Tensor& dm, Tensor& dz_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = acts.size(0), B = acts.size(1), H = acts.size(2) / 4;
  const int64_t K = w_hh.size(1), D = w_hh.size(2), GH = 4 * H, GD = 4 * D;
  const Tensor w_bwd = backward_operand(w_hh);  // (K, G*D, D)
  const Tensor head = K == 1 ? w_bwd[0] : Tensor();
  const HeadProducts products(head, w_bwd, K, B);
  const bool small = products.vec_mat();
  const acc* wb = small ? products.vec_mat_heads.data_ptr<acc>() : nullptr;
  Tensor drec = at::empty({K, B, GD}, acts.options());  // this step's dL/dpre, head-major
  Tensor back = small || K == 1 ? Tensor() : at::empty({K, B, D}, acts.options());
  const Tensor drec_head = drec[0];
  Tensor dh_prev = at::empty_like(dh);
  const scalar_t* dout_p = d_output.data_ptr<scalar_t>();
  const scalar_t* acts_p = acts.data_ptr<scalar_t>();
  const scalar_t* aux_p = stabilized ? aux.data_ptr<scalar_t>() : nullptr;
  const scalar_t* c_p = c_all.data_ptr<scalar_t>();
  const scalar_t* n_p = n_all.data_ptr<scalar_t>();
  scalar_t* dz_p = dz_all.data_ptr<scalar_t>();
  scalar_t* drec_p = drec.data_ptr<scalar_t>();
  acc *gc = dc.data_ptr<acc>(), *gn = dn.data_ptr<acc>(), *gm = dm.data_ptr<acc>();
  StepRows<acc> rows(B, 30 * H, {GH});

  for (int64_t t = T - 1; t >= 0; --t) {
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    const scalar_t* cp = t > 0 ? c_p + (t - 1) * B * H : c0.data_ptr<scalar_t>();
    const scalar_t* np_ = t > 0 ? n_p + (t - 1) * B * H : n0.data_ptr<scalar_t>();
    const bool* keep = mask_row(mask, t);
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc* d = buf[0].get();  // dL/dpre of this row, gate-major
      scalar_t* dzr = dz_p + (t * B + b) * GH;
      const bool live = keep == nullptr || keep[b];
      if (live) {
        const int64_t row = b * H, cell = t * B * H + row;
        const scalar_t* ar = acts_p + (t * B + b) * GH;
        const scalar_t* xr = stabilized ? aux_p + (t * B + b) * 2 * H : nullptr;
        const scalar_t* dout = dout_p + cell;
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto one = L.splat(1);
          const auto i = L.load(ar + j), f = L.load(ar + H + j), z = L.load(ar + 2 * H + j);
          const auto o = L.load(ar + 3 * H + j);
          const auto c = L.load(c_p + cell + j), n = L.load(n_p + cell + j), q = c / n;
          const auto g_h = L.load(dout + j) + L.load(dhp + row + j);
          const auto dct = L.load(gc + row + j) + g_h * o / n;  // through h = o c / n
          const auto dnt = L.load(gn + row + j) - g_h * o * q / n;
          const auto di = dct * z + dnt;
          const auto df = dct * L.load(cp + row + j) + dnt * L.load(np_ + row + j);
          L.store(d + 3 * H + j, g_h * q * o * (one - o));
          L.store(d + 2 * H + j, dct * i * (one - z * z));
          L.store(gc + row + j, dct * f);
          L.store(gn + row + j, dnt * f);
          if (stabilized) {
            const auto share = L.load(xr + j);
            const auto g_a = df * f, g_i = di * i;
            const auto g_m = L.load(gm + row + j) - g_a - g_i;
            const auto g_a_all = g_a + share * g_m;
            L.store(d + j, g_i + (one - share) * g_m);
            L.store(d + H + j, g_a_all * L.load(xr + H + j));
            L.store(gm + row + j, g_a_all);
          } else {
            L.store(d + j, di * i);
            L.store(d + H + j, exp_forget ? df * f : df * f * (one - f));
            L.store(gm + row + j, L.load(gm + row + j) - di * i);
          }
        });
      } else {  // ended: nothing happened at this step; the carried gradients pass by
        for (int64_t k = 0; k < GH; ++k) d[k] = acc(0);
      }
      convert_row<acc>(d, dzr, GH);
      for (int64_t g = 0; g < 4; ++g)
        for (int64_t k = 0; k < K; ++k)
          convert_row<acc>(d + g * H + k * D, drec_p + (k * B + b) * GD + g * D, D);
    });

    // dL/dh_{t-1} = dL/dpre R, head by head; an ended row passes dL/dh_t by
    scalar_t* dhn = dh_prev.data_ptr<scalar_t>();
    if (small) {
      for (int64_t k = 0; k < K; ++k)
        vec_mat<scalar_t>(drec_p + k * B * GD, GD, wb + k * GD * D, nullptr, 0, dhn + k * D, H,
                          B, GD, D);
    } else if (K == 1) {  // oneDNN's or ATen's (B, G*D) x (G*D, D)
      add_product(dh_prev, Tensor(), drec_head, head, products.op);
    } else {
      at::bmm_out(back, drec, w_bwd);
      dh_prev.view({B, K, D}).copy_(back.transpose(0, 1));
    }
    if (keep != nullptr)
      for (int64_t b = 0; b < B; ++b)
        if (!keep[b])
          for (int64_t j = 0; j < H; ++j) dhn[b * H + j] = dhp[b * H + j];
    std::swap(dh, dh_prev);
  }
}

// Returns d_x_gates (T, B, G*H) (the gradient of every pre-activation), dh0, dc0, dn0, dm0
// and d_w_hh (G, K, D, D).
std::vector<Tensor> slstm_backward(
    const Tensor& d_output_in, const Tensor& d_h_n, const Tensor& d_c_n, const Tensor& d_n_n,
    const Tensor& d_m_n, const Tensor& acts, const Tensor& aux, const Tensor& c_all,
    const Tensor& n_all, const Tensor& h_all, const Tensor& h0_in, const Tensor& c0_in,
    const Tensor& n0_in, const Tensor& w_hh_in, const c10::optional<Tensor>& mask,
    bool stabilized, bool exp_forget) {
  const Tensor d_output = d_output_in.contiguous(), w_hh = w_hh_in.contiguous();
  const Tensor h0 = h0_in.contiguous(), c0 = c0_in.contiguous(), n0 = n0_in.contiguous();
  const int64_t T = acts.size(0), B = acts.size(1), H = acts.size(2) / 4;
  const int64_t K = w_hh.size(1), D = w_hh.size(2);
  const auto acc_dtype = at::toOpMathType(acts.scalar_type());
  auto dz_all = at::empty_like(acts);
  Tensor dh = d_h_n.contiguous().clone();
  Tensor dc = d_c_n.to(acc_dtype).contiguous().clone();
  Tensor dn = d_n_n.to(acc_dtype).contiguous().clone();
  Tensor dm = d_m_n.to(acc_dtype).contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "slstm_backward", [&] {
    slstm_backward_loop<scalar_t>(d_output, acts, aux, c_all, n_all, c0, n0, w_hh, mask,
                                  stabilized, exp_forget, dh, dc, dn, dm, dz_all);
  });
  // dL/dR_g block k = sum over steps and rows of dL/dpre_{g,k} (x) h_{t-1, k}: a product
  // per gate and head, each reading its (T*B, D) columns of dz_all and h where they lie
  // (BLAS takes a row stride). A bmm over dz_all permuted to (K, G*D, T*B) made a
  // transposing copy of it first in bfloat16, which cost two thirds of the product's time.
  const Tensor h_prev =
      at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0).view({T * B, K, D});
  const Tensor d_pre = dz_all.view({T * B, 4, K, D});
  Tensor d_w_hh = at::empty({4, K, D, D}, acts.options());
  for (int64_t g = 0; g < 4; ++g)
    for (int64_t k = 0; k < K; ++k) {
      Tensor block = d_w_hh[g][k];
      at::mm_out(block, d_pre.select(1, g).select(1, k).t(), h_prev.select(1, k));
    }
  const auto dtype = acts.scalar_type();
  return {dz_all, dh, dc.to(dtype), dn.to(dtype), dm.to(dtype), d_w_hh};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_fused, m) {
  m.def(
      "slstm_forward(Tensor x_gates, Tensor h0, Tensor c0, Tensor n0, Tensor m0, Tensor w_hh, "
      "Tensor? mask, bool stabilized, bool exp_forget) -> Tensor[]",
      &slstm_forward);
  m.def(
      "slstm_backward(Tensor d_output, Tensor d_h_n, Tensor d_c_n, Tensor d_n_n, Tensor d_m_n, "
      "Tensor acts, Tensor aux, Tensor c_all, Tensor n_all, Tensor h_all, Tensor h0, "
      "Tensor c0, Tensor n0, Tensor w_hh, Tensor? mask, bool stabilized, bool exp_forget) "
      "-> Tensor[]",
      &slstm_backward);
}
