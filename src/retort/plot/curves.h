// Line plots (cairo PNG): training curves against the step, several named series with a legend.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace retort {

struct Curve {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points (and y <= 0 on a log axis) are skipped
};

// Throws Error for x/y of different lengths or no curves, IoError naming the PNG when it cannot be
// written. A plot with no drawable point still gets its axes and a "no data" note.
void plot_curves(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                 const std::string& y_label, const std::vector<Curve>& curves, bool log_y = false);

// Plots `columns` of a MetricsLog CSV (header "step,...", blank cells allowed) against step.
// IoError when the CSV cannot be read; Error naming the CSV and column for an unknown column, and the
// line for a malformed one.
void plot_metrics_csv(const std::filesystem::path& csv, const std::filesystem::path& png,
                      const std::vector<std::string>& columns, const std::string& title, bool log_y);

}  // namespace retort
