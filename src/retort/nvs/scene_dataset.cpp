#include "retort/nvs/scene_dataset.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "retort/core/error.h"
#include "retort/io/png.h"
#include "retort/io/safetensors.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using SDO = SceneDatasetOptions;
using torch::indexing::Slice;

constexpr const char* kScenesFormat = "retort-nvs-scenes-v1";

std::string scenes_joined(const std::vector<std::string>& v) { return fmt::format("{}", fmt::join(v, ",")); }
// Rounds to the nearest float32. Through a volatile: GCC 12 -O3 was seen dropping a plain
// double(float(v)) round trip once the vectoriser packed two of them.
double scenes_f32(double v) {
  volatile float f = float(v);
  return double(f);
}

// An [min, max] pair within [lo, hi].
OptionTable<SDO>::Row scenes_interval(const std::string& key, std::array<double, 2> SDO::*ref, double lo, double hi,
                             const std::string& help) {
  OptionTable<SDO>::Row r;
  r.key = key;
  r.help = help;
  r.range = fmt::format("[min, max] within [{}, {}]", lo, hi);
  r.read = [=](ConfigNode& n, SDO& o) {
    auto& v = o.*ref;
    auto got = n.numbers(key, {v[0], v[1]});
    if (got.size() != 2 || got[0] > got[1] || got[0] < lo || got[1] > hi)
      n.fail(key, fmt::format("expected [min, max] with {} <= min <= max <= {}, got [{}]", lo, hi, fmt::join(got, ", ")));
    v = {got[0], got[1]};
  };
  r.show = [=](const SDO& o) { return fmt::format("[{}, {}]", (o.*ref)[0], (o.*ref)[1]); };
  r.save = [=](const SDO& o, nlohmann::json& j) { j[key] = {(o.*ref)[0], (o.*ref)[1]}; };
  r.load = [=](const nlohmann::json& j, SDO& o) {
    if (j.contains(key)) o.*ref = {j.at(key).at(0).get<double>(), j.at(key).at(1).get<double>()};
  };
  return r;
}

// The closest any camera of a sample may come to the centre: the scene reaches 0.35 beyond `spread`.
double scenes_least_camera_distance(const SDO& o) { return o.distance[0] * (1 + o.d_r[0]); }

SceneDrawOptions scenes_draw_options(const SDO& o) {
  SceneDrawOptions d;
  d.objects_min = o.objects_min;
  d.objects_max = o.objects_max;
  d.scale[0] = o.scale[0], d.scale[1] = o.scale[1];
  d.spread = o.spread;
  d.ground = o.ground;
  d.ground_radius = o.ground_radius;
  return d;
}

SceneRenderOptions scenes_render_options(const SDO& o) {
  SceneRenderOptions r;
  r.supersample = o.supersample;
  r.background = {o.background[0], o.background[1], o.background[2]};
  return r;
}

// Everything random about one sample, drawn sequentially so threads cannot change the data.
struct ScenesDraw {
  Camera input;
  Scene scene;
  TrajectoryOffset offset;
  uint64_t noise_seed = 0;
};

std::vector<ScenesDraw> scenes_draw_all(const SDO& o, const std::string& split, int64_t n) {
  // One seed, two independent streams: train and test never share a sample.
  std::seed_seq seq{uint32_t(o.seed & 0xffffffffu), uint32_t(o.seed >> 32), uint32_t(split == "test" ? 1 : 0)};
  std::mt19937_64 rng(seq);
  auto draw = [&](const std::array<double, 2>& r) { return r[0] + (r[1] - r[0]) * uniform01(rng); };
  const auto d_opts = scenes_draw_options(o);
  std::vector<ScenesDraw> draws;
  draws.reserve(size_t(n));
  for (int64_t k = 0; k < n; ++k) {
    ScenesDraw d;
    // Rounded to float32, so the stored cameras are exactly the rendered ones.
    const double az = scenes_f32(draw(o.azimuth)), el = scenes_f32(draw(o.elevation)), dist = scenes_f32(draw(o.distance)),
                 fovy = scenes_f32(draw(o.fovy));
    d.input = look_at_origin(az, el, dist, fovy);
    d.scene = sample_scene(d_opts, d.input, rng);
    d.offset = {scenes_f32(draw(o.d_phi)), scenes_f32(draw(o.d_theta)), scenes_f32(draw(o.d_r))};
    d.noise_seed = rng();
    draws.push_back(d);
  }
  return draws;
}

