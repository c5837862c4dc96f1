#include "retort/text2d/bench2d.h"

#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include "retort/core/error.h"
#include "retort/eval/image_metrics.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/png.h"
#include "retort/io/safetensors.h"
#include "retort/render/prompt.h"
#include "retort/run/kept_result.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace fs = std::filesystem;
using nlohmann::json;

const OptionTable<Bench2dConfig>& bench2d_option_table() {
  static const auto table = [] {
    using C = Bench2dConfig;
    OptionTable<C> t;
    t.text("evaluator", &C::evaluator, "the classifier whose features score the particles (train-evaluator)");
    return t;
  }();
  return table;
}

const OptionTable<Bench2dConfig>& bench2d_eval_option_table() {
  static const auto table = [] {
    using C = Bench2dConfig;
    OptionTable<C> t;
    t.integer("k", &C::k, 1, 1000, "neighbours of precision / recall")
        .integer("teacher_steps", &C::teacher_steps, 0, 100000, "DDIM steps of the teacher row (0: no teacher row)")
        .number("teacher_cfg", &C::teacher_cfg, 0, 1000, "guidance scale of the teacher row")
        .integer("show", &C::show, 1, 1000, "particles per prompt in overview.png")
        .integer("seed", [](C& c) -> uint64_t& { return c.seed; }, 0, INT64_MAX, "seed of the teacher row's noise");
    return t;
  }();
  return table;
}

Bench2dConfig read_bench2d_config(ConfigNode root) {
  Bench2dConfig c;
  bench2d_option_table().read(root, c);
  c.base = read_generate2d_config(root);
  auto e = root.table("eval");
  bench2d_eval_option_table().read(e, c);
  if (!c.base.data)
    root.fail("data", "bench-2d scores the particles against real images of the prompts' classes: give a [data] table");
  auto g = root.table("generate2d");
  for (auto& r : root.tables("run")) {
    auto run = read_generate2d_keys(c.base, g, &r);
    auto name = r.string("name", fmt::format("{}{}{}", run.method, run.method == "sds" ? "" : "-" + run.fake,
                                             run.method != "asd" ? "" : run.objective.asd_real ? "-eq5" : "-eq6"));
    for (const auto& n : c.names)
      if (n == name) r.fail("name", fmt::format("'{}' is used twice", name));
    c.names.push_back(name);
    c.runs.push_back(run);
  }
  if (c.runs.empty()) root.fail("run", "no [[run]] tables: nothing to benchmark");
  root.finish();
  return c;
}

namespace {

// Real images with the particles' labels, position by position (the first images of each class in
// the split): [N, C, H, W].
torch::Tensor images_like(const ImageDataset& data, const torch::Tensor& labels, const std::string& split) {
  std::map<int64_t, int64_t> count, used;
  auto acc = labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < labels.size(0); ++i) ++count[acc[i]];
  std::map<int64_t, torch::Tensor> pools;
  for (auto [k, c] : count) {
    pools[k] = (data.labels == k).nonzero().flatten();
    if (pools[k].size(0) < c)
      throw ConfigError(fmt::format("data: the {} split has {} images of class {}; bench-2d compares {} particles of it "
                                    "with as many real images",
                                    split, pools[k].size(0), k, c));
  }
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < labels.size(0); ++i) idx.push_back(pools[acc[i]][used[acc[i]]++].item<int64_t>());
  return data.images.index_select(0, torch::tensor(idx, torch::kInt64));
}

// The evaluator's label of each teacher label: the same, or the world object of a prompt class.
torch::Tensor evaluator_labels(const torch::Tensor& labels, int64_t teacher_classes, int64_t evaluator_classes) {
  if (teacher_classes == evaluator_classes) return labels;
  return torch::div(labels, kNumViews, "floor");
}

