// lstmkit's fused CPU kernels: the time loops of the LSTM family, the GRU (torch's form and
// Cho et al.'s), the MGU and the RNN, with their backward passes, in C++ over ATen.
//
// Legend: T time, B batch, H hidden, R state[0] (output) size (H unless the LSTM projects),
// G gate blocks (LSTM 1 to 4, one per gate that has weights: see LSTMBits; GRU 3; MGU 2;
// RNN 1).
//
// What the Python loop (backends/manual_lstm.py) costs is not the arithmetic but the ~20
// dispatches per step; here each step is one matrix product for the recurrence (two with a
// projection) and one pass over B x H elements for all the gate arithmetic. The input
// projection of all steps is one product done by the caller, who also folds bias_hh into it
// where that is exact. Every loop runs forward in time: the caller flips a reverse direction.
//
// Masks: mask[t, b] false means sequence b has ended; its state passes through unchanged,
// its output is 0, and in the backward its gradient passes through and its pre-activation
// gradients are 0, exactly as the reference loop's torch.where does.
//
// Elementwise math runs in at::opmath_type (float for bfloat16) on per-row buffers, and the
// results are stored in the tensors' dtype; the matrix products are common.h's (vec_mat for
// small ones, oneDNN's packed product or ATen's GEMM for the rest: step_operand).
// The arithmetic goes through at::vec, which is SIMD when the build defines CPU_CAPABILITY
// for this machine (see __init__.py) and a plain loop otherwise: exp (Sleef's, as torch's
// own kernels call it), common.h's tanh, and each row's gate arithmetic, written once for
// a vector and a scalar lane (common.h's for_lanes), since the compiler vectorised neither
// the loops with the variants' branches nor any over bfloat16. What every kernel file
// shares is in common.h.

#include "common.h"

#include <cmath>

namespace {

// ------------------------------------------------------------------------------------
// LSTM family
// ------------------------------------------------------------------------------------

// Which parts of the LSTM cell exist, as bits of the kernels' `variant` argument (built by
// __init__.py's _lstm_variant from LSTMFamily). A part that is absent has no weight block,
// and the blocks present keep the order (i, f, g, o): the plain cell is (i, f, g, o), CIFG
// and NFG (i, g, o), Greff et al.'s NIG (f, g, o), NOG (i, f, g), both (f, g).
//
// The layer norms (cellmath/lstm_options.py has where each sits) take their gains and shifts
// as the arguments norm_gain/norm_shift (the product's norm) and cell_gain/cell_shift (the
// cell's). Ba et al.'s norm of the input product does not depend on the recurrence: the
// caller applies it to all steps at once and hands it in, with b = b_ih + b_hh added, as
// x_gates; the kernels normalise the recurrent product only. TensorFlow's per-gate norm acts
// on the sum x W_ih^T + h W_hh^T: there the caller hands in x W_ih^T alone and folds b into
// norm_shift (both are added after the norm).
enum LSTMBits : int64_t {
  kInputGate = 1,           // i_t has a block; without it (NIG) i_t = 1
  kForgetBlock = 2,         // f_t has a block of its own
  kCoupled = 4,             // f_t = 1 - i_t (CIFG); with neither, C_t = C_{t-1} + i g (1997, NFG)
  kOutputGate = 8,          // o_t has a block; without it (NOG) o_t = 1
  kInputActivation = 16,    // C~ = tanh(z_g); without it (NIAF) C~ = z_g
  kOutputActivation = 32,   // h = o tanh(C_t); without it (NOAF) h = o C_t
  kNormProduct = 64,        // "ba2016": z = x_gates + LN(h_{t-1} W_hh^T), over all G*H units
  kNormGates = 128,         // "per-gate": z = LN(x W_ih^T + h_{t-1} W_hh^T), block by block
  kNormShownCell = 256,     // "ba2016", "cell": h = o tanh(LN(C_t)), C_t carried as it is
  kNormCarriedCell = 512,   // "per-gate": C_t = LN(f C_{t-1} + i C~) is the carried state
  kGateRecurrence = 1024,   // FGR (Greff et al. 2015): z_gates += gates_{t-1} W_gg^T
};

// The variant's switches and where each block starts in a row of G*H pre-activations.
// The sigmoid gates i and f, whichever exist, come first: [0, gg) is every sigmoid before
// C~, so the forward squashes them in one call. FGR's state gates_{t-1} (B, K*H) holds the
// sigmoid gates with blocks in the same order: i and f at their offsets in a row of z, o at gg.
struct LSTMVariant {
  bool has_i, has_f, coupled, has_o, squash_in, squash_out;
  bool norm_product, norm_gates, norm_shown, norm_carried, fgr;
  int64_t gf, gg, go, blocks;  // offsets of f, g (C~) and o; the number of blocks, G
  int64_t K;                   // sigmoid gates with blocks (FGR's state is K*H wide)
  LSTMVariant(int64_t bits, int64_t H)
      : has_i(bits & kInputGate),
        has_f(bits & kForgetBlock),
        coupled(bits & kCoupled),
        has_o(bits & kOutputGate),
        squash_in(bits & kInputActivation),
        squash_out(bits & kOutputActivation),
        norm_product(bits & kNormProduct),
        norm_gates(bits & kNormGates),
        norm_shown(bits & kNormShownCell),
        norm_carried(bits & kNormCarriedCell),
        fgr(bits & kGateRecurrence),
        gf(has_i ? H : 0),
        gg((int64_t(has_i) + int64_t(has_f)) * H),
        go(gg + H),
        blocks(int64_t(has_i) + int64_t(has_f) + 1 + int64_t(has_o)),
        K(int64_t(has_i) + int64_t(has_f) + int64_t(has_o)) {
    TORCH_CHECK(!(has_f && coupled), "LSTM variant: a forget block and CIFG exclude each other");
    TORCH_CHECK(!coupled || has_i, "LSTM variant: CIFG needs an input gate to couple to");
    TORCH_CHECK(!(norm_product && norm_gates), "LSTM variant: one norm of the products at most");
    TORCH_CHECK(!(norm_shown && norm_carried), "LSTM variant: one norm of the cell at most");
    TORCH_CHECK(!fgr || K > 0, "LSTM variant: gate recurrence needs a sigmoid gate");
  }
  bool norms_product() const { return norm_product || norm_gates; }
  bool norms_cell() const { return norm_shown || norm_carried; }
  // the product norm's statistics per row: one over the row (Ba), one per block (per-gate)
  int64_t norm_groups() const { return norm_product ? 1 : norm_gates ? blocks : 0; }
};

// The parameters of the recurrence: W_hh and whichever optional ones the variant has.
struct LSTMWeights {
  Tensor w_hh;
  c10::optional<Tensor> p_i, p_f, p_o, w_hr, norm_gain, norm_shift, cell_gain, cell_shift, w_gg;
};

// Layer normalisation of n values in place (Ba et al. 2016, Sec. 3.1): a becomes
// (a - mean) / sqrt(var + eps), the biased variance as torch.nn.LayerNorm takes it. Returns
// 1 / sqrt(var + eps), which the backward needs.
template <typename acc>
acc normalise_(acc* a, int64_t n, double eps) {
  // in SIMD through at::vec: a chain of scalar additions over a row of G*H values costs
  // more than the row's share of the step's matrix product at a batch of 64
  using Vec = at::vec::Vectorized<acc>;
  auto add = [](Vec x, Vec y) { return x + y; };
  const acc mean = at::vec::reduce_all<acc>(add, a, n) / acc(n);
  const Vec centre(mean);
  auto square = [centre](Vec x) { return (x - centre) * (x - centre); };
  const acc var = at::vec::map_reduce_all<acc>(square, add, a, n) / acc(n);
  const acc rstd = acc(1) / std::sqrt(var + acc(eps));
  const Vec scale(rstd);
  at::vec::map([centre, scale](Vec x) { return (x - centre) * scale; }, a, a, n);
  return rstd;
}

// The norm's backward: from dy (the gradient at gain * xhat + shift) the gradient at its
// input, dx = rstd (gy - mean(gy) - xhat mean(gy xhat)) with gy = gain dy. `dx` may be `dy`.
// The gain's and the shift's gradients are sums of dy xhat and dy over steps and rows; this
// row's terms are added to gain_sum and shift_sum (n each), the row's own accumulators.
template <typename acc, typename scalar_t>
void normalise_backward(const acc* dy, const scalar_t* gain, const scalar_t* xhat, acc rstd,
                        int64_t n, acc* dx, acc* gain_sum, acc* shift_sum) {
  LaneSum<acc> sum_gy, sum_gyx;
  for_lanes<acc>(n, [&](int64_t k, auto L) {
    const auto g = L.load(dy + k), x = L.load(xhat + k), gy = L.load(gain + k) * g;
    L.store(gain_sum + k, L.load(gain_sum + k) + g * x);
    L.store(shift_sum + k, L.load(shift_sum + k) + g);
    sum_gy.add(gy);
    sum_gyx.add(gy * x);
  });
  const acc mean_gy = sum_gy.total() / acc(n), mean_gyx = sum_gyx.total() / acc(n);
  for_lanes<acc>(n, [&](int64_t k, auto L) {  // dy is read before dx overwrites it
    const auto gy = L.load(gain + k) * L.load(dy + k);
    const auto centred = gy - L.splat(mean_gy) - L.load(xhat + k) * L.splat(mean_gyx);
    L.store(dx + k, L.splat(rstd) * centred);
  });
}

// After normalise_, with a holding xhat: keeps xhat for the backward (in storage, where
// the rounding of bfloat16 happens) and makes a = gain * xhat + shift, plus `after` where
// it is given (Ba's x_gates, which join after the norm of the recurrent product).
template <typename acc, typename scalar_t>
void scale_normalised(acc* a, const scalar_t* gain, const scalar_t* shift,
                      const std::type_identity_t<scalar_t>* after, scalar_t* xhat, int64_t n) {
  for_lanes<acc>(n, [&](int64_t k, auto L) {
    const auto x = L.load(a + k);
    L.store(xhat + k, x);
    const auto y = L.load(gain + k) * x + L.load(shift + k);
    L.store(a + k, after != nullptr ? y + L.load(after + k) : y);
  });
}

// What the forward keeps for the backward (and hands out for traces): see lstm_forward.
struct LSTMSaved {
  Tensor acts, c_all, h_all, m_all, norm_xhat, norm_rstd, cell_xhat, cell_rstd, gates_all;
};

template <typename scalar_t>
void lstm_forward_loop(const Tensor& x_gates, const Tensor& h0, const Tensor& c0,
                       const Tensor& gates0, const LSTMWeights& w,
                       const c10::optional<Tensor>& mask, const LSTMVariant& v, double eps,
                       bool keep_steps, LSTMSaved& s) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = c0.size(1), R = h0.size(1), KH = v.K * H;
  const bool project = w.w_hr.has_value();
  const Tensor w_hh_t = w.w_hh.t();
  const StepOperand w_hh_op = step_operand(w_hh_t, B);
  const Tensor w_hr_t = project ? w.w_hr->t() : Tensor();
  const acc* w_kn = w_hh_op.small.defined() ? w_hh_op.small.data_ptr<acc>() : nullptr;
  const scalar_t* xg_p = x_gates.data_ptr<scalar_t>();
  scalar_t* acts_p = s.acts.data_ptr<scalar_t>();
  scalar_t* c_all_p = s.c_all.data_ptr<scalar_t>();
  scalar_t* h_all_p = s.h_all.data_ptr<scalar_t>();
  scalar_t* m_all_p = project ? s.m_all.data_ptr<scalar_t>() : nullptr;
  const scalar_t* pi = optional_data<scalar_t>(w.p_i);
  const scalar_t* pf = optional_data<scalar_t>(w.p_f);
  const scalar_t* po = optional_data<scalar_t>(w.p_o);
  const scalar_t* ng = optional_data<scalar_t>(w.norm_gain);
  const scalar_t* ns = optional_data<scalar_t>(w.norm_shift);
  const scalar_t* cg = optional_data<scalar_t>(w.cell_gain);
  const scalar_t* cs = optional_data<scalar_t>(w.cell_shift);
  scalar_t* nx_p = v.norms_product() ? s.norm_xhat.data_ptr<scalar_t>() : nullptr;
  acc* nr_p = v.norms_product() ? s.norm_rstd.data_ptr<acc>() : nullptr;
  scalar_t* cx_p = v.norms_cell() ? s.cell_xhat.data_ptr<scalar_t>() : nullptr;
  acc* cr_p = v.norms_cell() ? s.cell_rstd.data_ptr<acc>() : nullptr;
  const int64_t groups = v.norm_groups();
  // FGR: each step's gates_{t-1} W_gg^T, one product for all rows
  const Tensor w_gg_t = v.fgr ? w.w_gg->t() : Tensor();
  const StepOperand w_gg_op = v.fgr ? step_operand(w_gg_t, B) : StepOperand();
  Tensor gate_rec = v.fgr ? at::empty({B, KH}, x_gates.options()) : Tensor();
  scalar_t* gates_p = v.fgr ? s.gates_all.data_ptr<scalar_t>() : nullptr;
  const int64_t gf = v.gf, gg = v.gg, go = v.go;
  StepRows<acc> rows(B, 12 * H, {GH, H, H});  // pre-activations, C_t, squashed C_t
  // Where step t's values go in what the forward keeps: every step's slot, or (keep_steps false:
  // nothing needs them after the call) one scratch step, and a ring of two for the states
  // the next step reads (C, FGR's gates)
  auto kept = [keep_steps](int64_t t) { return keep_steps ? t : 0; };
  auto ring = [keep_steps](int64_t t) { return keep_steps ? t : t % 2; };

