#include "retort/nvs/nvs_bench.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/eval/image_metrics.h"
#include "retort/eval/view_consistency.h"
#include "retort/eval/view_metrics.h"
#include "retort/io/fingerprint.h"
#include "retort/io/safetensors.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_model.h"
#include "retort/nvs/video_teacher.h"
#include "retort/run/kept_result.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace fs = std::filesystem;
namespace F = torch::nn::functional;

const OptionTable<NvsBenchConfig>& nvs_bench_option_table() {
  static const auto t = [] {
    using C = NvsBenchConfig;
    OptionTable<C> o;
    o.text("scenes", &C::scenes, "held-out clips (render-scenes' test.safetensors)")
        .text("evaluator", &C::evaluator,
              "classifier at the clips' resolution whose features give the feature distance and FID "
              "(train-evaluator on render-world data)")
        .integer("clips", &C::clips, 2, 1'000'000, "the first N clips of `scenes` are scored")
        .integer("batch", &C::batch, 1, 100'000, "clips per network call")
        .integer("seed", [](C& c) -> uint64_t& { return c.seed; }, 0, INT64_MAX, "seed of every row's noise")
        .flag("point_cloud", &C::point_cloud, "score the point-cloud render with its holes filled (no network)");
    return o;
  }();
  return t;
}

const OptionTable<NvsBenchModel>& nvs_bench_model_option_table() {
  static const auto t = [] {
    using M = NvsBenchModel;
    OptionTable<M> o;
    o.text("name", &M::name, "the row's name (required, unique)")
        .text("file", &M::file, "nvs-teacher.safetensors or a distill-nvs student.safetensors (required)")
        .integer("steps", &M::steps, 1, 100'000, "a teacher's DDIM steps (a student samples with its own)")
        .number("cfg", &M::cfg, 0, 100, "a teacher's guidance scale (1 = none)")
        .text("ablation", &M::ablation, "the row's label in the ablation table; empty: not in it");
    return o;
  }();
  return t;
}

NvsBenchConfig read_nvs_bench_config(ConfigNode root) {
  NvsBenchConfig c;
  nvs_bench_option_table().read(root, c);
  std::set<std::string> names;
  for (auto& r : root.tables("model")) {
    NvsBenchModel m;
    nvs_bench_model_option_table().read(r, m);
    if (m.name.empty()) r.fail("name", "every [[model]] needs a name");
    if (!names.insert(m.name).second) r.fail("name", fmt::format("'{}' is used twice", m.name));
    if (m.file.empty()) r.fail("file", "every [[model]] needs a file");
    if (!fs::is_regular_file(m.file)) r.fail("file", fmt::format("{}: no such file", m.file.string()));
    if ((r.has("steps") || r.has("cfg")) && load_student(m.file))
      r.fail(r.has("steps") ? "steps" : "cfg", "a student samples with its own steps; steps and cfg are a teacher's");
    c.models.push_back(m);
  }
  if (c.models.empty() && !c.point_cloud) root.fail("model", "no [[model]] rows and point_cloud = false: nothing to score");
  auto rec = root.table("reconstruction");
  reconstruction_option_table().read(rec, c.reconstruction);
  c.runtime = read_runtime_options(root.table("runtime"));
  root.finish();
  return c;
}

torch::Tensor fill_holes(const torch::Tensor& images, const torch::Tensor& mask) {
  auto known = (mask.dim() == images.dim() ? mask : mask.unsqueeze(1)).to(images.dtype()).clone();
  auto out = images * known;
  const auto ones = torch::ones({1, 1, 3, 3}, images.options());
  for (int64_t ring = 0; ring < images.size(-1) + images.size(-2); ++ring) {
    auto unknown = known.eq(0);
    if (!unknown.any().item<bool>()) break;
    auto count = F::conv2d(known, ones, F::Conv2dFuncOptions().padding(1));
    const int64_t C = out.size(1);
    auto sum = F::conv2d(out.reshape({-1, 1, out.size(2), out.size(3)}), ones, F::Conv2dFuncOptions().padding(1))
                   .reshape(out.sizes());
    auto grow = unknown & count.gt(0);
    if (!grow.any().item<bool>()) break;  // an image with no known pixel
    out = torch::where(grow.expand({-1, C, -1, -1}), sum / count.clamp_min(1), out);
    known = torch::where(grow, torch::ones_like(known), known);
  }
  return torch::where(known.eq(0).expand_as(out), images, out);
}

namespace {

// What every row is scored against: the held-out clips and their true geometry.
struct Truth {
  SceneDataset data;
  int64_t n = 0, K = 0, R = 0;
  torch::Tensor frames01;           // [n,K,3,R,R] in [0,1]
  torch::Tensor novel01, holes;     // frames 1..K-1 as [n(K-1),3,R,R]; the point cloud's holes [n(K-1),1,R,R]
  std::vector<ViewSet> geometry;    // per clip: cameras, distance along each ray, surface mask
  torch::Tensor reference;          // evaluator features of novel01
  // The reconstructed scenes: held-out cameras and the exact renders there ([K-1,3,R,R] in [0,1]).
  std::vector<std::vector<Camera>> test_cameras;
  std::vector<torch::Tensor> test_images;
};

// The input view(s) of clip i with their cameras, then `frames01` [K,3,R,R]'s frames 1..K-1 at the
// trajectory's cameras (none when undefined).
std::pair<torch::Tensor, std::vector<Camera>> training_views(const Truth& t, int64_t i, const torch::Tensor& frames01) {
  std::vector<Camera> cams{t.geometry[size_t(i)].cameras.front()};
  std::vector<torch::Tensor> views{(t.data.inputs[i][0] + 1) / 2};
  if (t.data.views == 2) {
    cams.push_back(t.geometry[size_t(i)].cameras.back());
    views.push_back((t.data.inputs[i][1] + 1) / 2);
  }
  if (frames01.defined())
    for (int64_t f = 1; f < t.K; ++f) {
      cams.push_back(t.geometry[size_t(i)].cameras[size_t(f)]);
      views.push_back(frames01[f]);
    }
  return {torch::stack(views), cams};
}

// Mean held-out PSNR over the reconstructed scenes of fields fitted to the input view(s) plus
// `clips01`'s frames (undefined: the input alone). Every variant of a scene draws the same rays.
double reconstruct(const Truth& t, const torch::Tensor& clips01, const NvsBenchConfig& cfg) {
  double sum = 0;
  for (size_t i = 0; i < t.test_cameras.size(); ++i) {
    auto [views, cams] = training_views(t, int64_t(i), clips01.defined() ? clips01[int64_t(i)] : torch::Tensor());
    Rng rng(cfg.seed + 1000 + i);
    sum += reconstruction_psnr(views, cams, t.test_images[i], t.test_cameras[i], cfg.reconstruction, rng);
  }
  return sum / double(t.test_cameras.size());
}

Truth load_truth(const NvsBenchConfig& cfg, SceneDataset scenes, Classifier* evaluator) {
  Truth t;
  t.data = std::move(scenes);
  t.n = std::min<int64_t>(cfg.clips, t.data.frames.size(0));
  if (t.n < 2) throw ConfigError(fmt::format("scenes: {} holds {} clips; bench-nvs needs at least 2", cfg.scenes, t.n));
  t.K = t.data.frames_per_clip, t.R = t.data.resolution;
  if (t.K < 2) throw ConfigError(fmt::format("scenes: {} has clips of {} frame; novel views need 2 or more", cfg.scenes, t.K));
  t.frames01 = (t.data.frames.narrow(0, 0, t.n) + 1) / 2;
  t.novel01 = t.frames01.slice(1, 1).reshape({-1, 3, t.R, t.R});
  t.holes = 1 - t.data.masks.narrow(0, 0, t.n).slice(1, 1).reshape({-1, 1, t.R, t.R});
  for (int64_t i = 0; i < t.n; ++i) {
    ViewSet v;
    for (int64_t f = 0; f < t.K; ++f) v.cameras.push_back(scene_camera(t.data, i, f));
    auto views = render_scene_views(t.data, i, v.cameras, t.R);
    std::vector<torch::Tensor> dist;
    for (int64_t f = 0; f < t.K; ++f) {
      // z-depth -> distance along the ray: divide by the cosine between the ray and the optical axis.
      auto forward = -v.cameras[f].c2w.index({torch::indexing::Slice(0, 3), 2});
      auto cosine = torch::matmul(camera_rays(v.cameras[f], t.R).dirs, forward).view({t.R, t.R});
      dist.push_back(views.depth[f] / cosine);
    }
    v.depth = torch::stack(dist);
    v.mask = torch::isfinite(v.depth) & views.alpha.gt(0.5);
    v.depth = torch::where(v.mask, v.depth, torch::zeros_like(v.depth));
    t.geometry.push_back(std::move(v));
  }
  if (evaluator) t.reference = classifier_features(*evaluator, t.novel01 * 2 - 1);
  for (int64_t i = 0; i < std::min(cfg.reconstruction.scenes, t.n); ++i) {
    t.test_cameras.push_back(held_out_cameras(t.geometry[size_t(i)].cameras));
    t.test_images.push_back(render_scene_views(t.data, i, t.test_cameras.back(), t.R).images.add(1).div(2));
  }
  return t;
}

double finite_mean(const torch::Tensor& x) {
  auto finite = x.isfinite();
  return finite.any().item<bool>() ? x.masked_select(finite).mean().item<double>() : NAN;
}

nlohmann::json score(const torch::Tensor& clips, const Truth& t, Classifier* evaluator, const NvsBenchConfig& cfg) {
  auto clips01 = ((clips.to(torch::kCPU, torch::kFloat32) + 1) / 2).clamp(0, 1);
  auto novel = clips01.slice(1, 1).reshape({-1, 3, t.R, t.R});
  nlohmann::json s;
  s["psnr"] = psnr(novel, t.novel01).mean().item<double>();
  s["psnr_covered"] = finite_mean(masked_psnr(novel, t.novel01, 1 - t.holes));
  s["psnr_holes"] = finite_mean(masked_psnr(novel, t.novel01, t.holes));
  s["ssim"] = t.R >= 11 ? ssim(novel, t.novel01).mean().item<double>() : NAN;
  if (evaluator) {
    torch::NoGradGuard ng;
    s["feature_distance"] = feature_distance(**evaluator, novel, t.novel01).mean().item<double>();
    s["fid"] = frechet_distance(classifier_features(*evaluator, novel * 2 - 1), t.reference);
  }
  std::vector<double> l1, matched;
  for (int64_t i = 0; i < t.n; ++i) {
    ViewSet v = t.geometry[size_t(i)];
    v.images = clips01[i];
    auto c = view_consistency(v);
    l1.push_back(c.l1);
    matched.push_back(c.matched);
  }
  s["consistency_l1"] = finite_mean(torch::tensor(l1));
  s["consistency_matched"] = finite_mean(torch::tensor(matched));
  if (!t.test_cameras.empty()) s["reconstruction_psnr"] = reconstruct(t, clips01, cfg);
  return s;
}

std::string fmt_or_dash(const nlohmann::json& row, const char* key, const char* spec) {
  if (!row.contains(key) || !row[key].is_number()) return "—";
  const double v = row[key].get<double>();
  return std::isfinite(v) ? fmt::format(fmt::runtime(spec), v) : "—";
}

}  // namespace

nlohmann::json run_nvs_bench(const NvsBenchConfig& cfg, const fs::path& out, bool progress,
                             const std::string& config_text) {
  // Every model file is read before anything is written: a wrong one is refused first.
  std::vector<VideoModel> models;
  for (const auto& m : cfg.models) models.push_back(load_video_model(m.file));
  Classifier evaluator{nullptr};
  if (!cfg.evaluator.empty()) evaluator = load_classifier(cfg.evaluator);
  apply_runtime(cfg.runtime);
  auto scenes = load_scene_dataset(cfg.scenes);
  if (evaluator && evaluator->options().resolution != scenes.resolution)
    throw ConfigError(fmt::format("evaluator: {} takes {} px, the clips of {} are {} px", cfg.evaluator.string(),
                                  evaluator->options().resolution, cfg.scenes, scenes.resolution));
  Truth t = load_truth(cfg, std::move(scenes), evaluator ? &evaluator : nullptr);
  for (size_t i = 0; i < models.size(); ++i)
    if (models[i].frames() != t.K || models[i].resolution() != t.R)
      throw ConfigError(fmt::format("model {}: {} makes {} frames at {} px, the clips have {} at {} px", cfg.models[i].name,
                                    cfg.models[i].file.string(), models[i].frames(), models[i].resolution(), t.K, t.R));
  auto device = start_run(out, cfg.runtime);
  write_text_atomic(out / "config.resolved.toml", config_text);
  create_output_folder(out / "rows");
  const auto& rc = cfg.reconstruction;
  const std::string shared = fmt::format(
      "scenes {} evaluator {} clips {} batch {} seed {} reconstruction {} {} {} {} {} {} {}", file_fingerprint(cfg.scenes),
      cfg.evaluator.empty() ? "none" : file_fingerprint(cfg.evaluator), t.n, cfg.batch, cfg.seed, rc.scenes, rc.steps,
      rc.rays, rc.lr, rc.voxels, rc.bound, rc.samples);
  const int64_t shown = std::min<int64_t>(2, t.n);
  std::vector<torch::Tensor> strip{t.data.renders.narrow(0, 0, shown)};
  nlohmann::json rows = nlohmann::json::array();
  // Runs one row (or takes it from rows/NN.json): `generate` returns clips [n,K,3,R,R] in [-1,1].
  auto row = [&](size_t index, const std::string& name, const std::string& identity, const nlohmann::json& about,
                 const std::function<torch::Tensor()>& generate) {
    const auto kept = out / "rows" / fmt::format("{:02d}.json", index);
    const auto clips_file = out / "rows" / fmt::format("{:02d}.safetensors", index);
    const std::string id = shared + "\n" + identity;
    auto r = kept_result(kept, id);
    if (r.is_null() || !fs::exists(clips_file)) {
      auto t0 = std::chrono::steady_clock::now();
      auto clips = generate().cpu();
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r = score(clips, t, evaluator ? &evaluator : nullptr, cfg);
      r.update(about);
      r["name"] = name;
      r["seconds_per_trajectory"] = sec / double(t.n);
      save_safetensors(clips_file, {{"clips", clips.narrow(0, 0, shown).contiguous()}});
      keep_result(kept, r, id);
    }
    strip.push_back(load_safetensors(clips_file).at("clips"));
    rows.push_back(r);
  };
  ProgressBar bar("bench-nvs", int64_t(cfg.models.size()) + (cfg.point_cloud ? 1 : 0), 0, progress);
  size_t index = 0;
  if (cfg.point_cloud) {
    row(index++, "point cloud + hole filling", "point cloud", {{"evaluations", 0}, {"kind", "baseline"}}, [&] {
      auto renders = t.data.renders.narrow(0, 0, t.n).reshape({-1, 3, t.R, t.R});
      auto masks = t.data.masks.narrow(0, 0, t.n).reshape({-1, 1, t.R, t.R});
      return fill_holes(renders, masks).view({t.n, t.K, 3, t.R, t.R});
    });
    bar.update(int64_t(index));
  }
  for (size_t i = 0; i < models.size(); ++i) {
    auto& m = models[i];
    const auto& spec = cfg.models[i];
    const TeacherSampling s{spec.steps, spec.cfg, 0.0, 1.0, cfg.batch};
    nlohmann::json about{{"evaluations", m.evaluations(s)}, {"kind", m.student ? "student" : "teacher"},
                         {"model", m.describe(s)}, {"file", spec.file.string()}};
    if (!spec.ablation.empty()) about["ablation"] = spec.ablation;
    row(index++, spec.name, fmt::format("{} {} {} {} {}", spec.name, file_fingerprint(spec.file), spec.steps, spec.cfg,
                                        spec.ablation),
        about, [&] {
          m.net->to(device);
          auto concat = nvs_concat(t.data.renders.narrow(0, 0, t.n), t.data.masks.narrow(0, 0, t.n), m.reads_mask());
          Rng rng(cfg.seed);
          std::vector<torch::Tensor> parts;
          for (int64_t b = 0; b < t.n; b += cfg.batch)
            parts.push_back(generate_clips(m, concat.slice(0, b, std::min(t.n, b + cfg.batch)).to(device), s, rng).cpu());
          return torch::cat(parts);
        });
    bar.update(int64_t(index));
  }
  bar.finish();
  strip.push_back(t.data.frames.narrow(0, 0, shown));
  write_clip_rows(out / "strip.png", strip);
  // The floor of the view-consistency measure: the ground truth's own score.
  std::vector<double> floor;
  for (int64_t i = 0; i < t.n; ++i) {
    ViewSet v = t.geometry[size_t(i)];
    v.images = t.frames01[i];
    floor.push_back(view_consistency(v).l1);
  }
  nlohmann::json results{{"rows", rows},
                         {"clips", t.n},
                         {"frames", t.K},
                         {"resolution", t.R},
                         {"scenes", cfg.scenes},
                         {"evaluator", cfg.evaluator.string()},
                         {"truth_consistency_l1", finite_mean(torch::tensor(floor))}};
  if (!t.test_cameras.empty()) {
    results["reconstructed_scenes"] = int64_t(t.test_cameras.size());
    results["reconstruction_inputs_only"] = reconstruct(t, torch::Tensor(), cfg);
    results["reconstruction_oracle"] = reconstruct(t, t.frames01, cfg);
  }
  write_text_atomic(out / "results.json", results.dump(2) + "\n");
  write_text_atomic(out / "results.md", nvs_bench_markdown(results));
  return results;
}

std::string nvs_bench_markdown(const nlohmann::json& res) {
  std::string md = fmt::format(
      "{} held-out clips of {} frames at {} px ({}); scores over frames 1..{} ({} views per row); view "
      "consistency of the ground truth itself: {:.4f}\n\n",
      res["clips"].get<int64_t>(), res["frames"].get<int64_t>(), res["resolution"].get<int64_t>(),
      res["scenes"].get<std::string>(), res["frames"].get<int64_t>() - 1,
      res["clips"].get<int64_t>() * (res["frames"].get<int64_t>() - 1), res["truth_consistency_l1"].get<double>());
  if (res.contains("reconstruction_oracle"))
    md += fmt::format("Reconstruction (a voxel field fitted to the input view plus a row's frames, PSNR at {} held-out "
                      "cameras per scene, {} scenes): input view alone {:.2f} dB, input + ground-truth frames (the "
                      "oracle) {:.2f} dB.\n\n",
                      res["frames"].get<int64_t>() - 1, res["reconstructed_scenes"].get<int64_t>(),
                      res["reconstruction_inputs_only"].get<double>(), res["reconstruction_oracle"].get<double>());
  md += "| method | evaluations | PSNR | PSNR covered | PSNR holes | SSIM | feature dist. | FID | view consistency L1 | "
        "recon. PSNR | s / trajectory |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  bool ablation = false;
  for (const auto& r : res["rows"]) {
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r["name"].get<std::string>(),
                      r["evaluations"].get<int64_t>(), fmt_or_dash(r, "psnr", "{:.2f}"),
                      fmt_or_dash(r, "psnr_covered", "{:.2f}"), fmt_or_dash(r, "psnr_holes", "{:.2f}"),
                      fmt_or_dash(r, "ssim", "{:.3f}"), fmt_or_dash(r, "feature_distance", "{:.4f}"),
                      fmt_or_dash(r, "fid", "{:.2f}"), fmt_or_dash(r, "consistency_l1", "{:.4f}"),
                      fmt_or_dash(r, "reconstruction_psnr", "{:.2f}"), fmt_or_dash(r, "seconds_per_trajectory", "{:.3f}"));
    ablation = ablation || r.contains("ablation");
  }
  if (!ablation) return md;
  // One line per variant: the mean over its rows (seeds), each row's value after it.
  md += "\nAblation (FVGen's Table: no GAN init < GAN only < GAN + RKL < GAN + softened RKL in PSNR; a variant "
        "with several rows (seeds) shows their mean, then each row)\n\n"
        "| variant | rows | PSNR | SSIM | FID |\n|---|---|---|---|---|\n";
  std::vector<std::string> labels;
  for (const auto& r : res["rows"])
    if (r.contains("ablation")) {
      const auto label = r["ablation"].get<std::string>();
      if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
    }
  for (const auto& label : labels) {
    std::vector<std::string> names;
    std::map<std::string, std::vector<double>> v;
    for (const auto& r : res["rows"])
      if (r.contains("ablation") && r["ablation"] == label) {
        names.push_back(r["name"].get<std::string>());
        for (const char* k : {"psnr", "ssim", "fid"})
          if (r.contains(k)) v[k].push_back(r[k].get<double>());
      }
    auto cell = [&](const char* k, const char* f) {
      const auto& x = v[k];
      if (x.empty()) return std::string("-");
      std::vector<std::string> each;
      for (double a : x) each.push_back(fmt::format(fmt::runtime(f), a));
      const double mean = std::accumulate(x.begin(), x.end(), 0.0) / double(x.size());
      return x.size() == 1 ? each[0] : fmt::format("{} ({})", fmt::format(fmt::runtime(f), mean), fmt::join(each, ", "));
    };
    md += fmt::format("| {} | {} | {} | {} | {} |\n", label, fmt::join(names, ", "), cell("psnr", "{:.2f}"),
                      cell("ssim", "{:.3f}"), cell("fid", "{:.2f}"));
  }
  return md;
}

}  // namespace retort