json score(const std::string& name, const std::string& method, const std::string& phi, const std::string& loss,
           double cfg_scale, const torch::Tensor& images, const torch::Tensor& labels, Classifier& evaluator,
           const torch::Tensor& ref, int64_t k) {
  auto e = evaluate_images(evaluator, images.cpu(), labels.cpu(), ref, k);
  const double saturated = (images.abs() >= 0.99).to(torch::kFloat64).mean().item<double>();
  return {{"name", name},       {"method", method},       {"phi", phi},
          {"loss", loss},       {"cfg_scale", cfg_scale}, {"n", e.n},
          {"fid", e.fid},       {"precision", e.precision}, {"recall", e.recall},
          {"class_accuracy", e.class_accuracy}, {"saturated", saturated}};
}

// `show` images of each prompt (its particles are contiguous, `per_prompt` each).
torch::Tensor shown(const torch::Tensor& images, int64_t prompts, int64_t per_prompt, int64_t show) {
  std::vector<torch::Tensor> parts;
  for (int64_t p = 0; p < prompts; ++p) parts.push_back(images.narrow(0, p * per_prompt, std::min(show, per_prompt)));
  return torch::cat(parts);
}

}  // namespace

json run_bench2d(const Bench2dConfig& cfg, const fs::path& out, bool progress, const std::string& config_text) {
  const auto& B = cfg.base;
  auto teacher = load_diffusion_model(B.teacher);  // a bad teacher or evaluator is refused before anything is written
  const auto topt = teacher->shape();
  if (!fs::exists(cfg.evaluator)) throw IoError(fmt::format("{}: evaluator not found", cfg.evaluator.string()));
  auto evaluator = load_classifier(cfg.evaluator);
  const int64_t eval_classes = evaluator->options().num_classes;
  if (eval_classes != topt.num_classes && !(topt.num_classes == kNumPromptClasses && eval_classes == kNumObjectClasses))
    throw ConfigError(fmt::format("evaluator {} has {} classes; the teacher {} has {} (give the evaluator of the "
                                  "teacher's data set)",
                                  cfg.evaluator.string(), eval_classes, B.teacher.string(), topt.num_classes));
  std::vector<int64_t> all;
  for (const auto& p : B.prompts)
    for (auto l : prompt_labels(p, topt.num_classes, B.particles)) all.push_back(l);
  const auto labels = torch::tensor(all, torch::kInt64);
  const auto elabels = evaluator_labels(labels, topt.num_classes, eval_classes);
  auto test = load_dataset(*B.data, "test");
  auto train = load_dataset(*B.data, "train");
  if (test.images.sizes().slice(1) != torch::IntArrayRef{topt.channels, topt.resolution, topt.resolution})
    throw ConfigError(fmt::format("data: images are {}x{}x{} but the teacher {} makes {}x{}x{}", test.images.size(1),
                                  test.images.size(2), test.images.size(3), B.teacher.string(), topt.channels,
                                  topt.resolution, topt.resolution));
  auto ref_images = images_like(test, labels, "test");
  auto real_images = images_like(train, labels, "train");
  auto device = start_run(out, B.runtime);
  write_text_atomic(out / "config.resolved.toml", config_text);
  auto ref = classifier_features(evaluator, ref_images);
  const int64_t P = int64_t(B.prompts.size());

  json rows = json::array();
  std::vector<torch::Tensor> tiles;
  {
    rows.push_back(score("real (train split)", "", "", "", 0.0, real_images, elabels, evaluator, ref, cfg.k));
    tiles.push_back(shown(real_images, P, B.particles, cfg.show));
  }
  if (cfg.teacher_steps > 0) {
    auto dir = out / "runs" / "teacher";
    const auto run_text = config_text + "\n# teacher row\n";
    torch::Tensor images;
    if (auto kept = kept_result(dir / "result.json", run_text); !kept.is_null() && fs::exists(dir / "samples.safetensors")) {
      torch::Tensor l;
      load_image_file(dir / "samples.safetensors", &images, &l);
      rows.push_back(kept);
    } else {
      create_output_folder(dir);
      teacher->to(device);
      Rng rng(cfg.seed);
      TeacherSampling s;
      s.steps = cfg.teacher_steps;
      s.cfg = cfg.teacher_cfg;
      images = sample_teacher(*teacher, labels.to(device), s, rng).cpu().clamp(-1, 1);
      auto row = score(fmt::format("teacher DDIM {}", cfg.teacher_steps), "teacher", "", "", cfg.teacher_cfg, images,
                       elabels, evaluator, ref, cfg.k);
      save_safetensors(dir / "samples.safetensors", {{"images", images}, {"labels", labels}});
      keep_result(dir / "result.json", row, run_text);
      rows.push_back(row);
    }
    tiles.push_back(shown(images, P, B.particles, cfg.show));
  }
  for (size_t i = 0; i < cfg.runs.size(); ++i) {
    const auto& run = cfg.runs[i];
    auto dir = out / "runs" / cfg.names[i];
    const auto run_text = config_text + "\n# run " + cfg.names[i] + "\n";
    auto kept = kept_result(dir / "result.json", run_text);
    if (kept.is_null() || !fs::exists(dir / "particles.safetensors")) {
      auto r = run_generate2d(run, dir, progress, run_text);
      const bool sds = run.method == "sds";
      auto row = score(cfg.names[i], run.method, sds ? "" : run.fake,
                       run.method == "asd" ? (run.objective.asd_real ? "Eq. 5" : "Eq. 6") : "", run.objective.cfg_scale,
                       r.images, evaluator_labels(r.labels, topt.num_classes, eval_classes), evaluator, ref, cfg.k);
      row["steps"] = r.iterations;
      row["train_seconds"] = r.train_seconds;
      keep_result(dir / "result.json", row, run_text);
      std::fprintf(stderr, "%s: FID %.2f\n", cfg.names[i].c_str(), row["fid"].get<double>());
      kept = row;
    }
    rows.push_back(kept);
    torch::Tensor images, l;
    load_image_file(dir / "particles.safetensors", &images, &l);
    tiles.push_back(shown(images, P, B.particles, cfg.show));
  }
  json result = {{"rows", rows},
                 {"n", labels.size(0)},
                 {"k", cfg.k},
                 {"prompts", B.prompts},
                 {"evaluator", cfg.evaluator.string()},
                 {"teacher", B.teacher.string()}};
  write_png_grid(out / "overview.png", torch::cat(tiles), std::min<int64_t>(cfg.show, B.particles) * P);
  write_text_atomic(out / "results.json", result.dump(2));
  write_text_atomic(out / "results.md", bench2d_markdown(result));
  return result;
}