std::vector<Camera> scenes_trajectory_of(const SDO& o, const Camera& input, const TrajectoryOffset& off) {
  auto cams = offset_trajectory(input, off, o.frames, {o.elevation_limits[0], o.elevation_limits[1]});
  for (auto& c : cams) c.fovy_deg = scenes_f32(c.fovy_deg);
  return cams;
}

void scenes_to_u8(const torch::Tensor& src01, uint8_t* dst) {
  auto s = src01.contiguous();
  const float* p = s.data_ptr<float>();
  for (int64_t i = 0; i < s.numel(); ++i) dst[i] = uint8_t(std::lround(std::clamp(p[i], 0.0f, 1.0f) * 255.0f));
}

}  // namespace

const OptionTable<SceneDatasetOptions>& scene_dataset_option_table() {
  static const auto table = [] {
    OptionTable<SDO> t;
    t.integer("train", &SDO::train, 1, 10'000'000, "samples in train.safetensors")
        .integer("test", &SDO::test, 1, 10'000'000, "samples in test.safetensors (an independent stream of the seed)")
        .integer("resolution", &SDO::resolution, 8, 128, "pixels per side")
        .integer("frames", &SDO::frames, 2, 64, "frames K per trajectory (frame 0 = the input view)")
        .integer("views", &SDO::views, 1, 2, "input views: 1, or 2 (the trajectory then ends at the second)")
        .integer("objects_min", &SDO::objects_min, 1, kMaxSceneObjects, "fewest objects per scene")
        .integer("objects_max", &SDO::objects_max, 1, kMaxSceneObjects, "most objects per scene")
        .custom(scenes_interval("scale", &SDO::scale, 0.3, 1.0, "object scale (1: the world's size, radius <= 0.35)"))
        .number("spread", &SDO::spread, 0, 1.5, "objects' axes within this radius of the scene centre")
        .named("ground", &SDO::ground, ground_names(), "ground disc at the objects' base")
        .number("ground_radius", &SDO::ground_radius, 0.5, 10, "radius of the ground disc")
        .custom(scenes_interval("azimuth", &SDO::azimuth, -360, 720, "input camera azimuth, degrees (0: camera on +x)"))
        .custom(scenes_interval("elevation", &SDO::elevation, -90, 90, "input camera elevation, degrees"))
        .custom(scenes_interval("distance", &SDO::distance, 0.5, 100, "input camera distance from the scene centre"))
        .custom(scenes_interval("fovy", &SDO::fovy, 1, 170, "vertical field of view, degrees"))
        .custom(scenes_interval("d_phi", &SDO::d_phi, -360, 360, "trajectory azimuth offset at the last frame, degrees"))
        .custom(scenes_interval("d_theta", &SDO::d_theta, -180, 180, "trajectory elevation offset at the last frame, degrees"))
        .custom(scenes_interval("d_r", &SDO::d_r, -0.9, 10, "trajectory radius offset at the last frame, fraction of the distance"))
        .custom(scenes_interval("elevation_limits", &SDO::elevation_limits, -90, 90,
                         "trajectory elevation clamp, degrees (keeps cameras above the ground)"))
        .number("depth_noise", &SDO::depth_noise, 0, 0.3, "multiplicative Gaussian depth noise per pixel (std)")
        .number("depth_scale_error", &SDO::depth_scale_error, 0, 0.5,
                "global depth scale error per sample: factor uniform in [1 - e, 1 + e]")
        .number("footprint", &SDO::footprint, 0, 4, "point splat size, in projected source pixels (0: one pixel)")
        .flag("supersample", &SDO::supersample, "2x2 rays per pixel for the ground truth and the input views")
        .numbers("background", &SDO::background, 0, 1, "[r, g, b] where rays hit nothing (point-cloud holes are black)")
        .integer("seed", &SDO::seed, 0, INT64_MAX, "random seed: scenes, cameras, trajectories, depth noise")
        .check([](ConfigNode& n, const SDO& o) {
          if (o.objects_min > o.objects_max)
            n.fail("objects_min", fmt::format("{} is above objects_max {}", o.objects_min, o.objects_max));
          if (o.ground != Ground::none && o.spread + 0.35 > o.ground_radius)
            n.fail("ground_radius", fmt::format("{} does not hold objects out to spread {} + 0.35", o.ground_radius,
                                                o.spread));
          if (scenes_least_camera_distance(o) < o.spread + 0.35 + 0.15)
            n.fail("d_r", fmt::format("distance {} x (1 + d_r {}) = {:.3g} brings a camera within 0.15 of the objects "
                                      "(spread {} + 0.35)",
                                      o.distance[0], o.d_r[0], scenes_least_camera_distance(o), o.spread));
        });
    return t;
  }();
  return table;
}

