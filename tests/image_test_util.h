// A tiny synthetic labelled image set written as an IDX pair, for image tests that must not
// depend on the installed Fashion-MNIST: class c's images are bright in column block c.
#pragma once
#include <filesystem>
#include <fstream>
#include <vector>

#include "test_util.h"

namespace retort::test {

inline void write_idx_file(const std::filesystem::path& p, const std::vector<uint32_t>& dims,
                           const std::vector<uint8_t>& payload) {
  std::ofstream out(p, std::ios::binary);
  const uint8_t head[4] = {0, 0, 0x08, uint8_t(dims.size())};
  out.write(reinterpret_cast<const char*>(head), 4);
  for (uint32_t d : dims) {
    const uint8_t be[4] = {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)};
    out.write(reinterpret_cast<const char*>(be), 4);
  }
  out.write(reinterpret_cast<const char*>(payload.data()), std::streamsize(payload.size()));
}

// n images of side r in `classes` classes; writes images.idx and labels.idx into dir.
inline void write_block_dataset(const std::filesystem::path& dir, int n, int r, int classes) {
  std::vector<uint8_t> px, lab;
  for (int i = 0; i < n; ++i) {
    const int c = i % classes;
    lab.push_back(uint8_t(c));
    for (int y = 0; y < r; ++y)
      for (int x = 0; x < r; ++x) px.push_back(x * classes / r == c ? uint8_t(200 + (i * 7 + y) % 55) : uint8_t(10));
  }
  write_idx_file(dir / "images.idx", {uint32_t(n), uint32_t(r), uint32_t(r)}, px);
  write_idx_file(dir / "labels.idx", {uint32_t(n)}, lab);
}

// n images of side 8 in 3 classes with 4 modes each: class 0 a vertical bar (2 px) at x = 0, 2, 4
// or 6; class 1 the same bar horizontal; class 2 a 4x4 square in one of the quadrants. A one-step
// generator that regresses to the mean smears the modes into grey, so it is far from the data: the
// case distillation has to fix. Writes images.idx and labels.idx into dir.
inline void write_bar_dataset(const std::filesystem::path& dir, int n) {
  std::vector<uint8_t> px, lab;
  for (int i = 0; i < n; ++i) {
    const int c = i % 3, mode = (i / 3) % 4;
    lab.push_back(uint8_t(c));
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        bool on = c == 0 ? x / 2 == mode : c == 1 ? y / 2 == mode : (x / 4 == mode % 2 && y / 4 == mode / 2);
        px.push_back(on ? uint8_t(230) : uint8_t(20));
      }
  }
  write_idx_file(dir / "images.idx", {uint32_t(n), 8, 8}, px);
  write_idx_file(dir / "labels.idx", {uint32_t(n)}, lab);
}

// A [data] table reading that set for both splits.
inline std::string block_data_toml(const std::filesystem::path& dir) {
  auto p = [&](const char* f) { return (dir / f).string(); };
  return "[data]\nsource = \"idx\"\ntrain_images = \"" + p("images.idx") + "\"\ntrain_labels = \"" +
         p("labels.idx") + "\"\ntest_images = \"" + p("images.idx") + "\"\ntest_labels = \"" + p("labels.idx") +
         "\"\n";
}

}  // namespace retort::test
