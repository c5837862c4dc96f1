// Camera trajectories for novel-view synthesis, in ViewCrafter's style: K cameras starting at the
// input camera, moved by spherical offsets around the scene centre (the origin, which every camera
// looks at), or interpolated between two input cameras, or read from a file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "retort/render/camera.h"

namespace retort {

// ViewCrafter's (d_phi, d_theta, d_r): azimuth and elevation change in degrees, radius change as a
// fraction of the input camera's distance (the last frame sits at distance * (1 + d_r)).
struct TrajectoryOffset {
  double d_phi = 0, d_theta = 0, d_r = 0;
};

// Elevation is clamped into [lo, hi] along a trajectory (keeps cameras above a ground plane and off
// the poles).
struct ElevationLimits {
  double lo = -85, hi = 85;
};

// K >= 2 cameras; frame k at s = k / (K-1) has azimuth az + s d_phi, elevation clamp(el + s d_theta),
// distance dist (1 + s d_r) and the input's fovy, with (az, el, dist) from the input's c2w. Frame 0
// is the input camera itself, bit for bit. Throws Error for K < 2 or d_r <= -1.
std::vector<Camera> offset_trajectory(const Camera& input, const TrajectoryOffset& offset, int64_t frames,
                                      const ElevationLimits& limits = {});

// K >= 2 cameras from a to b: azimuth along the shorter arc, elevation, distance and fovy linear.
// Frame 0 is a and frame K-1 is b, bit for bit.
std::vector<Camera> interpolate_trajectory(const Camera& a, const Camera& b, int64_t frames);

// The CLI's text form of a trajectory:
//   offset:DPHI,DTHETA,DR   offsets from the input camera (degrees, degrees, radius fraction > -1)
//   file:PATH               one camera per line, "azimuth elevation distance fovy" (degrees, world
//                           units); blank lines and '#' comments are skipped; line 1 is the input view
struct TrajectorySpec {
  enum class Kind { offset, file } kind = Kind::offset;
  TrajectoryOffset offset;
  std::filesystem::path path;
};
// ConfigError naming the spec and what is wrong with it.
TrajectorySpec parse_trajectory_spec(const std::string& text);
// ConfigError naming the file (missing or unreadable) or "file:line" and the problem.
std::vector<Camera> read_trajectory_file(const std::filesystem::path& path);
// The spec's K cameras from `input`: offset specs as offset_trajectory; a file must hold exactly K
// cameras (ConfigError otherwise) and is taken as it is (its first line stands for the input view).
std::vector<Camera> make_trajectory(const TrajectorySpec& spec, const Camera& input, int64_t frames,
                                    const ElevationLimits& limits = {});

}  // namespace retort
