// Where a step's time goes, and how close its arithmetic comes to this machine's peak (issue 25).
//
// profile_ops records each op's range (its RecordFunction start and end) while a step runs, and
// rebuilds each thread's op nesting from the ranges to get every op's *self* time (its time less its
// child ops'). Self times add up to the time inside top-level ops; the rest of the wall time
// ("outside ops") is what no op accounts for: autograd engine bookkeeping between nodes and the
// caller's own C++. The timed rounds go to a RangeLog (range_log.h: names and times, nothing
// allocated per op); one more, untimed round runs under LibTorch's legacy CPU profiler
// (torch/csrc/autograd/profiler_legacy.h, still shipped in LibTorch 2.x), which records the input
// shapes and FLOPs.
//
// The op categories, by the op's name (aten::, its backward kernel, or the autograd node):
//   convolution    conv2d/convolution/_convolution/mkldnn_convolution and convolution_backward
//   gemm           mm, addmm, bmm, baddbmm, matmul, linear, mv/addmv, dot; the attention's two bmm count here
//   attention      softmax and its backward (the attention's products are gemm above)
//   normalisation  group/layer/batch/instance norm (native_ variants) and their backward
//   elementwise    pointwise maths and reductions: add, sub, mul, div, pow, silu, sigmoid, exp, sqrt,
//                  addcmul, lerp, clamp, where, sum, mean, norm, ... and their backward kernels
//   copy/alloc     empty*, zeros*, ones, full, fill_, zero_, copy_, clone, cat, stack, contiguous, to,
//                  _to_copy, and the view ops (view, reshape, permute, transpose, expand, slice, ...)
//   hash grid      retort's hash-grid CPU kernel: its forward ("retort::hash_encode") and backward node
//   optimizer      every op inside a kOptimizerScope range (the caller marks its update with it)
//   autograd       the backward nodes' own time: "autograd::engine::evaluate_function: X" wrappers,
//                  XBackward0 nodes and AccumulateGrad, less the aten ops they call
//   other          the rest (random numbers, embedding/indexing, upsampling, pooling, item, ...)
//
// FLOPs: the profiler counts, per op call, the FLOPs of aten::conv2d (2 * N * Cout * Cin/groups *
// kh * kw * Hout * Wout, i.e. two per multiply-add), aten::mm/addmm/bmm/baddbmm (2 * M * K * N, the
// same convention) and aten::mul/add (one per output element); every other op counts 0, and
// convolution_backward none; nor a conv2d called with one-element padding or dilation (nn::Conv2d
// passes pairs). Inside backward nodes the products (mm, bmm, ...) count as the profiler counts
// them, and each convolution_backward as two products of its forward's size, the input's and the
// weight's gradient (an upper bound: a first layer's input needs no gradient). No-grad forwards
// (a frozen teacher, the sampler) have no backward, so a step is counted as it ran.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/record_function.h>  // RECORD_USER_SCOPE(kOptimizerScope)
#include <nlohmann/json.hpp>

namespace retort {

// The name of a RECORD_USER_SCOPE range whose ops are the "optimizer" category.
inline constexpr const char* kOptimizerScope = "retort::optimizer";

// The categories, in the order the JSON lists them.
const std::vector<std::string>& op_categories();
// The category of one op name (not "optimizer": that is by enclosing scope, not name).
std::string op_category(const std::string& op_name);

struct OpStat {
  std::string name, category;
  int64_t calls = 0;
  double self_ms = 0;  // summed over all rounds
};

// One op call the profiler gave FLOPs, with its input shapes (for checks against an analytic count).
struct FlopEvent {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;
  double flops = 0;
  bool in_backward = false, in_optimizer = false;
};

struct OpProfile {
  int64_t rounds = 0;
  double wall_ms = 0;       // per step, under the profiler (slower than unprofiled: per-op recording)
  double top_level_ms = 0;  // per step: summed durations of ops not inside another op
  std::map<std::string, double> category_ms;  // self time per step
  std::vector<OpStat> ops;                    // per op name, largest self time first
  std::vector<FlopEvent> flop_events;         // every counted call of the FLOP round, in order
  int64_t op_calls = 0;                       // ranges closed, over all rounds
  bool has_backward = false;                  // an autograd node ran
  // Per step, outside backward nodes and the optimizer scope: "convolution", "gemm", "elementwise".
  std::map<std::string, double> forward_flops_by_kind;
  // Per step, inside backward nodes: "convolution", "gemm".
  std::map<std::string, double> backward_flops_by_kind;

