// A weights file: the 8-byte header length, the JSON header (dtypes, shapes, offsets), the data.
#include "fuzz_target.h"
#include "retort/io/safetensors.h"

RETORT_FUZZ_TARGET(safetensors) {
  const auto path = retort::fuzz::as_file(data, size, "weights.safetensors");
  retort::fuzz::expect_clean([&] {
    std::map<std::string, std::string> metadata;
    const auto tensors = retort::load_safetensors(path, &metadata);
    retort::first_non_finite(tensors);
  });
}
