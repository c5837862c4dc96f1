#include "retort/render/world_dataset.h"

#include <algorithm>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/io/safetensors.h"
#include "retort/render/prompt.h"
#include "retort/run/run_folder.h"
#include "retort/run/progress.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "retort-world-v1";

std::string joined(const std::vector<std::string>& v) { return fmt::format("{}", fmt::join(v, ",")); }

// A [low, high] pair inside [min, max].
void read_range(ConfigNode& n, const std::string& key, double (&range)[2], double min, double max) {
  auto v = n.numbers(key, {range[0], range[1]});
  if (v.size() != 2) n.fail(key, fmt::format("expected [low, high], got {} numbers", v.size()));
  if (v[0] > v[1]) n.fail(key, fmt::format("low {} is above high {}", v[0], v[1]));
  if (v[0] < min || v[1] > max) n.fail(key, fmt::format("[{}, {}] is outside [{}, {}]", v[0], v[1], min, max));
  range[0] = v[0], range[1] = v[1];
}

// Everything random about one image, drawn sequentially so threads cannot change the data.
struct Draw {
  Object object;
  Camera camera;
  Vec3 light;
};

std::vector<Draw> draw_all(const WorldDatasetOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<Draw> draws;
  draws.reserve(size_t(o.n));
  for (int64_t k = 0; k < o.n; ++k) {
    Draw d;
    const int64_t S = o.shapes.empty() ? kNumShapes : int64_t(o.shapes.size());
    const int64_t C = o.colours.empty() ? kNumColours : int64_t(o.colours.size());
    const int64_t si = std::min<int64_t>(int64_t(uniform01(rng) * S), S - 1);
    const int64_t ci = std::min<int64_t>(int64_t(uniform01(rng) * C), C - 1);
    d.object.shape = o.shapes.empty() ? Shape(si) : o.shapes[si];
    d.object.colour = o.colours.empty() ? Colour(ci) : o.colours[ci];
    d.object.scale = kMinScale + (kMaxScale - kMinScale) * uniform01(rng);
    d.camera = sample_camera(o.cameras, rng);
    d.light = random_light(d.camera, rng);
    draws.push_back(d);
  }
  return draws;
}

}  // namespace

const OptionTable<WorldDatasetOptions>& world_option_table() {
  static const auto table = [] {
    using W = WorldDatasetOptions;
    using Row = OptionTable<W>::Row;
    auto row = [](std::string key, std::string range, std::string help, std::function<void(ConfigNode&, W&)> read,
                  std::function<std::string(const W&)> show) {
      Row r;
      r.key = std::move(key), r.range = std::move(range), r.help = std::move(help);
      r.read = std::move(read), r.show = std::move(show);
      r.save = [](const W&, nlohmann::json&) {};  // [world] is not model metadata
      r.load = [](const nlohmann::json&, W&) {};
      return r;
    };
    // A [low, high] camera range inside [min, max].
    auto interval = [&](std::string key, double (CameraRanges::*member)[2], double min, double max, std::string help) {
      return row(
          key, fmt::format("[low, high] in [{}, {}]", min, max), std::move(help),
          [key, member, min, max](ConfigNode& n, W& w) { read_range(n, key, w.cameras.*member, min, max); },
          [member](const W& w) {
            const auto& r = w.cameras.*member;
            return fmt::format("[{}, {}]", option_number_text(r[0]), option_number_text(r[1]));
          });
    };
    // A list of names of `names()`, stored as their ids (empty: all).
    auto pick = [&](std::string key, auto member, const std::vector<std::string>& (*names)(), std::string help) {
      return row(
          key, "list of " + joined(names()), std::move(help),
          [key, member, names](ConfigNode& n, W& w) {
            auto& ids = w.*member;
            for (const auto& name : n.strings(key, {})) {
              auto it = std::find(names().begin(), names().end(), name);
              if (it == names().end()) n.fail(key, fmt::format("unknown '{}'; known: {}", name, joined(names())));
              ids.push_back(static_cast<typename std::remove_reference_t<decltype(ids)>::value_type>(it - names().begin()));
            }
          },
          [member, names](const W& w) {
            std::vector<std::string> parts;
            for (auto id : w.*member) parts.push_back("\"" + names()[size_t(id)] + "\"");
            return fmt::format("[{}]", fmt::join(parts, ", "));
          });
    };
    OptionTable<W> t;
    t.integer("n", &W::n, 1, 10'000'000, "images")
        .integer("resolution", &W::resolution, 8, 128, "pixels per side")
        .integer("seed", &W::seed, 0, INT64_MAX, "seed of the objects, cameras and lights")
        .flag("supersample", &W::supersample, "render 2x2 samples per pixel")
        .custom(row(
            "background", "[r, g, b] in [0, 1]", "the background colour",
            [](ConfigNode& n, W& w) {
              auto bg = n.numbers("background", {w.background.x, w.background.y, w.background.z});
              if (bg.size() != 3) n.fail("background", fmt::format("expected [r, g, b], got {} numbers", bg.size()));
              for (double c : bg)
                if (c < 0 || c > 1) n.fail("background", fmt::format("{} is outside [0, 1]", c));
              w.background = {bg[0], bg[1], bg[2]};
            },
            [](const W& w) {
              return fmt::format("[{}, {}, {}]", option_number_text(w.background.x), option_number_text(w.background.y),
                                 option_number_text(w.background.z));
            }))
        .custom(pick("shapes", &W::shapes, &shape_names, "only these shapes (empty: all; class ids stay the full vocabulary's)"))
        .custom(pick("colours", &W::colours, &colour_names, "only these colours (empty: all)"))
        .custom(interval("azimuth", &CameraRanges::azimuth, -360, 720, "camera azimuth, degrees"))
        .custom(interval("elevation", &CameraRanges::elevation, -90, 90, "camera elevation, degrees (> 60: overhead)"))
        // The camera must stay well outside the objects' 0.35 bounding sphere.
        .custom(interval("distance", &CameraRanges::distance, 0.5, 100, "camera distance from the origin"))
        .custom(interval("fovy", &CameraRanges::fovy, 1, 170, "vertical field of view, degrees"));
    return t;
  }();
  return table;
}

