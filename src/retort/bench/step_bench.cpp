#include "retort/bench/step_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "retort/bench/op_profile.h"
#include "retort/bench/pipeline_step_bench.h"
#include "retort/core/error.h"
#include "retort/core/rng.h"
#include "retort/diffusion/timesteps.h"
#include "retort/distill/objective.h"
#include "retort/field/hash_grid.h"
#include "retort/field/volume_render.h"
#include "retort/render/world.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/safetensors.h"
#include "retort/models/mlp.h"
#include "retort/models/unet.h"
#include "retort/models/winograd_conv.h"
#include "retort/train/denoiser_train.h"
#include "retort/train/distill_loop.h"
#include "retort/train/ema.h"

namespace retort {

const std::vector<std::string>& step_bench_workloads() {
  static const std::vector<std::string> w = {"mlp",         "hash-encoding", "field-render", "unet-train",
                                             "ddim-sample", "dmd2-update",   "fvgen-update", "generate3d",
                                             "peak",        "conv3x3"};
  return w;
}

std::string default_step_bench_weights(const std::string& workload) {
  if (workload == "unet-train") return "weights/world-teacher.safetensors";
  if (workload == "ddim-sample") return "weights/fmnist-teacher.safetensors";
  return "";
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// conv3x3: one 3x3 convolution (C -> C channels, at each --peak-conv shape) through LibTorch's direct
// path and through the Winograd path (models/winograd_conv.h, its per-pass rule included), alternated:
// the forward without a graph, and forward + backward to input and weights.
std::string conv3x3_bench(const StepBenchOptions& o) {
  if (!winograd_available()) throw ConfigError("--workload conv3x3: this build of retort has no oneDNN (libdnnl-dev)");
  if (o.peak.rounds < 1) throw ConfigError(fmt::format("--peak-rounds {}: must be at least 1", o.peak.rounds));
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : o.peak.convs) {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(c.channels, c.channels, 3).padding(1));
    auto x = torch::randn({c.batch, c.channels, c.size, c.size}).requires_grad_(true);
    auto g = torch::randn_like(x);
    std::map<std::string, std::vector<double>> forward, both;
    for (int64_t r = 0; r <= o.peak.rounds; ++r)  // round 0 is not timed: oneDNN compiles its kernels
      for (const std::string conv_algorithm : {"direct", "winograd"}) {
        RuntimeOptions rt = o.runtime;
        rt.conv = conv_algorithm;
        apply_runtime(rt);
        auto t0 = std::chrono::steady_clock::now();
        {
          torch::NoGradGuard no_graph;
          conv3x3(*conv, x);
        }
        const double f = 1000 * seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        conv3x3(*conv, x).backward(g);
        const double b = 1000 * seconds_since(t0);
        if (r > 0) forward[conv_algorithm].push_back(f), both[conv_algorithm].push_back(b);
      }
    const double fd = median(forward["direct"]), fw = median(forward["winograd"]), bd = median(both["direct"]),
                 bw = median(both["winograd"]);
    rows.push_back({{"shape", fmt::format("N={} C={}->{} {}x{}", c.batch, c.channels, c.channels, c.size, c.size)},
                    {"forward_ms", {{"direct", fd}, {"winograd", fw}}},
                    {"forward_backward_ms", {{"direct", bd}, {"winograd", bw}}},
                    {"forward_speedup", fd / fw},
                    {"forward_backward_speedup", bd / bw}});
  }
  return nlohmann::json{{"workload", "conv3x3"}, {"rounds", o.peak.rounds}, {"shapes", rows},
                        {"runtime", apply_runtime(o.runtime)}}
      .dump();
}

// configs/text3d.toml's [field] grid.
HashGridOptions text3d_grid() {
  HashGridOptions ho;
  ho.levels = 8;
  ho.log2_table = 14;
  ho.features = 2;
  ho.base_resolution = 8;
  ho.max_resolution = 64;
  ho.hidden = 32;
  return ho;
}