  const scalar_t* h_prev = h0.data_ptr<scalar_t>();
  const scalar_t* c_prev_all = c0.data_ptr<scalar_t>();
  const scalar_t* g_prev_all = v.fgr ? gates0.data_ptr<scalar_t>() : nullptr;
  for (int64_t t = 0; t < T; ++t) {
    // pre-activations, overwritten by the gates below; Ba's norm takes the recurrent
    // product on its own, so the x_gates join after it
    scalar_t* z = acts_p + kept(t) * B * GH;
    const scalar_t* base = v.norm_product ? nullptr : xg_p + t * B * GH;
    if (w_kn != nullptr) vec_mat(h_prev, w_kn, base, GH, z, B, R, GH);
    // the rows read the products from z_in and write the gates to z; oneDNN's result is read
    // where it lies (kept alive by `product` until the rows are done)
    const scalar_t* z_in = z;
    Tensor product;
    if (w_kn == nullptr) {
      Tensor zt = s.acts[kept(t)];
      const Tensor hp = t > 0 ? s.h_all[t - 1] : h0;
      product = product_result(zt, v.norm_product ? Tensor() : x_gates[t], hp, w_hh_t, w_hh_op);
      z_in = product.data_ptr<scalar_t>();
    }
    if (v.fgr) {
      const Tensor gp = t > 0 ? s.gates_all[ring(t - 1)] : gates0;
      add_product(gate_rec, Tensor(), gp, w_gg_t, w_gg_op);
    }
    const scalar_t* rg = v.fgr ? gate_rec.data_ptr<scalar_t>() : nullptr;
    scalar_t* c_new = c_all_p + ring(t) * B * H;
    scalar_t* m = project ? m_all_p + kept(t) * B * H : h_all_p + t * B * R;
    const bool* keep = mask_row(mask, t);
    const scalar_t* cp = c_prev_all;
    const scalar_t* hp = h_prev;
    const scalar_t* gprev = g_prev_all;
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc *za = buf[0].get(), *ca = buf[1].get(), *ta = buf[2].get();
      scalar_t* zr = z + b * GH;
      const scalar_t* zr_in = z_in + b * GH;
      const int64_t row = t * B + b, kept_row = kept(t) * B + b;
      const scalar_t* c_prev = cp + b * H;
      convert_row<acc>(zr_in, za, GH);
      if (v.norm_product) {  // Ba et al.: LN(h W_hh^T) + (LN(x W_ih^T) + b, the caller's)
        nr_p[kept_row] = normalise_(za, GH, eps);
        scale_normalised(za, ng, ns, xg_p + row * GH, nx_p + kept_row * GH, GH);
      } else if (v.norm_gates) {  // TensorFlow: each gate block of the sum on its own
        for (int64_t q = 0; q < groups; ++q)
          nr_p[kept_row * groups + q] = normalise_(za + q * H, H, eps);
        scale_normalised(za, ng, ns, nullptr, nx_p + kept_row * GH, GH);  // ns: the shift and b
      }
      if (v.fgr) {  // every sigmoid gate reads every gate's previous activation
        const scalar_t* rr = rg + b * KH;
        add_row<acc>(za, rr, za, gg);
        if (v.has_o)
          add_row<acc>(za + go, rr + gg, za + go, H);
      }
      if (pi != nullptr || pf != nullptr)  // i and f look at C_{t-1}, each where it has a peephole
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto cprev = L.load(c_prev + j);
          if (pi != nullptr) L.store(za + j, L.load(za + j) + L.load(pi + j) * cprev);
          if (pf != nullptr) L.store(za + gf + j, L.load(za + gf + j) + L.load(pf + j) * cprev);
        });
      sigmoid_(za, gg);                     // i and f, whichever have blocks (before g)
      if (v.squash_in) tanh_(za + gg, H);  // C~ = tanh(z_g); NIAF keeps z_g itself
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto cprev = L.load(c_prev + j), g = L.load(za + gg + j);
        const auto i = v.has_i ? L.load(za + j) : L.splat(1);  // NIG: i_t = 1
        if (v.has_f) {
          L.store(ca + j, L.load(za + gf + j) * cprev + i * g);
        } else if (v.coupled) {
          L.store(ca + j, cprev + i * (g - cprev));  // (1 - i) C_{t-1} + i C~
        } else {
          L.store(ca + j, cprev + i * g);  // the 1997 carrousel
        }
      });
      if (v.norm_carried) {  // TensorFlow's per-gate cell carries its norm
        cr_p[kept_row] = normalise_(ca, H, eps);
        scale_normalised(ca, cg, cs, nullptr, cx_p + kept_row * H, H);
      }
      if (po != nullptr)  // o looks at C_t, the carried state
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          L.store(za + go + j, L.load(za + go + j) + L.load(po + j) * L.load(ca + j));
        });
      if (v.has_o) sigmoid_(za + go, H);
      std::copy(ca, ca + H, ta);
      if (v.norm_shown) {  // Ba et al.: h = o tanh(LN(C_t))
        cr_p[kept_row] = normalise_(ta, H, eps);
        scale_normalised(ta, cg, cs, nullptr, cx_p + kept_row * H, H);
      }
      if (v.squash_out) tanh_(ta, H);  // NOAF exposes C_t unsquashed
      // the gates are kept even for an ended row: its gradients are masked to 0 anyway
      if (keep_steps) convert_row<acc>(za, zr, GH);
      const bool live = keep == nullptr || keep[b];
      scalar_t* c_out = c_new + b * H;
      scalar_t* m_out = m + b * (project ? H : R);
      const scalar_t* h_kept = hp + b * R;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        L.store(c_out + j, live ? L.load(ca + j) : L.load(c_prev + j));
        const auto s = L.load(ta + j);
        const auto mj = v.has_o ? L.load(za + go + j) * s : s;  // o tanh(C); NOG: o_t = 1
        L.store(m_out + j, (project || live) ? mj : L.load(h_kept + j));
      });
      if (v.fgr) {  // the state gates_t: i and f where z has them, o after them
        scalar_t* g_out = gates_p + (ring(t) * B + b) * KH;
        const scalar_t* g_in = gprev + b * KH;
        for (int64_t k = 0; k < gg; ++k) g_out[k] = live ? scalar_t(za[k]) : g_in[k];
        if (v.has_o)
          for (int64_t j = 0; j < H; ++j) g_out[gg + j] = live ? scalar_t(za[go + j]) : g_in[gg + j];
      }
    });
    if (project) {
      Tensor h_new = s.h_all[t];
      at::mm_out(h_new, s.m_all[kept(t)], w_hr_t);
      if (mask.has_value()) {
        h_new.copy_(
            at::where(mask->select(0, t).unsqueeze(1), h_new, t > 0 ? s.h_all[t - 1] : h0));
      }
    }
    h_prev = h_all_p + t * B * R;
    c_prev_all = c_new;
    if (v.fgr) g_prev_all = gates_p + ring(t) * B * KH;
  }
}

