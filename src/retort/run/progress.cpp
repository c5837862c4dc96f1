#include "retort/run/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace retort {

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

ProgressBar::ProgressBar(std::string label, int64_t total, int64_t start, bool enabled)
    : label_(std::move(label)), total_(total), start_(start), enabled_(enabled), tty_(isatty(STDERR_FILENO)),
      t0_(std::chrono::steady_clock::now()), last_draw_(t0_) {}

namespace {
std::string& latest() {
  static std::string s;
  return s;
}
}  // namespace

std::string latest_progress() { return latest(); }

void ProgressBar::update(int64_t done, const std::string& extra) {
  if (total_ <= 0) return;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - t0_).count();
  double rate = elapsed > 0 ? double(done - start_) / elapsed : 0.0;
  double eta = rate > 0 ? double(total_ - done) / rate : -1;
  latest() = fmt::format("{} {}/{}{}", label_, done, total_, eta >= 0 ? ", ETA " + format_duration(eta) : "");
  if (!enabled_) return;
  double frac = double(done) / double(total_);
  if (tty_) {
    if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    const int width = 24;
    int fill = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r%-18s %6lld/%-6lld [%s%s] %3.0f%% %7.1f it/s ETA %s %s\033[K", label_.c_str(),
                 (long long)done, (long long)total_, std::string(fill, '#').c_str(),
                 std::string(width - fill, '.').c_str(), 100 * frac, rate, format_duration(eta).c_str(),
                 extra.c_str());
    std::fflush(stderr);
  } else {
    int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s %lld/%lld (%.0f%%) %.1f it/s ETA %s %s\n", label_.c_str(), (long long)done,
                 (long long)total_, 100 * frac, rate, format_duration(eta).c_str(), extra.c_str());
  }
}

void ProgressBar::finish() {
  if (enabled_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace retort
