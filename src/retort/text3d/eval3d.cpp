#include "retort/text3d/eval3d.h"

#include <algorithm>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/eval/image_metrics.h"
#include "retort/render/world.h"
#include "retort/eval/view_consistency.h"
#include "retort/run/run_folder.h"
#include "retort/run/kept_result.h"

namespace retort {
namespace fs = std::filesystem;
using nlohmann::json;

const OptionTable<Eval3dConfig>& eval3d_option_table() {
  static const auto table = [] {
    using C = Eval3dConfig;
    OptionTable<C> t;
    t.text("evaluator", &C::evaluator, "the world classifier (train-evaluator on the 48 object classes)")
        .strings("prompts", &C::prompts, {}, "\"a COLOUR SHAPE\", without a view suffix")
        .strings("methods", &C::methods, generate3d_method_names(), "the methods compared")
        .check([](ConfigNode& root, const C& c) {
          if (c.prompts.empty()) root.fail("prompts", "give at least one prompt");
          if (c.methods.empty()) root.fail("methods", "give at least one method");
          for (const auto& p : c.prompts) {
            Prompt parsed;
            try {
              parsed = parse_prompt(p);
            } catch (const Error& e) {
              root.fail("prompts", e.what());
            }
            if (parsed.view) root.fail("prompts", fmt::format("'{}': leave out the view suffix", p));
          }
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
        .integer("seed", &C::seed, 0, INT64_MAX, "seed of the scoring cameras");
    return t;
  }();
  return table;
}

Eval3dConfig read_eval3d_config(ConfigNode& root) {
  Eval3dConfig c;
  eval3d_option_table().read(root, c);
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
  double p_shape = 0, p_colour = 0, p_prompt = 0, fid = 0, l1 = 0, matched = 0, sec_per_it = 0;
};

json to_json(const Scores& s) {
  return {{"p_shape", s.p_shape}, {"p_colour", s.p_colour}, {"p_prompt", s.p_prompt}, {"fid", s.fid},
          {"consistency_l1", s.l1}, {"consistency_matched", s.matched}, {"seconds_per_iteration", s.sec_per_it}};
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
  ViewSet ring;
};

TrueObject render_truth(const Prompt& p, const std::vector<Camera>& cams, const std::vector<Camera>& ring, int64_t res,
                        uint64_t seed) {
  TrueObject t;
  t.object = Object{p.shape, p.colour, 0.5 * (kMinScale + kMaxScale)};
  std::mt19937_64 mt(seed);
  std::vector<torch::Tensor> imgs;
  for (const auto& cam : cams) {
    RenderOptions ro;
    ro.light = random_light(cam, mt);
    imgs.push_back(render_object(t.object, cam, res, ro).image * 2 - 1);
  }
  t.images = torch::stack(imgs);
  std::vector<torch::Tensor> ri, rd, rm;
  RenderOptions fixed;  // one light for the whole ring: colour must not change with the view
  fixed.light = normalize(Vec3{0.3, 0.2, 0.9});
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
  auto g = gen->render(ring, res, false, nullptr, &opacity, &depth);
  return ViewSet{ring, (g.x0 + 1) / 2, depth / opacity.clamp_min(1e-6), opacity > 0.5};
}

std::string fmt_row(const std::string& method, const std::string& prompt, const Scores& s, bool truth) {
  return fmt::format("| {} | {} | {:.3f} | {:.3f} | {:.3f} | {} | {:.4f} ({:.0f}%) | {} |\n", method, prompt, s.p_shape,
                     s.p_colour, s.p_prompt, truth ? "0 (reference)" : fmt::format("{:.1f}", s.fid), s.l1,
                     100 * s.matched, truth ? "" : fmt::format("{:.2f}", s.sec_per_it));
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

  // The same cameras for every method and for the true object.
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
  std::string table =
      "| method | prompt | p(shape) | p(colour) | p(prompt) | FID | view L1 (matched) | s/it |\n"
      "|---|---|---|---|---|---|---|---|\n";
  std::map<std::string, std::vector<Scores>> by_method;
  std::vector<torch::Tensor> overview_rows(cfg.methods.size() + 1);
  std::vector<std::vector<torch::Tensor>> tiles(cfg.methods.size() + 1);
  for (const auto& text : cfg.prompts) {
    Prompt p = parse_prompt(text);
    auto truth = render_truth(p, cams, ring, res, cfg.seed + 1);
    auto real_features = classifier_features(clf, truth.images);
    Scores ts;
    classify(clf, truth.images, p, ts);
    auto tc = view_consistency(truth.ring);
    ts.l1 = tc.l1;
    ts.matched = tc.matched;
    by_method["true object"].push_back(ts);
    table += fmt_row("true object", text, ts, true);
    results.push_back({{"method", "true object"}, {"prompt", text}, {"scores", to_json(ts)}});
    for (int64_t k : show) tiles[0].push_back(truth.ring.images[k] * 2 - 1);

    for (size_t mi = 0; mi < cfg.methods.size(); ++mi) {
      const auto& method = cfg.methods[mi];
      auto run = cfg.runs.at(method);
      run.prompt = text;
      auto dir = out / "runs" / method / slug(text);
      Scores s;
      const auto done = dir / "result.json";
      const auto run_text = cfg.run_configs.at(method) + config_text + "\n# run: " + method + " / " + text + "\n";
      if (auto kept = kept_result(done, run_text); kept.contains("seconds_per_iteration")) {
        s.sec_per_it = kept["seconds_per_iteration"].get<double>();
      } else {
        auto r = run_generate3d(run, dir, progress, run_text);
        s.sec_per_it = r.seconds_per_iteration;
        keep_result(done, json{{"seconds_per_iteration", s.sec_per_it}, {"iterations", r.iterations}}, run_text);
      }
      FieldGenerator gen(load_field(dir / "field.safetensors"), p, run.render);
      auto images = gen->render(cams, res, false).x0;
      classify(clf, images, p, s);
      s.fid = frechet_distance(classifier_features(clf, images), real_features);
      auto rv = render_ring(gen, ring, res);
      auto c = view_consistency(rv);
      s.l1 = c.l1;
      s.matched = c.matched;
      by_method[method].push_back(s);
      table += fmt_row(method, text, s, false);
      results.push_back({{"method", method}, {"prompt", text}, {"scores", to_json(s)}});
      for (int64_t k : show) tiles[mi + 1].push_back(rv.images[k] * 2 - 1);
    }
  }
  // Means over prompts, one row per method.
  table += "| **mean** | | | | | | | |\n";
  std::vector<std::string> order = {"true object"};
  for (const auto& m : cfg.methods) order.push_back(m);
  for (const auto& m : order) {
    Scores mean;
    const auto& v = by_method[m];
    for (const auto& s : v) {
      mean.p_shape += s.p_shape / v.size();
      mean.p_colour += s.p_colour / v.size();
      mean.p_prompt += s.p_prompt / v.size();
      mean.fid += s.fid / v.size();
      mean.l1 += s.l1 / v.size();
      mean.matched += s.matched / v.size();
      mean.sec_per_it += s.sec_per_it / v.size();
    }
    table += fmt_row(m, "all", mean, m == "true object");
  }
  std::vector<torch::Tensor> all;
  for (auto& row : tiles)
    for (auto& t : row) all.push_back(t);
  write_png_grid(out / "overview.png", torch::stack(all), int64_t(tiles[0].size()));
  write_text_atomic(out / "results.json", results.dump(2));
  std::string md = fmt::format(
      "{} random views per result ({}x{}), classifier {}; view L1 over a ring of {} views at 15 deg elevation.\n"
      "overview.png rows: true object, {}.\n\n{}",
      cfg.views, res, res, cfg.evaluator.string(), cfg.ring, fmt::join(cfg.methods, ", "), table);
  write_text_atomic(out / "results.md", md);
  return md;
}

}  // namespace retort
