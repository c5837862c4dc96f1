#include "retort/text3d/eval3d.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/eval/image_metrics.h"
#include "retort/render/world.h"
#include "retort/eval/view_consistency.h"
#include "retort/run/run_folder.h"
#include "retort/run/kept_result.h"
#include "retort/text3d/shape_scores.h"

namespace retort {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Why `text` is not an eval3d prompt ("a COLOUR SHAPE" without a view suffix), or nothing.
std::optional<std::string> eval3d_prompt_problem(const std::string& text) {
  Prompt parsed;
  try {
    parsed = parse_prompt(text);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  if (parsed.view) return fmt::format("'{}': leave out the view suffix", text);
  return std::nullopt;
}

std::vector<std::string> read_prompts_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("prompts_file {}: cannot be read", path.string()));
  std::vector<std::string> prompts;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    auto b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos) continue;
    line = line.substr(b, e - b + 1);
    if (auto why = eval3d_prompt_problem(line)) throw ConfigError(fmt::format("{}:{}: {}", path.string(), n, *why));
    prompts.push_back(line);
  }
  if (prompts.empty()) throw ConfigError(fmt::format("prompts_file {}: no prompts in it", path.string()));
  return prompts;
}

}  // namespace

const OptionTable<Eval3dConfig>& eval3d_option_table() {
  static const auto table = [] {
    using C = Eval3dConfig;
    OptionTable<C> t;
    t.text("evaluator", &C::evaluator, "the world classifier (train-evaluator on the 48 object classes)")
        .strings("prompts", &C::prompts, {}, "\"a COLOUR SHAPE\", without a view suffix")
        .text("prompts_file", &C::prompts_file,
              "a file of prompts, one per line ('#' starts a comment); replaces `prompts` (configs/prompts-heldout.txt)")
        .strings("methods", &C::methods, generate3d_method_names(), "the methods compared")
        .check([](ConfigNode& root, const C& c) {
          if (c.prompts.empty()) root.fail("prompts", "give at least one prompt");
          if (c.methods.empty()) root.fail("methods", "give at least one method");
          for (const auto& p : c.prompts)
            if (auto why = eval3d_prompt_problem(p)) root.fail("prompts", *why);
        });
    return t;
  }();
  return table;
}

const OptionTable<Eval3dConfig>& eval3d_table_option_table() {
  static const auto table = [] {
    using C = Eval3dConfig;
    OptionTable<C> t;
    t.integer("views", &C::views, 2, 100000, "random renders scored per result")
        .integer("ring", &C::ring, 2, 360, "views of the multi-view consistency ring")
        .integer("seed", &C::seed, 0, INT64_MAX, "seed of the scoring cameras")
        .integer("seeds", &C::seeds, 1, 100, "generate3d runs per method x prompt: seeds seed, seed + 1, ... "
                 "of [generate3d]")
        .integer("grid", [](C& c) -> int64_t& { return c.shape.grid; }, 8, 512,
                 "occupancy-IoU grid vertices per axis over the field's box")
        .integer("chamfer_resolution", [](C& c) -> int64_t& { return c.shape.mesh_resolution; }, 8, 512,
                 "marching-cubes grid per axis of both surfaces for the Chamfer distance");
    return t;
  }();
  return table;
}

Eval3dConfig read_eval3d_config(ConfigNode& root) {
  Eval3dConfig c;
  eval3d_option_table().read(root, c);
  if (!c.prompts_file.empty()) c.prompts = read_prompts_file(c.prompts_file);
  auto e = root.table("eval3d");
  eval3d_table_option_table().read(e, c);
  c.base = read_generate3d_config(root);
  // Each method's run reads the file as generate3d would with that method, so its presets (SDS's
  // lambda 100) apply unless the file sets the key; each run folder records its own resolved config.
  for (const auto& m : c.methods) {
    auto node = root.with_overrides({"generate3d.method=" + m});
    c.runs[m] = read_generate3d_config(node);
    c.run_configs[m] = node.resolved_toml();
  }
  return c;
}

