#include "retort/train/non_finite_guard.h"

#include <fmt/format.h>

#include <cmath>

#include "retort/core/error.h"
#include "retort/dist/world.h"

namespace retort {

const OptionTable<NonFiniteOptions>& non_finite_option_table() {
  static const auto table = OptionTable<NonFiniteOptions>().integer(
      "max_nonfinite_skips", &NonFiniteOptions::max_skips, 0, 1'000'000,
      "consecutive steps with a NaN / infinite loss or gradient that are skipped (optimiser step refused, "
      "logged) before the run stops; 0 = stop at the first");
  return table;
}

bool NonFiniteGuard::admit(double value, const std::string& what, int64_t step) {
  if (std::isfinite(value)) return true;
  if (refused_.empty()) {
    refused_ = fmt::format("non-finite {} ({})", what, value);
    if (opts_.max_skips > 0 && world().writes())
      fmt::print(stderr, "retort: step {}: {}; the step is skipped ({} of {} in a row allowed)\n", step, refused_,
                 consecutive_ + 1, opts_.max_skips);
  }
  return false;
}

void NonFiniteGuard::end_step(int64_t step) {
  if (refused_.empty()) {
    consecutive_ = 0;
    return;
  }
  ++refused_total_;
  const std::string what = std::move(refused_);
  refused_.clear();
  if (++consecutive_ > opts_.max_skips)
    throw NonFiniteError(opts_.max_skips == 0
                             ? fmt::format("step {}: {}", step, what)
                             : fmt::format("step {}: {}: {} steps in a row refused (max_nonfinite_skips = {})", step,
                                           what, consecutive_, opts_.max_skips));
}

}  // namespace retort
