// Training metrics, one row per logged step, as CSV and JSON lines side by side.
#pragma once
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace retort {

class MetricsLog {
 public:
  // Opens DIR/metrics.csv and DIR/metrics.jsonl. When resuming from `resume_step`, rows after
  // that step (written after the last checkpoint) are dropped so no step appears twice.
  MetricsLog(const std::filesystem::path& dir, int64_t resume_step);
  void write(int64_t step, const std::map<std::string, double>& values);

 private:
  std::filesystem::path csv_path_, jsonl_path_;
  std::ofstream jsonl_;
  std::ofstream csv_;
  std::vector<std::string> columns_;
};

}  // namespace retort
