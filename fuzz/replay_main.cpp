// retort_fuzz_replay: every fuzz target over its committed corpus, without libFuzzer (any compiler).
//   retort_fuzz_replay CORPUS_DIR            runs CORPUS_DIR/NAME/* through target NAME, for every target
//   retort_fuzz_replay --write-seeds DIR     writes the seeds retort makes itself (DIR/NAME/seed-made)
// A file whose read ends in anything but retort's own error is named, and the exit status is 1.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz_target.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    for (const auto& [name, write] : retort::fuzz::seed_writers()) {
      fs::create_directories(fs::path(argv[2]) / name);
      write(fs::path(argv[2]) / name / "seed-made");
    }
    return 0;
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: retort_fuzz_replay CORPUS_DIR | --write-seeds DIR\n");
    return 2;
  }
  int failed = 0;
  for (const auto& [name, body] : retort::fuzz::targets()) {
    const auto dir = fs::path(argv[1]) / name;
    if (!fs::is_directory(dir)) {
      std::fprintf(stderr, "%s: no corpus folder %s\n", name.c_str(), dir.c_str());
      ++failed;
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        body(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s: not retort's error: %s\n", name.c_str(), f.c_str(), e.what());
        ++failed;
      } catch (...) {
        std::fprintf(stderr, "%s: %s: a non-standard exception\n", name.c_str(), f.c_str());
        ++failed;
      }
    }
    std::printf("%-15s %4zu inputs\n", name.c_str(), files.size());
  }
  if (failed) std::printf("%d input(s) failed\n", failed);
  else std::printf("fuzz corpora replayed clean\n");
  return failed ? 1 : 0;
}
