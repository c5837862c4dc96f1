#include "retort/data/image_folder.h"

#include <fmt/format.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "retort/core/error.h"
#include "retort/data/big_endian.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

bool is_image(const fs::path& p) {
  auto ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool is_hidden(const fs::path& p) { return p.filename().string().rfind(".", 0) == 0; }

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

// Larger images are refused before decoding: a header alone must not make retort allocate gigabytes.
constexpr int64_t kMaxPixels = int64_t{1} << 26;  // 8192 x 8192

// A PNG's compressed pixel data must inflate to no more than its size says. stb_image grows its
// output buffer as long as the stream goes on (fuzz/image.cpp found a 4x4 PNG that made it ask for
// 1 GiB), so the stream is first inflated here by zlib into a small scratch buffer, only counting.
void check_png_data(const fs::path& path, const std::vector<uint8_t>& bytes, int64_t w, int64_t h) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return;  // not a PNG
  std::string idat;
  int bits_per_pixel = 0;
  bool interlaced = false;
  for (size_t at = 8; at + 12 <= bytes.size();) {
    const uint32_t len = read_be32(&bytes[at]);
    if (len > bytes.size() - at - 12) throw IoError(fmt::format("{}: corrupt PNG: a chunk runs past the end of the file", path.string()));
    const std::string type(reinterpret_cast<const char*>(&bytes[at + 4]), 4);
    const uint8_t* data = &bytes[at + 8];
    if (type == "IHDR" && len >= 13) {
      static const std::map<int, int> samples{{0, 1}, {2, 3}, {3, 1}, {4, 2}, {6, 4}};  // by colour type
      const auto it = samples.find(data[9]);
      bits_per_pixel = it == samples.end() ? 0 : data[8] * it->second;
      interlaced = data[12] != 0;
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(data), len);
    }
    at += 12 + size_t(len);
  }
  if (bits_per_pixel == 0) return;  // stb names what is wrong with the header
  // Filtered rows: one filter byte per row; interlacing adds at most one per row of each of 7 passes.
  const int64_t row = (w * bits_per_pixel + 7) / 8 + 1;
  const int64_t limit = h * row + (interlaced ? 7 * (h + 1) : 0);
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw IoError(fmt::format("{}: cannot start zlib", path.string()));
  z.next_in = reinterpret_cast<Bytef*>(idat.data());
  z.avail_in = uInt(idat.size());
  std::vector<Bytef> scratch(1 << 16);
  int64_t out = 0;
  int rc = Z_OK;
  while (rc == Z_OK && out <= limit) {
    z.next_out = scratch.data();
    z.avail_out = uInt(scratch.size());
    rc = inflate(&z, Z_NO_FLUSH);
    out += int64_t(scratch.size() - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // the stream ends early: stb reports it
  }
  inflateEnd(&z);
  if (out > limit)
    throw IoError(fmt::format("{}: corrupt PNG: its pixel data inflates beyond the {} bytes a {}x{} image holds",
                              path.string(), limit, w, h));
  if (rc != Z_STREAM_END && rc != Z_OK && rc != Z_BUF_ERROR)
    throw IoError(fmt::format("{}: corrupt PNG: {}", path.string(), z.msg ? z.msg : "bad compressed data"));
}

// Decoded pixels, interleaved, `channels` per pixel.
struct Pixels {
  std::unique_ptr<stbi_uc, void (*)(void*)> data{nullptr, stbi_image_free};
  int w = 0, h = 0;
};

Pixels decode(const fs::path& path, int64_t channels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot read image", path.string()));
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() > size_t(INT32_MAX)) throw IoError(fmt::format("{}: image file over 2 GiB", path.string()));
  Pixels p;
  int n = 0;
  if (!stbi_info_from_memory(bytes.data(), int(bytes.size()), &p.w, &p.h, &n))
    throw IoError(fmt::format("{}: cannot decode image: {}", path.string(), stbi_failure_reason()));
  if (p.w <= 0 || p.h <= 0 || int64_t(p.w) * p.h > kMaxPixels)
    throw IoError(fmt::format("{}: {}x{} image: more than the {} pixels retort reads", path.string(), p.w, p.h, kMaxPixels));
  check_png_data(path, bytes, p.w, p.h);
  int w = 0, h = 0;
  p.data.reset(stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &n, int(channels)));
  if (!p.data) throw IoError(fmt::format("{}: cannot decode image: {}", path.string(), stbi_failure_reason()));
  if (w != p.w || h != p.h) throw IoError(fmt::format("{}: cannot decode image: its size changed while decoding", path.string()));
  return p;
}

// Decodes one image into `out` (resolution x resolution x channels, interleaved).
void load_into(const fs::path& path, int64_t resolution, int64_t channels, uint8_t* out) {
  const auto px = decode(path, channels);
  const int w = px.w, h = px.h;
  int r = int(resolution);
  if (w == r && h == r) {
    std::memcpy(out, px.data.get(), size_t(r) * r * channels);
    return;
  }
  if (!stbir_resize_uint8(px.data.get(), w, h, 0, out, r, r, 0, int(channels)))
    throw IoError(fmt::format("{}: cannot resize {}x{} image to {}x{}", path.string(), w, h, r, r));
}

}  // namespace

torch::Tensor read_image(const fs::path& path, int64_t channels) {
  if (channels != 1 && channels != 3) throw Error(fmt::format("read_image: channels must be 1 or 3, got {}", channels));
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IoError(fmt::format("{}: no such image file", path.string()));
  const auto px = decode(path, channels);
  auto hwc = torch::from_blob(px.data.get(), {px.h, px.w, channels}, torch::kUInt8);
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
