// A run's metrics.csv, as `retort report` and the plots read it.
#include "fuzz_target.h"
#include "retort/io/metrics_csv.h"

RETORT_FUZZ_TARGET(metrics_csv) {
  const auto path = retort::fuzz::as_file(data, size, "metrics.csv");
  retort::fuzz::expect_clean([&] { retort::read_metrics_csv(path); });
}
