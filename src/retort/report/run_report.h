// A run folder (a training run or a benchmark) as one self-contained HTML page, `report.html`: the
// command and its status, the resolved config, every metrics.csv as inline SVG curves, the pictures
// (PNG, GIF, MP4) by relative path, the results table with each column's best value marked, the
// reports of the runs inside it, and links to every file. No network, no server, no build step:
// the folder can be copied or served as it is. `retort report DIR...` (re)builds them and an index.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace retort {

struct ReportStatus {
  std::string state;    // "finished", "failed", "running", "stopped"; empty: read from the folder
  std::string command;  // the command line, when known
  std::string error;    // a failed run's message
  std::string progress;  // a running run's progress bar ("distill-nvs 120/600, ETA 9 min")
  bool self = false;    // written by the run's own process: its lock on the folder does not mean "running"
};

// Writes DIR/report.html (and the reports of run folders under DIR/runs/); returns its path.
std::filesystem::path write_run_report(const std::filesystem::path& dir, const ReportStatus& status = {});
// Writes an index page over run folders (their reports are written first): one row per folder with
// its status, last step and last logged metrics; a click on a column header sorts by it.
void write_report_index(const std::filesystem::path& index, const std::vector<std::filesystem::path>& dirs);

// Pieces, for tests.
std::string html_escape(const std::string& text);
// One curve as an SVG chart with axes, their extreme values and a title; NaN values are skipped.
std::string svg_curve(const std::string& title, const std::vector<double>& x, const std::vector<double>& y);

}  // namespace retort