namespace {

std::string slug(const std::string& prompt) {
  auto p = parse_prompt(prompt);
  return colour_name(p.colour) + "-" + shape_name(p.shape);
}

struct Scores {
  double p_shape = 0, p_colour = 0, p_prompt = 0, fid = 0, silhouette_iou = 0, occupancy_iou = 0, chamfer = 0,
         l1 = 0, matched = 0, sec_per_it = 0, scale = 0;
};

// The columns of the table, in order, with how each is printed.
struct Column {
  const char* name;
  double Scores::*field;
  int digits;
  bool for_truth;  // false: the true object's cell says "reference" (FID) or is empty (s/it)
};
const std::vector<Column>& columns() {
  static const std::vector<Column> c = {
      {"p(shape)", &Scores::p_shape, 3, true},          {"p(colour)", &Scores::p_colour, 3, true},
      {"p(prompt)", &Scores::p_prompt, 3, true},        {"FID", &Scores::fid, 1, false},
      {"silhouette IoU", &Scores::silhouette_iou, 3, true}, {"occupancy IoU", &Scores::occupancy_iou, 3, true},
      {"Chamfer", &Scores::chamfer, 4, true},           {"view L1", &Scores::l1, 4, true},
      {"matched", &Scores::matched, 2, true},           {"s/it", &Scores::sec_per_it, 2, false}};
  return c;
}

json to_json(const Scores& s) {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  return {{"p_shape", s.p_shape},
          {"p_colour", s.p_colour},
          {"p_prompt", s.p_prompt},
          {"fid", s.fid},
          {"silhouette_iou", s.silhouette_iou},
          {"occupancy_iou", s.occupancy_iou},
          {"chamfer", num(s.chamfer)},
          {"true_scale", s.scale},
          {"consistency_l1", s.l1},
          {"consistency_matched", s.matched},
          {"seconds_per_iteration", s.sec_per_it}};
}

// Classifier probabilities of the prompt's shape, colour and object class, averaged over images.
void classify(Classifier& clf, const torch::Tensor& images, const Prompt& p, Scores& s) {
  torch::NoGradGuard ng;
  clf->eval();
  auto probs = torch::softmax(clf->forward(images), 1).view({-1, kNumShapes, kNumColours});
  int64_t sh = int64_t(p.shape), co = int64_t(p.colour);
  s.p_shape = probs.sum(2).select(1, sh).mean().item<double>();
  s.p_colour = probs.sum(1).select(1, co).mean().item<double>();
  s.p_prompt = probs.select(1, sh).select(1, co).mean().item<double>();
}

struct TrueObject {
  Object object;
  torch::Tensor images;  // [-1,1] at the eval cameras
  std::vector<Vec3> lights;  // of each eval camera's image
  ViewSet ring;
};

// One light for the whole ring: colour must not change with the view.
const Vec3 kRingLight = normalize(Vec3{0.3, 0.2, 0.9});

// A shaded field is lit as the true object is (unshaded fields ignore the lights).
std::vector<Shading> lit_as_truth(FieldGenerator& gen, const std::vector<Camera>& cams, const std::vector<Vec3>& lights) {
  std::vector<Shading> out;
  for (size_t i = 0; i < cams.size(); ++i) out.push_back(gen->shading(lights[i]));
  return out;
}

TrueObject render_truth(const Prompt& p, const std::vector<Camera>& cams, const std::vector<Camera>& ring, int64_t res,
                        uint64_t seed) {
  TrueObject t;
  t.object = Object{p.shape, p.colour, 0.5 * (kMinScale + kMaxScale)};
  std::mt19937_64 mt(seed);
  std::vector<torch::Tensor> imgs;
  for (const auto& cam : cams) {
    RenderOptions ro;
    ro.light = random_light(cam, mt);
    t.lights.push_back(*ro.light);
    imgs.push_back(render_object(t.object, cam, res, ro).image * 2 - 1);
  }
  t.images = torch::stack(imgs);
  std::vector<torch::Tensor> ri, rd, rm;
  RenderOptions fixed;
  fixed.light = kRingLight;
  for (const auto& cam : ring) {
    auto r = render_object(t.object, cam, res, fixed);
    ri.push_back(r.image);
    rm.push_back(r.alpha > 0.5);
    rd.push_back(torch::where(torch::isfinite(r.depth), r.depth, torch::zeros_like(r.depth)));
  }
  t.ring = ViewSet{ring, torch::stack(ri), torch::stack(rd), torch::stack(rm)};
  return t;
}

ViewSet render_ring(FieldGenerator& gen, const std::vector<Camera>& ring, int64_t res) {
  torch::Tensor opacity, depth;
  const auto lights = lit_as_truth(gen, ring, std::vector<Vec3>(ring.size(), kRingLight));
  auto g = gen->render(ring, res, false, nullptr, &opacity, &depth, &lights);
  return ViewSet{ring, (g.x0 + 1) / 2, depth / opacity.clamp_min(1e-6), opacity > 0.5};
}

// Scores of one field against the prompt's object; the ring's images come back for overview.png.
Scores score_field(FieldGenerator& gen, Classifier& clf, const Prompt& p, const TrueObject& truth,
                   const torch::Tensor& real_features, const std::vector<Camera>& cams, const std::vector<Camera>& ring,
                   int64_t res, const ShapeScoreOptions& shape, torch::Tensor* ring_images) {
  Scores s;
  torch::Tensor opacity;
  const auto lights = lit_as_truth(gen, cams, truth.lights);
  auto images = gen->render(cams, res, false, nullptr, &opacity, nullptr, &lights).x0;
  classify(clf, images, p, s);
  s.fid = frechet_distance(classifier_features(clf, images), real_features);
  auto geometry = score_shape(*gen->field, opacity, cams, truth.object, shape);
  s.silhouette_iou = geometry.silhouette_iou;
  s.occupancy_iou = geometry.occupancy_iou;
  s.chamfer = geometry.chamfer;
  s.scale = geometry.scale;
  auto rv = render_ring(gen, ring, res);
  auto c = view_consistency(rv);
  s.l1 = c.l1;
  s.matched = c.matched;
  *ring_images = rv.images;
  return s;
}

std::string cell(const std::vector<double>& v, int digits) {
  double mean = 0;
  for (double x : v) mean += x / double(v.size());
  if (!std::isfinite(mean)) return "no surface";
  if (v.size() == 1) return fmt::format("{:.{}f}", mean, digits);
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean) / double(v.size() - 1);
  return fmt::format("{:.{}f} ± {:.{}f}", mean, digits, std::sqrt(var), digits);
}

