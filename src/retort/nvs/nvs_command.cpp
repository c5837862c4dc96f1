#include "retort/nvs/nvs_command.h"
#include "retort/nvs/video_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <chrono>
#include <cmath>
#include <limits>

#include "retort/core/error.h"
#include "retort/io/png.h"
#include "retort/data/image_folder.h"
#include "retort/eval/view_metrics.h"
#include "retort/field/turntable.h"
#include "retort/generators/few_step_student.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/safetensors.h"
#include "retort/nvs/point_cloud.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/trajectory.h"
#include "retort/nvs/video_teacher.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace fs = std::filesystem;

namespace {

// What the model is given and what it is scored against.
struct NvsInputs {
  std::vector<torch::Tensor> images;  // [3,R,R] in [0,1]
  std::vector<torch::Tensor> depths;  // [R,R] z-depth, +inf background
  std::vector<Camera> input_cams;     // one per view
  std::vector<Camera> trajectory;     // K
  torch::Tensor truth;                // [K,3,R,R] in [0,1], or undefined
};

torch::Tensor read_depth(const fs::path& path, int64_t res) {
  auto t = load_safetensors(path);
  auto it = t.find("depth");
  if (it == t.end()) throw IoError(fmt::format("{}: no tensor \"depth\" (a float32 [R,R] z-depth map)", path.string()));
  auto d = it->second.to(torch::kFloat32);
  if (d.dim() != 2 || d.size(0) != res || d.size(1) != res)
    throw ConfigError(fmt::format("{}: depth map is [{}], the model takes {}x{} views", path.string(),
                                  fmt::join(d.sizes(), ","), res, res));
  const float inf = std::numeric_limits<float>::infinity();
  return torch::where(d.isfinite() & (d > 0), d, torch::full_like(d, inf));
}

torch::Tensor read_view(const fs::path& path, int64_t res) {
  auto img = read_image(path, 3);
  if (img.size(1) != res || img.size(2) != res)
    throw ConfigError(fmt::format("{}: the view is {}x{}, the model takes {}x{}", path.string(), img.size(2),
                                  img.size(1), res, res));
  return img;
}

NvsInputs from_scenes(const NvsRequest& req, int64_t res, int64_t frames) {
  auto d = load_scene_dataset(req.scenes);
  const int64_t N = d.frames.size(0);
  if (req.index < 0 || req.index >= N)
    throw ConfigError(fmt::format("--index {}: {} holds samples 0..{}", req.index, req.scenes.string(), N - 1));
  if (d.resolution != res) throw ConfigError(fmt::format("{}: {} px views, the model takes {} px", req.scenes.string(), d.resolution, res));
  NvsInputs in;
  const int64_t K = d.frames_per_clip;
  for (int64_t v = 0; v < d.views; ++v) {
    in.images.push_back((d.inputs[req.index][v] + 1) / 2);
    in.depths.push_back(d.input_depth[req.index][v]);
    in.input_cams.push_back(scene_camera(d, req.index, v == 0 ? 0 : K - 1));
  }
  if (req.trajectory.empty()) {
    if (K != frames) throw ConfigError(fmt::format("{}: clips of {} frames, the model makes {}; give --trajectory",
                                                   req.scenes.string(), K, frames));
    for (int64_t f = 0; f < K; ++f) in.trajectory.push_back(scene_camera(d, req.index, f));
    in.truth = (d.frames[req.index] + 1) / 2;
  } else {
    in.trajectory = make_trajectory(parse_trajectory_spec(req.trajectory), in.input_cams[0], frames);
    auto views = render_scene_views(d, req.index, in.trajectory, res);  // the exact ground truth of any camera
    in.truth = (views.images + 1) / 2;
  }
  return in;
}

NvsInputs from_files(const NvsRequest& req, int64_t res, int64_t frames) {
  if (req.input.empty()) throw ConfigError("nvs: give --scenes FILE --index I, or --input VIEW.png --depth DEPTH");
  if (req.depth.empty()) throw ConfigError(fmt::format("--input {}: needs --depth (its z-depth map)", req.input.string()));
  NvsInputs in;
  in.images.push_back(read_view(req.input, res));
  in.depths.push_back(read_depth(req.depth, res));
  double dist = req.distance;
  if (dist <= 0) {  // ViewCrafter orbits the depth of the centre pixel
    dist = in.depths[0][res / 2][res / 2].item<double>();
    if (!std::isfinite(dist))
      throw ConfigError(fmt::format("{}: the centre pixel has no depth; give --distance", req.depth.string()));
  }
  in.input_cams.push_back(look_at_origin(0, req.elevation, dist, req.fovy));
  if (!req.input2.empty()) {
    if (req.depth2.empty()) throw ConfigError(fmt::format("--input2 {}: needs --depth2", req.input2.string()));
    if (req.camera2.empty())
      throw ConfigError(fmt::format("--input2 {}: needs --camera2 DPHI,DTHETA,DR (its camera as an offset from the first)",
                                    req.input2.string()));
    in.images.push_back(read_view(req.input2, res));
    in.depths.push_back(read_depth(req.depth2, res));
    auto spec = parse_trajectory_spec("offset:" + req.camera2);
    in.input_cams.push_back(offset_trajectory(in.input_cams[0], spec.offset, 2).back());
  } else if (!req.depth2.empty() || !req.camera2.empty()) {
    throw ConfigError("--depth2 and --camera2 describe a second view: give --input2 too");
  }
  if (req.trajectory.empty()) {
    // Two views: from the first to the second, as render-scenes' two-view clips.
    if (in.images.size() == 2) in.trajectory = interpolate_trajectory(in.input_cams[0], in.input_cams[1], frames);
    else throw ConfigError("--input: give --trajectory (offset:DPHI,DTHETA,DR or file:PATH)");
  } else {
    in.trajectory = make_trajectory(parse_trajectory_spec(req.trajectory), in.input_cams[0], frames);
  }
  return in;
}

void write_frames(const fs::path& dir, const torch::Tensor& clip01) {
  create_output_folder(dir);
  for (int64_t f = 0; f < clip01.size(0); ++f)
    write_png_grid(dir / fmt::format("{:02d}.png", f), clip01[f].unsqueeze(0) * 2 - 1, 1, 0);
}

}  // namespace

