#include "retort/bench/pipeline_step_bench.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "retort/bench/op_profile.h"
#include "retort/core/config.h"
#include "retort/core/error.h"
#include "retort/core/runtime.h"
#include "retort/field/hash_grid.h"
#include "retort/io/safetensors.h"
#include "retort/image/image_distill.h"
#include "retort/nvs/video_distill.h"
#include "retort/text3d/generate3d.h"

namespace retort {
namespace fs = std::filesystem;

bool is_pipeline_workload(const std::string& workload) {
  return workload == "dmd2-update" || workload == "fvgen-update" || workload == "generate3d";
}

std::string default_pipeline_config(const std::string& workload) {
  if (workload == "dmd2-update") return "configs/fmnist-dmd2-noreg.toml";
  if (workload == "fvgen-update") return "configs/nvs-distill.toml";
  if (workload == "generate3d") return "configs/text3d.toml";
  return "";
}

namespace {

// A fresh folder under the system's temporary directory, removed with everything in it.
struct ScratchFolder {
  fs::path path;
  ScratchFolder() {
    std::string pattern = (fs::temp_directory_path() / "retort-bench-step-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw Error("bench-step: cannot create a folder under " + fs::temp_directory_path().string());
    path = pattern;
  }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Watches the loop's updates: after `skip` updates of an earlier stage and `warmup` more, `steps`
// are timed; with --profile, `steps` more run under the op profiler and one more counts FLOPs.
struct LoopTimer {
  int64_t skip = 0, warmup = 0, steps = 0;
  bool profile = false;
  std::vector<double> seconds;  // every update's, in order
  OpRecorder recorder;
  OpProfile timed_profile, flop_profile;

  int64_t updates() const { return warmup + steps + (profile ? steps + 1 : 0); }
  void on_update(double s) {
    seconds.push_back(s);
    if (!profile) return;
    const int64_t seen = static_cast<int64_t>(seconds.size()), timed_end = skip + warmup + steps;
    if (seen == timed_end) {
      recorder.begin(false);
    } else if (seen == timed_end + steps) {
      timed_profile = recorder.end(steps);
      recorder.begin(true);
    } else if (seen == timed_end + steps + 1) {
      flop_profile = recorder.end(1);
    }
  }
  // ms of the timed updates: median, min, max.
  nlohmann::json summary() const {
    if (static_cast<int64_t>(seconds.size()) < skip + warmup + steps)
      throw Error(fmt::format("bench-step: the loop ran {} updates, {} were to be timed", seconds.size(), steps));
    std::vector<double> ms;
    for (int64_t i = skip + warmup; i < skip + warmup + steps; ++i) ms.push_back(1000 * seconds[i]);
    std::sort(ms.begin(), ms.end());
    return {{"ms_per_update", ms[ms.size() / 2]}, {"ms_min", ms.front()}, {"ms_max", ms.back()}};
  }
};

// The loop trains the updates the timer needs, with no checkpoint and one metrics row at its end.
void bench_loop(DistillLoopOptions& loop, LoopTimer& timer) {
  loop.steps = timer.updates();
  loop.checkpoint_every = 0;
  loop.log_every = loop.steps;
  loop.on_update = [&timer](int64_t, double s) { timer.on_update(s); };
}

// bench-step's --threads / --blas-threads / --conv / --attention rule, not the config's [runtime].
// Returns the policy the update runs under (the JSON's "runtime").
RuntimeOptions bench_runtime(RuntimeOptions& r, const StepBenchOptions& o) {
  r.torch_threads = o.runtime.torch_threads;
  r.blas_threads = o.runtime.blas_threads;
  r.keep_freed_memory = o.runtime.keep_freed_memory;
  r.conv = o.runtime.conv;
  r.attention = o.runtime.attention;
  return r;
}

// --dump: the timed loop's first update, recorded for the workload's Python twin's --check
// (bench/python/dmd2.py, fvgen.py, generate3d.py): every module's weights before ("start.") and
// after it ("after."), the gradients left after it ("grad.": the generator's, clipped, and the
// last critic update's: AdamW's first step moves a weight by about lr x the sign of its gradient,
// so the weights alone hardly show the gradient's size), every draw of the run's Rng in between
// ("draw.N", kinds in order in bench.draws) and the resolved config. The draws let the twin replay
// the update whatever its own generator does. `skip_loops` earlier loops (fvgen-update's stage 1)
// are passed over.
struct UpdateDump {
  std::string path, workload, hash_path;
  const ConfigNode* config = nullptr;  // read by the time of the write: its resolved keys are complete
  int64_t skip_loops = 0, loops_started = 0;
  std::map<std::string, torch::Tensor> tensors;
  std::vector<std::pair<std::string, torch::Tensor>> draws;
  nlohmann::json order;  // each module's parameter names in its own order (the one gradient clipping sums in)

  void weights(const std::string& prefix, const std::map<std::string, torch::nn::Module*>& modules) {
    for (const auto& [name, m] : modules) {
      order[name] = nlohmann::json::array();
      for (const auto& p : m->named_parameters()) order[name].push_back(p.key());
      for (const auto& p : m->named_parameters()) tensors[prefix + name + "." + p.key()] = p.value().detach().clone();
      for (const auto& b : m->named_buffers()) tensors[prefix + name + "." + b.key()] = b.value().detach().clone();
      if (prefix == "after.")
        for (const auto& p : m->named_parameters())
          if (p.value().grad().defined()) tensors["grad." + name + "." + p.key()] = p.value().grad().clone();
    }
  }
  auto recorder() {
    return [this](int64_t done, const std::map<std::string, torch::nn::Module*>& modules, Rng& rng) {
      if (done == 0) ++loops_started;  // a loop's first call
      if (loops_started <= skip_loops) return;
      if (done == 0) {
        weights("start.", modules);
        rng.record(&draws);
      } else if (done == 1) {
        rng.record(nullptr);
        weights("after.", modules);
        write();
      }
    };
  }
  void write() {
    nlohmann::json kinds = nlohmann::json::array();
    for (size_t i = 0; i < draws.size(); ++i) {
      tensors[fmt::format("draw.{:04d}", i)] = draws[i].second;
      kinds.push_back(draws[i].first);
    }
    save_safetensors(path, tensors,
                     {{"bench.workload", workload}, {"bench.draws", kinds.dump()}, {"bench.params", order.dump()},
                      {"bench.config", config->resolved_toml()},
                      // Set by bench-step's flags, not the config: the twin's tolerance depends on them.
                      {"bench.hash_path", hash_path}, {"bench.conv", cpu_conv_algorithm()},
                      {"bench.attention", cpu_attention_path()}});
  }
};

nlohmann::json student_fields(const StudentConfig& c) {
  return {{"method", c.method}, {"batch", c.loop.batch}, {"critic_steps", c.loop.critic_steps},
          {"student_steps", c.student_steps}, {"fake", c.fake}, {"teacher", c.teacher.string()}};
}

}  // namespace

std::string run_pipeline_step_bench(const StepBenchOptions& o) {
  const std::string config = o.config.empty() ? default_pipeline_config(o.workload) : o.config;
  if (!fs::is_regular_file(config))
    throw ConfigError(fmt::format("--config {}: no such file{}", config,
                                  o.config.empty() ? " (the shipped config; run from the repository root)" : ""));
  std::vector<std::string> sets = o.sets;
  // A warm start would need another run's folder: the timed student starts from the teacher.
  if (o.workload == "dmd2-update") sets.insert(sets.begin(), "distill.init=\"\"");
  if (!o.device.empty()) {
    parse_device(o.device, "--device");  // a bad value is named as the flag, not as the config's key
    sets.push_back(fmt::format("runtime.device=\"{}\"", o.device));  // after --set: it wins
  }
  auto root = ConfigNode::from_file(config, sets);
  ScratchFolder scratch;
  LoopTimer timer;
  timer.warmup = o.warmup;
  timer.steps = o.steps;
  timer.profile = o.profile;
  nlohmann::json j = {{"impl", "libtorch"}, {"workload", o.workload}, {"config", config}, {"sets", o.sets}};
  RuntimeOptions ran;
  UpdateDump dump;
  dump.path = o.dump;
  dump.workload = o.workload;
  dump.hash_path = o.workload == "generate3d" ? o.hash_path : "";
  dump.config = &root;
  if (const auto folder = fs::path(o.dump).parent_path(); !o.dump.empty() && !folder.empty() && !fs::is_directory(folder))
    throw ConfigError(fmt::format("--dump {}: no folder {}", o.dump, folder.string()));  // before the run, not after
  if (o.workload == "dmd2-update") {
    auto cfg = read_image_distill_config(root);
    root.finish();
    bench_loop(cfg.loop, timer);
    ran = bench_runtime(cfg.runtime, o);
    if (!o.dump.empty()) cfg.loop.on_modules = dump.recorder();
    distill_images(cfg, scratch.path / "run", false, root.resolved_toml());
    j.update(student_fields(cfg));
  } else if (o.workload == "fvgen-update") {
    auto cfg = read_nvs_distill_config(root);
    if (!method_plan(cfg.method).gan_init || method_plan(cfg.method).objective.empty())
      throw ConfigError(fmt::format("distill.method = \"{}\": --workload fvgen-update times stage 2 after a GAN "
                                    "initialisation (fvgen, rkl, kl, js, hellinger, jeffreys)", cfg.method));
    bench_loop(cfg.loop, timer);
    cfg.gan_init_steps = 1;  // stage 1 only has to exist; its one update is not timed
    timer.skip = 1;
    dump.skip_loops = 1;
    if (!o.dump.empty()) cfg.loop.on_modules = dump.recorder();
    ran = bench_runtime(cfg.runtime, o);
    cfg.preview_clips = 1;
    auto student = distill_nvs(cfg, scratch.path / "run", false, root.resolved_toml());
    j.update(student_fields(cfg));
    j["frames"] = student->net->shape().frames;
  } else {
    set_hash_grid_vectorised_default(o.hash_path == "tensor");
    auto cfg = read_generate3d_config(root);
    root.finish();
    bench_loop(cfg.loop, timer);
    ran = bench_runtime(cfg.runtime, o);
    if (!o.dump.empty()) cfg.loop.on_modules = dump.recorder();
    cfg.outputs = Generate3dOutputs{1, 8, 1, 8, cfg.outputs.mesh_threshold};  // after timing; kept small
    run_generate3d(cfg, scratch.path / "run", false, root.resolved_toml());
    j.update({{"method", cfg.method}, {"fake", cfg.fake}, {"field", cfg.field.kind}, {"hash_path", o.hash_path}, {"views", cfg.loop.batch},
              {"resolution", cfg.render.resolution}, {"samples", cfg.render.samples}, {"shading", cfg.render.shading},
              {"teacher", cfg.teacher.string()}});
  }
  j.update(timer.summary());
  if (o.profile)
    j.update(profile_report(with_flop_round(timer.timed_profile, timer.flop_profile), j["ms_per_update"].get<double>(),
                            o.peak));
  j.update({{"updates", o.steps}, {"warmup", o.warmup}, {"threads", torch::get_num_threads()},
            {"runtime", apply_runtime(ran)}});
  return j.dump();
}

}  // namespace retort
