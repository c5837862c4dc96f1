// Scenes of the procedural world for novel-view synthesis: 1-3 objects of the world (shape x colour,
// scaled, optionally turned about +z) standing on the ground without overlap, an optional ground disc
// (plain grey or a grey checker) at their base, and ONE light fixed in world space per scene (the
// world's camera-following headlight would make the views of a scene disagree). Rendered by the
// world's tracer (render_rays / trace_object in render/world.h): each object is sphere-traced in its
// own frame, the ground is a ray-plane hit, the nearest surface wins.
//
// Geometry: world +z up; the ground is the plane z = kGroundZ; the scene centre is the origin, which
// the cameras (look_at_origin) look at. Objects' axes stand within `spread` of the z axis.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/render/camera.h"
#include "retort/render/world.h"

namespace retort {

// The ground's height: objects' bases rest on it, so the origin is roughly at the objects' middle.
inline constexpr double kGroundZ = -0.25;
inline constexpr int64_t kMaxSceneObjects = 3;

enum class Ground : int64_t { none, plain, checker };
const std::vector<std::string>& ground_names();  // "none", "plain", "checker"

struct SceneObject {
  Object object;             // shape, colour, scale (in (0, 1])
  double x = 0, y = 0;       // where its axis meets the ground
  double rotation_deg = 0;   // about +z (only the cube shows it: the other shapes are round)
};

struct Scene {
  std::vector<SceneObject> objects;  // 1..kMaxSceneObjects
  Ground ground = Ground::checker;
  double ground_radius = 1.5;  // the ground is a disc of this radius around the z axis
  Vec3 light{0, 0, 1};         // unit, towards the light, world space
};

// The lowest z of the shape's surface at unit scale (< 0), found from its SDF, so objects stand on
// the ground exactly.
double shape_bottom(Shape s);
// The radius of the smallest z-axis cylinder holding the shape at unit scale (its footprint on the
// ground, for placement), found from its SDF with a little slack.
double shape_footprint(Shape s);
// Where the object's own origin sits in the world: (x, y, kGroundZ - shape_bottom * scale).
Vec3 scene_object_centre(const SceneObject& o);

// Throws Error for a scene that cannot be rendered: no or too many objects, a bad id or scale, two
// objects whose footprint circles (shape_footprint x scale) overlap, an object off the ground disc, a non-unit light.
void check_scene(const Scene& s);

struct SceneRenderOptions {
  bool supersample = true;   // 2x2 rays per pixel
  Vec3 background{1, 1, 1};  // where a ray hits nothing (sky, beyond the ground disc)
  double ambient = 0.3;      // as RenderOptions
};

struct SceneRendering {
  torch::Tensor image;  // float32 [3,R,R] in [0,1]
  torch::Tensor alpha;  // float32 [R,R]: fraction of a pixel's rays that hit a surface (object or ground)
  // float32 [R,R]: z-depth, the distance along the optical axis (-z_cam; what unprojection along the
  // pixel's ray wants), mean over the rays that hit; +inf where none did.
  torch::Tensor depth;
};

SceneRendering render_scene(const Scene& s, const Camera& cam, int64_t res, const SceneRenderOptions& opts = {});

// How sample_scene draws.
struct SceneDrawOptions {
  int64_t objects_min = 1, objects_max = 3;
  double scale[2] = {0.75, 1.0};
  double spread = 0.55;  // objects' axes within this radius of the z axis
  double gap = 0.04;     // least clearance between two objects' footprint circles
  Ground ground = Ground::checker;
  double ground_radius = 1.5;
};

// A random scene: the object count, per object shape, colour, scale and rotation, then the positions
// (each uniform over the spread disc, rejection-sampled until it clears the others; the arrangement
// restarts when one cannot); then the light from random_light(light_reference) (within
// ±60° of that camera's azimuth, 20..70° up), so the side the input view sees is lit. Every number is
// rounded to float32 so that the scene stored in a data set re-renders bit for bit. Throws Error when
// the objects cannot be placed (a spread too small for the count).
Scene sample_scene(const SceneDrawOptions& o, const Camera& light_reference, std::mt19937_64& rng);

}  // namespace retort
