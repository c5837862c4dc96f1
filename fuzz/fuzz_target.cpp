#include "fuzz_target.h"

#include <unistd.h>

#include <fstream>

namespace fs = std::filesystem;

namespace retort::fuzz {

std::map<std::string, Body>& targets() {
  static std::map<std::string, Body> all;
  return all;
}

std::map<std::string, SeedWriter>& seed_writers() {
  static std::map<std::string, SeedWriter> all;
  return all;
}

fs::path as_file(const uint8_t* data, size_t size, const std::string& name) {
  // Removed at exit, with what the targets wrote.
  struct Scratch {
    fs::path dir;
    Scratch() {
      const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
      dir = base / ("retort-fuzz-" + std::to_string(::getpid()));
      fs::create_directories(dir);
    }
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  };
  static const Scratch scratch;
  const auto path = scratch.dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

}  // namespace retort::fuzz
