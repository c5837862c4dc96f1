#include "retort/bench/op_profile.h"

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <string_view>
#include <unordered_map>

#include "retort/bench/range_log.h"
#include "retort/core/error.h"

namespace retort {

// Named, not anonymous: the unity build compiles this file together with others.
namespace op_profile_impl {

const std::string kEngineWrapper = "autograd::engine::evaluate_function: ";

bool is_autograd_node(const std::string& name) {
  if (name.starts_with(kEngineWrapper) || name.find("autograd::") != std::string::npos || name == "CopySlices")
    return true;
  // XBackward0, XBackward1, ...: the node classes the autograd codegen names.
  const auto end = name.find_last_not_of("0123456789");
  return end != std::string::npos && std::string_view(name).substr(0, end + 1).ends_with("Backward");
}

// "aten::native_group_norm_backward" -> "nativegroupnorm": the op without namespace, backward suffix,
// underscores or case, so a forward op and its backward kernel share one key.
std::string base_key(std::string name) {
  if (auto p = name.rfind("::"); p != std::string::npos) name = name.substr(p + 2);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* suffix : {"_backward_data", "_backward_input", "_backward_weight", "_backward"})
    if (name.ends_with(suffix)) {
      name.resize(name.size() - std::string(suffix).size());
      break;
    }
  std::erase(name, '_');
  return name;
}

const std::set<std::string> kGemm = {"mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear",
                                     "mkldnnlinear", "mv", "addmv", "dot", "einsum"};
const std::set<std::string> kCopyAlloc = {
    "empty", "emptylike", "emptystrided", "newempty", "newemptystrided", "zeros", "zeroslike", "newzeros", "ones",
    "oneslike", "full", "fulllike", "newfull", "fill", "zero", "copy", "clone", "cat", "stack", "contiguous", "to",
    "tocopy", "resize", "asstrided", "view", "viewas", "reshape", "reshapealias", "unsafeview", "permute",
    "transpose", "t", "numpyt", "expand", "expandas", "slice", "select", "narrow", "unsqueeze", "squeeze", "flatten",
    "unflatten", "detach", "alias", "split", "splitwithsizes", "chunk", "unbind", "repeat", "pad", "constantpadnd",
    "resolveconj", "resolveneg"};
const std::set<std::string> kElementwise = {
    "add", "sub", "rsub", "mul", "div", "pow", "neg", "abs", "sign", "reciprocal", "square", "sqrt", "rsqrt", "exp",
    "log", "sin", "cos", "tanh", "sigmoid", "silu", "relu", "gelu", "threshold", "erf", "addcmul", "addcdiv", "lerp",
    "clamp", "clampmin", "clampmax", "maximum", "minimum", "where", "maskedfill", "sum", "mean",
    "norm", "linalgvectornorm", "max", "min", "amax", "amin", "prod", "mseloss", "eq", "ne", "lt", "le", "gt",
    "ge", "isfinite", "isnan", "logicaland", "logicalor", "bitwiseand", "bitwiseor", "floor", "ceil", "round",
    "trunc", "frac", "fmod", "remainder"};

double percentile_50(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double elapsed_ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// One open range on a thread's stack while its events are replayed.
struct OpenRange {
  std::string name;
  at::RecordFunctionHandle handle;
  double start_us = 0, child_us = 0;
  bool in_backward = false, in_optimizer = false;
};

// aten::convolution_backward(grad_output, input, weight, ...): the profiler gives it no FLOPs.
// Each of the input's and the weight's gradient is one product the size of the forward's
// (2 x N x Cout x Hout x Wout x Cin/groups x kh x kw); both are counted, as the output mask (which
// leaves the input's out for a first layer) is not among the recorded shapes.
double conv_backward_flops(const std::vector<std::vector<int64_t>>& shapes) {
  if (shapes.size() < 3 || shapes[2].size() < 3) return 0;
  double grad_out = 1, per_output = 1;
  for (auto v : shapes[0]) grad_out *= double(v);
  for (size_t i = 1; i < shapes[2].size(); ++i) per_output *= double(shapes[2][i]);  // Cin/groups x kernel
  return 2 * (2 * grad_out * per_output);
}

// retort::winograd_conv(input, weight) (models/winograd_conv.h): the direct convolution's FLOPs,
// 2 x N x Cout x H x W x Cin x 3 x 3 (stride 1, padding 1), so its rate compares with LibTorch's.
double winograd_conv_flops(const std::vector<std::vector<int64_t>>& shapes) {
  const auto &x = shapes[0], &w = shapes[1];
  if (x.size() != 4 || w.size() != 4) return 0;
  return 2.0 * double(x[0]) * double(x[2]) * double(x[3]) * double(w[0]) * double(w[1]) * double(w[2]) * double(w[3]);
}

// retort::small_attention(q, k) and its backward (models/small_attention.h): the forward's two
// matrix products per sequence, 4 N K^2 d, and the backward's four, 8 N K^2 d; counted as GEMM,
// as the bmm calls the kernel replaces were.
double small_attention_flops(const std::vector<std::vector<int64_t>>& shapes, bool backward) {
  const auto& q = shapes[0];
  if (q.size() != 3) return 0;
  return (backward ? 8.0 : 4.0) * double(q[0]) * double(q[1]) * double(q[1]) * double(q[2]);
}

// retort's own ops, to which the profiler gives no FLOPs: their rule, and the kind they count as.
struct OwnOp {
  std::string_view name, kind;
  double (*flops)(const std::vector<std::vector<int64_t>>&);
};
const OwnOp kOwnOps[] = {
    {"retort::winograd_conv", "convolution", winograd_conv_flops},
    {"retort::winograd_conv_backward", "convolution", conv_backward_flops},
    {"retort::small_attention", "gemm", [](const auto& shapes) { return small_attention_flops(shapes, false); }},
    {"retort::small_attention_backward", "gemm", [](const auto& shapes) { return small_attention_flops(shapes, true); }},
};

const OwnOp* own_op(const std::string& name) {
  for (const auto& op : kOwnOps)
    if (op.name == name) return &op;
  return nullptr;
}

using torch::autograd::profiler::EventKind;

// A RangeLog event as summarise reads the legacy profiler's: no shapes, no FLOPs.
struct LoggedEvent {
  const RangeEvent* e;
  const std::string* name_;
  int64_t base_ns;
  EventKind kind() const { return e->push ? EventKind::PushRange : EventKind::PopRange; }
  const std::string& name() const { return *name_; }
  at::RecordFunctionHandle handle() const { return e->handle; }
  double cpuUs() const { return double(e->ns - base_ns) / 1000.0; }
  int64_t flops() const { return 0; }
  const std::vector<std::vector<int64_t>>& shapes() const {
    static const std::vector<std::vector<int64_t>> none;
    return none;
  }
};

std::vector<std::vector<LoggedEvent>> logged_events(const std::vector<std::vector<RangeEvent>>& per_thread,
                                                    const std::vector<std::string>& names) {
  int64_t base = std::numeric_limits<int64_t>::max();
  for (const auto& list : per_thread)
    if (!list.empty()) base = std::min(base, list.front().ns);
  std::vector<std::vector<LoggedEvent>> out;
  for (const auto& list : per_thread) {
    auto& o = out.emplace_back();
    o.reserve(list.size());
    for (const auto& e : list) o.push_back({&e, &names[e.name], base});
  }
  return out;
}

// Each thread's ranges replayed in order: self time per op (less its child ops'), the top-level
// time, and FLOPs where the events carry shapes. `Lists` is the legacy profiler's thread event
// lists or logged_events'.
template <class Lists>
OpProfile summarise(Lists& lists, int64_t rounds, double wall_ms) {
  OpProfile p;
  p.rounds = rounds;
  p.wall_ms = wall_ms / double(rounds);
  std::unordered_map<std::string, OpStat> stats;
  double top_level_us = 0;
  for (auto& list : lists) {
    std::vector<OpenRange> stack;
    for (auto& e : list) {
      if (e.kind() == EventKind::PushRange) {
        OpenRange r{e.name(), e.handle(), e.cpuUs()};
        const bool parent_backward = !stack.empty() && stack.back().in_backward;
        const bool parent_optimizer = !stack.empty() && stack.back().in_optimizer;
        r.in_backward = parent_backward || r.name.starts_with(kEngineWrapper);
        r.in_optimizer = parent_optimizer || r.name == kOptimizerScope;
        p.has_backward = p.has_backward || r.name.starts_with(kEngineWrapper);
        if (e.flops() > 0)
          p.flop_events.push_back({r.name, e.shapes(), double(e.flops()), r.in_backward, r.in_optimizer});
        else if (const OwnOp* op = own_op(r.name); op && e.shapes().size() >= 2)
          p.flop_events.push_back({r.name, e.shapes(), op->flops(e.shapes()), r.in_backward, r.in_optimizer});
        else if (r.name == "aten::convolution_backward" && !e.shapes().empty() &&
                 // not the weight gradient the Winograd backward takes from LibTorch: counted in it
                 std::none_of(stack.begin(), stack.end(),
                              [](const OpenRange& o) { return o.name == "retort::winograd_conv_backward"; }))
          p.flop_events.push_back({r.name, e.shapes(), conv_backward_flops(e.shapes()), r.in_backward, r.in_optimizer});
        stack.push_back(std::move(r));
      } else if (e.kind() == EventKind::PopRange) {
        // The pop names its push by handle; on one thread ranges nest, so it is normally the top.
        auto it = std::find_if(stack.rbegin(), stack.rend(),
                               [&](const OpenRange& r) { return r.handle == e.handle(); });
        if (it == stack.rend()) continue;  // a range begun before the profiler was: not ours to count
        const OpenRange r = *it;
        stack.erase(std::prev(it.base()), stack.end());
        const double dur = e.cpuUs() - r.start_us;
        // Keyed by category too: aten::mul_ inside the optimizer scope and outside it are two rows.
        const auto category = r.in_optimizer ? "optimizer" : op_category(r.name);
        auto& s = stats[category + "|" + r.name];
        s.name = r.name;
        s.category = category;
        ++s.calls;
        ++p.op_calls;
        s.self_ms += (dur - r.child_us) / 1000.0;
        if (stack.empty())
          top_level_us += dur;
        else
          stack.back().child_us += dur;
      }
    }
  }
  for (const auto& c : op_categories()) p.category_ms[c] = 0;
  for (auto& [name, s] : stats) p.ops.push_back(s);
  std::sort(p.ops.begin(), p.ops.end(), [](const OpStat& a, const OpStat& b) { return a.self_ms > b.self_ms; });
  for (const auto& s : p.ops) p.category_ms[s.category] += s.self_ms / double(rounds);
  p.top_level_ms = top_level_us / 1000.0 / double(rounds);
  for (const char* kind : {"convolution", "gemm", "elementwise"}) p.forward_flops_by_kind[kind] = 0;
  for (const char* kind : {"convolution", "gemm"}) p.backward_flops_by_kind[kind] = 0;
  for (const auto& f : p.flop_events) {
    if (f.in_optimizer) continue;
    const OwnOp* op = own_op(f.name);
    const auto c = op ? std::string(op->kind) : op_category(f.name);
    if (!f.in_backward)
      p.forward_flops_by_kind[c == "convolution" || c == "gemm" ? c : "elementwise"] += f.flops / double(rounds);
    else if (c == "convolution" || c == "gemm")
      p.backward_flops_by_kind[c] += f.flops / double(rounds);
  }
  return p;
}

}  // namespace op_profile_impl

const std::vector<std::string>& op_categories() {
  static const std::vector<std::string> c = {"convolution", "gemm",      "attention", "normalisation", "elementwise",
                                             "copy/alloc",  "hash grid", "optimizer", "autograd",      "other"};
  return c;
}

std::string op_category(const std::string& op_name) {
  using namespace op_profile_impl;
  if (op_name == kOptimizerScope) return "optimizer";
  // retort's own CPU kernel (field/hash_grid.cpp): its forward scope and its backward node.
  if (op_name.find("hash_encode") != std::string::npos || op_name.find("HashEncode") != std::string::npos)
    return "hash grid";
  if (op_name.find("winograd_conv") != std::string::npos) return "convolution";  // models/winograd_conv.h
  if (is_autograd_node(op_name)) return "autograd";
  const auto key = base_key(op_name);
  if (key.find("conv") != std::string::npos) return "convolution";
  if (key.find("softmax") != std::string::npos || key.find("attention") != std::string::npos) return "attention";
  if (kGemm.contains(key)) return "gemm";
  for (const char* norm : {"groupnorm", "layernorm", "batchnorm", "instancenorm", "rmsnorm"})
    if (key.find(norm) != std::string::npos) return "normalisation";
  if (kCopyAlloc.contains(key)) return "copy/alloc";
  if (kElementwise.contains(key)) return "elementwise";
  return "other";
}

double OpProfile::forward_flops() const {
  double s = 0;
  for (const auto& [kind, f] : forward_flops_by_kind) s += f;
  return s;
}

double OpProfile::backward_flops() const {
  double s = 0;
  for (const auto& [kind, f] : backward_flops_by_kind) s += f;
  return s;
}

double OpProfile::flops_per_step() const { return forward_flops() + backward_flops(); }

double OpProfile::flops_of(const std::string& kind) const {
  double s = 0;
  for (const auto* m : {&forward_flops_by_kind, &backward_flops_by_kind})
    if (auto it = m->find(kind); it != m->end()) s += it->second;
  return s;
}

std::string OpProfile::flops_rule() const {
  return "the profiler's FLOPs of aten::conv2d and mm/addmm/bmm/baddbmm (2 per multiply-add) and aten::mul/add (1 per "
         "element), outside the optimizer scope; in backward nodes the products (mm, bmm, ...) as counted and each "
         "aten::convolution_backward as two products of its forward's size (input and weight gradients)";
}

void OpRecorder::begin(bool shapes_and_flops) {
  namespace prof = torch::autograd::profiler;
  if (running_) throw Error("op profile: begin() while a recording runs");
  // Timed rounds go to a RangeLog (names and times, nothing allocated per op: range_log.h says why
  // the legacy profiler distorts them). The legacy profiler, which records input shapes and counts
  // FLOPs, runs only the untimed round that counts them.
  if (shapes_and_flops)
    prof::enableProfilerLegacy(prof::ProfilerConfig(prof::ProfilerState::CPU, /*report_input_shapes=*/true,
                                                    /*profile_memory=*/false, /*with_stack=*/false,
                                                    /*with_flops=*/true));
  else
    log_ = std::make_unique<RangeLog>();
  running_ = true;
  t0_ = std::chrono::steady_clock::now();
}

OpProfile OpRecorder::end(int64_t steps) {
  if (!running_) throw Error("op profile: end() without begin()");
  const double wall_ms = op_profile_impl::elapsed_ms(t0_);
  running_ = false;
  if (log_) {
    auto log = std::move(log_);
    const auto per_thread = log->stop();
    auto events = op_profile_impl::logged_events(per_thread, log->names());
    return op_profile_impl::summarise(events, steps, wall_ms);
  }
  auto lists = torch::autograd::profiler::disableProfilerLegacy();
  return op_profile_impl::summarise(lists, steps, wall_ms);
}

OpRecorder::OpRecorder() = default;

OpRecorder::~OpRecorder() {
  if (running_ && !log_) torch::autograd::profiler::disableProfilerLegacy();  // a step threw mid-recording
}

OpProfile with_flop_round(OpProfile timed, const OpProfile& counted) {
  timed.flop_events = counted.flop_events;
  timed.forward_flops_by_kind = counted.forward_flops_by_kind;
  timed.backward_flops_by_kind = counted.backward_flops_by_kind;
  return timed;
}

OpProfile profile_ops(const std::function<void()>& step, int64_t rounds) {
  if (rounds < 1) throw ConfigError(fmt::format("op profile: rounds must be at least 1, got {}", rounds));
  OpRecorder recorder;
  recorder.begin(false);
  for (int64_t i = 0; i < rounds; ++i) step();
  const OpProfile timed = recorder.end(rounds);
  recorder.begin(true);
  step();
  return with_flop_round(timed, recorder.end(1));
}

nlohmann::json op_profile_json(const OpProfile& p, int64_t top) {
  const double wall = p.wall_ms;
  auto share = [&](double ms) { return wall > 0 ? ms / wall : 0.0; };
  nlohmann::json categories = nlohmann::json::object();
  for (const auto& c : op_categories())
    categories[c] = {{"ms", p.category_ms.at(c)}, {"share", share(p.category_ms.at(c))}};
  categories["outside ops"] = {{"ms", p.outside_ms()}, {"share", share(p.outside_ms())}};
  nlohmann::json tops = nlohmann::json::array();
  for (size_t i = 0; i < p.ops.size() && int64_t(i) < top; ++i) {
    const auto& s = p.ops[i];
    tops.push_back({{"name", s.name},
                    {"category", s.category},
                    {"calls_per_step", double(s.calls) / double(p.rounds)},
                    {"ms_per_step", s.self_ms / double(p.rounds)},
                    {"share", share(s.self_ms / double(p.rounds))}});
  }
  return {{"rounds", p.rounds},
          {"profiled_ms_per_step", wall},
          {"op_calls_per_step", double(p.op_calls) / double(p.rounds)},
          {"note", "self CPU time per step from each op's RecordFunction range; share = of the profiled step's wall time"},
          {"categories", categories},
          {"top", tops}};
}

// --- peak ---------------------------------------------------------------------------------------

double Peak::best(const std::string& kind) const {
  double b = 0;
  for (const auto& s : shapes)
    if (s.kind == kind) b = std::max(b, s.gflops);
  return b;
}

PeakConvShape parse_peak_conv(const std::string& text, const std::string& flag) {
  PeakConvShape s;
  char c1 = 0, c2 = 0;
  int consumed = 0;
  long long n = 0, ch = 0, hw = 0;
  if (std::sscanf(text.c_str(), "%lld%c%lld%c%lld%n", &n, &c1, &ch, &c2, &hw, &consumed) != 5 || c1 != ':' ||
      c2 != ':' || consumed != int(text.size()) || n < 1 || ch < 1 || hw < 1 || n > 4096 || ch > 4096 || hw > 4096)
    throw ConfigError(fmt::format("{} {}: expected N:C:HW (batch, channels, height = width; each 1 to 4096), e.g. "
                                  "64:64:32", flag, text));
  s.batch = n;
  s.channels = ch;
  s.size = hw;
  return s;
}

Peak measure_peak(const PeakOptions& o) {
  if (o.rounds < 1) throw ConfigError(fmt::format("--peak-rounds {}: must be at least 1", o.rounds));
  for (auto n : o.gemms)
    if (n < 1 || n > 16384) throw ConfigError(fmt::format("--peak-gemm {}: a matrix side from 1 to 16384", n));
  torch::NoGradGuard no_grad;
  Peak peak;
  // One untimed call (oneDNN builds its primitive, the allocator warms), then the median of rounds.
  auto median_ms = [&](const std::function<void()>& call) {
    call();
    std::vector<double> ms;
    for (int64_t r = 0; r < o.rounds; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      call();
      ms.push_back(op_profile_impl::elapsed_ms(t0));
    }
    return op_profile_impl::percentile_50(ms);
  };
  auto add = [&](std::string kind, std::string shape, double flops, double ms) {
    peak.shapes.push_back({std::move(kind), std::move(shape), flops, ms, flops / ms / 1e6});
  };
  for (const auto& c : o.convs) {
    auto x = torch::randn({c.batch, c.channels, c.size, c.size});
    auto w = torch::randn({c.channels, c.channels, 3, 3}) * 0.05;
    auto conv = [&] { torch::conv2d(x, w, {}, {1, 1}, {1, 1}, {1, 1}); };
    const double flops = 2.0 * double(c.batch * c.channels * c.channels * 9 * c.size * c.size);
    add("convolution", fmt::format("N={} C={}->{} {}x{} k3", c.batch, c.channels, c.channels, c.size, c.size), flops,
        median_ms(conv));
    if (peak.conv_kernel.empty()) {
      // The innermost convolution op of one call: which backend LibTorch chose.
      const auto p = profile_ops(conv, 1);
      for (const auto& s : p.ops)
        if (s.category == "convolution") {
          peak.conv_kernel = s.name;
          break;
        }
    }
  }
  for (auto n : o.gemms) {
    auto a = torch::randn({n, n}), b = torch::randn({n, n});
    add("gemm", fmt::format("{}x{} @ {}x{}", n, n, n, n), 2.0 * double(n) * double(n) * double(n),
        median_ms([&] { torch::mm(a, b); }));
  }
  return peak;
}

nlohmann::json peak_json(const Peak& peak) {
  nlohmann::json shapes = nlohmann::json::array();
  for (const auto& s : peak.shapes)
    shapes.push_back(
        {{"kind", s.kind}, {"shape", s.shape}, {"gflop", s.flops / 1e9}, {"ms", s.ms}, {"gflops", s.gflops}});
  return {{"shapes", shapes},
          {"best_gflops", {{"convolution", peak.best("convolution")}, {"gemm", peak.best("gemm")}}},
          {"conv_kernel", peak.conv_kernel},
          {"threads", torch::get_num_threads()}};
}

nlohmann::json profile_report(const std::function<void()>& step, int64_t rounds, double ms_per_step,
                              const PeakOptions& peak_opts) {
  return profile_report(profile_ops(step, rounds), ms_per_step, peak_opts);
}

nlohmann::json profile_report(const OpProfile& p, double ms_per_step, const PeakOptions& peak_opts) {
  const double conv_flops = p.flops_of("convolution"), gemm_flops = p.flops_of("gemm");
  // The rate inside the ops themselves: the step's conv (GEMM) FLOPs over the self time of the
  // convolution (gemm) category, which is profiled time, so slightly pessimistic.
  auto rate = [](double flops, double ms) { return ms > 0 ? flops / ms / 1e6 : 0.0; };
  nlohmann::json j = {{"ops", op_profile_json(p)},
                      {"forward_flops", p.forward_flops()},
                      {"forward_flops_by_kind", p.forward_flops_by_kind},
                      {"backward_flops_by_kind", p.backward_flops_by_kind},
                      {"flops_per_step", p.flops_per_step()},
                      {"flops_rule", p.flops_rule()},
                      {"gflops", rate(p.flops_per_step(), ms_per_step)},
                      {"gflops_in_ops",
                       {{"convolution", rate(conv_flops, p.category_ms.at("convolution"))},
                        {"gemm", rate(gemm_flops, p.category_ms.at("gemm"))}}}};
  if (peak_opts.convs.empty() && peak_opts.gemms.empty()) return j;
  // The peak in the same process and thread setting, so the fraction compares like with like.
  const auto peak = measure_peak(peak_opts);
  const double conv_peak = peak.best("convolution"), gemm_peak = peak.best("gemm");
  j["peak"] = peak_json(peak);
  j["peak_gflops"] = {{"convolution", conv_peak}, {"gemm", gemm_peak}};
  if ((conv_flops > 0 && conv_peak <= 0) || (gemm_flops > 0 && gemm_peak <= 0)) {
    j["compute_floor_ms"] = nullptr;  // a kind the step uses has no measured peak
    j["fraction_of_peak"] = nullptr;
    return j;
  }
  const double floor_ms = (conv_flops > 0 ? conv_flops / conv_peak / 1e6 : 0.0) +
                          (gemm_flops > 0 ? gemm_flops / gemm_peak / 1e6 : 0.0);
  j["compute_floor_ms"] = floor_ms;
  j["fraction_of_peak"] = ms_per_step > 0 ? floor_ms / ms_per_step : 0.0;
  return j;
}

}  // namespace retort
