#include "retort/text3d/field_generator.h"

#include <optional>

namespace retort {

FieldGeneratorImpl::FieldGeneratorImpl(std::shared_ptr<RadianceField> f, const Prompt& prompt,
                                       FieldGeneratorOptions opts)
    : field(std::move(f)), prompt_(prompt), opts_(opts) {
  register_module("field", field);
}

Camera FieldGeneratorImpl::random_camera(Rng& rng) const {
  auto u = rng.rand({4}).to(torch::kFloat64);
  auto a = u.accessor<double, 1>();
  const auto& r = opts_.cameras;
  auto lerp = [&](const double* range, double x) { return range[0] + (range[1] - range[0]) * x; };
  return look_at_origin(lerp(r.azimuth, a[0]), lerp(r.elevation, a[1]), lerp(r.distance, a[2]),
                        lerp(r.fovy, a[3]));
}

GenBatch FieldGeneratorImpl::render(const std::vector<Camera>& cams, int64_t res, bool grad, Rng* jitter,
                                    torch::Tensor* opacity, torch::Tensor* depth) {
  std::optional<torch::NoGradGuard> ng;
  if (!grad) ng.emplace();
  VolumeRenderOptions ro;
  ro.samples = opts_.samples;
  ro.stratified = jitter != nullptr;
  ro.rng = jitter;
  ro.background = torch::tensor({opts_.background[0], opts_.background[1], opts_.background[2]}, torch::kFloat32);
  std::vector<torch::Tensor> images, labels, cameras, opacities, depths;
  for (const auto& cam : cams) {
    auto rays = camera_rays(cam, res);
    auto out = render_rays(*field, rays.origins, rays.dirs, ro);
    images.push_back(out.rgb.t().reshape({3, res, res}) * 2 - 1);
    opacities.push_back(out.opacity.reshape({res, res}));
    depths.push_back(out.depth.reshape({res, res}));
    View v = view_of(cam.azimuth_deg, cam.elevation_deg);
    labels.push_back(torch::tensor({prompt_class(prompt_.shape, prompt_.colour, v)}, torch::kInt64));
    cameras.push_back(camera_vector(cam));
  }
  if (opacity) *opacity = torch::stack(opacities);
  if (depth) *depth = torch::stack(depths);
  Cond c;
  c.labels = torch::cat(labels);
  c.camera = torch::stack(cameras);
  return GenBatch{torch::stack(images), c};
}

GenBatch FieldGeneratorImpl::draw(int64_t batch, Rng& rng) {
  std::vector<Camera> cams;
  for (int64_t i = 0; i < batch; ++i) cams.push_back(random_camera(rng));
  GenBatch g = render(cams, opts_.resolution, torch::GradMode::is_enabled(), opts_.stratified ? &rng : nullptr,
                      &last_opacity_);
  return g;
}

GenBatch FieldGeneratorImpl::draw_eval(int64_t n, Rng& rng) {
  std::vector<Camera> cams;
  for (int64_t i = 0; i < n; ++i) cams.push_back(random_camera(rng));
  return render(cams, opts_.resolution, false);
}

torch::Tensor FieldGeneratorImpl::regularization(Rng&, const Share&) {
  if (!last_opacity_.defined() || (opts_.sparsity_weight == 0 && opts_.opaque_weight == 0)) return {};
  torch::Tensor r = torch::zeros({}, last_opacity_.options());
  if (opts_.sparsity_weight != 0) r = r + opts_.sparsity_weight * opacity_sparsity_loss(last_opacity_);
  if (opts_.opaque_weight != 0) r = r + opts_.opaque_weight * opacity_entropy_loss(last_opacity_);
  return r;
}

}  // namespace retort
