// A radiance field as a score-distillation generator (Algorithm 1 of seed 002, lines 3-4): each
// draw picks random cameras, renders the field differentiably and conditions every image on the
// prompt with the view suffix its camera implies (DreamFusion's view-dependent prompting).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "retort/field/radiance_field.h"
#include "retort/field/volume_render.h"
#include "retort/generators/generator.h"
#include "retort/render/camera.h"
#include "retort/render/prompt.h"
#include "retort/field/hash_grid.h"

namespace retort {

struct FieldGeneratorOptions {
  int64_t resolution = 32;           // rendered images are resolution^2 (the teacher's size)
  CameraRanges cameras;              // ASD / threestudio ranges (methods.md section 3)
  int64_t samples = 64;              // per ray
  bool stratified = true;            // jittered samples in training renders
  std::array<double, 3> background = {1, 1, 1};  // the world's background colour
  double sparsity_weight = 0.0;      // threestudio's opacity sparsity loss
  double opaque_weight = 0.0;        // binary entropy of the opacity
  // DreamFusion's shading (volume_render.h): the field's colour becomes an albedo lit by the
  // world's light distribution (random_light) in training renders and by the headlight otherwise.
  bool shading = false;
  double ambient = 0.3;              // the world's
  double textureless = 0.0;          // probability that a training view renders with albedo 1
  double normal_eps = 0.01;          // finite-difference step of the normals (box units)
  // Coarse-to-fine (hash grid only): the first `coarse_levels` levels at the start, the rest
  // unmasked one by one until `coarse_until` of the iterations; 0 = every level from the start.
  int64_t coarse_levels = 0;
  double coarse_until = 0.5;
};

class FieldGeneratorImpl : public Generator {
 public:
  // Throws ConfigError for more coarse levels than a hash grid has, or coarse_until outside (0, 1].
  FieldGeneratorImpl(std::shared_ptr<RadianceField> field, const Prompt& prompt, FieldGeneratorOptions opts);
  // Images in [-1,1] [B,3,R,R] with labels = prompt_class(shape, colour, view of the camera) and
  // Cond::camera = camera_vector.
  GenBatch draw(int64_t batch, Rng& rng) override;
  GenBatch draw_eval(int64_t n, Rng& rng) override;
  // The opacity regularisers of the last draw (undefined when both weights are 0).
  torch::Tensor regularization(Rng& rng, const Share& share) override;
  // Renders given cameras at `resolution` (with autograd when `grad`), images in [-1,1]; fills
  // opacity / depth [B,R,R] when asked.
  // A shaded field is lit by each camera's headlight unless `lights` gives one Shading per camera.
  GenBatch render(const std::vector<Camera>& cams, int64_t resolution, bool grad, Rng* jitter = nullptr,
                  torch::Tensor* opacity = nullptr, torch::Tensor* depth = nullptr,
                  const std::vector<Shading>* lights = nullptr);
  // The hash grid's active levels for iteration `step` of `steps` (coarse_levels, coarse_until);
  // 0 for a field without levels, which ignores the schedule.
  void set_progress(int64_t step, int64_t steps) override;
  int64_t active_levels(int64_t step, int64_t steps) const;
  Camera random_camera(Rng& rng) const;
  // A training view's shading: a light drawn as the world's data set draws it, textureless with
  // probability `textureless`.
  Shading random_shading(const Camera& cam, Rng& rng) const;
  Shading eval_shading(const Camera& cam) const;  // the headlight, with albedo
  // The configured shading under `light` (none: no light set, e.g. for a turntable's per-frame one).
  Shading shading(const std::optional<Vec3>& light = std::nullopt) const;
  const Prompt& prompt() const { return prompt_; }
  std::shared_ptr<RadianceField> field;

 private:
  Prompt prompt_;
  FieldGeneratorOptions opts_;
  torch::Tensor last_opacity_;
};
TORCH_MODULE(FieldGenerator);

}  // namespace retort