// Returns output (T, B, R), h_n (B, R), c_n (B, H), gates_n (B, K*H; empty without FGR),
// and what the backward reads: acts (T, B, G*H) gate activations (C~ as the cell writes it:
// tanh(z_g), or z_g under NIAF), c_all (T, B, H) and h_all (T, B, R) the carried states after
// each step, m_all (T, B, H) = o * tanh(C) before the projection; the product norm's
// normalised values (T, B, G*H) and 1/sigma (T, B, 1 or G, in the accumulation type); the
// cell norm's (T, B, H) and (T, B); FGR's state after each step gates_all (T, B, K*H). Each
// is empty where the variant lacks it. With `keep_steps` false (a call nothing will differentiate
// or trace) they hold scratch instead: one step, two for c_all and gates_all, and h_all is the
// output itself, not a copy; the gates are not written back at all.
std::vector<Tensor> lstm_forward(
    const Tensor& x_gates_in, const Tensor& h0_in, const Tensor& c0_in,
    const c10::optional<Tensor>& gates0_in, const Tensor& w_hh,
    const c10::optional<Tensor>& p_i, const c10::optional<Tensor>& p_f,
    const c10::optional<Tensor>& p_o, const c10::optional<Tensor>& w_hr,
    const c10::optional<Tensor>& norm_gain, const c10::optional<Tensor>& norm_shift,
    const c10::optional<Tensor>& cell_gain, const c10::optional<Tensor>& cell_shift,
    const c10::optional<Tensor>& w_gg, const c10::optional<Tensor>& mask, int64_t variant,
    double eps, bool keep_steps) {
  const Tensor x_gates = x_gates_in.contiguous(), h0 = h0_in.contiguous(), c0 = c0_in.contiguous();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const LSTMVariant v(variant, H);
  TORCH_CHECK(GH == v.blocks * H, "lstm_forward: ", GH / H, " gate blocks given, the variant has ",
              v.blocks);
  TORCH_CHECK(!v.norms_product() || (norm_gain.has_value() && norm_shift.has_value()),
              "lstm_forward: the product's norm needs norm_gain and norm_shift");
  TORCH_CHECK(!v.norms_cell() || (cell_gain.has_value() && cell_shift.has_value()),
              "lstm_forward: the cell's norm needs cell_gain and cell_shift");
  TORCH_CHECK(!v.fgr || (gates0_in.has_value() && w_gg.has_value()),
              "lstm_forward: gate recurrence needs gates0 and w_gg");
  const auto opts = x_gates.options();
  const auto acc_opts = opts.dtype(at::toOpMathType(x_gates.scalar_type()));
  const Tensor gates0 = v.fgr ? gates0_in->contiguous() : Tensor();
  const int64_t steps = keep_steps ? T : 1, ring = keep_steps ? T : std::min<int64_t>(T, 2);
  LSTMSaved s;
  s.acts = at::empty({steps, B, GH}, opts);
  s.c_all = at::empty({ring, B, H}, opts);
  s.h_all = at::empty({T, B, R}, opts);
  s.m_all = w_hr.has_value() ? at::empty({steps, B, H}, opts) : at::empty({0}, opts);
  s.norm_xhat = at::empty({v.norms_product() ? steps : 0, B, GH}, opts);
  s.norm_rstd = at::empty({v.norms_product() ? steps : 0, B, v.norm_groups()}, acc_opts);
  s.cell_xhat = at::empty({v.norms_cell() ? steps : 0, B, H}, opts);
  s.cell_rstd = at::empty({v.norms_cell() ? steps : 0, B}, acc_opts);
  s.gates_all = at::empty({v.fgr ? ring : 0, B, v.K * H}, opts);
  auto contiguous = [](const c10::optional<Tensor>& p) -> c10::optional<Tensor> {
    return p.has_value() ? c10::optional<Tensor>(p->contiguous()) : c10::nullopt;
  };
  const LSTMWeights w{w_hh.contiguous(), contiguous(p_i), contiguous(p_f), contiguous(p_o),
                      contiguous(w_hr), contiguous(norm_gain), contiguous(norm_shift),
                      contiguous(cell_gain), contiguous(cell_shift), contiguous(w_gg)};
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "lstm_forward", [&] {
    lstm_forward_loop<scalar_t>(x_gates, h0, c0, gates0, w, mask, v, eps, keep_steps, s);
  });
  // the output is the carried h, 0 past each sequence's end: one pass after the loop
  Tensor output = mask.has_value() ? s.h_all * mask->unsqueeze(2)
                  : keep_steps       ? s.h_all.clone()
                                     : s.h_all;
  const int64_t last = keep_steps ? T - 1 : (T - 1) % 2;
  Tensor gates_n = v.fgr ? s.gates_all[last].clone() : at::empty({0}, opts);
  return {output, s.h_all[T - 1].clone(), s.c_all[last].clone(), gates_n, s.acts, s.c_all,
          s.h_all, s.m_all, s.norm_xhat, s.norm_rstd, s.cell_xhat, s.cell_rstd, s.gates_all};
}

