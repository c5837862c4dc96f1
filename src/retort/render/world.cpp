#include "retort/render/world.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "retort/core/error.h"

namespace retort {
namespace {

// Shape dimensions (unit scale), chosen so each bounding radius is 0.31..0.35 and the shapes look
// about the same size.
constexpr double kCubeHalf = 0.18, kCubeRound = 0.03;
constexpr double kTorusMajor = 0.23, kTorusMinor = 0.09;
constexpr double kConeRadius = 0.25, kConeHalfHeight = 0.24;
constexpr double kCylRadius = 0.2, kCylHalfHeight = 0.24;
constexpr double kCapRadius = 0.15, kCapHalfSegment = 0.18;

constexpr double kHitEps = 1e-4;    // sphere tracing stops this close to the surface
constexpr double kNormalStep = 5e-4;
constexpr int kMaxSteps = 128;

double len2(double a, double b) { return std::sqrt(a * a + b * b); }

double rounded_box(const Vec3& p) {
  const double qx = std::abs(p.x) - kCubeHalf, qy = std::abs(p.y) - kCubeHalf, qz = std::abs(p.z) - kCubeHalf;
  const double outside = length(Vec3{std::max(qx, 0.0), std::max(qy, 0.0), std::max(qz, 0.0)});
  return outside + std::min(std::max(qx, std::max(qy, qz)), 0.0) - kCubeRound;
}

double torus(const Vec3& p) { return len2(len2(p.x, p.y) - kTorusMajor, p.z) - kTorusMinor; }

// Inigo Quilez's exact capped cone (base radius r1 at z = -h, apex at z = +h), on the (radial, z) plane.
double cone(const Vec3& p) {
  const double r1 = kConeRadius, r2 = 0.0, h = kConeHalfHeight;
  const double qx = len2(p.x, p.y), qy = p.z;
  const double k1x = r2, k1y = h, k2x = r2 - r1, k2y = 2 * h;
  const double cax = qx - std::min(qx, qy < 0 ? r1 : r2), cay = std::abs(qy) - h;
  const double s = std::clamp(((k1x - qx) * k2x + (k1y - qy) * k2y) / (k2x * k2x + k2y * k2y), 0.0, 1.0);
  const double cbx = qx - k1x + k2x * s, cby = qy - k1y + k2y * s;
  const double sign = (cbx < 0 && cay < 0) ? -1.0 : 1.0;
  return sign * std::sqrt(std::min(cax * cax + cay * cay, cbx * cbx + cby * cby));
}

double cylinder(const Vec3& p) {
  const double dx = len2(p.x, p.y) - kCylRadius, dy = std::abs(p.z) - kCylHalfHeight;
  return std::min(std::max(dx, dy), 0.0) + len2(std::max(dx, 0.0), std::max(dy, 0.0));
}

double capsule(const Vec3& p) {
  const double z = p.z - std::clamp(p.z, -kCapHalfSegment, kCapHalfSegment);
  return length(Vec3{p.x, p.y, z}) - kCapRadius;
}

void check_shape(Shape s) {
  if (int64_t(s) < 0 || int64_t(s) >= kNumShapes)
    throw Error(fmt::format("shape id {} is out of range [0, {})", int64_t(s), kNumShapes));
}

// Distance along the ray to the surface, or nothing. The ray is clipped to the bounding sphere first,
// which skips most background rays without a single SDF evaluation.
std::optional<double> trace(const Object& o, const Vec3& ro, const Vec3& rd, double radius) {
  const double b = dot(ro, rd), c = dot(ro, ro) - radius * radius, disc = b * b - c;
  if (disc < 0) return std::nullopt;
  const double s = std::sqrt(disc);
  double t = std::max(-b - s, 0.0);
  const double t1 = -b + s;
  for (int k = 0; k < kMaxSteps && t <= t1; ++k) {
    const double d = object_sdf(o, ro + rd * t);
    if (d < kHitEps) return t;
    t += d;
  }
  return std::nullopt;
}

Vec3 normal_at(const Object& o, const Vec3& p) {
  const double h = kNormalStep;
  auto f = [&](double x, double y, double z) { return object_sdf(o, Vec3{x, y, z}); };
  return normalize(Vec3{f(p.x + h, p.y, p.z) - f(p.x - h, p.y, p.z), f(p.x, p.y + h, p.z) - f(p.x, p.y - h, p.z),
                        f(p.x, p.y, p.z + h) - f(p.x, p.y, p.z - h)});
}

}  // namespace

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> names = {"sphere", "cube", "torus", "cone", "cylinder", "capsule"};
  return names;
}

const std::vector<std::string>& colour_names() {
  static const std::vector<std::string> names = {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "grey"};
  return names;
}

const std::string& shape_name(Shape s) {
  check_shape(s);
  return shape_names()[size_t(s)];
}

const std::string& colour_name(Colour c) {
  if (int64_t(c) < 0 || int64_t(c) >= kNumColours)
    throw Error(fmt::format("colour id {} is out of range [0, {})", int64_t(c), kNumColours));
  return colour_names()[size_t(c)];
}

Vec3 colour_rgb(Colour c) {
  // Saturated and far apart in hue, so a shaded side of one colour is not mistaken for another.
  static const Vec3 rgb[kNumColours] = {
      {0.86, 0.13, 0.13}, {0.96, 0.52, 0.08}, {0.95, 0.85, 0.12}, {0.18, 0.70, 0.22},
      {0.12, 0.78, 0.85}, {0.15, 0.30, 0.88}, {0.58, 0.20, 0.78}, {0.50, 0.50, 0.50},
  };
  colour_name(c);  // range check
  return rgb[int64_t(c)];
}