SceneDatasetOptions read_scene_dataset_options(ConfigNode n) {
  SceneDatasetOptions o;
  scene_dataset_option_table().read(n, o);
  return o;
}

double render_scene_dataset(const SDO& o, const std::string& split, const fs::path& path, bool progress) {
  if (split != "train" && split != "test") throw Error(fmt::format("split '{}': expected train or test", split));
  const int64_t N = split == "train" ? o.train : o.test, K = o.frames, R = o.resolution, V = o.views;
  if (N < 1) throw Error(fmt::format("{} split size {} must be positive", split, N));
  const auto t0 = std::chrono::steady_clock::now();
  const auto draws = scenes_draw_all(o, split, N);
  const auto sro = scenes_render_options(o);
  SplatOptions splat;
  splat.footprint = o.footprint;

  auto frames = torch::empty({N, K, 3, R, R}, torch::kUInt8), renders = torch::empty({N, K, 3, R, R}, torch::kUInt8),
       masks = torch::empty({N, K, 1, R, R}, torch::kUInt8), inputs = torch::empty({N, V, 3, R, R}, torch::kUInt8);
  auto input_depth = torch::empty({N, V, R, R}, torch::kFloat), c2w = torch::empty({N, K, 4, 4}, torch::kFloat),
       fovy = torch::empty({N, K}, torch::kFloat);
  auto offset = torch::empty({N, 3}, torch::kFloat), light = torch::empty({N, 3}, torch::kFloat);
  auto count = torch::empty({N}, torch::kLong), shape = torch::full({N, kMaxSceneObjects}, -1, torch::kLong),
       colour = torch::full({N, kMaxSceneObjects}, -1, torch::kLong);
  auto scale = torch::zeros({N, kMaxSceneObjects}, torch::kFloat), rotation = torch::zeros({N, kMaxSceneObjects}, torch::kFloat),
       xy = torch::zeros({N, kMaxSceneObjects, 2}, torch::kFloat);
  for (int64_t k = 0; k < N; ++k) {
    const auto& d = draws[size_t(k)];
    offset[k] = torch::tensor({float(d.offset.d_phi), float(d.offset.d_theta), float(d.offset.d_r)});
    light[k] = torch::tensor({float(d.scene.light.x), float(d.scene.light.y), float(d.scene.light.z)});
    count[k] = int64_t(d.scene.objects.size());
    for (size_t j = 0; j < d.scene.objects.size(); ++j) {
      const auto& so = d.scene.objects[j];
      shape[k][int64_t(j)] = int64_t(so.object.shape);
      colour[k][int64_t(j)] = int64_t(so.object.colour);
      scale[k][int64_t(j)] = float(so.object.scale);
      rotation[k][int64_t(j)] = float(so.rotation_deg);
      xy[k][int64_t(j)] = torch::tensor({float(so.x), float(so.y)});
    }
  }

  uint8_t *pf = frames.data_ptr<uint8_t>(), *pr = renders.data_ptr<uint8_t>(), *pm = masks.data_ptr<uint8_t>(),
          *pi = inputs.data_ptr<uint8_t>();
  float *pd = input_depth.data_ptr<float>(), *pc = c2w.data_ptr<float>(), *pv = fovy.data_ptr<float>();
  const int64_t img = 3 * R * R, plane = R * R;
  ProgressBar bar(split, N, 0, progress);
  constexpr int64_t kChunk = 64;
  for (int64_t begin = 0; begin < N; begin += kChunk) {
    const int64_t end = std::min(N, begin + kChunk);
    at::parallel_for(begin, end, 1, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const auto& d = draws[size_t(k)];
        const auto cams = scenes_trajectory_of(o, d.input, d.offset);
        std::vector<SceneRendering> gt;
        for (int64_t f = 0; f < K; ++f) {
          gt.push_back(render_scene(d.scene, cams[size_t(f)], R, sro));
          scenes_to_u8(gt.back().image, pf + (k * K + f) * img);
          std::memcpy(pc + (k * K + f) * 16, cams[size_t(f)].c2w.contiguous().data_ptr<float>(), 16 * sizeof(float));
          pv[k * K + f] = float(cams[size_t(f)].fovy_deg);
        }
        // The input views and their depth: a pixel is unprojected where at least half its rays hit.
        const int64_t view_frame[2] = {0, K - 1};
        std::vector<torch::Tensor> depth;
        for (int64_t v = 0; v < V; ++v) {
          const auto& g = gt[size_t(view_frame[v])];
          depth.push_back(torch::where(g.alpha >= 0.5, g.depth, torch::full_like(g.depth, std::numeric_limits<float>::infinity())));
        }
        std::mt19937_64 noise_rng(d.noise_seed);
        depth = perturb_depths(depth, o.depth_noise, o.depth_scale_error, noise_rng);
        std::vector<torch::Tensor> views;
        std::vector<Camera> view_cams;
        for (int64_t v = 0; v < V; ++v) {
          const auto& g = gt[size_t(view_frame[v])];
          scenes_to_u8(g.image, pi + (k * V + v) * img);
          std::memcpy(pd + (k * V + v) * plane, depth[size_t(v)].data_ptr<float>(), plane * sizeof(float));
          views.push_back(g.image);
          view_cams.push_back(cams[size_t(view_frame[v])]);
        }
        auto pts = condition_renders(views, depth, view_cams, cams, R, splat);
        scenes_to_u8(pts.images, pr + k * K * img);
        auto m = pts.masks.to(torch::kUInt8).contiguous();
        std::memcpy(pm + k * K * plane, m.data_ptr<uint8_t>(), K * plane);
      }
    });
    bar.update(end);
  }
  bar.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (path.has_parent_path()) create_output_folder(path.parent_path());
  save_safetensors(path,
                   {{"frames", frames}, {"renders", renders}, {"masks", masks}, {"inputs", inputs},
                    {"input_depth", input_depth}, {"c2w", c2w}, {"fovy", fovy}, {"offset", offset},
                    {"object_count", count}, {"object_shape", shape}, {"object_colour", colour},
                    {"object_scale", scale}, {"object_rotation", rotation}, {"object_xy", xy}, {"light", light}},
                   {{"format", kScenesFormat},
                    {"split", split},
                    {"n", std::to_string(N)},
                    {"resolution", std::to_string(R)},
                    {"frames", std::to_string(K)},
                    {"views", std::to_string(V)},
                    {"seed", std::to_string(o.seed)},
                    {"shapes", scenes_joined(shape_names())},
                    {"colours", scenes_joined(colour_names())},
                    {"grounds", scenes_joined(ground_names())},
                    {"options", scene_dataset_option_table().to_json(o).dump()},
                    {"conventions",
                     "images uint8 = round(255 x [0,1]); renders' holes black, masks 0/1, frame 0 = input view; "
                     "input views = frames 0 and K-1; depth = z along the optical axis, +inf background; c2w OpenGL "
                     "(camera looks along -z), world +z up, ground at z = -0.25"}});
  return secs;
}