// What the backward loop writes: dz_all the gradient of every gate pre-activation (after
// the norms), drec_all that of the recurrent product (before a product norm; dz_all itself
// without one), dh_all what reached W_hr at each step; dh, dc and dg carry dL/dh, dL/dC
// and dL/dgates (FGR) back. The sums per row are those of the peephole weights' and the
// norms' gradients: the rows of one step run on different threads, so each row adds into
// its own, and the rows' sums are added after the loop.
struct LSTMGrads {
  Tensor dz_all, drec_all, dh_all, dh, dc, dg;
  RowSums peep;        // blocks p_i, p_f, p_o
  RowSums norm_sums;   // the product norm's gain and shift, G*H each
  RowSums cell_sums;   // the cell norm's gain and shift, H each
};

template <typename scalar_t>
void lstm_backward_loop(const Tensor& d_output, const LSTMSaved& s, const Tensor& c0,
                        const LSTMWeights& w, const c10::optional<Tensor>& mask,
                        const LSTMVariant& v, LSTMGrads& d) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = s.acts.size(0), B = s.acts.size(1), GH = s.acts.size(2);
  const int64_t H = c0.size(1), R = d.dh.size(1), KH = v.K * H;
  const bool project = w.w_hr.has_value();
  const StepOperand w_hh_op = step_operand(w.w_hh, B);
  const acc* w_kn = w_hh_op.small.defined() ? w_hh_op.small.data_ptr<acc>() : nullptr;
  const scalar_t* dout_p = d_output.data_ptr<scalar_t>();
  const scalar_t* acts_p = s.acts.data_ptr<scalar_t>();
  const scalar_t* c_all_p = s.c_all.data_ptr<scalar_t>();
  scalar_t* dz_p = d.dz_all.data_ptr<scalar_t>();
  scalar_t* drec_p = d.drec_all.data_ptr<scalar_t>();
  const bool rec_apart = v.norms_product();  // drec_all is a tensor of its own
  const scalar_t* pi = optional_data<scalar_t>(w.p_i);
  const scalar_t* pf = optional_data<scalar_t>(w.p_f);
  const scalar_t* po = optional_data<scalar_t>(w.p_o);
  const scalar_t* ng = optional_data<scalar_t>(w.norm_gain);
  const scalar_t* cg = optional_data<scalar_t>(w.cell_gain);
  const scalar_t* cs = optional_data<scalar_t>(w.cell_shift);
  const scalar_t* nx_p = v.norms_product() ? s.norm_xhat.data_ptr<scalar_t>() : nullptr;
  const acc* nr_p = v.norms_product() ? s.norm_rstd.data_ptr<acc>() : nullptr;
  const scalar_t* cx_p = v.norms_cell() ? s.cell_xhat.data_ptr<scalar_t>() : nullptr;
  const acc* cr_p = v.norms_cell() ? s.cell_rstd.data_ptr<acc>() : nullptr;
  const int64_t groups = v.norm_groups();
  const int64_t gf = v.gf, gg = v.gg, go = v.go;
  auto dh_t = at::empty({B, R}, s.acts.options());
  auto dm = project ? at::empty({B, H}, s.acts.options()) : Tensor();
  auto dc_prev = at::empty({B, H}, s.acts.options());
  auto dh_prev = at::empty({B, R}, s.acts.options());
  // FGR: dL/dgates_{t-1} = dL/dz_gates(t) W_gg, one product per step
  const StepOperand w_gg_op = v.fgr ? step_operand(*w.w_gg, B) : StepOperand();
  Tensor dz_gates = v.fgr ? at::empty({B, KH}, s.acts.options()) : Tensor();
  Tensor dg_prev = v.fgr ? at::empty({B, KH}, s.acts.options()) : Tensor();
  // squashed C_t, dL/d(the cell the output squashes), dL/dC_t, the pre-activations' gradients
  StepRows<acc> rows(B, 16 * H, {H, H, H, GH});

  for (int64_t t = T - 1; t >= 0; --t) {
    scalar_t* dht = dh_t.data_ptr<scalar_t>();
    const scalar_t* dhp = d.dh.data_ptr<scalar_t>();
    const scalar_t* dout = dout_p + t * B * R;
    add_row<acc>(dout, dhp, dht, B * R);
    if (project) at::mm_out(dm, dh_t, *w.w_hr);
    const scalar_t* dmp = (project ? dm : dh_t).data_ptr<scalar_t>();
    const scalar_t* cp = t > 0 ? c_all_p + (t - 1) * B * H : c0.data_ptr<scalar_t>();
    const scalar_t* ct = c_all_p + t * B * H;
    const scalar_t* ap = acts_p + t * B * GH;
    scalar_t* dz = dz_p + t * B * GH;
    scalar_t* drec = drec_p + t * B * GH;
    const scalar_t* dcp = d.dc.data_ptr<scalar_t>();
    scalar_t* dcn = dc_prev.data_ptr<scalar_t>();
    const scalar_t* dgp = v.fgr ? d.dg.data_ptr<scalar_t>() : nullptr;
    scalar_t* dzg = v.fgr ? dz_gates.data_ptr<scalar_t>() : nullptr;
    const bool* keep = mask_row(mask, t);
    auto row = [&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc *tc = buf[0].get(), *dsh = buf[1].get(), *dct = buf[2].get(), *dza = buf[3].get();
      const int64_t r = t * B + b;
      const scalar_t* ar = ap + b * GH;
      scalar_t* dzr = dz + b * GH;
      if (keep != nullptr && !keep[b]) {  // ended: nothing happened at this step
        for (int64_t k = 0; k < GH; ++k) dzr[k] = scalar_t(0);
        if (rec_apart)
          for (int64_t k = 0; k < GH; ++k) drec[b * GH + k] = scalar_t(0);
        for (int64_t j = 0; j < H; ++j) dcn[b * H + j] = dcp[b * H + j];
        if (v.fgr)
          for (int64_t k = 0; k < KH; ++k) dzg[b * KH + k] = scalar_t(0);
        return;
      }
      const scalar_t* cx = v.norms_cell() ? cx_p + r * H : nullptr;
      acc* peep_i = d.peep.row<acc>(b);  // then p_f's sums, p_o's
      acc* cell_gain_sum = d.cell_sums.row<acc>(b);  // then the shift's
      // the cell as the output squashes it, recomputed: cheaper than storing a (T, B, H)
      // buffer; Ba's LN(C_t) from its normalised values
      if (v.norm_shown) {
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          L.store(tc + j, L.load(cg + j) * L.load(cx + j) + L.load(cs + j));
        });
      } else {
        convert_row<acc>(ct + b * H, tc, H);
      }
      if (v.squash_out) tanh_(tc, H);
      const scalar_t* dgr = v.fgr ? dgp + b * KH : nullptr;  // dL/dgates_t from step t+1
      const scalar_t* dmr = dmp + b * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto one = L.splat(1);
        const auto o = v.has_o ? L.load(ar + go + j) : one;  // NOG: o_t = 1
        const auto dmj = L.load(dmr + j), s = L.load(tc + j);
        // through h = o s(C), s = tanh (or the identity under NOAF)
        L.store(dsh + j, v.squash_out ? dmj * o * (one - s * s) : dmj * o);
        if (v.has_o) {
          const auto d_o = v.fgr ? dmj * s + L.load(dgr + gg + j) : dmj * s;
          L.store(dza + go + j, d_o * o * (one - o));  // ... and o's σ
        }
      });
      if (v.norm_shown) {  // back through LN(C_t)
        normalise_backward(dsh, cg, cx, cr_p[r], H, dct, cell_gain_sum, cell_gain_sum + H);
      } else {
        std::copy(dsh, dsh + H, dct);
      }
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto d = L.load(dct + j) + L.load(dcp + b * H + j);
        if (po == nullptr) {
          L.store(dct + j, d);
        } else {  // o's peephole saw C_t
          const auto dzo = L.load(dza + go + j);
          L.store(dct + j, d + L.load(po + j) * dzo);
          acc* sum = peep_i + 2 * H + j;
          L.store(sum, L.load(sum) + dzo * L.load(ct + b * H + j));
        }
      });
      if (v.norm_carried) {  // the carried C_t is LN(f C_{t-1} + i C~)
        normalise_backward(dct, cg, cx, cr_p[r], H, dct, cell_gain_sum, cell_gain_sum + H);
      }
      const scalar_t* cpr = cp + b * H;
      scalar_t* dcnr = dcn + b * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto one = L.splat(1);
        const auto g = L.load(ar + gg + j), cprev = L.load(cpr + j), dc = L.load(dct + j);
        const auto i = v.has_i ? L.load(ar + j) : one;  // NIG: i_t = 1
        auto di = dc * g, dcprev = dc;  // dL/di_t (before i's σ) and dL/dC_{t-1}
        if (v.has_f) {
          const auto f = L.load(ar + gf + j);
          const auto df = v.fgr ? dc * cprev + L.load(dgr + gf + j) : dc * cprev;
          const auto dzf = df * f * (one - f);
          L.store(dza + gf + j, dzf);
          dcprev = dc * f;
          if (pf != nullptr) {
            dcprev = dcprev + L.load(pf + j) * dzf;
            L.store(peep_i + H + j, L.load(peep_i + H + j) + dzf * cprev);
          }
        } else if (v.coupled) {
          di = dc * (g - cprev);
          dcprev = dc * (one - i);
        }  // else the carrousel passes dC on unchanged
        if (v.has_i) {
          if (v.fgr) di = di + L.load(dgr + j);  // i_t is also FGR's state
          const auto dzi = di * i * (one - i);
          L.store(dza + j, dzi);
          if (pi != nullptr) {
            dcprev = dcprev + L.load(pi + j) * dzi;
            L.store(peep_i + j, L.load(peep_i + j) + dzi * cprev);
          }
        }
        // C~ = tanh(z_g), or z_g itself under NIAF
        L.store(dza + gg + j, v.squash_in ? dc * i * (one - g * g) : dc * i);
        L.store(dcnr + j, dcprev);
      });
      convert_row<acc>(dza, dzr, GH);
      if (v.fgr) {  // the sigmoid gates' gradients, in the state's order
        scalar_t* out = dzg + b * KH;
        convert_row<acc>(dza, out, gg);
        if (v.has_o) convert_row<acc>(dza + go, out + gg, H);
      }
      if (rec_apart) {  // back through the product's norm(s), into the product itself
        const int64_t n = GH / groups;
        acc* gain_sum = d.norm_sums.row<acc>(b);  // then the shift's
        for (int64_t q = 0; q < groups; ++q)
          normalise_backward(dza + q * n, ng + q * n, nx_p + r * GH + q * n,
                             nr_p[r * groups + q], n, dza + q * n, gain_sum + q * n,
                             gain_sum + GH + q * n);
        convert_row<acc>(dza, drec + b * GH, GH);
      }
    };
    rows.run(row);

    if (w_kn != nullptr) {
      vec_mat<scalar_t>(drec, w_kn, nullptr, 0, dh_prev.data_ptr<scalar_t>(), B, GH, R);
    } else {  // oneDNN's fresh result becomes the carried gradient itself, with no copy
      dh_prev = product_result(dh_prev, Tensor(), d.drec_all[t], w.w_hh, w_hh_op);
    }
    scalar_t* dhn = dh_prev.data_ptr<scalar_t>();
    if (keep != nullptr) {  // ended rows: the gradient passes by
      for (int64_t b = 0; b < B; ++b)
        if (!keep[b])
          for (int64_t k = 0; k < R; ++k) dhn[b * R + k] = dhp[b * R + k];
    }
    if (v.fgr) {
      add_product(dg_prev, Tensor(), dz_gates, *w.w_gg, w_gg_op);
      if (keep != nullptr) {  // ended rows: the gates passed by, and so does their gradient
        scalar_t* dgn = dg_prev.data_ptr<scalar_t>();
        for (int64_t b = 0; b < B; ++b)
          if (!keep[b])
            for (int64_t k = 0; k < KH; ++k) dgn[b * KH + k] = dgp[b * KH + k];
      }
      std::swap(d.dg, dg_prev);
    }
    if (project) {  // what reached W_hr at this step, for its gradient
      scalar_t* slot = d.dh_all.data_ptr<scalar_t>() + t * B * R;
      for (int64_t b = 0; b < B; ++b) {
        const bool live = keep == nullptr || keep[b];
        for (int64_t k = 0; k < R; ++k) slot[b * R + k] = live ? dht[b * R + k] : scalar_t(0);
      }
    }
    std::swap(d.dh, dh_prev);
    std::swap(d.dc, dc_prev);
  }
}

