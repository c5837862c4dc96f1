// Pinhole cameras on a sphere around the origin, in the conventions the radiance-field code shares:
// world right-handed with +z up; c2w is OpenGL-style (columns right, up, back, position; the camera
// looks along -z_cam, y_cam is up in the image); azimuth 0 (camera on +x) is the front.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include <torch/torch.h>

namespace retort {

// Double-precision 3-vector for the per-pixel CPU code (tensors are too slow per ray).
struct Vec3 {
  double x = 0, y = 0, z = 0;
  Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
  Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
  Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
};
inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double length(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 normalize(const Vec3& a) { return a * (1.0 / length(a)); }
inline torch::Tensor vec3_tensor(const Vec3& v, torch::Dtype dtype = torch::kFloat32) {
  return torch::tensor({v.x, v.y, v.z}, dtype);
}

struct Camera {
  torch::Tensor c2w;  // float32 [4,4]
  double fovy_deg = 60;
  // Bookkeeping only (c2w is the truth): the spherical coordinates it was made from.
  double azimuth_deg = 0, elevation_deg = 0, distance = 1;
};

// Camera at d*(cos el cos az, cos el sin az, sin el) looking at the origin. The right vector is
// (-sin az, cos az, 0) for every elevation, so el = ±90° is well defined (image up then points
// away from the azimuth direction, as the limit from below 90° does).
Camera look_at_origin(double azimuth_deg, double elevation_deg, double distance, double fovy_deg);

// The camera frame in doubles, for per-pixel work at a given square resolution.
struct CameraBasis {
  Vec3 right, up, back, position;
  double focal = 1;  // pixels: (res/2) / tan(fovy/2)
  int64_t res = 1;
  // Unit world direction through continuous pixel coordinates (u = column, v = row; pixel (i,j)
  // covers [j,j+1) x [i,i+1), its centre is (j+0.5, i+0.5), row 0 at the top).
  Vec3 direction(double u, double v) const;
};
CameraBasis camera_basis(const Camera& cam, int64_t res);

struct Rays {
  torch::Tensor origins;  // float32 [res*res, 3]
  torch::Tensor dirs;     // float32 [res*res, 3], unit; row-major over (row, column)
};
Rays camera_rays(const Camera& cam, int64_t res);

struct Projection {
  torch::Tensor pixels;  // float32 [N,2]: (column, row) in the continuous coordinates above
  torch::Tensor depth;   // float32 [N]: distance along the optical axis (-z_cam); <= 0 is behind
};
Projection project(const Camera& cam, const torch::Tensor& points, int64_t res);

struct Spherical {
  double azimuth_deg, elevation_deg, distance;  // azimuth in [0, 360)
};
// Inverse of look_at_origin (from the position; at the poles the azimuth comes from the right vector).
Spherical spherical_from_c2w(const torch::Tensor& c2w);

// Sampling ranges in degrees and world units; the defaults are ASD's / threestudio's.
struct CameraRanges {
  double azimuth[2] = {0, 360};
  double elevation[2] = {-10, 45};
  double distance[2] = {1.0, 1.5};
  double fovy[2] = {40, 70};
};
// Uniform in each coordinate, drawn in the order azimuth, elevation, distance, fovy. std::mt19937_64
// with our own uniform mapping keeps a seed's cameras identical across standard libraries.
Camera sample_camera(const CameraRanges& ranges, std::mt19937_64& rng);
std::vector<Camera> sample_cameras(const CameraRanges& ranges, int64_t n, std::mt19937_64& rng);
// Uniform in [0,1) from 53 random bits.
double uniform01(std::mt19937_64& rng);

// Condition vector for camera-aware models: the first 3 rows of c2w, row-major (float32 [12]).
torch::Tensor camera_vector(const Camera& cam);

// DreamFusion's view-dependent prompt suffix.
enum class View : int64_t { front = 0, side = 1, back = 2, overhead = 3 };
inline constexpr int64_t kNumViews = 4;
// "overhead" if el > 60; else by azimuth wrapped to (-180,180]: |az| <= 45 front, < 135 side, else back.
View view_of(double azimuth_deg, double elevation_deg);
std::string_view view_name(View v);

}  // namespace retort