SceneDataset load_scene_dataset(const fs::path& path) {
  std::map<std::string, std::string> meta;
  auto t = load_safetensors(path, &meta);  // IoError naming the file when missing or corrupt
  auto fail = [&](const std::string& what) { return IoError(fmt::format("{}: {}", path.string(), what)); };
  auto meta_of = [&](const std::string& key) {
    auto it = meta.find(key);
    if (it == meta.end()) throw fail(fmt::format("metadata '{}' is missing (not a scene data set?)", key));
    return it->second;
  };
  auto meta_is = [&](const std::string& key, const std::string& want) {
    const auto got = meta_of(key);
    if (got != want) throw fail(fmt::format("metadata '{}' is '{}', expected '{}'", key, got, want));
  };
  meta_is("format", kScenesFormat);
  meta_is("shapes", scenes_joined(shape_names()));
  meta_is("colours", scenes_joined(colour_names()));
  meta_is("grounds", scenes_joined(ground_names()));
  SceneDataset d;
  d.split = meta_of("split");
  try {
    scene_dataset_option_table().from_json(nlohmann::json::parse(meta_of("options")), d.options);
  } catch (const nlohmann::json::exception& e) {
    throw fail(fmt::format("metadata 'options': {}", e.what()));
  } catch (const IoError& e) {
    throw fail(e.what());
  }

  auto get = [&](const std::string& name, torch::ScalarType dtype, std::vector<int64_t> want) {
    auto it = t.find(name);
    if (it == t.end()) throw fail(fmt::format("tensor '{}' is missing", name));
    if (it->second.scalar_type() != dtype)
      throw fail(fmt::format("tensor '{}' has dtype {}, expected {}", name, c10::toString(it->second.scalar_type()),
                             c10::toString(dtype)));
    if (it->second.sizes().vec() != want)
      throw fail(fmt::format("tensor '{}' has shape {}, expected {}", name, it->second.sizes().vec(), want));
    return it->second;
  };
  auto frames_it = t.find("frames");
  if (frames_it == t.end()) throw fail("tensor 'frames' is missing");
  const auto fs_ = frames_it->second.sizes().vec();
  if (fs_.size() != 5 || fs_[0] < 1 || fs_[1] < 2 || fs_[2] != 3 || fs_[3] != fs_[4] || fs_[3] < 8 || fs_[3] > 128)
    throw fail(fmt::format("frames have shape {}, expected [N>=1,K>=2,3,R,R] with R in 8..128", fs_));
  const int64_t N = fs_[0], K = fs_[1], R = fs_[3];
  int64_t V = 0;
  if (auto it = t.find("inputs"); it != t.end() && it->second.dim() == 5) V = it->second.size(1);
  if (V != 1 && V != 2) throw fail(fmt::format("tensor 'inputs' must be [{},V,3,{},{}] with V 1 or 2", N, R, R));
  meta_is("n", std::to_string(N));
  meta_is("resolution", std::to_string(R));
  meta_is("frames", std::to_string(K));
  meta_is("views", std::to_string(V));
  if (d.options.resolution != R || d.options.frames != K || d.options.views != V)
    throw fail("metadata 'options' disagrees with the tensors' resolution, frames or views");

  auto u8 = [](const torch::Tensor& x) { return x.to(torch::kFloat).div_(127.5).sub_(1.0); };
  d.frames = u8(get("frames", torch::kUInt8, {N, K, 3, R, R}));
  d.renders = u8(get("renders", torch::kUInt8, {N, K, 3, R, R}));
  auto masks = get("masks", torch::kUInt8, {N, K, 1, R, R});
  if (masks.max().item<int64_t>() > 1) throw fail("tensor 'masks' holds values other than 0 and 1");
  d.masks = masks.to(torch::kFloat);
  d.inputs = u8(get("inputs", torch::kUInt8, {N, V, 3, R, R}));
  d.input_depth = get("input_depth", torch::kFloat, {N, V, R, R});
  if ((torch::isnan(d.input_depth) | (d.input_depth <= 0)).any().item<bool>())
    throw fail("tensor 'input_depth' holds NaN or non-positive values");
  d.c2w = get("c2w", torch::kFloat, {N, K, 4, 4});
  d.fovy = get("fovy", torch::kFloat, {N, K});
  d.offset = get("offset", torch::kFloat, {N, 3});
  for (const auto* name : {"c2w", "fovy", "offset"})
    if (!torch::isfinite(t.at(name)).all().item<bool>()) throw fail(fmt::format("tensor '{}' is not finite", name));
  if ((d.fovy <= 0).any().item<bool>() || (d.fovy >= 180).any().item<bool>()) throw fail("tensor 'fovy' is outside (0, 180)");
  d.resolution = R, d.frames_per_clip = K, d.views = V;

  const int64_t M = kMaxSceneObjects;
  auto count = get("object_count", torch::kLong, {N});
  auto shape = get("object_shape", torch::kLong, {N, M}), colour = get("object_colour", torch::kLong, {N, M});
  auto scale = get("object_scale", torch::kFloat, {N, M}), rotation = get("object_rotation", torch::kFloat, {N, M});
  auto xy = get("object_xy", torch::kFloat, {N, M, 2});
  auto light = get("light", torch::kFloat, {N, 3});
  auto ca = count.accessor<int64_t, 1>();
  auto sa = shape.accessor<int64_t, 2>(), cola = colour.accessor<int64_t, 2>();
  auto sca = scale.accessor<float, 2>(), ra = rotation.accessor<float, 2>();
  auto xya = xy.accessor<float, 3>();
  auto la = light.accessor<float, 2>();
  for (int64_t k = 0; k < N; ++k) {
    Scene s;
    s.ground = d.options.ground;
    s.ground_radius = d.options.ground_radius;
    s.light = {la[k][0], la[k][1], la[k][2]};
    if (ca[k] < 1 || ca[k] > M) throw fail(fmt::format("sample {}: object_count {} is outside [1, {}]", k, ca[k], M));
    for (int64_t j = 0; j < ca[k]; ++j) {
      if (sa[k][j] < 0 || sa[k][j] >= kNumShapes || cola[k][j] < 0 || cola[k][j] >= kNumColours)
        throw fail(fmt::format("sample {}: object {} has shape id {} / colour id {} out of range", k, j, sa[k][j], cola[k][j]));
      SceneObject so;
      so.object = {Shape(sa[k][j]), Colour(cola[k][j]), sca[k][j]};
      so.x = xya[k][j][0], so.y = xya[k][j][1];
      so.rotation_deg = ra[k][j];
      s.objects.push_back(so);
    }
    try {
      check_scene(s);
    } catch (const Error& e) {
      throw fail(fmt::format("sample {}: {}", k, e.what()));
    }
    d.scenes.push_back(std::move(s));
  }
  // The trajectory starts at the input view and every camera looks at the centre from outside the scene.
  auto pos = d.c2w.index({Slice(), Slice(), Slice(0, 3), 3});
  if ((pos.norm(2, -1) < 0.5).any().item<bool>()) throw fail("a camera sits within 0.5 of the scene centre");
  return d;
}

