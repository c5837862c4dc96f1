// Turntable videos of a radiance field: frames rendered on an orbit, written as an animated GIF
// (libgd) and, when ffmpeg is installed, as an MP4.
#pragma once
#include <filesystem>

#include <torch/torch.h>

#include "retort/field/radiance_field.h"
#include "retort/field/volume_render.h"

namespace retort {

struct TurntableOptions {
  int64_t frames = 36;
  double elevation_deg = 15;
  double distance = 2.0;  // sees the whole [-0.5, 0.5]^3 box at fov 40
  double fov_y_deg = 40;
  int64_t resolution = 128;
  VolumeRenderOptions render{};  // stratified jitter is normally off here; a shaded render
                                 // without a light gets each frame's headlight
  int64_t chunk = 4096;
};

// Frames [F,3,H,W] in [0,1], azimuth 0 .. 360 (exclusive) degrees, without autograd.
torch::Tensor render_turntable(RadianceField& field, const TurntableOptions& opts = {});

// frames: uint8 [F,3,H,W], or floating point in [0,1] (clamped). Each frame gets its own
// 256-colour palette (libgd's quantiser); loops forever when `loop`. Throws IoError on a write
// failure, ConfigError for a bad shape or fps.
void write_gif(const std::filesystem::path& path, const torch::Tensor& frames, double fps = 12, bool loop = true);

// Pipes raw RGB frames to `ffmpeg` (H.264 or the container's default codec, yuv420p). Returns
// false, writing nothing, when ffmpeg is not on PATH; throws IoError when ffmpeg fails.
bool write_mp4(const std::filesystem::path& path, const torch::Tensor& frames, double fps = 24);

}  // namespace retort
