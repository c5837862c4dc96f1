// The non-finite guard of every training loop: a step whose loss or global gradient norm is NaN or
// infinite is refused — its optimiser steps are skipped and a line says so on stderr — and after
// `max_nonfinite_skips` consecutive refused steps the run stops with NonFiniteError. The default, 0,
// stops at the first: a run that diverged is rarely saved by skipping, while a rare bad batch (an
// fp16 overflow, a degenerate sample) can be. Weights holding a NaN are never written either way
// (checkpoint.h, safetensors.h).
#pragma once
#include <cstdint>
#include <string>

#include "retort/core/options.h"

namespace retort {

struct NonFiniteOptions {
  int64_t max_skips = 0;  // consecutive refused steps tolerated before the run stops
};

// The key max_nonfinite_skips, declared once for the distillation loop's and the teachers' tables.
const OptionTable<NonFiniteOptions>& non_finite_option_table();

class NonFiniteGuard {
 public:
  explicit NonFiniteGuard(NonFiniteOptions opts) : opts_(opts) {}
  // Whether `value` (a loss or gradient norm, the same on every rank) lets this part of the step
  // go on; false refuses the step and says so on stderr (rank 0).
  bool admit(double value, const std::string& what, int64_t step);
  // Closes step `step`: a refused one counts towards the limit and throws NonFiniteError past it,
  // naming what was non-finite; a step that went through ends the run of refusals.
  void end_step(int64_t step);
  int64_t refused_total() const { return refused_total_; }  // over this invocation

 private:
  NonFiniteOptions opts_;
  std::string refused_;  // what made the current step refused; empty when it was not
  int64_t consecutive_ = 0, refused_total_ = 0;
};

}  // namespace retort
