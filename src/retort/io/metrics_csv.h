// The one reader of a run's metrics.csv (train/metrics_log.h writes it): a "step" column first, one
// row per logged step, an empty cell where a row has no value for a column.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace retort {

struct MetricsTable {
  std::vector<std::string> columns;        // columns[0] == "step"
  std::vector<std::vector<double>> rows;   // one value per column; NaN for an empty cell
  // The values of `column` (NaN where a row has none); empty when there is no such column.
  std::vector<double> column(const std::string& name) const;
};

// IoError when the file cannot be read; Error naming the file (and line) for an empty file, a first
// column other than "step", or a cell that is not a number.
MetricsTable read_metrics_csv(const std::filesystem::path& csv);

}  // namespace retort
