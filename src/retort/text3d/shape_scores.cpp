#include "retort/text3d/shape_scores.h"

#include <algorithm>

#include "retort/core/error.h"
#include "retort/field/marching_cubes.h"

namespace retort {

ObjectFieldImpl::ObjectFieldImpl(Object object, double peak, double edge, double bound)
    : RadianceField(bound), object_(object), peak_(peak), edge_(edge) {
  if (!(peak > 0) || !(edge > 0)) throw ConfigError("ObjectField: peak and edge must be > 0");
}

FieldSample ObjectFieldImpl::query(const torch::Tensor& points) {
  auto p = points.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t n = p.size(0);
  auto density = torch::empty({n}, torch::kFloat64);
  const double* pp = p.data_ptr<double>();
  double* pd = density.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    const double d = object_sdf(object_, Vec3{pp[3 * i], pp[3 * i + 1], pp[3 * i + 2]});
    pd[i] = peak_ * std::clamp(-d / edge_, 0.0, 1.0);
  }
  const Vec3 c = colour_rgb(object_.colour);
  auto rgb = vec3_tensor(c, torch::kFloat64).expand({n, 3});
  return {density.to(points.options()), rgb.to(points.options())};
}

double mask_iou(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) throw Error("mask_iou: masks of different shapes");
  auto x = a.to(torch::kBool), y = b.to(torch::kBool);
  const double inter = (x & y).sum().item<double>(), uni = (x | y).sum().item<double>();
  return uni == 0 ? 1.0 : inter / uni;
}

torch::Tensor object_masks(const Object& object, const std::vector<Camera>& cams, int64_t res) {
  std::vector<torch::Tensor> masks;
  RenderOptions centre;  // one ray through each pixel's centre, as the field's renders
  centre.supersample = false;
  for (const auto& cam : cams) masks.push_back(render_object(object, cam, res, centre).alpha > 0.5);
  return torch::stack(masks);
}

namespace {

// The grid's vertices over [-bound, bound]^3 in "ij" order, [G^3,3] float32.
torch::Tensor grid_points(int64_t grid, double bound) {
  auto axis = torch::linspace(-bound, bound, grid, torch::kFloat32);
  return torch::stack(torch::meshgrid({axis, axis, axis}, "ij"), -1).reshape({-1, 3});
}

// SDF at float32 points [N,3], [N] float32.
torch::Tensor object_sdf_at(const Object& object, const torch::Tensor& points) {
  auto p = points.to(torch::kFloat32).contiguous();
  auto out = torch::empty({p.size(0)}, torch::kFloat32);
  const float* pp = p.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for (int64_t i = 0; i < p.size(0); ++i) po[i] = float(object_sdf(object, Vec3{pp[3 * i], pp[3 * i + 1], pp[3 * i + 2]}));
  return out;
}

// Mean over `from` of the distance to the nearest point of `to` ([N,3], [M,3]), in chunks so the
// distance matrix stays small.
double mean_nearest(const torch::Tensor& from, const torch::Tensor& to) {
  double sum = 0;
  for (int64_t s = 0; s < from.size(0); s += 512) {
    auto chunk = from.slice(0, s, std::min(from.size(0), s + 512));
    sum += std::get<0>(torch::cdist(chunk, to).min(1)).sum().item<double>();
  }
  return sum / double(from.size(0));
}

}  // namespace

torch::Tensor object_occupancy(const Object& object, int64_t grid, double bound) {
  return (object_sdf_at(object, grid_points(grid, bound)) < 0).view({grid, grid, grid});
}

torch::Tensor field_occupancy(RadianceField& field, int64_t grid, double threshold) {
  torch::NoGradGuard ng;
  auto device = torch::kCPU;
  for (const auto& p : field.parameters()) {
    device = p.device().type();
    break;
  }
  auto pts = grid_points(grid, field.bound());
  std::vector<torch::Tensor> out;
  for (int64_t s = 0; s < pts.size(0); s += 65536)
    out.push_back(field.query(pts.slice(0, s, std::min(pts.size(0), s + 65536)).to(device)).density.to(torch::kCPU));
  return (torch::cat(out) > threshold).view({grid, grid, grid});
}

double chamfer_to_object(RadianceField& field, const Object& object, int64_t resolution, double threshold) {
  Mesh generated;
  try {
    generated = extract_mesh(field, {resolution, threshold});
  } catch (const Error&) {
    return NAN;  // nothing crosses the threshold: no surface to measure
  }
  const double b = field.bound(), h = 2 * b / double(resolution - 1);
  auto truth_volume = -object_sdf_at(object, grid_points(resolution, b)).view({resolution, resolution, resolution});
  Mesh truth = marching_cubes(truth_volume, 0.0, {-b, -b, -b}, h);
  auto to_truth = object_sdf_at(object, generated.vertices).abs().mean().item<double>();
  auto to_generated = mean_nearest(truth.vertices, generated.vertices.to(torch::kFloat32));
  return 0.5 * (to_truth + to_generated);
}

ShapeScores score_shape(RadianceField& field, const torch::Tensor& field_opacity, const std::vector<Camera>& cams,
                        Object object, const ShapeScoreOptions& opts) {
  if (field_opacity.dim() != 3 || field_opacity.size(0) != int64_t(cams.size()) ||
      field_opacity.size(1) != field_opacity.size(2))
    throw Error("score_shape: field_opacity must be [cameras, res, res]");
  ShapeScores s;
  auto occupied = field_occupancy(field, opts.grid, opts.threshold);
  // The best occupancy IoU over the data's scales; on a coarse grid neighbouring scales can tie
  // (no vertex changes side), and then the one nearest the data's mean scale is taken.
  const double mean_scale = 0.5 * (kMinScale + kMaxScale);
  s.occupancy_iou = -1;
  for (int64_t k = 0; k < opts.scales; ++k) {
    Object o = object;
    o.scale = opts.scales == 1 ? mean_scale : kMinScale + (kMaxScale - kMinScale) * double(k) / double(opts.scales - 1);
    const double iou = mask_iou(occupied, object_occupancy(o, opts.grid, field.bound()));
    const bool tie = std::abs(iou - s.occupancy_iou) < 1e-12;
    if (iou > s.occupancy_iou + 1e-12 || (tie && std::abs(o.scale - mean_scale) < std::abs(s.scale - mean_scale)))
      s.occupancy_iou = iou, s.scale = o.scale;
  }
  object.scale = s.scale;
  s.silhouette_iou = mask_iou(field_opacity.to(torch::kCPU) > 0.5, object_masks(object, cams, field_opacity.size(1)));
  s.chamfer = chamfer_to_object(field, object, opts.mesh_resolution, opts.threshold);
  return s;
}

}  // namespace retort
