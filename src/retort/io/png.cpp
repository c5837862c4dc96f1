#include "retort/io/png.h"

#include <fmt/format.h>
#include <stb/stb_image_write.h>

#include "retort/core/error.h"

namespace retort {
namespace fs = std::filesystem;

void write_png_grid(const fs::path& path, const torch::Tensor& images, int64_t columns, int64_t pad) {
  if (!images.defined() || images.dim() != 4 || images.size(0) < 1)
    throw ConfigError(fmt::format("{}: png grid needs images [N,C,H,W] with N >= 1", path.string()));
  int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (c != 1 && c != 3 && c != 4)
    throw ConfigError(fmt::format("{}: png grid needs 1, 3 or 4 channels, got {}", path.string(), c));
  if (columns < 1 || pad < 0)
    throw ConfigError(fmt::format("{}: png grid needs columns >= 1 and pad >= 0, got {} and {}", path.string(), columns, pad));
  int64_t rows = (n + columns - 1) / columns;
  int64_t gw = columns * w + (columns + 1) * pad, gh = rows * h + (rows + 1) * pad;
  auto px = images.detach().to(torch::kCPU, torch::kFloat32).nan_to_num(0.0).clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch::kUInt8);
  auto grid = torch::zeros({gh, gw, c}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    int64_t y = pad + (i / columns) * (h + pad), x = pad + (i % columns) * (w + pad);
    grid.slice(0, y, y + h).slice(1, x, x + w).copy_(px[i].permute({1, 2, 0}));
  }
  if (!stbi_write_png(path.c_str(), int(gw), int(gh), int(c), grid.data_ptr<uint8_t>(), int(gw * c)))
    throw IoError(fmt::format("{}: cannot write png ({}x{})", path.string(), gw, gh));
}

}  // namespace retort
