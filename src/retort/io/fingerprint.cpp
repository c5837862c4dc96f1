#include "retort/io/fingerprint.h"

#include <fmt/format.h>

#include <cstdint>
#include <fstream>
#include <vector>

namespace retort {

std::string file_fingerprint(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fmt::format("{}: missing", path.string());
  uint64_t h = 0xcbf29ce484222325ull, n = 0;  // FNV-1a 64
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const auto got = in.gcount();
    for (std::streamsize i = 0; i < got; ++i) h = (h ^ uint8_t(buf[size_t(i)])) * 0x100000001b3ull;
    n += uint64_t(got);
  }
  return fmt::format("{}: {} bytes, fnv1a64 {:016x}", path.string(), n, h);
}

}  // namespace retort
