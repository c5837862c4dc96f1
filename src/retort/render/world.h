// A procedural world of one coloured object at the origin, rendered on the CPU by sphere tracing
// signed distance functions. Shapes stand upright along +z inside [-0.5,0.5]^3; every shape's
// bounding radius is at most 0.35 at scale 1, and scales are only ever jittered downwards.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/render/camera.h"

namespace retort {

enum class Shape : int64_t { sphere, cube, torus, cone, cylinder, capsule };
inline constexpr int64_t kNumShapes = 6;
enum class Colour : int64_t { red, orange, yellow, green, cyan, blue, purple, grey };
inline constexpr int64_t kNumColours = 8;

// Names in id order ("sphere", ..., "red", ...).
const std::vector<std::string>& shape_names();
const std::vector<std::string>& colour_names();
// Throw Error for an id out of range.
const std::string& shape_name(Shape s);
const std::string& colour_name(Colour c);
Vec3 colour_rgb(Colour c);  // albedo in [0,1]

// Scale jitter range used by the data set (<= 1 keeps every object inside the 0.35 bound).
inline constexpr double kMinScale = 0.85, kMaxScale = 1.0;

struct Object {
  Shape shape = Shape::sphere;
  Colour colour = Colour::red;
  double scale = 1.0;
};

// Signed distance at unit scale (exact for every shape, so sphere tracing never overshoots).
double shape_sdf(Shape s, const Vec3& p);
double object_sdf(const Object& o, const Vec3& p);
// Radius of the smallest origin-centred sphere holding the shape.
double bounding_radius(Shape s, double scale = 1.0);
// The sphere's radius at unit scale (for analytic checks).
inline constexpr double kSphereRadius = 0.32;

struct RenderOptions {
  bool supersample = true;    // 2x2 samples per pixel
  Vec3 background{1, 1, 1};
  // Unit direction towards the light in world space; unset: a headlight from above the camera.
  std::optional<Vec3> light;
  double ambient = 0.3;       // shade = albedo * (ambient + (1 - ambient) * max(0, n.l))
};

struct Rendering {
  torch::Tensor image;  // float32 [3,H,W] in [0,1]
  torch::Tensor depth;  // float32 [H,W]: distance along the ray (mean over hit samples), +inf on background
  torch::Tensor alpha;  // float32 [H,W]: fraction of samples that hit the object
  // float32 [H,W]: z-depth, the distance along the optical axis (-z_cam), mean over hit samples, +inf
  // on background. A pixel's point is position + z_depth * (x right + y up - back) (camera.h's pixel
  // convention), which is what unprojection wants; `depth` is z_depth / cos(ray, axis) per sample.
  torch::Tensor z_depth;
};

Rendering render_object(const Object& o, const Camera& cam, int64_t res, const RenderOptions& opts = {});

// The world's one tracer, for render_object and the multi-object scenes of nvs/scene.h.
// The first surface a ray meets: distance t along the unit ray, unit outward normal, albedo.
struct SurfaceHit {
  double t = 0;
  Vec3 normal, albedo;
};
// A scene as the pixel loop sees it: the first hit of origin + t dir (dir unit), or nothing.
using RayCast = std::function<std::optional<SurfaceHit>(const Vec3& origin, const Vec3& dir)>;
// The pixel loop: opts.supersample's sub-pixel rays, Lambert shading with opts.light (unset: the
// headlight), opts.background where nothing is hit, mean depths over the hits, alpha.
Rendering render_rays(const RayCast& cast, const Camera& cam, int64_t res, const RenderOptions& opts = {});
// Sphere-traces one object standing at the origin (the ray in the object's frame): the ray is clipped
// to the bounding sphere first, the normal comes from central differences of the SDF. The object
// must be valid (render_object checks it).
std::optional<SurfaceHit> trace_object(const Object& o, const Vec3& origin, const Vec3& dir);

// A light direction for one image: azimuth within ±60° of the camera's, elevation 20..70°, so the
// side facing the camera is lit and nothing renders black.
Vec3 random_light(const Camera& cam, std::mt19937_64& rng);
// The same distribution from two uniforms in [0,1) (azimuth, elevation), for callers drawing from
// another stream.
Vec3 light_from_uniforms(const Camera& cam, double u_azimuth, double u_elevation);
// The light of render_rays when none is given: from behind the camera, above and to its left.
Vec3 headlight(const Camera& cam);

}  // namespace retort
