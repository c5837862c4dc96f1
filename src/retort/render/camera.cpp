#include "retort/render/camera.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "retort/core/error.h"

namespace retort {
namespace {

constexpr double kDeg = M_PI / 180.0;

void check_res(int64_t res) {
  if (res < 1) throw Error(fmt::format("camera resolution {} must be positive", res));
}

void check_c2w(const torch::Tensor& c2w) {
  if (!c2w.defined() || c2w.dim() != 2 || c2w.size(0) != 4 || c2w.size(1) != 4)
    throw Error(fmt::format("c2w must be a 4x4 tensor, got {}", c2w.defined() ? c2w.sizes().vec() : std::vector<int64_t>{}));
}

Vec3 column(const torch::Tensor& m, int64_t c) {
  auto a = m.to(torch::kCPU, torch::kDouble).contiguous();
  auto acc = a.accessor<double, 2>();
  return {acc[0][c], acc[1][c], acc[2][c]};
}

double wrap360(double deg) {
  double a = std::fmod(deg, 360.0);
  if (a < 0) a += 360.0;
  return a >= 360.0 ? 0.0 : a;
}

}  // namespace

Camera look_at_origin(double azimuth_deg, double elevation_deg, double distance, double fovy_deg) {
  if (!(distance > 0)) throw Error(fmt::format("camera distance {} must be positive", distance));
  if (!(fovy_deg > 0 && fovy_deg < 180)) throw Error(fmt::format("camera fovy {} must be in (0, 180) degrees", fovy_deg));
  if (!(std::abs(elevation_deg) <= 90)) throw Error(fmt::format("camera elevation {} must be in [-90, 90] degrees", elevation_deg));
  const double az = azimuth_deg * kDeg, el = elevation_deg * kDeg;
  const Vec3 back{std::cos(el) * std::cos(az), std::cos(el) * std::sin(az), std::sin(el)};
  // cross(z, back) normalised, written out so it stays defined at the poles.
  const Vec3 right{-std::sin(az), std::cos(az), 0.0};
  const Vec3 up = cross(back, right);
  const Vec3 pos = back * distance;
  auto m = torch::eye(4, torch::kDouble);
  auto a = m.accessor<double, 2>();
  const Vec3 cols[4] = {right, up, back, pos};
  for (int c = 0; c < 4; ++c) {
    a[0][c] = cols[c].x;
    a[1][c] = cols[c].y;
    a[2][c] = cols[c].z;
  }
  return Camera{m.to(torch::kFloat), fovy_deg, azimuth_deg, elevation_deg, distance};
}

Vec3 CameraBasis::direction(double u, double v) const {
  const double x = (u - res / 2.0) / focal, y = -(v - res / 2.0) / focal;
  return normalize(right * x + up * y - back);
}

CameraBasis camera_basis(const Camera& cam, int64_t res) {
  check_res(res);
  check_c2w(cam.c2w);
  auto m = cam.c2w.to(torch::kCPU, torch::kDouble).contiguous();
  auto a = m.accessor<double, 2>();
  auto col = [&](int c) { return Vec3{a[0][c], a[1][c], a[2][c]}; };
  CameraBasis b;
  b.right = col(0);
  b.up = col(1);
  b.back = col(2);
  b.position = col(3);
  b.res = res;
  b.focal = (res / 2.0) / std::tan(cam.fovy_deg * kDeg / 2);
  return b;
}

Rays camera_rays(const Camera& cam, int64_t res) {
  const auto b = camera_basis(cam, res);
  auto o = torch::empty({res * res, 3}, torch::kFloat), d = torch::empty({res * res, 3}, torch::kFloat);
  float* po = o.data_ptr<float>();
  float* pd = d.data_ptr<float>();
  for (int64_t i = 0; i < res; ++i)
    for (int64_t j = 0; j < res; ++j) {
      const int64_t k = (i * res + j) * 3;
      const Vec3 dir = b.direction(j + 0.5, i + 0.5);
      po[k] = float(b.position.x), po[k + 1] = float(b.position.y), po[k + 2] = float(b.position.z);
      pd[k] = float(dir.x), pd[k + 1] = float(dir.y), pd[k + 2] = float(dir.z);
    }
  return {o, d};
}

Projection project(const Camera& cam, const torch::Tensor& points, int64_t res) {
  if (!points.defined() || points.dim() != 2 || points.size(1) != 3)
    throw Error(fmt::format("project: points must be [N,3], got {}",
                            points.defined() ? points.sizes().vec() : std::vector<int64_t>{}));
  const auto b = camera_basis(cam, res);
  auto p = points.to(torch::kCPU, torch::kDouble).contiguous();
  auto a = p.accessor<double, 2>();
  const int64_t n = p.size(0);
  auto px = torch::empty({n, 2}, torch::kFloat), depth = torch::empty({n}, torch::kFloat);
  auto pa = px.accessor<float, 2>();
  auto da = depth.accessor<float, 1>();
  for (int64_t k = 0; k < n; ++k) {
    const Vec3 rel = Vec3{a[k][0], a[k][1], a[k][2]} - b.position;
    const double x = dot(rel, b.right), y = dot(rel, b.up), z = -dot(rel, b.back);
    // Inverse of CameraBasis::direction: u = res/2 + f x/z, v = res/2 - f y/z.
    pa[k][0] = float(res / 2.0 + b.focal * x / z);
    pa[k][1] = float(res / 2.0 - b.focal * y / z);
    da[k] = float(z);
  }
  return {px, depth};
}

Spherical spherical_from_c2w(const torch::Tensor& c2w) {
  check_c2w(c2w);
  const Vec3 pos = column(c2w, 3);
  const double d = length(pos);
  if (!(d > 0)) throw Error("spherical_from_c2w: the camera sits at the origin");
  const double horiz = std::hypot(pos.x, pos.y);
  const double el = std::atan2(pos.z, horiz) / kDeg;
  double az;
  if (horiz > 1e-6 * d) {
    az = std::atan2(pos.y, pos.x) / kDeg;
  } else {
    const Vec3 right = column(c2w, 0);  // (-sin az, cos az, 0)
    az = std::atan2(-right.x, right.y) / kDeg;
  }
  return {wrap360(az), el, d};
}

double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

Camera sample_camera(const CameraRanges& r, std::mt19937_64& rng) {
  auto draw = [&](const double (&range)[2]) { return range[0] + (range[1] - range[0]) * uniform01(rng); };
  const double az = draw(r.azimuth), el = draw(r.elevation), d = draw(r.distance), fovy = draw(r.fovy);
  return look_at_origin(az, el, d, fovy);
}

std::vector<Camera> sample_cameras(const CameraRanges& ranges, int64_t n, std::mt19937_64& rng) {
  std::vector<Camera> cams;
  cams.reserve(size_t(std::max<int64_t>(n, 0)));
  for (int64_t k = 0; k < n; ++k) cams.push_back(sample_camera(ranges, rng));
  return cams;
}

torch::Tensor camera_vector(const Camera& cam) {
  check_c2w(cam.c2w);
  return cam.c2w.to(torch::kCPU, torch::kFloat).narrow(0, 0, 3).contiguous().reshape({12});
}

View view_of(double azimuth_deg, double elevation_deg) {
  if (elevation_deg > 60) return View::overhead;
  double a = wrap360(azimuth_deg);
  if (a > 180) a -= 360;  // (-180, 180]
  const double m = std::abs(a);
  if (m <= 45) return View::front;
  if (m < 135) return View::side;
  return View::back;
}

std::string_view view_name(View v) {
  switch (v) {
    case View::front: return "front";
    case View::side: return "side";
    case View::back: return "back";
    case View::overhead: return "overhead";
  }
  throw Error(fmt::format("view id {} is out of range [0, {})", int64_t(v), kNumViews));
}

}  // namespace retort
