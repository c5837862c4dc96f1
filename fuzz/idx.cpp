// MNIST-format IDX files, raw or gzip-compressed (detected from the content).
#include "fuzz_target.h"
#include "retort/data/idx.h"

RETORT_FUZZ_TARGET(idx) {
  const auto path = retort::fuzz::as_file(data, size, "images-idx3-ubyte");
  retort::fuzz::expect_clean([&] { retort::read_idx(path); });
}