// `step(kernel)` with the CPU kernel and with the vectorised encoding in turn, `steps` rounds of each
// after `warmup`, so machine noise hits both alike: {kernel_ms, vectorised_ms, speedup} (medians).
nlohmann::json kernel_against_vectorised(const StepBenchOptions& o, const std::function<void(bool)>& step) {
  for (int64_t i = 0; i < o.warmup; ++i) step(i % 2 == 0);
  std::vector<double> kernel, vectorised;
  for (int64_t i = 0; i < o.steps; ++i)
    for (bool k : {true, false}) {
      auto t0 = std::chrono::steady_clock::now();
      step(k);
      (k ? kernel : vectorised).push_back(1000 * seconds_since(t0));
    }
  const double km = median(kernel), vm = median(vectorised);
  return {{"kernel_ms", km}, {"vectorised_ms", vm}, {"speedup", vm / km}, {"rounds", o.steps}};
}

// Forward + backward of the encoding alone at `batch` points.
std::string hash_encoding_bench(const StepBenchOptions& o, const nlohmann::json& runtime) {
  const HashGridOptions ho = text3d_grid();
  HashGridEncoding enc(ho);
  Rng rng(0);
  auto points = rng.rand({o.batch, 3}) - 0.5;
  auto weights = rng.randn({o.batch, enc->output_dim()});
  auto j = kernel_against_vectorised(o, [&](bool kernel) {
    enc->zero_grad();
    auto out = kernel ? enc->forward(points) : enc->forward_vectorised(points);
    (out * weights).sum().backward();
  });
  j.update({{"workload", "hash-encoding"}, {"points", o.batch}, {"levels", ho.levels},
            {"log2_table", ho.log2_table}, {"runtime", runtime}});
  return j.dump();
}

// The field's part of a generate3d iteration: one shaded, stratified training render of the hash
// grid (batch x batch pixels, 64 samples per ray, the config's grid and MLP) and its backward.
std::string field_render_bench(const StepBenchOptions& o, const nlohmann::json& runtime) {
  HashGridField field(text3d_grid());
  Rng rng(0);
  const Camera cam = look_at_origin(30, 15, 1.4, 40);
  const auto rays = camera_rays(cam, o.batch);
  VolumeRenderOptions ro;
  ro.samples = 64;
  ro.stratified = true;
  ro.rng = &rng;
  ro.shading = Shading{.on = true, .light = vec3_tensor(headlight(cam))};
  auto weights = rng.randn({o.batch * o.batch, 3});
  auto j = kernel_against_vectorised(o, [&](bool kernel) {
    field->zero_grad();
    field->encoding->vectorised = !kernel;
    (render_rays(*field, rays.origins, rays.dirs, ro).rgb * weights).sum().backward();
  });
  j.update({{"workload", "field-render"}, {"resolution", o.batch}, {"samples", ro.samples}, {"runtime", runtime}});
  return j.dump();
}

struct BenchUNet {
  std::string path;
  UNetDenoiser model{nullptr};
  std::map<std::string, std::string> meta;
};

// The UNet a workload runs: --weights, else the shipped file; an image model (the Python twin has
// no video or camera paths).
BenchUNet load_bench_unet(const StepBenchOptions& o) {
  BenchUNet b;
  b.path = o.weights.empty() ? default_step_bench_weights(o.workload) : o.weights;
  if (!std::filesystem::is_regular_file(b.path))
    throw ConfigError(fmt::format("--weights {}: no such file{}", b.path,
                                  o.weights.empty() ? " (the shipped weights; run from the repository root)" : ""));
  b.model = load_unet(b.path, &b.meta);
  const auto s = b.model->shape();
  if (s.frames > 0 || s.concat_channels > 0 || s.camera_dim > 0)
    throw ConfigError(fmt::format("--weights {}: --workload {} takes an image UNet (no frames, condition channels "
                                  "or camera input)", b.path, o.workload));
  return b;
}

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// The model's parameters and buffers under their file names ("net. ..."), copied.
std::map<std::string, torch::Tensor> weights_of(torch::nn::Module& m, const std::string& prefix = "") {
  std::map<std::string, torch::Tensor> w;
  auto copy = [](const torch::Tensor& t) { return t.detach().cpu().clone(); };
  for (const auto& p : m.named_parameters()) w[prefix + p.key()] = copy(p.value());
  for (const auto& b : m.named_buffers()) w[prefix + b.key()] = copy(b.value());
  return w;
}