std::string run_nvs(const NvsRequest& req) {
  if (req.sampler != "ddim" && req.sampler != "ddpm")
    throw ConfigError(fmt::format("--sampler '{}': expected ddim or ddpm", req.sampler));
  apply_runtime(RuntimeOptions{req.device, int(req.threads), 1});
  auto device = parse_device(req.device, "--device");
  auto model = load_video_model(req.model);
  const int64_t R = model.resolution(), K = model.frames();
  auto in = req.scenes.empty() ? from_files(req, R, K) : from_scenes(req, R, K);
  if (int64_t(in.trajectory.size()) != K)
    throw ConfigError(fmt::format("--trajectory: {} cameras, the model makes clips of {}", in.trajectory.size(), K));

  create_output_folder(req.out);
  auto t0 = std::chrono::steady_clock::now();
  auto cond01 = condition_renders(in.images, in.depths, in.input_cams, in.trajectory, R);
  auto channels = nvs_concat(cond01.images * 2 - 1, cond01.masks, model.reads_mask()).unsqueeze(0).to(device);
  model.net->to(device);
  Rng rng(req.seed);
  const TeacherSampling s{req.steps, req.cfg, req.sampler == "ddpm" ? 1.0 : 0.0, 1.0, 1};
  auto clip = generate_clips(model, channels, s, rng);
  const std::string what = model.describe(s);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto generated = ((clip[0].cpu() + 1) / 2).clamp(0, 1);

  write_frames(req.out / "renders", cond01.images);
  write_frames(req.out / "generated", generated);
  std::vector<torch::Tensor> rows{cond01.images, generated};
  if (in.truth.defined()) {
    write_frames(req.out / "truth", in.truth);
    rows.push_back(in.truth);
  }
  write_gif(req.out / "renders.gif", cond01.images, 4);
  write_gif(req.out / "generated.gif", generated, 4);
  const bool mp4 = write_mp4(req.out / "generated.mp4", generated, 8);
  std::vector<PointCloud> clouds;
  for (size_t v = 0; v < in.images.size(); ++v) clouds.push_back(unproject(in.images[v], in.depths[v], in.input_cams[v]));
  write_ply(req.out / "pointcloud.ply", concat(clouds));
  std::vector<torch::Tensor> strip;
  for (auto& r : rows) strip.push_back((r * 2 - 1).unsqueeze(0));
  write_clip_rows(req.out / "strip.png", strip);

  std::string scores;
  if (in.truth.defined())
    scores = fmt::format(", PSNR {:.2f} dB, SSIM {:.3f} (frames 1..{})",
                         psnr(generated.slice(0, 1), in.truth.slice(0, 1)).mean().item<double>(),
                         R >= 11 ? ssim(generated.slice(0, 1), in.truth.slice(0, 1)).mean().item<double>() : NAN, K - 1);
  return fmt::format("{} frames ({}) in {:.2f} s{}; wrote {}/strip.png, generated/, renders/, generated.gif{}, pointcloud.ply",
                     K, what, sec, scores, req.out.string(), mp4 ? ", generated.mp4" : "");
}

std::string compare_image_files(const std::filesystem::path& image, const std::filesystem::path& reference) {
  auto a = read_image(image), b = read_image(reference);
  if (!a.sizes().equals(b.sizes()))
    throw Error(fmt::format("compare: {} is {}x{}, {} is {}x{}", image.string(), a.size(2), a.size(1),
                            reference.string(), b.size(2), b.size(1)));
  a = a.unsqueeze(0), b = b.unsqueeze(0);
  return fmt::format("psnr {:.8f} ssim {:.8f}", psnr(a, b).item<double>(), ssim(a, b).item<double>());
}

}  // namespace retort