WorldDatasetOptions read_world_options(ConfigNode n) {
  WorldDatasetOptions o;
  world_option_table().read(n, o);
  return o;
}

void render_world_dataset(const WorldDatasetOptions& o, const fs::path& path, bool progress) {
  if (o.n < 1) throw Error(fmt::format("world data set size n = {} must be positive", o.n));
  if (o.resolution < 8 || o.resolution > 128)
    throw Error(fmt::format("world resolution {} is outside [8, 128]", o.resolution));
  const int64_t N = o.n, R = o.resolution;
  const auto draws = draw_all(o);
  auto images = torch::empty({N, 3, R, R}, torch::kUInt8);
  auto shape = torch::empty({N}, torch::kLong), colour = torch::empty({N}, torch::kLong),
       view = torch::empty({N}, torch::kLong);
  auto camera = torch::empty({N, 12}, torch::kFloat);
  auto az = torch::empty({N}, torch::kFloat), el = torch::empty({N}, torch::kFloat),
       dist = torch::empty({N}, torch::kFloat), fovy = torch::empty({N}, torch::kFloat);
  auto sa = shape.accessor<int64_t, 1>(), ca = colour.accessor<int64_t, 1>(), va = view.accessor<int64_t, 1>();
  auto aa = az.accessor<float, 1>(), ea = el.accessor<float, 1>(), da = dist.accessor<float, 1>(),
       fa = fovy.accessor<float, 1>();
  auto cam = camera.accessor<float, 2>();
  for (int64_t k = 0; k < N; ++k) {
    const auto& d = draws[size_t(k)];
    sa[k] = int64_t(d.object.shape);
    ca[k] = int64_t(d.object.colour);
    const auto cv = camera_vector(d.camera);
    const float* cp = cv.data_ptr<float>();
    for (int64_t c = 0; c < 12; ++c) cam[k][c] = cp[c];
    // The view comes from the stored float32 angles, so a reader recomputing it always agrees.
    aa[k] = float(d.camera.azimuth_deg), ea[k] = float(d.camera.elevation_deg);
    va[k] = int64_t(view_of(aa[k], ea[k]));
    da[k] = float(d.camera.distance);
    fa[k] = float(d.camera.fovy_deg);
  }

  uint8_t* out = images.data_ptr<uint8_t>();
  const int64_t per_image = 3 * R * R;
  ProgressBar bar("render", N, 0, progress);
  constexpr int64_t kChunk = 256;
  for (int64_t begin = 0; begin < N; begin += kChunk) {
    const int64_t end = std::min(N, begin + kChunk);
    at::parallel_for(begin, end, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const auto& d = draws[size_t(k)];
        RenderOptions ro;
        ro.supersample = o.supersample;
        ro.background = o.background;
        ro.light = d.light;
        auto r = render_object(d.object, d.camera, R, ro);
        const float* px = r.image.data_ptr<float>();
        uint8_t* dst = out + k * per_image;
        for (int64_t i = 0; i < per_image; ++i) dst[i] = uint8_t(std::lround(px[i] * 255.0f));
      }
    });
    bar.update(end);
  }
  bar.finish();

  if (path.has_parent_path()) create_output_folder(path.parent_path());
  save_safetensors(path,
                   {{"images", images}, {"shape", shape}, {"colour", colour}, {"view", view}, {"camera", camera},
                    {"azimuth", az}, {"elevation", el}, {"distance", dist}, {"fovy", fovy}},
                   {{"format", kFormat},
                    {"resolution", std::to_string(R)},
                    {"n", std::to_string(N)},
                    {"seed", std::to_string(o.seed)},
                    {"supersample", o.supersample ? "true" : "false"},
                    {"shapes", joined(shape_names())},
                    {"colours", joined(colour_names())},
                    {"views", joined(view_names())},
                    {"object_class", "shape * 8 + colour"},
                    {"prompt_class", "(shape * 8 + colour) * 4 + view"}});
}

