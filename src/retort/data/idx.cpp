#include "retort/data/idx.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "retort/core/error.h"
#include "retort/data/big_endian.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

struct IdxType {
  uint8_t code;
  const char* name;
  torch::ScalarType dtype;
  size_t size;
};

const IdxType kIdxTypes[] = {
    {0x08, "ubyte", torch::kUInt8, 1},  {0x09, "sbyte", torch::kInt8, 1},
    {0x0B, "short", torch::kInt16, 2},  {0x0C, "int", torch::kInt32, 4},
    {0x0D, "float", torch::kFloat32, 4}, {0x0E, "double", torch::kFloat64, 8},
};

// Reads the whole (decompressed) file; zlib passes non-gzip content through unchanged.
std::vector<uint8_t> read_all(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IoError(fmt::format("{}: no such file", path.string()));
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  gzbuffer(f, 1 << 17);
  std::vector<uint8_t> out;
  const size_t chunk = 1 << 20;
  for (;;) {
    size_t old = out.size();
    out.resize(old + chunk);
    int n = gzread(f, out.data() + old, chunk);
    int err = Z_OK;
    const char* msg = gzerror(f, &err);
    // A gzip stream cut short reads as a short read with Z_BUF_ERROR.
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
      std::string what = msg ? msg : "read error";
      // zlib prefixes its message with the path; we add our own.
      if (what.rfind(path.string() + ": ", 0) == 0) what.erase(0, path.string().size() + 2);
      gzclose_r(f);
      throw IoError(fmt::format("{}: corrupt or truncated gzip data: {}", path.string(), what));
    }
    out.resize(old + size_t(n));
    if (n == 0) break;
  }
  if (gzclose_r(f) != Z_OK) throw IoError(fmt::format("{}: truncated gzip stream", path.string()));
  return out;
}

const IdxType& idx_type(const fs::path& path, uint8_t code) {
  for (const auto& t : kIdxTypes)
    if (t.code == code) return t;
  throw IoError(fmt::format("{}: unknown IDX data type 0x{:02x}", path.string(), code));
}

// Copies big-endian elements into a native tensor.
torch::Tensor decode(const uint8_t* data, const std::vector<int64_t>& dims, const IdxType& type) {
  auto t = torch::empty(dims, type.dtype);
  auto* dst = static_cast<uint8_t*>(t.data_ptr());
  size_t n = size_t(t.numel());
  if (n == 0) return t;  // no data: data_ptr() is null, which memcpy must not see (fuzz/idx.cpp)
  if (type.size == 1) {
    std::memcpy(dst, data, n);
    return t;
  }
  for (size_t i = 0; i < n; ++i) std::reverse_copy(data + i * type.size, data + (i + 1) * type.size, dst + i * type.size);
  return t;
}

std::string shape_of(const torch::Tensor& t) { return fmt::format("{}", t.sizes().vec()); }
std::string type_of(const torch::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

}  // namespace

torch::Tensor read_idx(const fs::path& path) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "IDX decoding assumes a little-endian host");
  auto bytes = read_all(path);
  if (bytes.size() < 4)
    throw IoError(fmt::format("{}: truncated: {} bytes, shorter than the 4-byte IDX magic", path.string(), bytes.size()));
  if (bytes[0] != 0 || bytes[1] != 0 || bytes[3] == 0)
    throw IoError(fmt::format("{}: not an IDX file: magic bytes {:02x} {:02x} {:02x} {:02x} (expected 00 00 <type> <ndims>)",
                              path.string(), bytes[0], bytes[1], bytes[2], bytes[3]));
  const auto& type = idx_type(path, bytes[2]);
  size_t ndims = bytes[3];
  size_t header = 4 + 4 * ndims;
  if (bytes.size() < header)
    throw IoError(fmt::format("{}: truncated: header names {} dimensions, file holds {} bytes", path.string(), ndims,
                              bytes.size()));
  std::vector<int64_t> dims(ndims);
  uint64_t expected = type.size;  // payload bytes; dims are < 2^32 and we stop before overflow
  bool overflow = false;
  for (size_t i = 0; i < ndims; ++i) {
    dims[i] = read_be32(bytes.data() + 4 + 4 * i);
    overflow = overflow || __builtin_mul_overflow(expected, uint64_t(dims[i]), &expected);
  }
  size_t held = bytes.size() - header;
  if (overflow || expected > held)
    throw IoError(fmt::format("{}: truncated: header says {} {} ({} bytes of data), file holds {} bytes of data",
                              path.string(), dims, type.name, overflow ? std::string("too many") : std::to_string(expected), held));
  if (expected < held)
    throw IoError(fmt::format("{}: {} unexpected trailing bytes after the {} {} data ({} bytes)", path.string(),
                              held - expected, dims, type.name, expected));
  return decode(bytes.data() + header, dims, type);
}

ImageDataset load_idx_pair(const fs::path& images, const fs::path& labels) {
  auto x = read_idx(images);
  if (x.dim() != 3 || x.scalar_type() != torch::kUInt8)
    throw IoError(fmt::format("{}: expected 3-D ubyte images [N,H,W], file holds {} {}", images.string(), shape_of(x),
                              type_of(x)));
  auto y = read_idx(labels);
  if (y.dim() != 1 || y.scalar_type() != torch::kUInt8)
    throw IoError(fmt::format("{}: expected 1-D ubyte labels [N], file holds {} {}", labels.string(), shape_of(y),
                              type_of(y)));
  if (x.size(0) != y.size(0))
    throw IoError(fmt::format("image/label count mismatch: {} holds {} images, {} holds {} labels", images.string(),
                              x.size(0), labels.string(), y.size(0)));
  ImageDataset d;
  d.images = x.unsqueeze(1).to(torch::kFloat32).div_(127.5).sub_(1.0);
  d.labels = y.to(torch::kInt64);
  d.num_classes = y.numel() > 0 ? d.labels.max().item<int64_t>() + 1 : 0;
  return d;
}

ImageDataset load_fashion_mnist(const std::string& split, const fs::path& dir) {
  std::string prefix;
  if (split == "train") prefix = "train";
  else if (split == "test") prefix = "t10k";
  else throw ConfigError(fmt::format("fashion-mnist split '{}': expected 'train' or 'test'", split));
  // Prefer the packaged .gz files; accept already-decompressed copies too.
  auto find = [&](const std::string& stem) {
    for (auto name : {stem + ".gz", stem}) {
      std::error_code ec;
      if (fs::is_regular_file(dir / name, ec)) return dir / name;
    }
    throw IoError(fmt::format("{}: missing (Fashion-MNIST {} split); install the Debian package dataset-fashion-mnist "
                              "or pass the folder holding the IDX files",
                              (dir / (stem + ".gz")).string(), split));
  };
  auto images = find(prefix + "-images-idx3-ubyte");  // looked up first so a missing set names the images
  auto labels = find(prefix + "-labels-idx1-ubyte");
  auto d = load_idx_pair(images, labels);
  if (d.num_classes > 10)
    throw IoError(fmt::format("{}: label {} out of range for Fashion-MNIST's 10 classes",
                              labels.string(), d.num_classes - 1));
  d.num_classes = 10;  // fixed by the data set, even for a subset missing some class
  return d;
}

}  // namespace retort
