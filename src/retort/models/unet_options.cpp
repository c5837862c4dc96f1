#include "retort/models/unet_options.h"

#include <cmath>

namespace retort {

namespace {

// Widths are a list of positive integers (a plain `numbers` row would truncate 31.5 silently).
OptionTable<UNetOptions>::Row widths_row() {
  OptionTable<UNetOptions>::Row r;
  r.key = "widths";
  r.help = "channels per level; level i works at resolution / 2^i";
  r.range = "list of integers in [1, 4096]";
  r.read = [](ConfigNode& n, UNetOptions& o) {
    auto got = n.numbers("widths", std::vector<double>(o.widths.begin(), o.widths.end()));
    if (got.empty()) n.fail("widths", "needs at least one level");
    o.widths.clear();
    for (double w : got) {
      if (w < 1 || w > 4096 || w != std::floor(w)) n.fail("widths", fmt::format("{} is not an integer in [1, 4096]", w));
      o.widths.push_back(int64_t(w));
    }
  };
  r.show = [](const UNetOptions& o) { return fmt::format("[{}]", fmt::join(o.widths, ", ")); };
  r.save = [](const UNetOptions& o, nlohmann::json& j) { j["widths"] = o.widths; };
  r.load = [](const nlohmann::json& j, UNetOptions& o) {
    if (j.contains("widths")) o.widths = j.at("widths").get<std::vector<int64_t>>();
  };
  return r;
}

OptionTable<UNetOptions> make_table(bool video) {
  using O = UNetOptions;
  OptionTable<O> t;
  t.custom(widths_row())
      .integer("blocks", &O::blocks, 1, 16, "residual blocks per level (the decoder has one more)")
      .integer("time_dim", &O::time_dim, 8, 4096, "width of the time / condition embedding (even)")
      .integer("groups", &O::groups, 1, 256, "GroupNorm groups (must divide every width)")
      .integer("heads", &O::heads, 0, 64, "self-attention heads at the lowest resolution (0 = none)")
      .number("dropout", &O::dropout, 0, 0.9, "dropout in the residual blocks");
  if (video)
    t.integer("temporal_heads", &O::temporal_heads, 0, 64, "temporal self-attention heads across frames (0 = none)")
        .integer("temporal_from", &O::temporal_from, 0, 16,
                 "first level with temporal attention (0 = full resolution; the middle always has it)");
  t.check([](ConfigNode& n, const O& o) {
    if (o.time_dim % 2) n.fail("time_dim", "must be even (sin and cos halves)");
    for (auto w : o.widths)
      if (w % o.groups) n.fail("groups", fmt::format("{} does not divide width {}", o.groups, w));
    if (o.heads > 0 && o.widths.back() % o.heads)
      n.fail("heads", fmt::format("{} does not divide the lowest width {}", o.heads, o.widths.back()));
    if (o.temporal_heads > 0) {
      if (o.temporal_from > int64_t(o.widths.size()))
        n.fail("temporal_from", fmt::format("{} is beyond the {} levels", o.temporal_from, o.widths.size()));
      for (size_t l = std::min<size_t>(o.temporal_from, o.widths.size()); l < o.widths.size(); ++l)
        if (o.widths[l] % o.temporal_heads || o.widths[l] % 2)
          n.fail("temporal_heads", fmt::format("{} does not divide width {} (or it is odd)", o.temporal_heads, o.widths[l]));
    }
  });
  return t;
}

}  // namespace

const OptionTable<UNetOptions>& unet_option_table(bool video) {
  static const auto image = make_table(false), clip = make_table(true);
  return video ? clip : image;
}

}  // namespace retort
