#include "retort/bench/distill_bench.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "retort/run/kept_result.h"
#include "retort/core/error.h"
#include "retort/io/png.h"
#include "retort/eval/image_metrics.h"
#include "retort/generators/few_step_student.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/fingerprint.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace fs = std::filesystem;

const OptionTable<DistillBenchConfig>& distill_bench_option_table() {
  static const auto table = [] {
    using C = DistillBenchConfig;
    OptionTable<C> t;
    t.text("evaluator", &C::evaluator, "evaluator.safetensors from train-evaluator (the FID features)");
    return t;
  }();
  return table;
}

const OptionTable<DistillBenchConfig>& distill_bench_eval_option_table() {
  static const auto table = [] {
    using C = DistillBenchConfig;
    OptionTable<C> t;
    t.integer("n", &C::n, 10, 1'000'000, "generated images per row (balanced over classes)")
        .integer("k", &C::k, 1, 1000, "neighbours of precision / recall")
        .integer("seed", &C::seed, 0, INT64_MAX, "seed of the labels and noise of every row")
        .integers("teacher_steps", &C::teacher_steps, 1, 1'000'000,
                  "DDIM step counts of the teacher rows (the first is the speed-up reference)")
        .strings("students", &C::students, {}, "student files scored as they are, without training")
        .check([](ConfigNode& e, const C& c) {
          if (c.teacher_steps.empty())
            e.fail("teacher_steps", "needs at least one step count (the speed-up reference)");
          for (const auto& file : c.students)
            if (!fs::is_regular_file(file)) e.fail("students", fmt::format("{}: no such student file", file));
        });
    return t;
  }();
  return table;
}

DistillBenchConfig read_distill_bench_config(ConfigNode root) {
  DistillBenchConfig c;
  distill_bench_option_table().read(root, c);
  c.base = read_image_distill_config(root);
  auto e = root.table("eval");
  distill_bench_eval_option_table().read(e, c);
  for (auto& r : root.tables("run")) {
    auto run = read_image_distill_run(r, c.base);
    auto name = r.string("name", fmt::format("{}-{}step", run.method, run.student_steps));
    for (const auto& n : c.names)
      if (n == name) r.fail("name", fmt::format("'{}' is used twice", name));
    c.names.push_back(name);
    c.runs.push_back(run);
  }
  if (c.runs.empty() && c.students.empty())
    root.fail("run", "no [[run]] tables and no [eval] students: nothing to benchmark");
  root.finish();
  return c;
}