// configs/world-teacher.toml's [train] (the keys that shape a step's work; lr does not).
DenoiserTrainOptions world_teacher_train(int64_t batch) {
  DenoiserTrainOptions t;
  t.batch = batch;
  t.lr = 1e-3;
  t.cond_drop = 0.1;
  t.grad_clip = 1.0;
  t.ema = 0.999;
  return t;
}

// Fixed clean images in [-1, 1] and labels, drawn once, as the trainer's data set would give them.
DenoiserBatch fixed_batch(const ModelShape& s, int64_t batch, Rng& rng, const torch::Device& device) {
  DenoiserBatch b{(rng.rand(s.batch(batch)) * 2 - 1).to(device), {}};
  if (s.num_classes > 0) b.cond = Cond::classes(rng.randint(0, s.num_classes, {batch}).to(device));
  return b;
}

// --device of the UNet workloads: the CPU unless given.
torch::Device unet_bench_device(const StepBenchOptions& o) {
  return parse_device(o.device.empty() ? "cpu" : o.device, "--device");
}

// The device's queued work, finished: a scalar read waits for everything queued before it on the
// stream (one stream here). A no-op on the CPU, where ops return done.
void finish_queued(const torch::Device& device) {
  if (!device.is_cpu()) torch::zeros({1}, torch::TensorOptions().device(device)).item<float>();
}

// One training step of the teacher trainer: what train_denoiser does per step but the checkpoint,
// metrics and learning-rate warm-up. Times `steps` steps after `warmup`; the median is ms_per_step.
std::string unet_train_bench(const StepBenchOptions& o, const std::string& runtime) {
  auto b = load_bench_unet(o);
  auto& model = b.model;
  const auto device = unet_bench_device(o);
  model->to(device);
  auto ema = model->copy();
  freeze(*ema);
  model->train();
  const auto train = world_teacher_train(o.batch);
  auto params = trainable_parameters(*model);
  auto opt = make_adamw(params, OptimOptions{train.lr, 0.9, 0.999, train.weight_decay, train.grad_clip});
  const auto shape = model->shape();
  if (!o.dump.empty()) {
    // One seeded step, recorded: its input, the network's output, loss, gradient norm and the
    // weights before and after the AdamW update. The last label is the null class, so the check
    // covers the CFG embedding too.
    Rng rng(1);
    auto batch = fixed_batch(shape, o.batch, rng, device);
    if (batch.cond.labels.defined()) batch.cond.labels.narrow(0, o.batch - 1, 1).fill_(kNullClass);
    auto d = draw_denoiser_inputs(train, *model, batch, rng, device);
    auto tensors = weights_of(*model);
    auto out = model->net->forward(d.xt, d.t, d.cond);
    auto loss = (out - d.target).pow(2).mean();
    opt.zero_grad();
    loss.backward();
    const double gnorm = finalize_gradients(params, train.grad_clip);
    opt.step();
    for (auto& [k, v] : weights_of(*model, "after.")) tensors[k] = v;
    tensors["bench.xt"] = d.xt;
    tensors["bench.t"] = d.t;
    tensors["bench.abar"] = model->schedule.alpha_bar(d.t).to(torch::kFloat32);
    tensors["bench.target"] = d.target;
    if (d.cond.labels.defined()) tensors["bench.labels"] = d.cond.labels;
    tensors["bench.out"] = out.detach();
    tensors["bench.loss"] = loss.detach().reshape({1});
    tensors["bench.grad_norm"] = torch::tensor({gnorm}, torch::kFloat64);
    auto meta = b.meta;
    meta["bench.workload"] = o.workload;
    meta["bench.conv"] = cpu_conv_algorithm();
    meta["bench.lr"] = fmt::format("{}", train.lr);
    meta["bench.grad_clip"] = fmt::format("{}", train.grad_clip);
    save_safetensors(o.dump, tensors, meta);
    copy_weights(*ema, *model);  // the timed steps start from the file's weights again
  }
  Rng rng(0);
  const auto data = fixed_batch(shape, o.batch, rng, device);
  int64_t step = 0;
  auto one_step = [&] {
    auto d = draw_denoiser_inputs(train, *model, data, rng, device);
    auto loss = denoiser_loss(*model, d.xt, d.t, d.cond, d.target);
    {
      RECORD_USER_SCOPE(kOptimizerScope);  // --profile's "optimizer": zero_grad, clip, AdamW, EMA
      opt.zero_grad();
    }
    loss.backward();
    {
      RECORD_USER_SCOPE(kOptimizerScope);
      finalize_gradients(params, train.grad_clip);
      opt.step();
      ema_update(*ema, *model, ema_decay(train.ema, step++));
    }
    const double l = loss.item<double>();  // the trainer reads it every step (its metrics window)
    finish_queued(device);                 // on a GPU, the optimiser's kernels too
    return l;
  };
  for (int64_t i = 0; i < o.warmup; ++i) one_step();
  std::vector<double> ms;
  double last_loss = 0;
  for (int64_t i = 0; i < o.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    last_loss = one_step();
    ms.push_back(1000 * seconds_since(t0));
  }
  nlohmann::json j = {{"impl", "libtorch"},         {"workload", o.workload},
                      {"ms_per_step", median(ms)},  {"ms_min", *std::min_element(ms.begin(), ms.end())},
                      {"batch", o.batch},           {"resolution", shape.resolution},
                      {"channels", shape.channels}, {"classes", shape.num_classes},
                      {"params", count_parameters(*model)}, {"steps", o.steps},
                      {"warmup", o.warmup},         {"loss", last_loss},
                      {"weights", b.path},          {"threads", torch::get_num_threads()},
                      {"runtime", runtime}};
  if (o.profile) j.update(profile_report([&] { one_step(); }, o.steps, median(ms), o.peak));
  return j.dump();
}