Camera scene_camera(const SceneDataset& d, int64_t index, int64_t frame) {
  const int64_t N = d.c2w.size(0), K = d.c2w.size(1);
  if (index < 0 || index >= N || frame < 0 || frame >= K)
    throw Error(fmt::format("scene sample {} frame {} is outside [0, {}) x [0, {})", index, frame, N, K));
  Camera c;
  c.c2w = d.c2w[index][frame].clone();
  c.fovy_deg = d.fovy[index][frame].item<float>();
  const auto s = spherical_from_c2w(c.c2w);
  c.azimuth_deg = s.azimuth_deg, c.elevation_deg = s.elevation_deg, c.distance = s.distance;
  return c;
}

SceneViews render_scene_views(const SceneDataset& d, int64_t index, const std::vector<Camera>& cams, int64_t res) {
  if (index < 0 || index >= int64_t(d.scenes.size()))
    throw Error(fmt::format("scene sample {} is outside [0, {})", index, d.scenes.size()));
  const auto M = int64_t(cams.size());
  SceneViews v;
  v.images = torch::empty({M, 3, res, res}, torch::kFloat);
  v.alpha = torch::empty({M, res, res}, torch::kFloat);
  v.depth = torch::empty({M, res, res}, torch::kFloat);
  const auto ro = scenes_render_options(d.options);
  for (int64_t m = 0; m < M; ++m) {
    auto r = render_scene(d.scenes[size_t(index)], cams[size_t(m)], res, ro);
    v.images[m] = r.image * 2 - 1;
    v.alpha[m] = r.alpha;
    v.depth[m] = r.depth;
  }
  return v;
}