// One table row: each column's mean ± standard deviation over `runs` (the seeds).
std::string fmt_row(const std::string& method, const std::string& prompt, const std::vector<Scores>& runs) {
  const bool truth = method == "true object", trained = !truth && method != "initial field";
  std::string row = fmt::format("| {} | {} |", method, prompt);
  for (const auto& c : columns()) {
    std::vector<double> v;
    for (const auto& s : runs) v.push_back(s.*c.field);
    if (truth && !c.for_truth)
      row += c.field == &Scores::fid ? " 0 (reference) |" : " |";
    else if (!trained && c.field == &Scores::sec_per_it)
      row += " |";
    else
      row += " " + cell(v, c.digits) + " |";
  }
  return row + "\n";
}

// Per seed, the mean over prompts of each column (by_prompt[prompt][seed]).
std::vector<Scores> mean_over_prompts(const std::vector<std::vector<Scores>>& by_prompt) {
  std::vector<Scores> out(by_prompt.front().size());
  for (const auto& runs : by_prompt)
    for (size_t k = 0; k < runs.size(); ++k)
      for (const auto& c : columns()) out[k].*c.field += runs[k].*c.field / double(by_prompt.size());
  return out;
}

}  // namespace

std::string run_eval3d(const Eval3dConfig& cfg, const fs::path& out, bool progress, const std::string& config_text) {
  // [runtime] before any scoring: the true object's row and results kept from an earlier process
  // are scored here, and must see the threads a fresh run's generate3d sets (tests/scripts/kill9_anywhere.sh).
  start_run(out, cfg.base.runtime);
  if (!fs::exists(cfg.evaluator)) throw IoError(fmt::format("{}: evaluator not found", cfg.evaluator.string()));
  auto clf = load_classifier(cfg.evaluator);
  if (clf->options().num_classes != kNumObjectClasses || clf->options().channels != 3)
    throw ConfigError(fmt::format("evaluator {}: expected an RGB classifier over the world's {} object classes "
                                  "(retort train-evaluator with [data] source = \"world\", labels = \"object\")",
                                  cfg.evaluator.string(), kNumObjectClasses));
  write_text_atomic(out / "config.resolved.toml", config_text);
  const int64_t res = cfg.base.render.resolution;
  ShapeScoreOptions shape = cfg.shape;
  shape.threshold = cfg.base.outputs.mesh_threshold;

  // The same cameras for every method, seed and for the true object.
  std::vector<Camera> cams, ring;
  {
    FieldGenerator probe(make_field(cfg.base.field), parse_prompt(cfg.prompts.front()), cfg.base.render);
    Rng rng(cfg.seed);
    for (int64_t i = 0; i < cfg.views; ++i) cams.push_back(probe->random_camera(rng));
    double d = 0.5 * (cfg.base.render.cameras.distance[0] + cfg.base.render.cameras.distance[1]);
    double fovy = 0.5 * (cfg.base.render.cameras.fovy[0] + cfg.base.render.cameras.fovy[1]);
    for (int64_t i = 0; i < cfg.ring; ++i) ring.push_back(look_at_origin(360.0 * i / cfg.ring, 15.0, d, fovy));
  }
  std::vector<int64_t> show;  // views in overview.png: three azimuths of the ring
  for (int64_t k = 0; k < 3; ++k) show.push_back(k * cfg.ring / 3);

  json results = json::array();
  std::string header = "| method | prompt |";
  for (const auto& c : columns()) header += fmt::format(" {} |", c.name);
  header += "\n|---|---|";
  for (size_t i = 0; i < columns().size(); ++i) header += "---|";
  std::string table = header + "\n";
  // by_method[method][prompt][seed]
  std::map<std::string, std::vector<std::vector<Scores>>> by_method;
  std::vector<std::vector<torch::Tensor>> tiles(cfg.methods.size() + 1);
  for (const auto& text : cfg.prompts) {
    Prompt p = parse_prompt(text);
    auto truth = render_truth(p, cams, ring, res, cfg.seed + 1);
    auto real_features = classifier_features(clf, truth.images);
    {
      // The true object as a field, scored by the same code: each column's ceiling.
      FieldGenerator exact(std::make_shared<ObjectFieldImpl>(truth.object), p, cfg.base.render);
      torch::Tensor ring_images;
      Scores ts = score_field(exact, clf, p, truth, real_features, cams, ring, res, shape, &ring_images);
      classify(clf, truth.images, p, ts);  // the classifier scores of the true renders themselves
      ts.fid = 0;
      ts.sec_per_it = 0;
      auto tc = view_consistency(truth.ring);
      ts.l1 = tc.l1;
      ts.matched = tc.matched;
      by_method["true object"].push_back({ts});
      table += fmt_row("true object", text, {ts});
      results.push_back({{"method", "true object"}, {"prompt", text}, {"scores", to_json(ts)}});
      for (int64_t k : show) tiles[0].push_back(truth.ring.images[k] * 2 - 1);
      // Every run's starting point (the density blob), the floor a method has to rise from: the
      // field generate3d makes at its seed (seeded as there, so a resumed eval3d scores the same).
      torch::manual_seed(cfg.base.seed);
      FieldGenerator start(make_field(cfg.base.field), p, cfg.base.render);
      Scores ss = score_field(start, clf, p, truth, real_features, cams, ring, res, shape, &ring_images);
      by_method["initial field"].push_back({ss});
      table += fmt_row("initial field", text, {ss});
      results.push_back({{"method", "initial field"}, {"prompt", text}, {"scores", to_json(ss)}});
    }

    for (size_t mi = 0; mi < cfg.methods.size(); ++mi) {
      const auto& method = cfg.methods[mi];
      std::vector<Scores> seeds;
      for (int64_t k = 0; k < cfg.seeds; ++k) {
        auto run = cfg.runs.at(method);
        run.prompt = text;
        run.seed += uint64_t(k);
        auto dir = out / "runs" / method / slug(text) / fmt::format("seed-{}", k);
        Scores s;
        const auto done = dir / "result.json";
        // The run's identity is its own generate3d config and teacher, not eval3d's scoring keys: more
        // seeds, views or another grid reuse the runs already made.
        const auto run_text = run_identity(cfg.run_configs.at(method), run.teacher) +
                              fmt::format("\n# run: {} / {} / generate3d seed {}\n", method, text, run.seed);
        double sec_per_it = 0;
        if (auto kept = kept_result(done, run_text); kept.contains("seconds_per_iteration")) {
          sec_per_it = kept["seconds_per_iteration"].get<double>();
        } else {
          auto r = run_generate3d(run, dir, progress, run_text);
          sec_per_it = r.seconds_per_iteration;
          keep_result(done, json{{"seconds_per_iteration", sec_per_it}, {"iterations", r.iterations}}, run_text);
        }
        FieldGenerator gen(load_field(dir / "field.safetensors"), p, run.render);
        torch::Tensor ring_images;
        s = score_field(gen, clf, p, truth, real_features, cams, ring, res, shape, &ring_images);
        s.sec_per_it = sec_per_it;
        seeds.push_back(s);
        results.push_back({{"method", method}, {"prompt", text}, {"seed", k}, {"generate3d_seed", run.seed},
                           {"scores", to_json(s)}});
        if (k == 0)
          for (int64_t v : show) tiles[mi + 1].push_back(ring_images[v] * 2 - 1);
      }
      by_method[method].push_back(seeds);
      table += fmt_row(method, text, seeds);
    }
  }
  // Means over prompts, one row per method; with seeds, mean ± std over the seeds of that mean.
  table += "| **mean** | |";
  for (size_t i = 0; i < columns().size(); ++i) table += " |";
  table += "\n";
  std::vector<std::string> order = {"true object", "initial field"};
  for (const auto& m : cfg.methods) order.push_back(m);
  for (const auto& m : order) table += fmt_row(m, "all", mean_over_prompts(by_method[m]));

  std::vector<torch::Tensor> all;
  for (auto& row : tiles)
    for (auto& t : row) all.push_back(t);
  write_png_grid(out / "overview.png", torch::stack(all), int64_t(tiles[0].size()));
  write_text_atomic(out / "results.json", results.dump(2));
  std::string md = fmt::format(
      "{} random views per result ({}x{}), classifier {}; {} seed(s) per method x prompt (mean ± standard "
      "deviation over seeds; the mean rows: over seeds of the mean over prompts). Geometry against the prompt's "
      "object at its best-fitting scale of the data's range: silhouette IoU (opacity > 0.5) from the same views, "
      "occupancy IoU on a {}^3 grid and Chamfer distance (box width 1) at density {}; view L1 over a ring of {} "
      "views at 15 deg elevation. The initial field is every run's start (the density blob).\n"
      "overview.png rows (seed 0): true object, {}.\n\n{}",
      cfg.views, res, res, cfg.evaluator.string(), cfg.seeds, shape.grid, shape.threshold, cfg.ring,
      fmt::join(cfg.methods, ", "), table);
  write_text_atomic(out / "results.md", md);
  return md;
}

}  // namespace retort