double shape_sdf(Shape s, const Vec3& p) {
  switch (s) {
    case Shape::sphere: return length(p) - kSphereRadius;
    case Shape::cube: return rounded_box(p);
    case Shape::torus: return torus(p);
    case Shape::cone: return cone(p);
    case Shape::cylinder: return cylinder(p);
    case Shape::capsule: return capsule(p);
  }
  check_shape(s);
  return 0;
}

double object_sdf(const Object& o, const Vec3& p) { return shape_sdf(o.shape, p * (1.0 / o.scale)) * o.scale; }

double bounding_radius(Shape s, double scale) {
  double r = 0;
  switch (s) {
    case Shape::sphere: r = kSphereRadius; break;
    case Shape::cube: r = kCubeHalf * std::sqrt(3.0) + kCubeRound; break;
    case Shape::torus: r = kTorusMajor + kTorusMinor; break;
    case Shape::cone: r = std::max(len2(kConeRadius, kConeHalfHeight), kConeHalfHeight); break;
    case Shape::cylinder: r = len2(kCylRadius, kCylHalfHeight); break;
    case Shape::capsule: r = kCapHalfSegment + kCapRadius; break;
    default: check_shape(s);
  }
  return r * scale;
}

std::optional<SurfaceHit> trace_object(const Object& o, const Vec3& origin, const Vec3& dir) {
  // A little slack over the exact bound so tracing never starts inside the surface.
  const double radius = bounding_radius(o.shape, o.scale) + 1e-3;
  const auto t = trace(o, origin, dir, radius);
  if (!t) return std::nullopt;
  return SurfaceHit{*t, normal_at(o, origin + dir * *t), colour_rgb(o.colour)};
}

Rendering render_rays(const RayCast& cast, const Camera& cam, int64_t res, const RenderOptions& opts) {
  const CameraBasis b = camera_basis(cam, res);
  const Vec3 light = opts.light ? normalize(*opts.light) : headlight(cam);
  const int sub = opts.supersample ? 2 : 1;
  const double weight = 1.0 / (sub * sub);

  auto image = torch::empty({3, res, res}, torch::kFloat);
  auto depth = torch::empty({res, res}, torch::kFloat);
  auto alpha = torch::empty({res, res}, torch::kFloat);
  auto z_depth = torch::empty({res, res}, torch::kFloat);
  float* pi = image.data_ptr<float>();
  float* pd = depth.data_ptr<float>();
  float* pa = alpha.data_ptr<float>();
  float* pz = z_depth.data_ptr<float>();
  const int64_t plane = res * res;
  for (int64_t i = 0; i < res; ++i)
    for (int64_t j = 0; j < res; ++j) {
      Vec3 rgb{};
      double hits = 0, depth_sum = 0, z_sum = 0;
      for (int si = 0; si < sub; ++si)
        for (int sj = 0; sj < sub; ++sj) {
          const double u = j + (sj + 0.5) / sub, v = i + (si + 0.5) / sub;
          const Vec3 rd = b.direction(u, v);
          const auto hit = cast(b.position, rd);
          if (!hit) {
            rgb = rgb + opts.background;
            continue;
          }
          const double shade = opts.ambient + (1 - opts.ambient) * std::max(0.0, dot(hit->normal, light));
          rgb = rgb + hit->albedo * shade;
          hits += 1;
          depth_sum += hit->t;
          z_sum -= hit->t * dot(rd, b.back);
        }
      const int64_t k = i * res + j;
      pi[k] = float(std::clamp(rgb.x * weight, 0.0, 1.0));
      pi[plane + k] = float(std::clamp(rgb.y * weight, 0.0, 1.0));
      pi[2 * plane + k] = float(std::clamp(rgb.z * weight, 0.0, 1.0));
      pa[k] = float(hits * weight);
      pd[k] = hits > 0 ? float(depth_sum / hits) : std::numeric_limits<float>::infinity();
      pz[k] = hits > 0 ? float(z_sum / hits) : std::numeric_limits<float>::infinity();
    }
  return {image, depth, alpha, z_depth};
}

Rendering render_object(const Object& o, const Camera& cam, int64_t res, const RenderOptions& opts) {
  if (!(o.scale > 0 && o.scale <= 1.0))
    throw Error(fmt::format("object scale {} must be in (0, 1] to stay inside the 0.35 bound", o.scale));
  check_shape(o.shape);
  colour_name(o.colour);  // range check
  return render_rays([&](const Vec3& ro, const Vec3& rd) { return trace_object(o, ro, rd); }, cam, res, opts);
}

Vec3 light_from_uniforms(const Camera& cam, double u_azimuth, double u_elevation) {
  constexpr double deg = M_PI / 180.0;
  const double az = (cam.azimuth_deg + (u_azimuth * 120.0 - 60.0)) * deg;
  const double el = (20.0 + 50.0 * u_elevation) * deg;
  return {std::cos(el) * std::cos(az), std::cos(el) * std::sin(az), std::sin(el)};
}

Vec3 random_light(const Camera& cam, std::mt19937_64& rng) {
  const double u_az = uniform01(rng);  // sequenced: the data set's stream is fixed
  return light_from_uniforms(cam, u_az, uniform01(rng));
}

Vec3 headlight(const Camera& cam) {
  const CameraBasis b = camera_basis(cam, 1);
  return normalize(b.back + b.up * 0.6 - b.right * 0.3);
}

}  // namespace retort