// Returns d_x_gates (T, B, G*H) (the gradient of the x_gates handed in: every gate
// pre-activation's, or under the per-gate norm the summed product's), dh0, dc0, dgates0,
// d_w_hh, d_p_i, d_p_f, d_p_o, d_w_hr, d_norm_gain, d_norm_shift, d_cell_gain,
// d_cell_shift, d_w_gg (undefined where the layer has none).
std::vector<Tensor> lstm_backward(
    const Tensor& d_output_in, const Tensor& d_h_n, const Tensor& d_c_n,
    const c10::optional<Tensor>& d_gates_n, const Tensor& acts, const Tensor& c_all,
    const Tensor& h_all, const Tensor& m_all, const Tensor& norm_xhat, const Tensor& norm_rstd,
    const Tensor& cell_xhat, const Tensor& cell_rstd, const Tensor& gates_all, const Tensor& h0,
    const Tensor& c0_in, const c10::optional<Tensor>& gates0, const Tensor& w_hh,
    const c10::optional<Tensor>& p_i, const c10::optional<Tensor>& p_f,
    const c10::optional<Tensor>& p_o, const c10::optional<Tensor>& w_hr,
    const c10::optional<Tensor>& norm_gain, const c10::optional<Tensor>& cell_gain,
    const c10::optional<Tensor>& cell_shift, const c10::optional<Tensor>& w_gg,
    const c10::optional<Tensor>& mask, int64_t variant) {
  const Tensor d_output = d_output_in.contiguous(), c0 = c0_in.contiguous();
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const LSTMVariant v(variant, H);
  const int64_t KH = v.K * H;
  TORCH_CHECK(GH == v.blocks * H, "lstm_backward: ", GH / H,
              " gate blocks given, the variant has ", v.blocks);
  const bool project = w_hr.has_value();
  auto contiguous = [](const c10::optional<Tensor>& p) -> c10::optional<Tensor> {
    return p.has_value() ? c10::optional<Tensor>(p->contiguous()) : c10::nullopt;
  };
  const LSTMWeights w{w_hh.contiguous(), contiguous(p_i), contiguous(p_f), contiguous(p_o),
                      contiguous(w_hr), contiguous(norm_gain), c10::nullopt,
                      contiguous(cell_gain), contiguous(cell_shift), contiguous(w_gg)};
  LSTMSaved s{acts.contiguous(), c_all.contiguous(), h_all, m_all, norm_xhat.contiguous(),
              norm_rstd.contiguous(), cell_xhat.contiguous(), cell_rstd.contiguous(), gates_all};
  LSTMGrads d;
  d.dz_all = at::empty({T, B, GH}, acts.options());
  d.drec_all = v.norms_product() ? at::empty({T, B, GH}, acts.options()) : d.dz_all;
  d.dh_all = project ? at::empty({T, B, R}, acts.options()) : Tensor();
  d.dh = d_h_n.contiguous().clone();
  d.dc = d_c_n.contiguous().clone();
  if (v.fgr) {
    d.dg = d_gates_n.has_value() ? d_gates_n->contiguous().clone()
                                 : at::zeros({B, KH}, acts.options());
  }
  const bool peepholes = p_i.has_value() || p_f.has_value() || p_o.has_value();
  if (peepholes) d.peep = RowSums(B, 3, H, acts);
  if (v.norms_product()) d.norm_sums = RowSums(B, 2, GH, acts);
  if (v.norms_cell()) d.cell_sums = RowSums(B, 2, H, acts);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "lstm_backward", [&] {
    lstm_backward_loop<scalar_t>(d_output, s, c0, w, mask, v, d);
  });

  // weight gradients over all steps at once: one product each
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_hh = at::mm(d.drec_all.view({T * B, GH}).t(), h_prev_all.reshape({T * B, R}));
  Tensor d_w_hr = project ? at::mm(d.dh_all.view({T * B, R}).t(), m_all.view({T * B, H}))
                          : Tensor();
  // the peephole weights' gradients: the loop's sums per row, over the rows
  Tensor d_pi, d_pf, d_po;
  if (p_i.has_value()) d_pi = d.peep.total(0, acts.scalar_type());
  if (p_f.has_value()) d_pf = d.peep.total(1, acts.scalar_type());
  if (p_o.has_value()) d_po = d.peep.total(2, acts.scalar_type());
  // the norms' gains' and shifts' gradients: the loop's sums per row, over the rows
  Tensor d_norm_gain, d_norm_shift, d_cell_gain, d_cell_shift, d_w_gg;
  if (v.norms_product()) {
    d_norm_gain = d.norm_sums.total(0, acts.scalar_type());
    d_norm_shift = d.norm_sums.total(1, acts.scalar_type());
  }
  if (v.norms_cell()) {
    d_cell_gain = d.cell_sums.total(0, acts.scalar_type());
    d_cell_shift = d.cell_sums.total(1, acts.scalar_type());
  }
  Tensor d_gates0;
  if (v.fgr) {  // the sigmoid gates' blocks of dz against the previous step's gates
    std::vector<Tensor> blocks;
    if (v.gg > 0) blocks.push_back(d.dz_all.narrow(2, 0, v.gg));
    if (v.has_o) blocks.push_back(d.dz_all.narrow(2, v.go, H));
    const Tensor dz_gates = at::cat(blocks, 2).reshape({T * B, KH});
    const Tensor g_prev_all = at::cat({gates0->unsqueeze(0), gates_all.narrow(0, 0, T - 1)}, 0);
    d_w_gg = at::mm(dz_gates.t(), g_prev_all.reshape({T * B, KH}));
    d_gates0 = d.dg;
  }
  // the per-gate norm acts on x_gates + the product, so x_gates' gradient is the product's
  Tensor d_x_gates = v.norm_gates ? d.drec_all : d.dz_all;
  return {d_x_gates, d.dh, d.dc, d_gates0, d_w_hh, d_pi, d_pf, d_po, d_w_hr,
          d_norm_gain, d_norm_shift, d_cell_gain, d_cell_shift, d_w_gg};
}

