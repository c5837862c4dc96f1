// Geometry of a generated field against the world's true object for its prompt (issue 22 part 3).
// The world knows the object behind every prompt: its SDF is exact, it stands upright at the
// origin in a fixed pose, and only its scale varies in the data (kMinScale..kMaxScale). So a field
// can be scored as a shape, which no classifier or CLIP score does:
//  * silhouette IoU: the field's opacity > 0.5 against the object's mask, from the same cameras;
//  * occupancy IoU: density > threshold against SDF < 0 on a grid over the field's box;
//  * Chamfer distance: between the field's marching-cubes surface and the object's surface.
// The scale is the one of the data's range whose occupancy IoU is best (ties: the nearest to the
// data's mean scale), so a field is not penalised for choosing another scale the teacher saw.
#pragma once
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "retort/field/radiance_field.h"
#include "retort/render/camera.h"
#include "retort/render/world.h"

namespace retort {

// The true object as a radiance field: density 0 outside, rising linearly from the surface to `peak`
// at depth `edge` (so any density threshold well below `peak` lies at the surface); colour the
// object's albedo. Scores the truth with the same
// code as a generated field (the ceiling of each measure), and is the tests' known answer.
class ObjectFieldImpl : public RadianceField {
 public:
  explicit ObjectFieldImpl(Object object, double peak = 1000, double edge = 0.01, double bound = 0.5);
  FieldSample query(const torch::Tensor& points) override;
  const Object& object() const { return object_; }

 private:
  Object object_;
  double peak_, edge_;
};
TORCH_MODULE(ObjectField);

struct ShapeScoreOptions {
  int64_t grid = 64;              // occupancy grid vertices per axis over the field's box
  double threshold = 10;          // occupied where density > threshold (as the mesh's isosurface)
  int64_t mesh_resolution = 64;   // marching-cubes grid of both surfaces for Chamfer
  int64_t scales = 7;             // candidate scales, evenly over [kMinScale, kMaxScale]
};

struct ShapeScores {
  double silhouette_iou = 0;
  double occupancy_iou = 0;
  double chamfer = NAN;  // symmetric mean distance in world units (the box is 1 wide); NaN: no surface
  double scale = 1;      // the true object's scale the scores are against
};

// IoU of two boolean masks of the same shape (1 when both are empty).
double mask_iou(const torch::Tensor& a, const torch::Tensor& b);
// The object's coverage per camera by one ray through each pixel's centre (as the field is rendered),
// bool [V,res,res].
torch::Tensor object_masks(const Object& object, const std::vector<Camera>& cams, int64_t res);
// SDF < 0 at the grid's vertices over [-bound, bound]^3, bool [G,G,G].
torch::Tensor object_occupancy(const Object& object, int64_t grid, double bound);
// density > threshold at the same vertices, bool [G,G,G].
torch::Tensor field_occupancy(RadianceField& field, int64_t grid, double threshold);
// Symmetric Chamfer distance between the field's surface {density = threshold} and the object's
// (both by marching cubes at `resolution`): the mean of (field vertices -> object surface, by the
// exact SDF) and (object vertices -> nearest field vertex). NaN when the field has no surface.
double chamfer_to_object(RadianceField& field, const Object& object, int64_t resolution, double threshold);

// All three. field_opacity [V,res,res] is the field's rendered opacity at `cams` (eval3d renders
// them anyway); the object is `object` at the best-fitting scale of the data's range.
ShapeScores score_shape(RadianceField& field, const torch::Tensor& field_opacity, const std::vector<Camera>& cams,
                        Object object, const ShapeScoreOptions& opts = {});

}  // namespace retort