std::string bench2d_markdown(const json& result) {
  std::string s = fmt::format(
      "{} particles ({}), scored against as many test images of their classes with {} (k = {}).\n"
      "overview.png rows: {}.\n\n",
      result["n"].get<int64_t>(), fmt::join(result["prompts"].get<std::vector<std::string>>(), ", "),
      result["evaluator"].get<std::string>(), result["k"].get<int64_t>(), [&] {
        std::vector<std::string> names;
        for (const auto& r : result["rows"]) names.push_back(r["name"].get<std::string>());
        return fmt::format("{}", fmt::join(names, ", "));
      }());
  s += "| row | method | φ | D loss | λ | FID | precision | recall | class acc | saturated px | steps | train s |\n"
       "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : result["rows"]) {
    const double cfg = r.value("cfg_scale", 0.0);
    s += fmt::format("| {} | {} | {} | {} | {} | {:.2f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {} |\n",
                     r["name"].get<std::string>(), r.value("method", ""), r.value("phi", ""), r.value("loss", ""),
                     cfg > 0 ? fmt::format("{:g}", cfg) : "", r["fid"].get<double>(), r["precision"].get<double>(),
                     r["recall"].get<double>(), r["class_accuracy"].get<double>(), r["saturated"].get<double>(),
                     r.contains("steps") ? std::to_string(r["steps"].get<int64_t>()) : "",
                     r.contains("train_seconds") ? fmt::format("{:.0f}", r["train_seconds"].get<double>()) : "");
  }
  return s;
}

}  // namespace retort
