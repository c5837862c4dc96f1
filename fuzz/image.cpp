// One image of an image-folder data set (PNG / JPEG through stb_image), grey and RGB.
#include "fuzz_target.h"
#include "retort/data/image_folder.h"

RETORT_FUZZ_TARGET(image) {
  const auto path = retort::fuzz::as_file(data, size, "image.png");
  retort::fuzz::expect_clean([&] { retort::read_image(path, 3); });
  retort::fuzz::expect_clean([&] { retort::read_image(path, 1); });
}