// ------------------------------------------------------------------------------------
// GRU (torch's form: the reset gate multiplies W_hn h + b_hn)
// ------------------------------------------------------------------------------------

// x_gates (T, B, 3H) = x W_ih^T + b_ih. Returns output (T, B, H), h_n, and for the
// backward: acts (T, B, 3H) = (r, z, n), hn_all (T, B, H) = W_hn h_prev + b_hn, h_all.
std::vector<Tensor> gru_forward(
    const Tensor& x_gates, const Tensor& h0, const Tensor& w_hh,
    const c10::optional<Tensor>& b_hh, const c10::optional<Tensor>& mask) {
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  auto acts = at::empty({T, B, 3 * H}, x_gates.options());
  auto hn_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  auto hg = at::empty({B, 3 * H}, x_gates.options());
  const Tensor w_hh_t = w_hh.t();
  const StepOperand w_hh_op = step_operand(w_hh_t, B);
  const Tensor bias = b_hh.has_value() ? b_hh->contiguous() : Tensor();
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    const Tensor h_prods = product_result(hg, bias, h, w_hh_t, w_hh_op);  // read, not copied
    const Tensor xg = x_gates[t];
    Tensor a = acts[t], hn = hn_all[t], h_new = h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xg.scalar_type(), "gru_forward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* xp = xg.data_ptr<scalar_t>();
      const scalar_t* gp = h_prods.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ap = a.data_ptr<scalar_t>();
      scalar_t* np_ = hn.data_ptr<scalar_t>();
      scalar_t* ho = h_new.data_ptr<scalar_t>();
      at::parallel_for(0, B, std::max<int64_t>(1, 32768 / (10 * H)), [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(3 * H);
        acc* u = buf.get();  // r, z, n
        for (int64_t b = lo; b < hi; ++b) {
          const scalar_t* x = xp + b * 3 * H;
          const scalar_t* g = gp + b * 3 * H;
          add_row<acc>(x, g, u, 2 * H);
          sigmoid_(u, 2 * H);
          for_lanes<acc>(H, [&](int64_t j, auto L) {
            L.store(u + 2 * H + j, L.load(x + 2 * H + j) + L.load(u + j) * L.load(g + 2 * H + j));
          });
          tanh_(u + 2 * H, H);
          convert_row<acc>(u, ap + b * 3 * H, 3 * H);
          std::copy(g + 2 * H, g + 3 * H, np_ + b * H);
          const bool live = keep == nullptr || keep[b];
          const scalar_t* hr = hp + b * H;
          for_lanes<acc>(H, [&](int64_t j, auto L) {
            const auto z = L.load(u + H + j), n = L.load(u + 2 * H + j), hprev = L.load(hr + j);
            L.store(ho + b * H + j, live ? (L.splat(1) - z) * n + z * hprev : hprev);
          });
        }
      });
    });
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_new, mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_new);
    }
    h = h_new;
  }
  return {output, h.clone(), acts, hn_all, h_all};
}

// Returns d_x_gates (T, B, 3H), dh0, d_w_hh, d_b_hh (the latter always; the caller drops it
// when the layer has no bias).
std::vector<Tensor> gru_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& acts, const Tensor& hn_all,
    const Tensor& h_all, const Tensor& h0, const Tensor& w_hh, const c10::optional<Tensor>& mask) {
  const int64_t T = acts.size(0), B = acts.size(1), H = h0.size(1);
  auto dx_all = at::empty({T, B, 3 * H}, acts.options());
  auto dhg_all = at::empty({T, B, 3 * H}, acts.options());
  Tensor dh = d_h_n.contiguous().clone();
  auto dh_t = at::empty({B, H}, acts.options());
  auto dh_direct = at::empty({B, H}, acts.options());
  const StepOperand w_hh_op = step_operand(w_hh, B);
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    const Tensor h_prev = t > 0 ? h_all[t - 1] : h0;
    const Tensor a = acts[t], hn = hn_all[t];
    Tensor dx = dx_all[t], dhg = dhg_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "gru_backward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* np_ = hn.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      const scalar_t* dtp = dh_t.data_ptr<scalar_t>();
      const scalar_t* dcarry = dh.data_ptr<scalar_t>();
      scalar_t* dxp = dx.data_ptr<scalar_t>();
      scalar_t* dgp = dhg.data_ptr<scalar_t>();
      scalar_t* ddp = dh_direct.data_ptr<scalar_t>();
      for_rows(B, 16 * H, [&](int64_t b) {
        const scalar_t* ar = ap + b * 3 * H;
        scalar_t* dxr = dxp + b * 3 * H;
        scalar_t* dgr = dgp + b * 3 * H;
        if (keep != nullptr && !keep[b]) {  // ended: the gradient passes by
          for (int64_t k = 0; k < 3 * H; ++k) dxr[k] = dgr[k] = scalar_t(0);
          for (int64_t j = 0; j < H; ++j) ddp[b * H + j] = dcarry[b * H + j];
          return;
        }
        const int64_t row = b * H;
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto one = L.splat(1);
          const auto r = L.load(ar + j), z = L.load(ar + H + j), n = L.load(ar + 2 * H + j);
          const auto d = L.load(dtp + row + j);
          const auto dn = d * (one - z) * (one - n * n);  // through h and tanh
          const auto dz = d * (L.load(hp + row + j) - n) * z * (one - z);
          const auto dr = dn * L.load(np_ + row + j) * r * (one - r);
          L.store(dxr + j, dr);
          L.store(dxr + H + j, dz);
          L.store(dxr + 2 * H + j, dn);
          L.store(dgr + j, dr);
          L.store(dgr + H + j, dz);
          L.store(dgr + 2 * H + j, dn * r);  // r scaled W_hn h + b_hn
          L.store(ddp + row + j, d * z);     // h_t = ... + z h_{t-1}
        });
      });
    });
    dh = at::empty_like(dh_direct);
    dh = product_result(dh, dh_direct, dhg, w_hh, w_hh_op);  // oneDNN's result, not copied
  }
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const Tensor flat = dhg_all.view({T * B, 3 * H});
  Tensor d_w_hh = at::mm(flat.t(), h_prev_all.reshape({T * B, H}));
  Tensor d_b_hh = flat.sum(0);
  return {dx_all, dh, d_w_hh, d_b_hh};
}

// ------------------------------------------------------------------------------------
// Reset before the product: Cho et al.'s GRU (reset_after=False) and the MGU
// ------------------------------------------------------------------------------------
//
// Cho et al. (2014, Sect. 2.3) reset h_{t-1} before the candidate's recurrent product:
//   r, z = sigmoid(x_{r,z} + h_{t-1} W_{h(r,z)}^T),  n = tanh(x_n + (r h_{t-1}) W_hn^T),
//   h_t = (1 - z) n + z h_{t-1}.
// Every bias_hh block is a constant added to a pre-activation, so the caller folds all of it
// into x_gates. A step is two products: h_{t-1} with the sigmoid blocks, then (r h_{t-1})
// with the candidate block, which has to wait for r.
//
// `tied`: the MGU (Zhou et al. 2016), whose one gate f plays both parts, r = f and
// z = 1 - f, so h_t = (1 - f) h_{t-1} + f n. Its blocks are (f, n); the GRU's (r, z, n).
// S below is the number of sigmoid blocks (2, or 1 tied); the candidate block follows them.

