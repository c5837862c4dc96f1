#include "retort/text3d/field_generator.h"

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/render/world.h"

namespace retort {

FieldGeneratorImpl::FieldGeneratorImpl(std::shared_ptr<RadianceField> f, const Prompt& prompt,
                                       FieldGeneratorOptions opts)
    : field(std::move(f)), prompt_(prompt), opts_(opts) {
  register_module("field", field);
  // Fields without levels (a voxel grid, eval3d's true object) have no schedule to follow.
  if (auto hash = std::dynamic_pointer_cast<HashGridFieldImpl>(field)) {
    if (opts_.coarse_levels > hash->options().levels)
      throw ConfigError(fmt::format("generate3d.coarse_levels = {} but the hash grid has {} levels (field.levels)",
                                    opts_.coarse_levels, hash->options().levels));
  }
  if (!(opts_.coarse_until > 0 && opts_.coarse_until <= 1))
    throw ConfigError(fmt::format("generate3d.coarse_until = {} must be in (0, 1]", opts_.coarse_until));
}

int64_t FieldGeneratorImpl::active_levels(int64_t step, int64_t steps) const {
  auto hash = std::dynamic_pointer_cast<HashGridFieldImpl>(field);
  if (!hash) return 0;
  const int64_t L = hash->options().levels;
  if (opts_.coarse_levels == 0 || steps <= 0) return L;
  const double done = double(step) / (opts_.coarse_until * double(steps));  // 1 = every level on
  return std::min(L, opts_.coarse_levels + int64_t(std::floor(double(L - opts_.coarse_levels) * done)));
}

void FieldGeneratorImpl::set_progress(int64_t step, int64_t steps) {
  if (auto hash = std::dynamic_pointer_cast<HashGridFieldImpl>(field)) hash->set_active_levels(active_levels(step, steps));
}

Shading FieldGeneratorImpl::shading(const std::optional<Vec3>& light) const {
  Shading s;
  s.on = opts_.shading;
  s.ambient = opts_.ambient;
  s.normal_eps = opts_.normal_eps;
  if (s.on && light) s.light = vec3_tensor(*light);
  return s;
}

Shading FieldGeneratorImpl::eval_shading(const Camera& cam) const { return shading(headlight(cam)); }

Shading FieldGeneratorImpl::random_shading(const Camera& cam, Rng& rng) const {
  Shading s = shading();
  if (!s.on) return s;
  auto u = rng.rand({3}).to(torch::kFloat64);
  auto a = u.accessor<double, 1>();
  s.light = vec3_tensor(light_from_uniforms(cam, a[0], a[1]));
  s.textureless = a[2] < opts_.textureless;
  return s;
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
                                    torch::Tensor* opacity, torch::Tensor* depth, const std::vector<Shading>* lights) {
  if (lights && lights->size() != cams.size()) throw Error("FieldGenerator::render: one Shading per camera");
  std::optional<torch::NoGradGuard> ng;
  if (!grad) ng.emplace();
  VolumeRenderOptions ro;
  ro.samples = opts_.samples;
  ro.stratified = jitter != nullptr;
  ro.rng = jitter;
  ro.background = torch::tensor({opts_.background[0], opts_.background[1], opts_.background[2]}, torch::kFloat32);
  std::vector<torch::Tensor> images, labels, cameras, opacities, depths;
  for (size_t i = 0; i < cams.size(); ++i) {
    const Camera& cam = cams[i];
    ro.shading = lights ? (*lights)[i] : eval_shading(cam);
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
  auto x = torch::stack(images);  // where the field lives (render_rays)
  Cond c;
  c.labels = torch::cat(labels).to(x.device());
  c.camera = torch::stack(cameras).to(x.device());
  return GenBatch{x, c};
}

GenBatch FieldGeneratorImpl::draw(int64_t batch, Rng& rng) {
  std::vector<Camera> cams;
  std::vector<Shading> lights;
  for (int64_t i = 0; i < batch; ++i) cams.push_back(random_camera(rng));
  for (const auto& cam : cams) lights.push_back(random_shading(cam, rng));  // no draws when unshaded
  GenBatch g = render(cams, opts_.resolution, torch::GradMode::is_enabled(), opts_.stratified ? &rng : nullptr,
                      &last_opacity_, nullptr, &lights);
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
