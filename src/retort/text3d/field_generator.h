// A radiance field as a score-distillation generator (Algorithm 1 of seed 002, lines 3-4): each
// draw picks random cameras, renders the field differentiably and conditions every image on the
// prompt with the view suffix its camera implies (DreamFusion's view-dependent prompting).
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "retort/field/radiance_field.h"
#include "retort/field/volume_render.h"
#include "retort/generators/generator.h"
#include "retort/render/camera.h"
#include "retort/render/prompt.h"

namespace retort {

struct FieldGeneratorOptions {
  int64_t resolution = 32;           // rendered images are resolution^2 (the teacher's size)
  CameraRanges cameras;              // ASD / threestudio ranges (methods.md section 3)
  int64_t samples = 64;              // per ray
  bool stratified = true;            // jittered samples in training renders
  std::array<double, 3> background = {1, 1, 1};  // the world's background colour
  double sparsity_weight = 0.0;      // threestudio's opacity sparsity loss
  double opaque_weight = 0.0;        // binary entropy of the opacity
};

class FieldGeneratorImpl : public Generator {
 public:
  FieldGeneratorImpl(std::shared_ptr<RadianceField> field, const Prompt& prompt, FieldGeneratorOptions opts);
  // Images in [-1,1] [B,3,R,R] with labels = prompt_class(shape, colour, view of the camera) and
  // Cond::camera = camera_vector.
  GenBatch draw(int64_t batch, Rng& rng) override;
  GenBatch draw_eval(int64_t n, Rng& rng) override;
  // The opacity regularisers of the last draw (undefined when both weights are 0).
  torch::Tensor regularization(Rng& rng, const Share& share) override;
  // Renders given cameras at `resolution` (with autograd when `grad`), images in [-1,1]; fills
  // opacity / depth [B,R,R] when asked.
  GenBatch render(const std::vector<Camera>& cams, int64_t resolution, bool grad, Rng* jitter = nullptr,
                  torch::Tensor* opacity = nullptr, torch::Tensor* depth = nullptr);
  Camera random_camera(Rng& rng) const;
  const Prompt& prompt() const { return prompt_; }
  std::shared_ptr<RadianceField> field;

 private:
  Prompt prompt_;
  FieldGeneratorOptions opts_;
  torch::Tensor last_opacity_;
};
TORCH_MODULE(FieldGenerator);

}  // namespace retort