namespace {

nlohmann::json score(const std::string& name, const std::string& kind, int64_t nfe, const torch::Tensor& images,
                     const torch::Tensor& labels, double seconds, Classifier& evaluator, const torch::Tensor& ref,
                     int64_t k) {
  auto e = evaluate_images(evaluator, images.cpu(), labels.cpu(), ref, k);
  return {{"name", name},           {"kind", kind},          {"nfe", nfe},
          {"n", e.n},               {"fid", e.fid},          {"precision", e.precision},
          {"recall", e.recall},     {"class_accuracy", e.class_accuracy},
          {"ms_per_sample", 1000 * seconds / double(images.size(0))}};
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

nlohmann::json run_distill_bench(const DistillBenchConfig& cfg, const fs::path& out, bool progress,
                                 const std::string& config_text) {
  const auto& contract = cfg.base.teacher_contract;
  auto teacher = load_diffusion_model(cfg.base.teacher, nullptr, contract ? &*contract : nullptr);  // a bad teacher is refused before anything is written
  auto device = start_run(out, cfg.base.runtime);
  write_text_atomic(out / "config.resolved.toml", config_text);
  auto evaluator = load_classifier(cfg.evaluator);
  auto test = load_dataset(cfg.base.data, "test");
  auto ref = classifier_features(evaluator, test.images);
  teacher->to(device);
  const int64_t C = teacher->shape().num_classes;
  auto labels = balanced_labels(C, cfg.n);

  nlohmann::json rows = nlohmann::json::array();
  for (auto steps : cfg.teacher_steps) {
    auto dir = out / "runs" / fmt::format("teacher-{}step", steps);
    if (auto kept = kept_result(dir / "result.json", config_text); !kept.is_null()) {
      rows.push_back(kept);
      continue;
    }
    create_output_folder(dir);
    Rng rng(cfg.seed);
    TeacherSampling s;
    s.steps = steps;
    s.cfg = cfg.base.objective.cfg_scale;  // the distribution the students are distilled towards
    auto t0 = std::chrono::steady_clock::now();
    auto images = sample_teacher(*teacher, labels, s, rng);
    double sec = since(t0);
    const int64_t nfe = steps * (s.cfg == 1.0 ? 1 : 2);
    auto row = score(fmt::format("teacher DDIM {}", steps), "teacher", nfe, images, labels, sec, evaluator, ref, cfg.k);
    write_png_grid(dir / "samples.png", images.narrow(0, 0, std::min<int64_t>(100, cfg.n)), 10);
    keep_result(dir / "result.json", row, config_text);
    std::fprintf(stderr, "%s: FID %.2f\n", row["name"].get<std::string>().c_str(), row["fid"].get<double>());
    rows.push_back(row);
  }
  for (const fs::path file : cfg.students) {
    auto dir = out / "runs" / ("file-" + file.stem().string());
    const auto run_text = config_text + "\n# student file " + file_fingerprint(file) + "\n";
    if (auto kept = kept_result(dir / "result.json", run_text); !kept.is_null()) {
      rows.push_back(kept);
      continue;
    }
    auto student = load_student(file);
    if (!student) throw ConfigError(fmt::format("eval.students: {} is a teacher, not a few-step student", file.string()));
    const auto so = student->net->shape();
    const auto to = teacher->shape();
    if (so.num_classes != to.num_classes || so.resolution != to.resolution || so.channels != to.channels)
      throw ConfigError(fmt::format("eval.students: {} makes {}x{}x{} images of {} classes; the teacher {}x{}x{} of {}",
                                    file.string(), so.channels, so.resolution, so.resolution, so.num_classes,
                                    to.channels, to.resolution, to.resolution, to.num_classes));
    student->to(device);
    create_output_folder(dir);
    Rng rng(cfg.seed);
    auto t0 = std::chrono::steady_clock::now();
    auto images = student->sample(labels, rng);
    double sec = since(t0);
    auto row = score(fmt::format("{} (file)", file.string()), "student file", int64_t(student->timesteps().size()),
                     images, labels, sec, evaluator, ref, cfg.k);
    write_png_grid(dir / "samples.png", images.narrow(0, 0, std::min<int64_t>(100, cfg.n)), 10);
    keep_result(dir / "result.json", row, run_text);
    std::fprintf(stderr, "%s: FID %.2f\n", row["name"].get<std::string>().c_str(), row["fid"].get<double>());
    rows.push_back(row);
  }
  for (size_t i = 0; i < cfg.runs.size(); ++i) {
    auto dir = out / "runs" / cfg.names[i];
    const auto run_text = config_text + "\n# run " + cfg.names[i] + "\n";
    if (auto kept = kept_result(dir / "result.json", run_text); !kept.is_null()) {
      rows.push_back(kept);
      continue;
    }
    const auto& run = cfg.runs[i];
    double train_sec = 0.0;  // the training loops' seconds, a resumed run's earlier invocations included
    auto student = distill_images(run, dir, progress, run_text, &train_sec);
    Rng rng(cfg.seed);
    auto t0 = std::chrono::steady_clock::now();
    auto images = student->sample(labels, rng);
    double sec = since(t0);
    const auto plan = method_plan(run.method);
    const int64_t updates = (plan.gan_init ? run.gan_init_steps : 0) + run.loop.steps;
    auto row = score(fmt::format("{} (trained here, {} updates)", cfg.names[i], updates), run.method,
                     int64_t(student->timesteps().size()), images, labels, sec, evaluator, ref, cfg.k);
    row["train_seconds"] = train_sec;
    keep_result(dir / "result.json", row, run_text);
    std::fprintf(stderr, "%s: FID %.2f\n", cfg.names[i].c_str(), row["fid"].get<double>());
    rows.push_back(row);
  }
  // Speed-up relative to the first (slowest) teacher row.
  const double ref_ms = rows[0]["ms_per_sample"].get<double>();
  for (auto& r : rows) r["speedup"] = ref_ms / r["ms_per_sample"].get<double>();
  nlohmann::json result = {{"rows", rows}, {"n", cfg.n}, {"device", cfg.base.runtime.device},
                           {"threads", cfg.base.runtime.torch_threads}};
  write_text_atomic(out / "results.md", distill_results_markdown(result));
  write_text_atomic(out / "results.json", result.dump(2));
  return result;
}

std::string distill_results_markdown(const nlohmann::json& result) {
  std::string s = "| model | NFE | FID | precision | recall | class acc | ms/sample | speed-up |\n"
                  "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : result["rows"])
    s += fmt::format("| {} | {} | {:.2f} | {:.3f} | {:.3f} | {:.3f} | {:.2f} | {:.1f}x |\n", r["name"].get<std::string>(),
                     r["nfe"].get<int64_t>(), r["fid"].get<double>(), r["precision"].get<double>(),
                     r["recall"].get<double>(), r["class_accuracy"].get<double>(), r["ms_per_sample"].get<double>(),
                     r.value("speedup", 1.0));
  return s;
}

}  // namespace retort