// x_gates (T, B, (S+1)H) = x W_ih^T + b_ih + b_hh. Returns output (T, B, H), h_n, and for
// the backward: acts (T, B, (S+1)H) = the gates and n, rh_all (T, B, H) = r h_{t-1}, h_all.
std::vector<Tensor> reset_first_forward(
    const Tensor& x_gates_in, const Tensor& h0, const Tensor& w_hh, bool tied,
    const c10::optional<Tensor>& mask) {
  const Tensor x_gates = x_gates_in.contiguous();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  const int64_t S = tied ? 1 : 2, GH = (S + 1) * H;
  TORCH_CHECK(x_gates.size(2) == GH, "reset_first_forward: ", x_gates.size(2) / H,
              " gate blocks given, expected ", S + 1);
  auto acts = at::empty({T, B, GH}, x_gates.options());
  auto rh_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  auto h_gates = at::empty({B, S * H}, x_gates.options());  // h_{t-1} W_h(r,z)^T
  auto h_cand = at::empty({B, H}, x_gates.options());       // (r h_{t-1}) W_hn^T
  const Tensor w_gates_t = w_hh.narrow(0, 0, S * H).t();
  const Tensor w_cand_t = w_hh.narrow(0, S * H, H).t();
  const StepOperand w_gates_op = step_operand(w_gates_t, B);
  const StepOperand w_cand_op = step_operand(w_cand_t, B);
  const int64_t grain = std::max<int64_t>(1, 32768 / (10 * H));
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    const Tensor gate_prods = product_result(h_gates, Tensor(), h, w_gates_t, w_gates_op);
    const Tensor xg = x_gates[t];
    Tensor a = acts[t], rh = rh_all[t], h_new = h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xg.scalar_type(), "reset_first_gates", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* xp = xg.data_ptr<scalar_t>();
      const scalar_t* gp = gate_prods.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ap = a.data_ptr<scalar_t>();
      scalar_t* rp = rh.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(S * H);
        acc* u = buf.get();  // r (f), then z
        for (int64_t b = lo; b < hi; ++b) {
          const scalar_t* x = xp + b * GH;
          const scalar_t* g = gp + b * S * H;
          add_row<acc>(x, g, u, S * H);
          sigmoid_(u, S * H);
          convert_row<acc>(u, ap + b * GH, S * H);
          // the reset acts here, before the candidate's product (Cho et al. Sect. 2.3)
          for_lanes<acc>(H, [&](int64_t j, auto L) {
            L.store(rp + b * H + j, L.load(u + j) * L.load(hp + b * H + j));
          });
        }
      });
    });
    const Tensor cand_prod = product_result(h_cand, Tensor(), rh, w_cand_t, w_cand_op);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xg.scalar_type(), "reset_first_candidate", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* xp = xg.data_ptr<scalar_t>();
      const scalar_t* cp = cand_prod.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ap = a.data_ptr<scalar_t>();
      scalar_t* ho = h_new.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(H);
        acc* n = buf.get();
        for (int64_t b = lo; b < hi; ++b) {
          const scalar_t* x = xp + b * GH + S * H;
          add_row<acc>(x, cp + b * H, n, H);
          tanh_(n, H);
          scalar_t* ar = ap + b * GH;
          convert_row<acc>(n, ar + S * H, H);
          const bool live = keep == nullptr || keep[b];
          for_lanes<acc>(H, [&](int64_t j, auto L) {
            const auto one = L.splat(1);
            // z keeps h_{t-1}: the GRU's own gate, or the MGU's 1 - f
            const auto z = tied ? one - L.load(ar + j) : L.load(ar + H + j);
            const auto hprev = L.load(hp + b * H + j);
            L.store(ho + b * H + j, live ? (one - z) * L.load(n + j) + z * hprev : hprev);
          });
        }
      });
    });
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_new, mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_new);
    }
    h = h_new;
  }
  return {output, h.clone(), acts, rh_all, h_all};
}

// Returns d_x_gates (T, B, (S+1)H) (the gradient of every pre-activation), dh0, d_w_hh.
// Per step, backwards: the candidate's pre-activation gradient first, then its product with
// W_hn, which is the gradient of r h_{t-1} and so reaches both r and h_{t-1}; then the
// gates', whose product with W_h(r,z) completes dL/dh_{t-1}.
std::vector<Tensor> reset_first_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& acts, const Tensor& rh_all,
    const Tensor& h_all, const Tensor& h0, const Tensor& w_hh, bool tied,
    const c10::optional<Tensor>& mask) {
  const int64_t T = acts.size(0), B = acts.size(1), H = h0.size(1);
  const int64_t S = tied ? 1 : 2, GH = (S + 1) * H;
  auto d_gates_all = at::empty({T, B, S * H}, acts.options());
  auto d_cand_all = at::empty({T, B, H}, acts.options());
  Tensor dh = d_h_n.contiguous().clone();
  auto dh_t = at::empty({B, H}, acts.options());
  auto d_rh = at::empty({B, H}, acts.options());
  auto dh_direct = at::empty({B, H}, acts.options());
  const Tensor w_gates = w_hh.narrow(0, 0, S * H), w_cand = w_hh.narrow(0, S * H, H);
  const StepOperand w_gates_op = step_operand(w_gates, B);
  const StepOperand w_cand_op = step_operand(w_cand, B);
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    const Tensor h_prev = t > 0 ? h_all[t - 1] : h0.contiguous();
    const Tensor a = acts[t];
    Tensor d_gates = d_gates_all[t], d_cand = d_cand_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "reset_first_cand_bw", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* dtp = dh_t.data_ptr<scalar_t>();
      scalar_t* dcp = d_cand.data_ptr<scalar_t>();
      for_rows(B, 6 * H, [&](int64_t b) {
        const scalar_t* ar = ap + b * GH;
        const bool live = keep == nullptr || keep[b];
        if (!live) {
          std::fill(dcp + b * H, dcp + (b + 1) * H, scalar_t(0));
          return;
        }
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto one = L.splat(1);
          const auto z = tied ? one - L.load(ar + j) : L.load(ar + H + j);
          const auto n = L.load(ar + S * H + j);
          L.store(dcp + b * H + j, L.load(dtp + b * H + j) * (one - z) * (one - n * n));  // h, tanh
        });
      });
    });
    d_rh = product_result(d_rh, Tensor(), d_cand, w_cand, w_cand_op);  // dL/d(r h_{t-1})
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "reset_first_gates_bw", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      const scalar_t* dtp = dh_t.data_ptr<scalar_t>();
      const scalar_t* drp = d_rh.data_ptr<scalar_t>();
      const scalar_t* dcarry = dh.data_ptr<scalar_t>();
      scalar_t* dgp = d_gates.data_ptr<scalar_t>();
      scalar_t* ddp = dh_direct.data_ptr<scalar_t>();
      for_rows(B, 10 * H, [&](int64_t b) {
        const scalar_t* ar = ap + b * GH;
        scalar_t* dgr = dgp + b * S * H;
        if (keep != nullptr && !keep[b]) {  // ended: the gradient passes by
          for (int64_t k = 0; k < S * H; ++k) dgr[k] = scalar_t(0);
          for (int64_t j = 0; j < H; ++j) ddp[b * H + j] = dcarry[b * H + j];
          return;
        }
        const int64_t row = b * H;
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          const auto one = L.splat(1);
          const auto r = L.load(ar + j), n = L.load(ar + S * H + j), hprev = L.load(hp + row + j);
          const auto d = L.load(dtp + row + j), drh = L.load(drp + row + j);
          const auto dr = drh * hprev;  // through r h_{t-1}
          if (tied) {  // f is r and 1 - z: h_t = (1 - f) h_{t-1} + f n
            L.store(dgr + j, (dr + d * (n - hprev)) * r * (one - r));
            L.store(ddp + row + j, d * (one - r) + drh * r);
          } else {
            const auto z = L.load(ar + H + j);
            L.store(dgr + j, dr * r * (one - r));
            L.store(dgr + H + j, d * (hprev - n) * z * (one - z));
            L.store(ddp + row + j, d * z + drh * r);  // z h_{t-1} and r h_{t-1}
          }
        });
      });
    });
    dh = at::empty_like(dh_direct);
    dh = product_result(dh, dh_direct, d_gates, w_gates, w_gates_op);  // not copied
  }
  // weight gradients over all steps at once: the gate blocks saw h_{t-1}, the candidate's
  // block r h_{t-1}
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_gates = at::mm(d_gates_all.view({T * B, S * H}).t(), h_prev_all.reshape({T * B, H}));
  Tensor d_w_cand = at::mm(d_cand_all.view({T * B, H}).t(), rh_all.reshape({T * B, H}));
  return {at::cat({d_gates_all, d_cand_all}, 2), dh, at::cat({d_w_gates, d_w_cand}, 0)};
}

// ------------------------------------------------------------------------------------
// RNN (tanh or relu); both biases folded into x_gates by the caller
// ------------------------------------------------------------------------------------

