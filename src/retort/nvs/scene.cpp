#include "retort/nvs/scene.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "retort/core/error.h"

namespace retort {
namespace {

constexpr double kSceneDeg = M_PI / 180.0;
constexpr double kSceneCheckerSize = 0.25;  // world units per checker square
const Vec3 kScenePlainGround{0.6, 0.6, 0.6};
const Vec3 kSceneCheckerDark{0.42, 0.42, 0.42}, kSceneCheckerLight{0.72, 0.72, 0.72};

// Rounds to the nearest float32. Through a volatile: GCC 12 -O3 was seen dropping a plain
// double(float(v)) round trip once the vectoriser packed two of them.
double scene_f32(double v) {
  volatile float f = float(v);
  return double(f);
}

// Rotation about +z by angle (cos c, sin s).
Vec3 scene_rotate_z(const Vec3& p, double c, double s) { return {c * p.x - s * p.y, s * p.x + c * p.y, p.z}; }

double scene_footprint_radius(const SceneObject& o) { return shape_footprint(o.object.shape) * o.object.scale; }

Vec3 scene_ground_albedo(const Scene& s, const Vec3& p) {
  if (s.ground == Ground::plain) return kScenePlainGround;
  const auto cell = int64_t(std::floor(p.x / kSceneCheckerSize)) + int64_t(std::floor(p.y / kSceneCheckerSize));
  return (cell & 1) ? kSceneCheckerDark : kSceneCheckerLight;
}

}  // namespace

const std::vector<std::string>& ground_names() {
  static const std::vector<std::string> names = {"none", "plain", "checker"};
  return names;
}

double shape_bottom(Shape s) {
  shape_name(s);  // range check
  static const std::array<double, kNumShapes> bottoms = [] {
    std::array<double, kNumShapes> b{};
    for (int64_t k = 0; k < kNumShapes; ++k) {
      // Every shape is round about z or (the cube) has a flat bottom through the axis, so the lowest
      // surface point lies on the half-line y = 0, x >= 0. g(z) = min over that line of the SDF is
      // > 0 below the shape and <= 0 at z = 0 (each shape holds the origin's height): bisect.
      auto g = [&](double z) {
        double m = std::numeric_limits<double>::infinity();
        for (int i = 0; i <= 400; ++i) m = std::min(m, shape_sdf(Shape(k), Vec3{0.36 * i / 400.0, 0, z}));
        return m;
      };
      double lo = -0.4, hi = 0.0;
      for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (g(mid) > 0 ? lo : hi) = mid;
      }
      b[size_t(k)] = hi;
    }
    return b;
  }();
  return bottoms[size_t(s)];
}

double shape_footprint(Shape s) {
  shape_name(s);  // range check
  static const std::array<double, kNumShapes> radii = [] {
    std::array<double, kNumShapes> r{};
    for (int64_t k = 0; k < kNumShapes; ++k) {
      // The largest distance from the axis at which some height and angle is inside the shape.
      double rho = 0.36;
      auto inside_at = [&](double q) {
        for (int zi = 0; zi <= 80; ++zi)
          for (int ai = 0; ai < 48; ++ai) {
            const double z = -0.36 + 0.72 * zi / 80, a = 2 * M_PI * ai / 48;
            if (shape_sdf(Shape(k), Vec3{q * std::cos(a), q * std::sin(a), z}) <= 0) return true;
          }
        return false;
      };
      while (rho > 0 && !inside_at(rho)) rho -= 0.0025;
      r[size_t(k)] = std::min(0.36, rho + 0.005);  // a grid step of slack, so the circle surely holds the shape
    }
    return r;
  }();
  return radii[size_t(s)];
}

Vec3 scene_object_centre(const SceneObject& o) {
  return {o.x, o.y, kGroundZ - shape_bottom(o.object.shape) * o.object.scale};
}

void check_scene(const Scene& s) {
  const auto n = int64_t(s.objects.size());
  if (n < 1 || n > kMaxSceneObjects)
    throw Error(fmt::format("a scene holds 1..{} objects, got {}", kMaxSceneObjects, n));
  if (int64_t(s.ground) < 0 || int64_t(s.ground) > int64_t(Ground::checker))
    throw Error(fmt::format("ground id {} is out of range", int64_t(s.ground)));
  if (!(s.ground_radius > 0)) throw Error(fmt::format("ground radius {} must be positive", s.ground_radius));
  if (std::abs(length(s.light) - 1) > 1e-4)
    throw Error(fmt::format("scene light ({}, {}, {}) is not a unit vector", s.light.x, s.light.y, s.light.z));
  for (int64_t i = 0; i < n; ++i) {
    const auto& a = s.objects[size_t(i)];
    shape_name(a.object.shape);
    colour_name(a.object.colour);
    if (!(a.object.scale > 0 && a.object.scale <= 1.0))
      throw Error(fmt::format("scene object {}: scale {} must be in (0, 1]", i, a.object.scale));
    if (!std::isfinite(a.x) || !std::isfinite(a.y) || !std::isfinite(a.rotation_deg))
      throw Error(fmt::format("scene object {}: position or rotation is not finite", i));
    if (s.ground != Ground::none && std::hypot(a.x, a.y) + scene_footprint_radius(a) > s.ground_radius)
      throw Error(fmt::format("scene object {} at ({:.3f}, {:.3f}) reaches off the ground disc of radius {}", i, a.x,
                              a.y, s.ground_radius));
    for (int64_t j = 0; j < i; ++j) {
      const auto& b = s.objects[size_t(j)];
      if (std::hypot(a.x - b.x, a.y - b.y) < scene_footprint_radius(a) + scene_footprint_radius(b))
        throw Error(fmt::format("scene objects {} and {} overlap", j, i));
    }
  }
}

