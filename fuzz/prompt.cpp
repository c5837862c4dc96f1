// The text-to-3D prompt ("a red torus, side view").
#include "fuzz_target.h"
#include "retort/render/prompt.h"

RETORT_FUZZ_TARGET(prompt) {
  retort::fuzz::expect_clean([&] { retort::parse_prompt(retort::fuzz::as_text(data, size)); });
}
