#include "retort/models/small_attention.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "retort/core/error.h"
#include "retort/core/runtime.h"

namespace retort {
namespace {

template <class T>
inline T dot(const T* a, const T* b, int64_t d) {
  T s = 0;
  for (int64_t c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

template <class T>
inline void axpy(T alpha, const T* x, T* y, int64_t d) {
  for (int64_t c = 0; c < d; ++c) y[c] += alpha * x[c];
}

// Sequences per task: enough arithmetic (K^2 d each) to pay for a task.
int64_t grain(int64_t K, int64_t d) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, K * K * d)); }

// out [N,K,d] and the attention weights p [N,K,K].
void forward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, torch::Tensor& out,
                    torch::Tensor& p) {
  const int64_t N = q.size(0), K = q.size(1), d = q.size(2);
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "small_attention", [&] {
    const scalar_t scale = scalar_t(1.0 / std::sqrt(double(d)));
    const scalar_t *Q = q.data_ptr<scalar_t>(), *Kp = k.data_ptr<scalar_t>(), *V = v.data_ptr<scalar_t>();
    scalar_t *O = out.data_ptr<scalar_t>(), *P = p.data_ptr<scalar_t>();
    at::parallel_for(0, N, grain(K, d), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const scalar_t *qn = Q + n * K * d, *kn = Kp + n * K * d, *vn = V + n * K * d;
        scalar_t *on = O + n * K * d, *pn = P + n * K * K;
        for (int64_t i = 0; i < K; ++i) {
          scalar_t* row = pn + i * K;
          scalar_t mx = -std::numeric_limits<scalar_t>::infinity();
          for (int64_t j = 0; j < K; ++j) {
            row[j] = dot(qn + i * d, kn + j * d, d) * scale;
            mx = std::max(mx, row[j]);
          }
          scalar_t sum = 0;
          for (int64_t j = 0; j < K; ++j) sum += (row[j] = std::exp(row[j] - mx));
          const scalar_t inv = scalar_t(1) / sum;
          scalar_t* oi = on + i * d;
          std::fill(oi, oi + d, scalar_t(0));
          for (int64_t j = 0; j < K; ++j) axpy(row[j] *= inv, vn + j * d, oi, d);
        }
      }
    });
  });
}

// dq, dk, dv [N,K,d] from the upstream gradient g [N,K,d] and the saved weights p.
void backward_kernel(const torch::Tensor& g, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& p, torch::Tensor& dq, torch::Tensor& dk, torch::Tensor& dv) {
  const int64_t N = q.size(0), K = q.size(1), d = q.size(2);
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "small_attention_backward", [&] {
    const scalar_t scale = scalar_t(1.0 / std::sqrt(double(d)));
    const scalar_t *G = g.data_ptr<scalar_t>(), *Q = q.data_ptr<scalar_t>(), *Kp = k.data_ptr<scalar_t>(),
                   *V = v.data_ptr<scalar_t>(), *P = p.data_ptr<scalar_t>();
    scalar_t *DQ = dq.data_ptr<scalar_t>(), *DK = dk.data_ptr<scalar_t>(), *DV = dv.data_ptr<scalar_t>();
    at::parallel_for(0, N, grain(K, d), [&](int64_t n0, int64_t n1) {
      std::vector<scalar_t> ds(K * K);
      for (int64_t n = n0; n < n1; ++n) {
        const int64_t o = n * K * d;
        const scalar_t *gn = G + o, *qn = Q + o, *kn = Kp + o, *vn = V + o, *pn = P + n * K * K;
        scalar_t *dqn = DQ + o, *dkn = DK + o, *dvn = DV + o;
        std::fill(dqn, dqn + K * d, scalar_t(0));
        std::fill(dkn, dkn + K * d, scalar_t(0));
        std::fill(dvn, dvn + K * d, scalar_t(0));
        for (int64_t i = 0; i < K; ++i) {
          // dP[i,j] = g_i . v_j; dS = P (dP - sum_j P dP) (the softmax's Jacobian), times the scale.
          const scalar_t* pi = pn + i * K;
          scalar_t* dsi = ds.data() + i * K;
          scalar_t rowdot = 0;
          for (int64_t j = 0; j < K; ++j) {
            dsi[j] = dot(gn + i * d, vn + j * d, d);
            rowdot += pi[j] * dsi[j];
            axpy(pi[j], gn + i * d, dvn + j * d, d);  // dV_j += P[i,j] g_i
          }
          for (int64_t j = 0; j < K; ++j) dsi[j] = pi[j] * (dsi[j] - rowdot) * scale;
        }
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < K; ++j) {
            const scalar_t s = ds[i * K + j];
            axpy(s, kn + j * d, dqn + i * d, d);  // dQ_i += dS[i,j] k_j
            axpy(s, qn + i * d, dkn + j * d, d);  // dK_j += dS[i,j] q_i
          }
      }
    });
  });
}

struct SmallAttention : torch::autograd::Function<SmallAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
    RECORD_FUNCTION("retort::small_attention", std::vector<c10::IValue>({q, k}));  // bench-step --profile
    auto out = torch::empty_like(q);
    auto p = torch::empty({q.size(0), q.size(1), q.size(1)}, q.options());
    forward_kernel(q, k, v, out, p);
    ctx->save_for_backward({q, k, v, p});
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &p = saved[3];
    auto g = grads[0].contiguous();
    if (torch::GradMode::is_enabled()) {
      // A backward that is itself differentiated (create_graph): through the reference's ops.
      auto out = small_attention_reference(q, k, v);
      auto d = torch::autograd::grad({out}, {q, k, v}, {g}, /*retain_graph=*/true, /*create_graph=*/true);
      return {d[0], d[1], d[2]};
    }
    RECORD_FUNCTION("retort::small_attention_backward", std::vector<c10::IValue>({q, k}));
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    backward_kernel(g, q, k, v, p, dq, dk, dv);
    return {dq, dk, dv};
  }
};

}  // namespace

torch::Tensor small_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return torch::bmm(torch::softmax(torch::bmm(q, k.transpose(1, 2)) / std::sqrt(double(q.size(2))), -1), v);
}

torch::Tensor small_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (q.dim() != 3 || !q.sizes().equals(k.sizes()) || !q.sizes().equals(v.sizes()))
    throw Error("small_attention: q, k and v must be [N, K, d] of one shape");
  const bool kernel = cpu_attention_path() == "fused" && q.device().is_cpu() && (q.scalar_type() == torch::kFloat32 || q.scalar_type() == torch::kFloat64) &&
                      k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type();
  if (!kernel) return small_attention_reference(q, k, v);
  return SmallAttention::apply(q.contiguous(), k.contiguous(), v.contiguous());
}

}  // namespace retort
