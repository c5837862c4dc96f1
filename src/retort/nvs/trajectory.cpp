#include "retort/nvs/trajectory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "retort/core/error.h"

namespace retort {
namespace {

void check_trajectory_frames(int64_t frames) {
  if (frames < 2) throw Error(fmt::format("a trajectory needs at least 2 frames, got {}", frames));
}

// A whole-text number: "12", "-3.5", "1e-2"; nothing else (no trailing garbage).
bool parse_trajectory_number(const std::string& text, double& out) {
  std::string t = text;
  t.erase(0, t.find_first_not_of(" \t"));
  t.erase(t.find_last_not_of(" \t\r") + 1);
  if (t.empty()) return false;
  std::istringstream in(t);
  in >> out;
  return in && in.peek() == std::char_traits<char>::eof() && std::isfinite(out);
}

}  // namespace

std::vector<Camera> offset_trajectory(const Camera& input, const TrajectoryOffset& off, int64_t frames,
                                      const ElevationLimits& limits) {
  check_trajectory_frames(frames);
  if (!(off.d_r > -1)) throw Error(fmt::format("trajectory d_r {} must be > -1 (the camera would pass the centre)", off.d_r));
  if (!(limits.lo <= limits.hi) || limits.lo < -90 || limits.hi > 90)
    throw Error(fmt::format("elevation limits [{}, {}] must be ordered within [-90, 90]", limits.lo, limits.hi));
  const auto sph = spherical_from_c2w(input.c2w);
  std::vector<Camera> cams{input};
  for (int64_t k = 1; k < frames; ++k) {
    const double s = double(k) / double(frames - 1);
    const double el = std::clamp(sph.elevation_deg + s * off.d_theta, limits.lo, limits.hi);
    cams.push_back(look_at_origin(sph.azimuth_deg + s * off.d_phi, el, sph.distance * (1 + s * off.d_r), input.fovy_deg));
  }
  return cams;
}

std::vector<Camera> interpolate_trajectory(const Camera& a, const Camera& b, int64_t frames) {
  check_trajectory_frames(frames);
  const auto sa = spherical_from_c2w(a.c2w), sb = spherical_from_c2w(b.c2w);
  const double d_az = std::remainder(sb.azimuth_deg - sa.azimuth_deg, 360.0);  // in [-180, 180]
  std::vector<Camera> cams{a};
  for (int64_t k = 1; k + 1 < frames; ++k) {
    const double s = double(k) / double(frames - 1);
    cams.push_back(look_at_origin(sa.azimuth_deg + s * d_az, sa.elevation_deg + s * (sb.elevation_deg - sa.elevation_deg),
                                  sa.distance + s * (sb.distance - sa.distance),
                                  a.fovy_deg + s * (b.fovy_deg - a.fovy_deg)));
  }
  cams.push_back(b);
  return cams;
}

TrajectorySpec parse_trajectory_spec(const std::string& text) {
  const std::string usage = "expected offset:DPHI,DTHETA,DR or file:PATH";
  auto fail = [&](const std::string& why) { return ConfigError(fmt::format("trajectory '{}': {}", text, why)); };
  const auto colon = text.find(':');
  if (colon == std::string::npos) throw fail(usage);
  const std::string kind = text.substr(0, colon), rest = text.substr(colon + 1);
  TrajectorySpec spec;
  if (kind == "file") {
    if (rest.empty()) throw fail("file: needs a path");
    spec.kind = TrajectorySpec::Kind::file;
    spec.path = rest;
    return spec;
  }
  if (kind != "offset") throw fail(fmt::format("unknown kind '{}'; {}", kind, usage));
  std::vector<double> v;
  size_t start = 0;
  while (true) {
    const size_t comma = rest.find(',', start);
    const std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    double x = 0;
    if (!parse_trajectory_number(item, x)) throw fail(fmt::format("'{}' is not a number; {}", item, usage));
    v.push_back(x);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (v.size() != 3) throw fail(fmt::format("expected 3 numbers DPHI,DTHETA,DR, got {}", v.size()));
  if (!(v[2] > -1)) throw fail(fmt::format("DR {} must be > -1 (the camera would pass the centre)", v[2]));
  spec.offset = {v[0], v[1], v[2]};
  return spec;
}

std::vector<Camera> read_trajectory_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("{}: trajectory file not found or unreadable", path.string()));
  std::vector<Camera> cams;
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    auto fail = [&](const std::string& why) {
      return ConfigError(fmt::format("{}:{}: {} (expected 'azimuth elevation distance fovy')", path.string(), no, why));
    };
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::vector<double> v;
    for (std::string w; words >> w;) {
      double x = 0;
      if (!parse_trajectory_number(w, x)) throw fail(fmt::format("'{}' is not a number", w));
      v.push_back(x);
    }
    if (v.empty()) continue;
    if (v.size() != 4) throw fail(fmt::format("{} numbers", v.size()));
    if (std::abs(v[1]) > 90) throw fail(fmt::format("elevation {} is outside [-90, 90]", v[1]));
    if (!(v[2] > 0)) throw fail(fmt::format("distance {} must be positive", v[2]));
    if (!(v[3] > 0 && v[3] < 180)) throw fail(fmt::format("fovy {} is outside (0, 180)", v[3]));
    cams.push_back(look_at_origin(v[0], v[1], v[2], v[3]));
  }
  if (cams.empty()) throw ConfigError(fmt::format("{}: trajectory file holds no cameras", path.string()));
  return cams;
}

std::vector<Camera> make_trajectory(const TrajectorySpec& spec, const Camera& input, int64_t frames,
                                    const ElevationLimits& limits) {
  if (spec.kind == TrajectorySpec::Kind::offset) return offset_trajectory(input, spec.offset, frames, limits);
  auto cams = read_trajectory_file(spec.path);
  if (int64_t(cams.size()) != frames)
    throw ConfigError(fmt::format("{}: holds {} cameras, the clip has {} frames", spec.path.string(), cams.size(), frames));
  return cams;
}

}  // namespace retort
