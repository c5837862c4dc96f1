#include "retort/data/image_folder.h"

#include <fmt/format.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "retort/core/error.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

bool is_image(const fs::path& p) {
  auto ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool is_hidden(const fs::path& p) { return p.filename().string().starts_with("."); }

struct Listing {
  std::vector<fs::path> images;
  std::vector<fs::path> folders;
};

// The folder's image files and visible subfolders, each sorted by name.
Listing list_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(fmt::format("{}: not a folder", dir.string()));
  Listing l;
  fs::directory_iterator it(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot list folder: {}", dir.string(), ec.message()));
  for (const auto& e : it) {
    if (is_hidden(e.path())) continue;
    if (e.is_directory(ec)) l.folders.push_back(e.path());
    else if (e.is_regular_file(ec) && is_image(e.path())) l.images.push_back(e.path());
  }
  std::sort(l.images.begin(), l.images.end());
  std::sort(l.folders.begin(), l.folders.end());
  return l;
}

// Decodes one image into `out` (resolution x resolution x channels, interleaved).
void load_into(const fs::path& path, int64_t resolution, int64_t channels, uint8_t* out) {
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &n, int(channels)), stbi_image_free);
  if (!px) throw IoError(fmt::format("{}: cannot decode image: {}", path.string(), stbi_failure_reason()));
  int r = int(resolution);
  if (w == r && h == r) {
    std::memcpy(out, px.get(), size_t(r) * r * channels);
    return;
  }
  if (!stbir_resize_uint8(px.get(), w, h, 0, out, r, r, 0, int(channels)))
    throw IoError(fmt::format("{}: cannot resize {}x{} image to {}x{}", path.string(), w, h, r, r));
}

}  // namespace

torch::Tensor read_image(const fs::path& path, int64_t channels) {
  if (channels != 1 && channels != 3) throw Error(fmt::format("read_image: channels must be 1 or 3, got {}", channels));
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IoError(fmt::format("{}: no such image file", path.string()));
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &n, int(channels)), stbi_image_free);
  if (!px) throw IoError(fmt::format("{}: cannot decode image: {}", path.string(), stbi_failure_reason()));
  auto hwc = torch::from_blob(px.get(), {h, w, channels}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).to(torch::kFloat32).div(255.0).contiguous();
}

ImageDataset load_image_folder(const fs::path& dir, int64_t resolution, int64_t channels) {
  if (channels != 1 && channels != 3)
    throw ConfigError(fmt::format("{}: channels must be 1 or 3, got {}", dir.string(), channels));
  if (resolution < 1 || resolution > 16384)
    throw ConfigError(fmt::format("{}: resolution must be in [1, 16384], got {}", dir.string(), resolution));
  auto top = list_folder(dir);
  std::vector<fs::path> files;
  std::vector<int64_t> labels;
  bool labelled = top.images.empty() && !top.folders.empty();
  if (labelled) {
    for (size_t c = 0; c < top.folders.size(); ++c) {
      auto cls = list_folder(top.folders[c]).images;
      // An empty class would be a label no sample carries; almost surely a mistake.
      if (cls.empty()) throw IoError(fmt::format("{}: class folder holds no .png/.jpg/.jpeg images", top.folders[c].string()));
      files.insert(files.end(), cls.begin(), cls.end());
      labels.insert(labels.end(), cls.size(), int64_t(c));
    }
  } else {
    files = top.images;
  }
  if (files.empty()) throw IoError(fmt::format("{}: folder holds no .png/.jpg/.jpeg images", dir.string()));

  auto hwc = torch::empty({int64_t(files.size()), resolution, resolution, channels}, torch::kUInt8);
  auto* base = hwc.data_ptr<uint8_t>();
  size_t stride = size_t(resolution) * resolution * channels;
  for (size_t i = 0; i < files.size(); ++i) load_into(files[i], resolution, channels, base + i * stride);

  ImageDataset d;
  d.images = hwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(127.5).sub_(1.0).contiguous();
  if (labelled) {
    d.labels = torch::tensor(labels, torch::kInt64);
    d.num_classes = int64_t(top.folders.size());
  }
  return d;
}

}  // namespace retort
