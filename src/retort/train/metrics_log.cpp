#include "retort/train/metrics_log.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <vector>

#include "retort/core/error.h"

namespace retort {
namespace {
// Keeps the lines of `path` whose step (read by `step_of`) is at most `resume_step`.
template <typename StepOf>
void truncate_after(const std::filesystem::path& path, int64_t resume_step, bool keep_header, StepOf step_of) {
  std::ifstream in(path);
  if (!in) return;
  std::vector<std::string> keep;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (first && keep_header) {
      keep.push_back(line);
      first = false;
      continue;
    }
    first = false;
    try {
      if (step_of(line) <= resume_step) keep.push_back(line);
    } catch (...) {  // a torn last line from a killed run
    }
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (auto& l : keep) out << l << '\n';
}
}  // namespace

MetricsLog::MetricsLog(const std::filesystem::path& dir, int64_t resume_step)
    : csv_path_(dir / "metrics.csv"), jsonl_path_(dir / "metrics.jsonl") {
  if (resume_step > 0) {
    truncate_after(jsonl_path_, resume_step, false,
                   [](const std::string& l) { return nlohmann::json::parse(l).at("step").get<int64_t>(); });
    truncate_after(csv_path_, resume_step, true, [](const std::string& l) { return std::stoll(l); });
    std::ifstream in(csv_path_);
    std::string header;
    if (std::getline(in, header)) {
      std::stringstream ss(header);
      std::string col;
      std::getline(ss, col, ',');  // "step"
      while (std::getline(ss, col, ',')) columns_.push_back(col);
    }
  } else {
    std::filesystem::remove(csv_path_);
    std::filesystem::remove(jsonl_path_);
  }
  jsonl_.open(jsonl_path_, std::ios::app);
  csv_.open(csv_path_, std::ios::app);
  if (!jsonl_ || !csv_) throw IoError(fmt::format("{}: cannot write metrics", dir.string()));
}

void MetricsLog::write(int64_t step, const std::map<std::string, double>& values) {
  nlohmann::json j;
  j["step"] = step;
  for (const auto& [k, v] : values) j[k] = v;
  jsonl_ << j.dump() << '\n';
  if (columns_.empty()) {  // the first row fixes the CSV columns
    for (const auto& [k, v] : values) columns_.push_back(k);
    csv_ << "step";
    for (const auto& c : columns_) csv_ << ',' << c;
    csv_ << '\n';
  }
  csv_ << step;
  for (const auto& c : columns_) {
    auto it = values.find(c);
    csv_ << ',';
    if (it != values.end()) csv_ << fmt::format("{:.6g}", it->second);
  }
  csv_ << '\n';
  jsonl_.flush();
  csv_.flush();
}

}  // namespace retort
