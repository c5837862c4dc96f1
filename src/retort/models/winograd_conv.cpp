#include "retort/models/winograd_conv.h"


#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include <ATen/record_function.h>

#include "retort/core/runtime.h"

#ifdef RETORT_WITH_DNNL
#include <dnnl.hpp>
#endif

namespace retort {

#ifdef RETORT_WITH_DNNL
namespace {
using dnnl::memory;
using tag = memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// The three primitives of one shape; created once (oneDNN compiles its kernels then).
struct Plan {
  memory::desc src, wei, dst, bias;  // LibTorch's layouts: NCHW, OIHW, NCHW, [K]
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  bool winograd_weight_grad;  // else LibTorch's direct kernel computes the weights' gradient
};

using ConvShape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool>;  // N, C, K, H, W, bias

// The plan of a shape, or null where the Winograd kernels do not pay or oneDNN has none (then
// LibTorch runs it). Measured here (bench-step --workload conv3x3, README "Speed"): Winograd wins the forward and the input's
// gradient with 16 or more channels on both sides (3 -> 32 channels: 7x slower), and the weights'
// gradient at 16 px and below (at 32 px: 1.1-1.3x slower than the direct kernel).
const Plan* plan_for(const ConvShape& s) {
  static std::mutex mutex;
  static std::map<ConvShape, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = plans.find(s); it != plans.end()) return it->second.get();
  const auto [N, C, K, H, W, has_bias] = s;
  std::unique_ptr<Plan> p;
  if (C < 16 || K < 16) return (plans[s] = nullptr).get();
  try {
    const auto f32 = memory::data_type::f32;
    const memory::dims src{N, C, H, W}, wei{K, C, 3, 3}, dst{N, K, H, W}, one{1, 1};
    const memory::desc any_src(src, f32, tag::any), any_wei(wei, f32, tag::any), any_dst(dst, f32, tag::any),
        bias({K}, f32, tag::x), no_bias;
    const auto alg = dnnl::algorithm::convolution_winograd;
    dnnl::convolution_forward::primitive_desc fwd(
        {dnnl::prop_kind::forward_training, alg, any_src, any_wei, has_bias ? bias : no_bias, any_dst, one, one, one},
        cpu_engine());
    dnnl::convolution_backward_data::primitive_desc bwd_data({alg, any_src, any_wei, any_dst, one, one, one},
                                                             cpu_engine(), fwd);
    dnnl::convolution_backward_weights::primitive_desc bwd_weights(
        {alg, any_src, any_wei, has_bias ? bias : no_bias, any_dst, one, one, one}, cpu_engine(), fwd);
    p.reset(new Plan{memory::desc(src, f32, tag::nchw), memory::desc(wei, f32, tag::oihw),
                     memory::desc(dst, f32, tag::nchw), bias, fwd, bwd_data, bwd_weights,
                     dnnl::convolution_forward(fwd), dnnl::convolution_backward_data(bwd_data),
                     dnnl::convolution_backward_weights(bwd_weights), H <= 16});
  } catch (const dnnl::error&) {
    p = nullptr;  // no Winograd kernel for this shape on this CPU
  }
  return (plans[s] = std::move(p)).get();
}

// A oneDNN view of a contiguous LibTorch tensor.
memory view(const memory::desc& d, const torch::Tensor& t) { return memory(d, cpu_engine(), t.data_ptr()); }

// `m` in layout `want`: itself when it already is, else a reordered copy in a LibTorch buffer
// (kept alive in `keep` until the stream is done).
memory in_layout(memory m, const memory::desc& want, dnnl::stream& s, std::vector<torch::Tensor>& keep) {
  if (m.get_desc() == want) return m;
  keep.push_back(torch::empty({int64_t(want.get_size() / sizeof(float))}, torch::kFloat32));
  memory out(want, cpu_engine(), keep.back().data_ptr());
  dnnl::reorder(m, out).execute(s, m, out);
  return out;
}

// Runs `prim` writing into `user` (LibTorch's layout) through a buffer in `layout` when they differ.
template <class Run>
void into(memory user, const memory::desc& layout, dnnl::stream& s, std::vector<torch::Tensor>& keep, Run&& run) {
  if (user.get_desc() == layout) return run(user);
  keep.push_back(torch::empty({int64_t(layout.get_size() / sizeof(float))}, torch::kFloat32));
  memory out(layout, cpu_engine(), keep.back().data_ptr());
  run(out);
  dnnl::reorder(out, user).execute(s, out, user);
}

torch::Tensor winograd_forward(const Plan& p, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  RECORD_FUNCTION("retort::winograd_conv", std::vector<c10::IValue>({x, w}));  // bench-step --profile counts its FLOPs
  dnnl::stream s(cpu_engine());
  std::vector<torch::Tensor> keep;
  auto out = torch::empty({x.size(0), w.size(0), x.size(2), x.size(3)}, x.options());
  auto src = in_layout(view(p.src, x), p.fwd_pd.src_desc(), s, keep);
  auto wei = in_layout(view(p.wei, w), p.fwd_pd.weights_desc(), s, keep);
  into(view(p.dst, out), p.fwd_pd.dst_desc(), s, keep, [&](const memory& dst) {
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
    if (b.defined()) args[DNNL_ARG_BIAS] = view(p.bias, b);
    p.fwd.execute(s, args);
  });
  s.wait();
  return out;
}

struct WinogradConv : torch::autograd::Function<WinogradConv> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, const Plan* plan) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["plan"] = reinterpret_cast<int64_t>(plan);
    ctx->saved_data["bias"] = b.numel() > 0;
    return winograd_forward(*plan, x, w, b.numel() > 0 ? b : torch::Tensor());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    const Plan& p = *reinterpret_cast<const Plan*>(ctx->saved_data["plan"].toInt());
    const auto g = grads[0].contiguous();
    // The inputs of aten::convolution_backward, whose FLOP rule bench-step --profile applies.
    RECORD_FUNCTION("retort::winograd_conv_backward", std::vector<c10::IValue>({g, x, w}));
    dnnl::stream s(cpu_engine());
    std::vector<torch::Tensor> keep;
    const auto g_user = view(p.dst, g);
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty_like(x);
      auto diff_dst = in_layout(g_user, p.bwd_data_pd.diff_dst_desc(), s, keep);
      auto wei = in_layout(view(p.wei, w), p.bwd_data_pd.weights_desc(), s, keep);
      into(view(p.src, dx), p.bwd_data_pd.diff_src_desc(), s, keep, [&](const memory& diff_src) {
        p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diff_src}});
      });
    }
    const bool bias = ctx->saved_data["bias"].toBool();
    const bool weights = ctx->needs_input_grad(1) || (bias && ctx->needs_input_grad(2));
    if (weights && !p.winograd_weight_grad) {
      s.wait();
      const int64_t k = w.size(0);
      auto grads = at::convolution_backward(g, x, w, bias ? c10::optional<at::IntArrayRef>(at::IntArrayRef(&k, 1)) : c10::nullopt,
                                            {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1, {false, true, bias});
      dw = std::get<1>(grads);
      db = std::get<2>(grads);
    } else if (weights) {
      dw = torch::empty_like(w);
      if (bias) db = torch::empty({w.size(0)}, w.options());
      auto src = in_layout(view(p.src, x), p.bwd_weights_pd.src_desc(), s, keep);
      auto diff_dst = in_layout(g_user, p.bwd_weights_pd.diff_dst_desc(), s, keep);
      into(view(p.wei, dw), p.bwd_weights_pd.diff_weights_desc(), s, keep, [&](const memory& diff_wei) {
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_wei}};
        if (bias) args[DNNL_ARG_DIFF_BIAS] = view(p.bias, db);
        p.bwd_weights.execute(s, args);
      });
    }
    s.wait();
    return {dx, ctx->needs_input_grad(1) ? dw : torch::Tensor(), bias && ctx->needs_input_grad(2) ? db : torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace
#endif

torch::Tensor conv3x3(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
#ifdef RETORT_WITH_DNNL
  const auto& o = conv.options;
  // LibTorch 1.13 keeps the padding in a c10::variant, 2.x in a std::variant: ADL finds either's get_if.
  using std::get_if;
  const auto* pad = get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool shape_fits = (*o.kernel_size())[0] == 3 && (*o.kernel_size())[1] == 3 && (*o.stride())[0] == 1 &&
                          (*o.stride())[1] == 1 && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1 &&
                          o.groups() == 1 && pad && (**pad)[0] == 1 && (**pad)[1] == 1 &&
                          get_if<torch::enumtype::kZeros>(&o.padding_mode());
  if (cpu_conv_algorithm() == "winograd" && shape_fits && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
      conv.weight.scalar_type() == torch::kFloat32 && x.dim() == 4 && x.numel() > 0 && !x.is_mkldnn()) {
    const bool bias = conv.bias.defined();
    if (const Plan* plan = plan_for({x.size(0), x.size(1), conv.weight.size(0), x.size(2), x.size(3), bias})) {
      const auto xc = x.contiguous(), wc = conv.weight.contiguous();
      const auto bc = bias ? conv.bias.contiguous() : torch::Tensor();
      const bool graph = torch::GradMode::is_enabled() &&
                         (xc.requires_grad() || wc.requires_grad() || (bias && bc.requires_grad()));
      if (!graph) return winograd_forward(*plan, xc, wc, bc);
      // LibTorch 1.13's Function::apply takes no undefined tensors: an empty one stands for no bias.
      return WinogradConv::apply(xc, wc, bias ? bc : torch::empty({0}), plan);
    }
  }
#endif
  return conv.forward(x);
}

}  // namespace retort