WorldDataset load_world_dataset(const fs::path& path, const std::string& labels) {
  if (labels != "prompt" && labels != "object")
    throw Error(fmt::format("world data set labels '{}': expected prompt or object", labels));
  std::map<std::string, std::string> meta;
  auto t = load_safetensors(path, &meta);  // IoError naming the file when missing or corrupt
  auto fail = [&](const std::string& what) { return IoError(fmt::format("{}: {}", path.string(), what)); };

  auto meta_is = [&](const std::string& key, const std::string& want) {
    auto it = meta.find(key);
    if (it == meta.end()) throw fail(fmt::format("metadata '{}' is missing (not a world data set?)", key));
    if (it->second != want)
      throw fail(fmt::format("metadata '{}' is '{}', expected '{}'", key, it->second, want));
  };
  meta_is("format", kFormat);
  meta_is("shapes", joined(shape_names()));
  meta_is("colours", joined(colour_names()));
  meta_is("views", joined(view_names()));

  auto get = [&](const std::string& name, torch::ScalarType dtype) {
    auto it = t.find(name);
    if (it == t.end()) throw fail(fmt::format("tensor '{}' is missing", name));
    if (it->second.scalar_type() != dtype)
      throw fail(fmt::format("tensor '{}' has dtype {}, expected {}", name, c10::toString(it->second.scalar_type()),
                             c10::toString(dtype)));
    return it->second;
  };
  WorldDataset w;
  auto images = get("images", torch::kUInt8);
  if (images.dim() != 4 || images.size(0) < 1 || images.size(1) != 3 || images.size(2) != images.size(3) ||
      images.size(2) < 8 || images.size(2) > 128)
    throw fail(fmt::format("images have shape {}, expected [N>=1,3,R,R] with R in 8..128", images.sizes().vec()));
  const int64_t N = images.size(0);
  w.resolution = images.size(2);
  meta_is("resolution", std::to_string(w.resolution));

  auto vec = [&](const std::string& name, torch::ScalarType dtype) {
    auto v = get(name, dtype);
    if (v.dim() != 1 || v.size(0) != N)
      throw fail(fmt::format("tensor '{}' has shape {}, expected [{}]", name, v.sizes().vec(), N));
    return v;
  };
  auto ids = [&](const std::string& name, int64_t n) {
    auto v = vec(name, torch::kLong);
    if (v.min().item<int64_t>() < 0 || v.max().item<int64_t>() >= n)
      throw fail(fmt::format("tensor '{}' holds ids outside [0, {})", name, n));
    return v;
  };
  w.shape = ids("shape", kNumShapes);
  w.colour = ids("colour", kNumColours);
  w.view = ids("view", kNumViews);
  w.azimuth = vec("azimuth", torch::kFloat);
  w.elevation = vec("elevation", torch::kFloat);
  w.distance = vec("distance", torch::kFloat);
  w.fovy = vec("fovy", torch::kFloat);
  w.cameras = get("camera", torch::kFloat);
  if (w.cameras.dim() != 2 || w.cameras.size(0) != N || w.cameras.size(1) != 12)
    throw fail(fmt::format("tensor 'camera' has shape {}, expected [{}, 12]", w.cameras.sizes().vec(), N));
  for (const auto* name : {"camera", "azimuth", "elevation", "distance", "fovy"})
    if (!torch::isfinite(t.at(name)).all().item<bool>()) throw fail(fmt::format("tensor '{}' is not finite", name));

  // Cross-checks: each view matches its angles, and each camera sits where its angles say.
  auto az = w.azimuth.accessor<float, 1>(), el = w.elevation.accessor<float, 1>();
  auto view = w.view.accessor<int64_t, 1>();
  for (int64_t k = 0; k < N; ++k)
    if (int64_t(view_of(az[k], el[k])) != view[k])
      throw fail(fmt::format("image {}: view {} does not match azimuth {} / elevation {}", k, view[k], az[k], el[k]));
  const double deg = M_PI / 180.0;
  auto a = w.azimuth.to(torch::kDouble) * deg, e = w.elevation.to(torch::kDouble) * deg;
  auto expect = torch::stack({torch::cos(e) * torch::cos(a), torch::cos(e) * torch::sin(a), torch::sin(e)}, 1) *
                w.distance.to(torch::kDouble).unsqueeze(1);
  auto pos = w.cameras.to(torch::kDouble).index({torch::indexing::Slice(), torch::tensor({3, 7, 11})});
  const double err = (pos - expect).abs().max().item<double>();
  if (err > 1e-3) throw fail(fmt::format("camera positions disagree with azimuth/elevation/distance by {:.3g}", err));

  w.data.images = images.to(torch::kFloat).div_(127.5).sub_(1.0);
  w.data.labels = labels == "prompt" ? (w.shape * kNumColours + w.colour) * kNumViews + w.view
                                     : w.shape * kNumColours + w.colour;
  w.data.num_classes = labels == "prompt" ? kNumPromptClasses : kNumObjectClasses;
  return w;
}

