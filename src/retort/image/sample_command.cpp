#include "retort/image/sample_command.h"

#include <fmt/format.h>

#include <chrono>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/generators/few_step_student.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/safetensors.h"
#include "retort/run/run_folder.h"

namespace retort {

std::string run_sample(const SampleRequest& req) {
  if (req.sampler != "ddim" && req.sampler != "ddpm")
    throw ConfigError(fmt::format("--sampler '{}': expected ddim or ddpm", req.sampler));
  apply_runtime(RuntimeOptions{req.device, req.threads, 1});
  auto device = parse_device(req.device, "--device");
  std::map<std::string, std::string> meta;
  DiffusionModelPtr model = load_diffusion_model(req.model, &meta);
  auto student = as_student(model, meta, req.model);
  model->to(device);
  const int64_t C = model->shape().num_classes;
  if (req.label >= C) throw ConfigError(fmt::format("--class {}: the model has {} classes", req.label, C));
  torch::Tensor labels;
  if (req.label == -2) labels = balanced_labels(C, req.n);
  else labels = torch::full({req.n}, C == 0 ? kNullClass : req.label, torch::kInt64);
  // Sort so each grid row shows one class when n is a multiple of the class count.
  labels = std::get<0>(labels.sort());
  create_output_folder(req.out);
  Rng rng(req.seed);
  auto t0 = std::chrono::steady_clock::now();
  torch::Tensor images, draws;
  std::string what;
  if (student) {
    images = student->sample(labels, rng, 250, &draws);
    what = fmt::format("{}-step student", student->timesteps().size());
  } else {
    TeacherSampling s{req.steps, req.cfg, req.sampler == "ddpm" ? 1.0 : 0.0, 1.0, 250};
    images = sample_teacher(*model, labels, s, rng);
    what = fmt::format("teacher, {} {} steps, cfg {}", req.sampler, req.steps, req.cfg);
  }
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_png_grid(req.out / "samples.png", images, req.columns);
  std::map<std::string, torch::Tensor> saved{{"images", images.cpu()}, {"labels", labels}};
  if (draws.defined()) saved["noise"] = draws.cpu();  // a student's draws: its chain again, elsewhere
  save_safetensors(req.out / "samples.safetensors", saved);
  return fmt::format("{} images ({}) in {:.1f} s = {:.2f} ms/image; wrote {}/samples.png, samples.safetensors",
                     req.n, what, sec, 1000 * sec / req.n, req.out.string());
}

}  // namespace retort
