#include "retort/field/turntable.h"

#include <gd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "retort/core/error.h"
#include "retort/render/camera.h"
#include "retort/render/world.h"

namespace retort {
namespace {

// uint8 [F,H,W,3] contiguous on the CPU.
torch::Tensor frames_hwc(const torch::Tensor& frames) {
  if (!frames.defined() || frames.dim() != 4 || frames.size(1) != 3 || frames.size(0) < 1)
    throw ConfigError("frames must be [F,3,H,W] with F >= 1");
  auto f = frames.detach().to(torch::kCPU);
  if (f.is_floating_point()) f = (f.clamp(0, 1) * 255).round();
  return f.to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

}  // namespace

torch::Tensor render_turntable(RadianceField& field, const TurntableOptions& opts) {
  if (opts.frames < 1) throw ConfigError("turntable: frames must be >= 1");
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < opts.frames; ++i) {
    auto cam = look_at_origin(360.0 * double(i) / double(opts.frames), opts.elevation_deg, opts.distance, opts.fov_y_deg);
    VolumeRenderOptions ro = opts.render;
    if (ro.shading.on && !ro.shading.light.defined()) ro.shading.light = vec3_tensor(headlight(cam));
    out.push_back(render_image(field, camera_rays(cam, opts.resolution), opts.resolution, ro, opts.chunk).clamp(0, 1));
  }
  return torch::stack(out, 0);
}

void write_gif(const std::filesystem::path& path, const torch::Tensor& frames, double fps, bool loop) {
  if (!(fps > 0)) throw ConfigError("write_gif: fps must be > 0");
  auto hwc = frames_hwc(frames);
  const int F = int(hwc.size(0)), H = int(hwc.size(1)), W = int(hwc.size(2));
  const int delay = std::max(1, int(std::lround(100.0 / fps)));  // GIF delays are in 1/100 s
  std::unique_ptr<FILE, int (*)(FILE*)> fp(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!fp) throw IoError(path.string() + ": cannot open for writing");
  const uint8_t* px = hwc.data_ptr<uint8_t>();
  for (int f = 0; f < F; ++f) {
    std::unique_ptr<gdImage, void (*)(gdImagePtr)> im(gdImageCreateTrueColor(W, H), &gdImageDestroy);
    if (!im) throw IoError(path.string() + ": libgd could not allocate a " + std::to_string(W) + "x" + std::to_string(H) + " image");
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const uint8_t* p = px + ((int64_t(f) * H + y) * W + x) * 3;
        im->tpixels[y][x] = gdTrueColor(p[0], p[1], p[2]);
      }
    if (!gdImageTrueColorToPalette(im.get(), 0, 256)) throw IoError(path.string() + ": libgd palette quantisation failed");
    if (f == 0) gdImageGifAnimBegin(im.get(), fp.get(), 0, loop ? 0 : -1);
    // A local palette per frame; no inter-frame optimisation (previm = NULL), so every frame is whole.
    gdImageGifAnimAdd(im.get(), fp.get(), 1, 0, 0, delay, gdDisposalNone, nullptr);
  }
  gdImageGifAnimEnd(fp.get());
  if (std::ferror(fp.get()) != 0 || std::fclose(fp.release()) != 0) throw IoError(path.string() + ": write failed");
}

bool write_mp4(const std::filesystem::path& path, const torch::Tensor& frames, double fps) {
  if (!(fps > 0)) throw ConfigError("write_mp4: fps must be > 0");
  auto hwc = frames_hwc(frames);
  if (!on_path("ffmpeg")) return false;
  const int64_t H = hwc.size(1), W = hwc.size(2);
  // yuv420p (what players expect) needs even sizes: pad by one pixel where odd.
  const std::string cmd = "ffmpeg -y -loglevel error -f rawvideo -pix_fmt rgb24 -s " + std::to_string(W) + "x" +
                          std::to_string(H) + " -r " + std::to_string(fps) +
                          " -i - -vf 'pad=ceil(iw/2)*2:ceil(ih/2)*2' -pix_fmt yuv420p " + shell_quote(path.string());
  // A dying ffmpeg must not kill us with SIGPIPE; the failed write and its exit status report it.
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old);
  FILE* pipe = ::popen(cmd.c_str(), "w");
  bool wrote = false;
  int status = -1;
  if (pipe != nullptr) {
    const size_t bytes = size_t(hwc.numel());
    wrote = std::fwrite(hwc.data_ptr<uint8_t>(), 1, bytes, pipe) == bytes;
    status = ::pclose(pipe);
  }
  sigaction(SIGPIPE, &old, nullptr);
  if (pipe == nullptr) throw IoError(path.string() + ": cannot start ffmpeg");
  if (!wrote || status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw IoError(path.string() + ": ffmpeg failed (exit status " +
                  std::to_string(status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  return true;
}

}  // namespace retort