  double outside_ms() const { return wall_ms > top_level_ms ? wall_ms - top_level_ms : 0.0; }
  double forward_flops() const;
  double backward_flops() const;
  // Forward and backward FLOPs of one kind ("convolution", "gemm").
  double flops_of(const std::string& kind) const;
  double flops_per_step() const;  // forward + backward (see above)
  std::string flops_rule() const;
};

// Runs `step` `rounds` times under the profiler (rounds >= 1), then once more to count FLOPs, and
// summarises per step.
OpProfile profile_ops(const std::function<void()>& step, int64_t rounds);

// Records steps that someone else runs (a pipeline's own training loop): begin() before the first
// step, end(n) after the n-th; a second begin(true) ... end(1) around one more step counts its FLOPs
// (with_flop_round joins the two). profile_ops is this around a step function.
class RangeLog;
class OpRecorder {
 public:
  OpRecorder();
  OpRecorder(const OpRecorder&) = delete;
  OpRecorder& operator=(const OpRecorder&) = delete;
  ~OpRecorder();
  void begin(bool shapes_and_flops);
  OpProfile end(int64_t steps);
  bool running() const { return running_; }

 private:
  bool running_ = false;
  std::unique_ptr<RangeLog> log_;  // the timed rounds'
  std::chrono::steady_clock::time_point t0_;
};
// The timed rounds' profile with the FLOP counts of `counted`.
OpProfile with_flop_round(OpProfile timed, const OpProfile& counted);

// The attainable rate of this machine's two heavy kernels at the current thread count: a 3x3
// conv2d (padding 1, through oneDNN where LibTorch routes it) forward at N x C -> C x HW x HW,
// and a square float32 at::mm.
struct PeakConvShape {
  int64_t batch = 64, channels = 64, size = 32;
};
struct PeakOptions {
  std::vector<PeakConvShape> convs = {{64, 64, 32}, {64, 128, 16}};
  std::vector<int64_t> gemms = {1024, 2048};
  int64_t rounds = 5;  // timed calls per shape after one warm-up call; the median counts
};
struct PeakShape {
  std::string kind, shape;  // "convolution" or "gemm"; e.g. "64x64->64x32x32", "1024^3"
  double flops = 0, ms = 0, gflops = 0;
};
struct Peak {
  std::vector<PeakShape> shapes;
  std::string conv_kernel;  // the aten op that ran the conv (e.g. aten::mkldnn_convolution)
  double best(const std::string& kind) const;
};
Peak measure_peak(const PeakOptions& opts);
nlohmann::json peak_json(const Peak& peak);
// "N:C:HW" (e.g. "64:64:32") as a conv shape; ConfigError naming `flag` otherwise.
PeakConvShape parse_peak_conv(const std::string& text, const std::string& flag = "--peak-conv");

// The `--profile` fields of a workload's JSON line: "ops" (categories with ms per step and share of
// the profiled wall time, "outside ops", the top 10 ops), forward_flops, flops_per_step, flops_rule,
// and the roofline against a peak measured here and now with `peak`: gflops (flops_per_step over the
// unprofiled `ms_per_step`), peak_gflops, compute_floor_ms (the step's conv FLOPs at the conv peak
// plus its GEMM FLOPs at the GEMM peak) and fraction_of_peak (compute_floor_ms / ms_per_step).
nlohmann::json profile_report(const std::function<void()>& step, int64_t rounds, double ms_per_step,
                              const PeakOptions& peak);
nlohmann::json profile_report(const OpProfile& profile, double ms_per_step, const PeakOptions& peak);
nlohmann::json op_profile_json(const OpProfile& p, int64_t top = 10);

}  // namespace retort
