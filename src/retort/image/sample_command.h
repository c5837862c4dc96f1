// `retort sample`: images from a teacher (DDIM / DDPM, N steps, CFG) or a few-step student (its
// own K steps), written as a PNG grid and as safetensors ("images", "labels") for `retort eval`;
// a student's also holds "noise" [K, n, ...], the draws of its chain (its exported sample() takes them).
#pragma once
#include <filesystem>
#include <string>

namespace retort {

struct SampleRequest {
  std::filesystem::path model;  // a teacher or a student from `retort distill` (.safetensors or TorchScript .pt)
  std::filesystem::path out;    // folder: samples.png, samples.safetensors
  std::string sampler = "ddim";  // teacher only: ddim | ddpm
  int64_t steps = 50;            // teacher only
  double cfg = 1.0;              // teacher only
  int64_t n = 100;               // images (balanced over classes)
  int64_t label = -2;            // >= 0: only this class; -1: unconditional; -2: balanced over classes
  int64_t columns = 10;
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 1;
};

// Returns a one-line summary (what was sampled, seconds, ms per image).
std::string run_sample(const SampleRequest& req);

}  // namespace retort