// DDIM with CFG through retort's sampler (sample_teacher, as `retort sample` calls it), `batch`
// images per run, balanced labels; `steps` timed runs after `warmup`.
std::string ddim_sample_bench(const StepBenchOptions& o, const std::string& runtime) {
  auto b = load_bench_unet(o);
  auto& model = b.model;
  const auto device = unet_bench_device(o);
  model->to(device);
  const auto shape = model->shape();
  auto labels = balanced_labels(shape.num_classes, o.batch).to(device);
  const TeacherSampling sampling{o.sampler_steps, o.cfg, 0.0, 1.0, 250};  // `retort sample`'s DDIM
  if (o.cfg != 1.0 && shape.num_classes == 0)
    throw ConfigError(fmt::format("--cfg {}: guidance needs a class-conditional model; {} is unconditional (use "
                                  "--cfg 1)", o.cfg, b.path));
  if (!o.dump.empty()) {
    Rng rng(1);
    auto noise = rng.randn(shape.batch(o.batch)).to(device);
    auto tensors = weights_of(*model);
    tensors["bench.noise"] = noise;
    tensors["bench.labels"] = labels;
    tensors["bench.images"] = sample_teacher(*model, labels, sampling, rng, noise);
    auto meta = b.meta;
    meta["bench.workload"] = o.workload;
    meta["bench.conv"] = cpu_conv_algorithm();
    meta["bench.sampler_steps"] = std::to_string(o.sampler_steps);
    meta["bench.cfg"] = fmt::format("{}", o.cfg);
    save_safetensors(o.dump, tensors, meta);
  }
  Rng rng(0);
  auto run = [&] {
    sample_teacher(*model, labels, sampling, rng);
    finish_queued(device);
  };
  for (int64_t i = 0; i < o.warmup; ++i) run();
  std::vector<double> ms;
  for (int64_t i = 0; i < o.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    ms.push_back(1000 * seconds_since(t0));
  }
  const double m = median(ms);
  nlohmann::json j = {{"impl", "libtorch"},
                      {"workload", o.workload},
                      {"ms_per_image", m / double(o.batch)},
                      {"ms_per_sampler_step", m / double(o.sampler_steps)},
                      {"ms_per_run", m},
                      {"ms_min", *std::min_element(ms.begin(), ms.end())},
                      {"batch", o.batch},
                      {"sampler_steps", o.sampler_steps},
                      {"cfg", o.cfg},
                      {"resolution", shape.resolution},
                      {"channels", shape.channels},
                      {"classes", shape.num_classes},
                      {"params", count_parameters(*model)},
                      {"steps", o.steps},
                      {"warmup", o.warmup},
                      {"weights", b.path},
                      {"threads", torch::get_num_threads()},
                      {"runtime", runtime}};
  if (o.profile) j.update(profile_report(run, o.steps, m, o.peak));
  return j.dump();
}

}  // namespace

