// A progress bar with it/s and ETA on stderr. On a terminal it redraws one line; otherwise (CI,
// logs) it prints a line at every 10%.
#pragma once
#include <chrono>
#include <string>

namespace retort {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, int64_t start = 0, bool enabled = true);
  void update(int64_t done, const std::string& extra = "");
  void finish();

 private:
  std::string label_;
  int64_t total_, start_;
  bool enabled_, tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point t0_, last_draw_;
};

std::string format_duration(double seconds);

// Where the newest progress bar of this process stands, shown or not ("train-teacher 1500/6000,
// ETA 12 min"); empty before any. Run reports show it while a run is running.
std::string latest_progress();

}  // namespace retort
