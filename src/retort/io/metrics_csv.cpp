#include "retort/io/metrics_csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include "retort/core/error.h"

namespace retort {
namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.push_back("");  // a trailing blank cell
  return cells;
}

}  // namespace

std::vector<double> MetricsTable::column(const std::string& name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  if (it == columns.end()) return {};
  const size_t c = size_t(it - columns.begin());
  std::vector<double> out;
  for (const auto& r : rows) out.push_back(r[c]);
  return out;
}

MetricsTable read_metrics_csv(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  if (!in) throw IoError(fmt::format("{}: cannot read metrics CSV", csv.string()));
  std::string line;
  if (!std::getline(in, line)) throw Error(fmt::format("{}: empty metrics CSV", csv.string()));
  MetricsTable t;
  t.columns = split(line);
  if (t.columns.empty() || t.columns[0] != "step")
    throw Error(fmt::format("{}: the first column must be 'step'; header is '{}'", csv.string(), line));
  for (int64_t line_no = 2; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    const auto cells = split(line);
    std::vector<double> row(t.columns.size(), std::numeric_limits<double>::quiet_NaN());
    for (size_t c = 0; c < cells.size() && c < row.size(); ++c) {
      if (cells[c].empty()) continue;
      size_t used = 0;
      try {
        row[c] = std::stod(cells[c], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != cells[c].size())
        throw Error(fmt::format("{}:{}: '{}' is not a number", csv.string(), line_no, cells[c]));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace retort