void write_world_preview(const fs::path& png, const WorldDataset& d, int64_t columns) {
  if (columns < 1) throw Error(fmt::format("preview columns {} must be positive", columns));
  const auto& img = d.data.images;
  auto grid = torch::full({kNumShapes * columns, img.size(1), img.size(2), img.size(3)}, -1.0f);
  auto shape = d.shape.accessor<int64_t, 1>();
  std::vector<int64_t> filled(kNumShapes, 0);
  for (int64_t k = 0; k < img.size(0); ++k) {
    const int64_t s = shape[k];
    if (filled[size_t(s)] < columns) grid[s * columns + filled[size_t(s)]++] = img[k];
  }
  write_png_grid(png, grid, columns);
}

std::string run_render_world(const fs::path& config, const fs::path& out_dir, bool progress,
                             const std::vector<std::string>& overrides) {
  auto root = ConfigNode::from_file(config, overrides);
  const auto opts = read_world_options(root.table("world"));
  root.finish();
  create_output_folder(out_dir);
  write_text_atomic(out_dir / "config.resolved.toml", root.resolved_toml());

  const auto file = out_dir / "world.safetensors";
  const auto t0 = std::chrono::steady_clock::now();
  render_world_dataset(opts, file, progress);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto d = load_world_dataset(file, "prompt");
  write_world_preview(out_dir / "preview.png", d);
  auto counts = torch::bincount(d.view, {}, kNumViews);
  return fmt::format("rendered {} images at {} px in {:.1f} s ({:.0f} images/s); views front {}, side {}, back {}, "
                     "overhead {}; wrote {} and {}",
                     opts.n, opts.resolution, secs, opts.n / std::max(secs, 1e-9), counts[0].item<int64_t>(),
                     counts[1].item<int64_t>(), counts[2].item<int64_t>(), counts[3].item<int64_t>(), file.string(),
                     (out_dir / "preview.png").string());
}

}  // namespace retort