std::string run_step_bench(const StepBenchOptions& o) {
  if (o.profile && o.workload != "unet-train" && o.workload != "ddim-sample" && !is_pipeline_workload(o.workload))
    throw ConfigError(fmt::format("--profile belongs to the unet-train, ddim-sample, dmd2-update, fvgen-update and "
                                  "generate3d workloads, not {}", o.workload));
  if (is_pipeline_workload(o.workload)) {
    if (!o.weights.empty())
      throw ConfigError(fmt::format("--weights belongs to the unet-train and ddim-sample workloads; {} reads its "
                                    "teacher from --config", o.workload));
    return run_pipeline_step_bench(o);
  }
  if (o.hash_path != "kernel")
    throw ConfigError(fmt::format("--hash-path belongs to the generate3d workload, not {} (field-render and "
                                  "hash-encoding time both paths)", o.workload));
  if (!o.config.empty() || !o.sets.empty())
    throw ConfigError(fmt::format("--config and --set belong to the dmd2-update, fvgen-update and generate3d "
                                  "workloads, not {}", o.workload));
  if (!o.device.empty() && o.device != "cpu" && o.workload != "unet-train" && o.workload != "ddim-sample")
    throw ConfigError(fmt::format("--device {}: {} runs on the CPU (the unet-train, ddim-sample and pipeline "
                                  "workloads take a device)", o.device, o.workload));
  RuntimeOptions rt = o.runtime;
  rt.device = o.device.empty() ? "cpu" : o.device;  // what the JSON's "runtime" names
  auto runtime = apply_runtime(rt);
  if (o.workload == "unet-train") return unet_train_bench(o, runtime);
  if (o.workload == "ddim-sample") return ddim_sample_bench(o, runtime);
  if (!o.weights.empty() || !o.dump.empty())
    throw ConfigError(fmt::format("--weights and --dump belong to the unet-train and ddim-sample workloads, not {}",
                                  o.workload));
  if (o.workload == "peak") {
    auto j = peak_json(measure_peak(o.peak));
    j.update({{"workload", "peak"}, {"rounds", o.peak.rounds}, {"runtime", runtime}});
    return j.dump();
  }
  if (o.workload == "conv3x3") return conv3x3_bench(o);
  if (o.workload == "hash-encoding") return hash_encoding_bench(o, runtime);
  if (o.workload == "field-render") return field_render_bench(o, runtime);
  Schedule schedule;
  MlpOptions mo;
  mo.dim = o.dim;
  mo.hidden = o.hidden;
  mo.blocks = o.blocks;
  MlpDenoiser net(mo, schedule);
  auto opt = make_adamw(net->parameters(), OptimOptions{});
  Rng rng(0);
  // Fixed data, drawn once, so the timed loop is the step alone.
  auto x0 = rng.randn({o.batch, o.dim});
  auto t = schedule.snap(rng.rand({o.batch}) * 0.98 + 0.02);
  auto eps = rng.randn({o.batch, o.dim});
  auto abar = schedule.alpha_bar(t);
  auto xt = per_sample(abar.sqrt(), x0) * x0 + per_sample((1 - abar).sqrt(), x0) * eps;
  auto step = [&] {
    opt.zero_grad();
    auto loss = denoising_loss(net->eps(xt, t, Cond{}), eps);
    loss.backward();
    opt.step();
  };
  for (int64_t i = 0; i < o.warmup; ++i) step();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.steps; ++i) step();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j = {{"impl", "libtorch"}, {"ms_per_step", 1000 * s / o.steps}, {"batch", o.batch},
                      {"dim", o.dim}, {"hidden", o.hidden}, {"blocks", o.blocks}, {"steps", o.steps},
                      {"runtime", runtime}};
  return j.dump();
}

}  // namespace retort