SceneRendering render_scene(const Scene& s, const Camera& cam, int64_t res, const SceneRenderOptions& opts) {
  check_scene(s);
  struct Placed {
    Object object;
    Vec3 centre;
    double c, s;  // cos, sin of the rotation
  };
  std::vector<Placed> placed;
  for (const auto& o : s.objects)
    placed.push_back({o.object, scene_object_centre(o), std::cos(o.rotation_deg * kSceneDeg), std::sin(o.rotation_deg * kSceneDeg)});
  const RayCast cast = [&](const Vec3& ro, const Vec3& rd) {
    std::optional<SurfaceHit> best;
    for (const auto& p : placed) {
      // Into the object's frame (a rigid motion, so the distance along the ray is unchanged).
      auto hit = trace_object(p.object, scene_rotate_z(ro - p.centre, p.c, -p.s), scene_rotate_z(rd, p.c, -p.s));
      if (hit && (!best || hit->t < best->t)) {
        hit->normal = scene_rotate_z(hit->normal, p.c, p.s);
        best = hit;
      }
    }
    // The ground disc, seen from above only.
    if (s.ground != Ground::none && rd.z < 0 && ro.z > kGroundZ) {
      const double t = (kGroundZ - ro.z) / rd.z;
      const Vec3 q = ro + rd * t;
      if ((!best || t < best->t) && std::hypot(q.x, q.y) <= s.ground_radius)
        best = SurfaceHit{t, Vec3{0, 0, 1}, scene_ground_albedo(s, q)};
    }
    return best;
  };
  RenderOptions ro;
  ro.supersample = opts.supersample;
  ro.background = opts.background;
  ro.ambient = opts.ambient;
  ro.light = s.light;
  auto r = render_rays(cast, cam, res, ro);
  return {r.image, r.alpha, r.z_depth};
}

Scene sample_scene(const SceneDrawOptions& o, const Camera& light_reference, std::mt19937_64& rng) {
  if (o.objects_min < 1 || o.objects_max > kMaxSceneObjects || o.objects_min > o.objects_max)
    throw Error(fmt::format("scene objects [{}, {}] must lie within [1, {}]", o.objects_min, o.objects_max,
                            kMaxSceneObjects));
  Scene s;
  s.ground = o.ground;
  s.ground_radius = o.ground_radius;
  const int64_t span = o.objects_max - o.objects_min + 1;
  const int64_t n = o.objects_min + std::min<int64_t>(int64_t(uniform01(rng) * span), span - 1);
  for (int64_t k = 0; k < n; ++k) {
    SceneObject so;
    so.object.shape = Shape(std::min<int64_t>(int64_t(uniform01(rng) * kNumShapes), kNumShapes - 1));
    so.object.colour = Colour(std::min<int64_t>(int64_t(uniform01(rng) * kNumColours), kNumColours - 1));
    so.object.scale = scene_f32(o.scale[0] + (o.scale[1] - o.scale[0]) * uniform01(rng));
    so.rotation_deg = scene_f32(360.0 * uniform01(rng));
    s.objects.push_back(so);
  }
  // Positions: each object uniform over the disc of radius `spread`, retried until it clears the ones
  // before it; when one does not fit, the whole arrangement starts again.
  bool placed = false;
  for (int round = 0; round < 200 && !placed; ++round) {
    placed = true;
    for (int64_t k = 0; k < n && placed; ++k) {
      auto& so = s.objects[size_t(k)];
      bool fits = false;
      for (int attempt = 0; attempt < 50 && !fits; ++attempt) {
        const double rho = o.spread * std::sqrt(uniform01(rng)), phi = 2 * M_PI * uniform01(rng);
        so.x = scene_f32(rho * std::cos(phi));
        so.y = scene_f32(rho * std::sin(phi));
        fits = true;
        for (int64_t j = 0; j < k; ++j) {
          const auto& other = s.objects[size_t(j)];
          if (std::hypot(so.x - other.x, so.y - other.y) <
              scene_footprint_radius(so) + scene_footprint_radius(other) + o.gap)
            fits = false;
        }
      }
      placed = fits;
    }
  }
  if (!placed)
    throw Error(fmt::format("cannot place {} objects without overlap within spread {}; raise spread", n, o.spread));
  const Vec3 l = random_light(light_reference, rng);
  const Vec3 lf{scene_f32(l.x), scene_f32(l.y), scene_f32(l.z)};
  s.light = lf;  // unit to float32 precision (check_scene allows 1e-4)
  check_scene(s);
  return s;
}

}  // namespace retort
