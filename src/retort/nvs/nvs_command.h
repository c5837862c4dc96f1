// `retort nvs`: novel views from one or two input views with a trained video model (teacher or
// few-step student). The input views and their z-depth become a point cloud, rendered along the
// trajectory (ViewCrafter's conditioning); the model turns the renders into a clip.
#pragma once
#include <filesystem>
#include <string>

namespace retort {

struct NvsRequest {
  std::filesystem::path model;  // nvs-teacher.safetensors or a student of it
  std::filesystem::path out;
  // Inputs from a render-scenes file (its input views, depth and, without --trajectory, its
  // trajectory and ground truth)...
  std::filesystem::path scenes;
  int64_t index = 0;
  // ...or the user's views: PNGs of the model's resolution with z-depth maps (safetensors with a
  // float32 "depth" [R,R] in world units; +inf or <= 0 = background).
  std::filesystem::path input, depth, input2, depth2;
  // The second view's camera as an offset from the first: "DPHI,DTHETA,DR" (trajectory.h).
  std::string camera2;
  double fovy = 45;        // the input camera's vertical field of view, degrees
  double elevation = 20;   // the input camera's elevation above the ground plane, degrees
  double distance = 0;     // the input camera's distance to the orbit centre; 0 = the centre pixel's depth
  std::string trajectory;  // offset:DPHI,DTHETA,DR or file:PATH; with --scenes, empty = the stored one
  int64_t steps = 50;      // teacher sampler steps (a student uses its own)
  double cfg = 1.0;
  std::string sampler = "ddim";
  uint64_t seed = 0;
  std::string device = "cpu";
  int64_t threads = 0;
};

// Writes DIR/renders/NN.png, DIR/generated/NN.png (and DIR/truth/NN.png when known), renders.gif,
// generated.gif, generated.mp4 (when ffmpeg is installed), pointcloud.ply, strip.png (rows: point-
// cloud renders, generated, ground truth); returns a summary line with the seconds per trajectory
// and, when the ground truth is known, PSNR and SSIM. ConfigError / IoError name the bad input.
std::string run_nvs(const NvsRequest& req);

// `retort compare IMAGE REFERENCE`: PSNR and SSIM of two image files of one size (RGB), as one line
// "psnr 23.45678901 ssim 0.81234567". IoError for a missing or undecodable file, Error for a size
// mismatch.
std::string compare_image_files(const std::filesystem::path& image, const std::filesystem::path& reference);

}  // namespace retort