std::vector<Tensor> rnn_forward(
    const Tensor& x_gates, const Tensor& h0, const Tensor& w_hh, bool relu,
    const c10::optional<Tensor>& mask) {
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  auto pre = at::empty({B, H}, x_gates.options());
  const Tensor w_hh_t = w_hh.t();
  const StepOperand w_hh_op = step_operand(w_hh_t, B);
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    const Tensor pre_t = product_result(pre, x_gates[t], h, w_hh_t, w_hh_op);
    Tensor h_new = h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, pre_t.scalar_type(), "rnn_forward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* pp = pre_t.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ho = h_new.data_ptr<scalar_t>();
      at::parallel_for(0, B, std::max<int64_t>(1, 32768 / (4 * H)), [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(H);
        acc* u = buf.get();
        for (int64_t b = lo; b < hi; ++b) {
          const bool live = keep == nullptr || keep[b];
          if (!live) {
            std::copy(hp + b * H, hp + (b + 1) * H, ho + b * H);
            continue;
          }
          convert_row<acc>(pp + b * H, u, H);
          if (relu) {
            for_lanes<acc>(H, [&](int64_t j, auto L) {
              const auto x = L.load(u + j), zero = L.splat(0);
              L.store(u + j, L.where(x > zero, x, zero));
            });
          } else {
            tanh_(u, H);
          }
          convert_row<acc>(u, ho + b * H, H);
        }
      });
    });
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_new, mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_new);
    }
    h = h_new;
  }
  return {output, h.clone(), h_all};
}

// Returns d_x_gates (T, B, H) (= dL/d pre-activation), dh0, d_w_hh.
std::vector<Tensor> rnn_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& h_all, const Tensor& h0,
    const Tensor& w_hh, bool relu, const c10::optional<Tensor>& mask) {
  const int64_t T = h_all.size(0), B = h_all.size(1), H = h0.size(1);
  auto dpre_all = at::empty({T, B, H}, h_all.options());
  Tensor dh = d_h_n.contiguous().clone();
  auto dh_t = at::empty({B, H}, h_all.options());
  const StepOperand w_hh_op = step_operand(w_hh, B);
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    const Tensor h_t = h_all[t];
    Tensor dpre = dpre_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, h_all.scalar_type(), "rnn_backward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* hp = h_t.data_ptr<scalar_t>();
      const scalar_t* dp = dh_t.data_ptr<scalar_t>();
      scalar_t* op = dpre.data_ptr<scalar_t>();
      for_rows(B, 4 * H, [&](int64_t b) {
        const int64_t row = b * H;
        if (keep != nullptr && !keep[b]) {
          std::fill(op + row, op + row + H, scalar_t(0));
        } else if (relu) {  // h > 0 where the unit was on
          for_lanes<acc>(H, [&](int64_t j, auto L) {
            const auto zero = L.splat(0);
            L.store(op + row + j, L.where(L.load(hp + row + j) > zero, L.load(dp + row + j), zero));
          });
        } else {
          for_lanes<acc>(H, [&](int64_t j, auto L) {
            const auto h = L.load(hp + row + j);
            L.store(op + row + j, L.load(dp + row + j) * (L.splat(1) - h * h));
          });
        }
      });
    });
    Tensor dh_prev = at::empty_like(dh);
    dh_prev = product_result(dh_prev, Tensor(), dpre, w_hh, w_hh_op);  // not copied
    if (mask.has_value()) {
      dh_prev = at::where(mask->select(0, t).unsqueeze(1), dh_prev, dh);
    }
    dh = dh_prev;
  }
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_hh = at::mm(dpre_all.view({T * B, H}).t(), h_prev_all.reshape({T * B, H}));
  return {dpre_all, dh, d_w_hh};
}

// Where a step's product with `m_view` (as add_product takes it) at this batch runs:
// "vec_mat", "onednn" (packed weights) or "aten", by the rule step_operand applies; for tests.
std::string product_path(const Tensor& m_view, int64_t batch) {
  const StepOperand op = step_operand(m_view, batch);
  return op.small.defined() ? "vec_mat" : op.packed.defined() ? "onednn" : "aten";
}

// base + in @ m_view through the path named ("vec_mat", "onednn" or "aten") whatever the
// rule would choose, `repeat` times on an operand prepared once, as a time loop of that
// many steps prepares it; for tests and benchmarks/small_batch_products.py. `base` may be
// undefined.
Tensor product_via(const c10::optional<Tensor>& base, const Tensor& in, const Tensor& m_view,
                   const std::string& path, int64_t repeat) {
  TORCH_CHECK(in.dim() == 2 && m_view.dim() == 2 && in.size(1) == m_view.size(0),
              "product_via: in (B, K) and m_view (K, N) expected, got ", in.sizes(), " and ",
              m_view.sizes());
  TORCH_CHECK(repeat >= 1, "product_via: repeat must be at least 1, got ", repeat);
  const int64_t B = in.size(0);
  StepOperand op;
  if (path == "vec_mat") {
    op.small = in_accumulation_type(m_view);
  } else if (path == "onednn") {
    TORCH_CHECK(at::hasMKLDNN(), "product_via: this torch has no oneDNN");
    op.packed = packed_operand(m_view, B);
  } else {
    TORCH_CHECK(path == "aten", "product_via: path must be vec_mat, onednn or aten, got ", path);
  }
  Tensor out = at::empty({B, m_view.size(1)}, in.options());
  const Tensor start = base.has_value() ? base->contiguous() : Tensor();
  const Tensor rows = in.contiguous();
  for (int64_t r = 0; r < repeat; ++r) add_product(out, start, rows, m_view, op);
  return out;
}

// The kernels' tanh over a copy of x (float32 or float64), for tests of its accuracy.
Tensor kernel_tanh(const Tensor& x) {
  Tensor y = x.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "kernel_tanh", [&] {
    tanh_(y.data_ptr<scalar_t>(), y.numel());
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_fused, m) {
  m.def(
      "lstm_forward(Tensor x_gates, Tensor h0, Tensor c0, Tensor? gates0, Tensor w_hh, "
      "Tensor? p_i, Tensor? p_f, Tensor? p_o, Tensor? w_hr, Tensor? norm_gain, "
      "Tensor? norm_shift, Tensor? cell_gain, Tensor? cell_shift, Tensor? w_gg, Tensor? mask, "
      "int variant, float eps, bool keep_steps) -> Tensor[]",
      &lstm_forward);
  m.def(
      "lstm_backward(Tensor d_output, Tensor d_h_n, Tensor d_c_n, Tensor? d_gates_n, "
      "Tensor acts, Tensor c_all, Tensor h_all, Tensor m_all, Tensor norm_xhat, "
      "Tensor norm_rstd, Tensor cell_xhat, Tensor cell_rstd, Tensor gates_all, Tensor h0, "
      "Tensor c0, Tensor? gates0, Tensor w_hh, Tensor? p_i, Tensor? p_f, Tensor? p_o, "
      "Tensor? w_hr, Tensor? norm_gain, Tensor? cell_gain, Tensor? cell_shift, Tensor? w_gg, "
      "Tensor? mask, int variant) -> Tensor[]",
      &lstm_backward);
  m.def(
      "gru_forward(Tensor x_gates, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? mask) "
      "-> Tensor[]",
      &gru_forward);
  m.def(
      "gru_backward(Tensor d_output, Tensor d_h_n, Tensor acts, Tensor hn_all, Tensor h_all, "
      "Tensor h0, Tensor w_hh, Tensor? mask) -> Tensor[]",
      &gru_backward);
  m.def(
      "reset_first_forward(Tensor x_gates, Tensor h0, Tensor w_hh, bool tied, Tensor? mask) "
      "-> Tensor[]",
      &reset_first_forward);
  m.def(
      "reset_first_backward(Tensor d_output, Tensor d_h_n, Tensor acts, Tensor rh_all, "
      "Tensor h_all, Tensor h0, Tensor w_hh, bool tied, Tensor? mask) -> Tensor[]",
      &reset_first_backward);
  m.def(
      "rnn_forward(Tensor x_gates, Tensor h0, Tensor w_hh, bool relu, Tensor? mask) "
      "-> Tensor[]",
      &rnn_forward);
  m.def(
      "rnn_backward(Tensor d_output, Tensor d_h_n, Tensor h_all, Tensor h0, Tensor w_hh, "
      "bool relu, Tensor? mask) -> Tensor[]",
      &rnn_backward);
  m.def("product_path(Tensor m_view, int batch) -> str", &product_path);
  m.def("product_via(Tensor? base, Tensor input, Tensor m_view, str path, int repeat=1) -> Tensor",
        &product_via);
  m.def("kernel_tanh(Tensor x) -> Tensor", &kernel_tanh);
}