SceneViews render_scene_views(const fs::path& file, int64_t index, const std::vector<Camera>& cams, int64_t res) {
  return render_scene_views(load_scene_dataset(file), index, cams, res);
}

void write_scene_preview(const fs::path& png, const SceneDataset& d, int64_t samples) {
  if (samples < 1) throw Error(fmt::format("preview samples {} must be positive", samples));
  const int64_t S = std::min<int64_t>(samples, d.frames.size(0)), K = d.frames_per_clip, R = d.resolution;
  const int64_t up = std::max<int64_t>(1, 96 / R);
  std::vector<torch::Tensor> tiles;
  auto black = torch::full({3, R, R}, -1.0f);
  for (int64_t s = 0; s < S; ++s) {
    tiles.push_back(d.inputs[s][0]);
    for (int64_t f = 0; f < K; ++f) tiles.push_back(d.renders[s][f]);
    tiles.push_back(d.views > 1 ? d.inputs[s][1] : black);
    for (int64_t f = 0; f < K; ++f) tiles.push_back(d.frames[s][f]);
  }
  auto grid = torch::stack(tiles);
  if (up > 1) grid = grid.repeat_interleave(up, 2).repeat_interleave(up, 3);
  write_png_grid(png, grid, K + 1);
}

std::string run_render_scenes(const fs::path& config, const fs::path& out_dir, bool progress,
                              const std::vector<std::string>& overrides) {
  auto root = ConfigNode::from_file(config, overrides);
  const auto opts = read_scene_dataset_options(root.table("scenes"));
  root.finish();
  create_output_folder(out_dir);
  write_text_atomic(out_dir / "config.resolved.toml", root.resolved_toml());
  const auto train = out_dir / "train.safetensors", test = out_dir / "test.safetensors";
  const double secs = render_scene_dataset(opts, "train", train, progress) +
                      render_scene_dataset(opts, "test", test, progress);
  const auto d = load_scene_dataset(test);
  write_scene_preview(out_dir / "preview.png", d);
  const int64_t n = opts.train + opts.test;
  // Coverage of the point-cloud renders away from the input frame (frame 0 is the input itself).
  const double cover = d.masks.index({Slice(), Slice(1)}).mean().item<double>();
  return fmt::format("rendered {} train + {} test samples ({} frames, {} view{}, {} px) in {:.1f} s ({:.1f} samples/s); "
                     "test point-cloud coverage of frames 1..{}: {:.1f}%; wrote {}, {} and {}",
                     opts.train, opts.test, opts.frames, opts.views, opts.views > 1 ? "s" : "", opts.resolution, secs,
                     n / std::max(secs, 1e-9), opts.frames - 1, 100 * cover, train.string(), test.string(),
                     (out_dir / "preview.png").string());
}

}  // namespace retort
