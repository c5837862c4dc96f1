#include "retort/plot/curves.h"

#include <cairo.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "retort/core/error.h"
#include "retort/io/metrics_csv.h"
#include "retort/plot/cairo_util.h"

namespace retort {
namespace {

constexpr int kWidth = 720, kHeight = 440;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();


// Distinguishable on white (matplotlib's tab10 order).
const double kPalette[][3] = {{0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                              {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}};

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}


// Tick positions (in axis coordinates: log10 of the value on a log axis) and their labels.
struct Ticks {
  std::vector<double> at;
  std::vector<std::string> label;
};

Ticks linear_ticks(double lo, double hi) {
  Ticks t;
  double step = nice_step(hi - lo, 6);
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) {
    t.at.push_back(v);
    t.label.push_back(fmt::format("{:g}", std::abs(v) < step * 1e-6 ? 0.0 : v));
  }
  return t;
}

// lo, hi are log10 values. Ticks at 10^e, else at {1,2,5} x 10^e, else at {1..9} x 10^e: the first
// set giving at least three ticks; over less than that, 1-2-5 steps in value space.
Ticks log_ticks(double lo, double hi) {
  const std::vector<std::vector<double>> mantissas = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  for (const auto& ms : mantissas) {
    Ticks t;
    int every = ms.size() == 1 ? std::max(1, int(std::ceil((hi - lo) / 8))) : 1;  // at most ~8 decades
    for (int e = int(std::floor(lo)); e <= int(std::ceil(hi)); ++e) {
      if (ms.size() == 1 && e % every != 0) continue;
      for (double m : ms) {
        double at = std::log10(m) + e;
        if (at < lo - 1e-9 || at > hi + 1e-9) continue;
        t.at.push_back(at);
        t.label.push_back(fmt::format("{:g}", m * std::pow(10.0, e)));
      }
    }
    if (t.at.size() >= 3) return t;
  }
  Ticks t;
  auto lin = linear_ticks(std::pow(10.0, lo), std::pow(10.0, hi));
  for (size_t i = 0; i < lin.at.size(); ++i)
    if (lin.at[i] > 0) {
      t.at.push_back(std::log10(lin.at[i]));
      t.label.push_back(lin.label[i]);
    }
  return t;
}

// [lo, hi] of the values with a margin; a single value gets a unit-wide window.
std::pair<double, double> padded_range(double lo, double hi, double margin) {
  if (!(hi > lo)) return {lo - 0.5, hi + 0.5};
  double pad = margin * (hi - lo);
  return {lo - pad, hi + pad};
}

}  // namespace

void plot_curves(const std::filesystem::path& png, const std::string& title, const std::string& x_label,
                 const std::string& y_label, const std::vector<Curve>& curves, bool log_y) {
  if (curves.empty()) throw Error(fmt::format("plot {}: no curves", png.string()));
  // Drawable points per curve, y already on the axis scale.
  std::vector<std::vector<std::pair<double, double>>> pts(curves.size());
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (size_t c = 0; c < curves.size(); ++c) {
    const auto& cv = curves[c];
    if (cv.x.size() != cv.y.size())
      throw Error(fmt::format("plot {}: curve '{}' has {} x and {} y values", png.string(), cv.name, cv.x.size(),
                              cv.y.size()));
    for (size_t i = 0; i < cv.x.size(); ++i) {
      double x = cv.x[i], y = log_y ? (cv.y[i] > 0 ? std::log10(cv.y[i]) : kNaN) : cv.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts[c].push_back({x, y});
      xlo = std::min(xlo, x), xhi = std::max(xhi, x), ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    }
  }
  const bool empty = !std::isfinite(xlo);
  if (empty) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (!(xhi > xlo)) xlo -= 0.5, xhi += 0.5;
  std::tie(ylo, yhi) = padded_range(ylo, yhi, 0.05);

  std::unique_ptr<cairo_surface_t, SurfaceDeleter> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, kWidth, kHeight));
  std::unique_ptr<cairo_t, ContextDeleter> ctx(cairo_create(surface.get()));
  cairo_t* cr = ctx.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  const double title_size = 16, tick_size = 11, label_size = 12;
  auto xt = linear_ticks(xlo, xhi);
  auto yt = log_y ? log_ticks(ylo, yhi) : linear_ticks(ylo, yhi);
  set_font(cr, tick_size);
  double ytick_w = 0;
  for (const auto& s : yt.label) ytick_w = std::max(ytick_w, text_width(cr, s));
  const double left = 12 + label_size * 1.6 + ytick_w + 8, right = 18, top = 12 + title_size * 1.6,
               bottom = 12 + label_size * 1.6 + tick_size * 1.6;
  const double pw = kWidth - left - right, ph = kHeight - top - bottom;
  auto px = [&](double x) { return left + (x - xlo) / (xhi - xlo) * pw; };
  auto py = [&](double y) { return top + (yhi - y) / (yhi - ylo) * ph; };

  // Grid, frame and ticks.
  cairo_set_line_width(cr, 1.0);
  cairo_set_source_rgb(cr, 0.92, 0.92, 0.92);
  for (double v : yt.at) {
    cairo_move_to(cr, left, std::round(py(v)) + 0.5);
    cairo_line_to(cr, left + pw, std::round(py(v)) + 0.5);
  }
  for (double v : xt.at) {
    cairo_move_to(cr, std::round(px(v)) + 0.5, top);
    cairo_line_to(cr, std::round(px(v)) + 0.5, top + ph);
  }
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_rectangle(cr, left + 0.5, top + 0.5, pw - 1, ph - 1);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  set_font(cr, tick_size);
  for (size_t i = 0; i < xt.at.size(); ++i) {
    double x = px(xt.at[i]);
    cairo_move_to(cr, x, top + ph);
    cairo_line_to(cr, x, top + ph + 4);
    cairo_stroke(cr);
    cairo_move_to(cr, x - text_width(cr, xt.label[i]) / 2, top + ph + 4 + tick_size * 1.1);
    cairo_show_text(cr, xt.label[i].c_str());
  }
  for (size_t i = 0; i < yt.at.size(); ++i) {
    double y = py(yt.at[i]);
    cairo_move_to(cr, left, y);
    cairo_line_to(cr, left - 4, y);
    cairo_stroke(cr);
    cairo_move_to(cr, left - 6 - text_width(cr, yt.label[i]), y + tick_size * 0.35);
    cairo_show_text(cr, yt.label[i].c_str());
  }

  // Title and axis labels.
  cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
  set_font(cr, title_size, true);
  cairo_move_to(cr, left, 10 + title_size);
  cairo_show_text(cr, title.c_str());
  set_font(cr, label_size);
  cairo_move_to(cr, left + pw / 2 - text_width(cr, x_label) / 2, kHeight - 10);
  cairo_show_text(cr, x_label.c_str());
  std::string ylab = y_label + (log_y ? " (log scale)" : "");
  cairo_save(cr);
  cairo_move_to(cr, 10 + label_size, top + ph / 2 + text_width(cr, ylab) / 2);
  cairo_rotate(cr, -M_PI / 2);
  cairo_show_text(cr, ylab.c_str());
  cairo_restore(cr);

  // Curves, clipped to the plot area; markers too when points are few (a lone point stays visible).
  cairo_save(cr);
  cairo_rectangle(cr, left, top, pw, ph);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (size_t c = 0; c < curves.size(); ++c) {
    const double* rgb = kPalette[c % std::size(kPalette)];
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, 1.8);
    for (size_t i = 0; i < pts[c].size(); ++i) {
      double x = px(pts[c][i].first), y = py(pts[c][i].second);
      i == 0 ? cairo_move_to(cr, x, y) : cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
    if (pts[c].size() <= 40)
      for (auto [x, y] : pts[c]) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, px(x), py(y), 3.0, 0, 2 * M_PI);
        cairo_fill(cr);
      }
  }
  cairo_restore(cr);

  // Legend in the corner of the plot area that covers the fewest points (top right on ties).
  set_font(cr, tick_size);
  double lw = 0;
  for (const auto& cv : curves) lw = std::max(lw, text_width(cr, cv.name));
  const double row = tick_size * 1.5, swatch = 18, box_w = lw + swatch + 18, box_h = row * curves.size() + 8;
  double bx = 0, by = 0;
  int64_t fewest = -1;
  for (auto [cx, cy] : {std::pair{left + pw - box_w - 8, top + 8}, {left + pw - box_w - 8, top + ph - box_h - 8},
                        {left + 8, top + 8}, {left + 8, top + ph - box_h - 8}}) {
    int64_t covered = 0;
    for (const auto& p : pts)
      for (auto [x, y] : p) {
        double u = px(x), v = py(y);
        covered += u >= cx - 4 && u <= cx + box_w + 4 && v >= cy - 4 && v <= cy + box_h + 4;
      }
    if (fewest < 0 || covered < fewest) fewest = covered, bx = cx, by = cy;
  }
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, bx, by, box_w, box_h);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 1.0);
  cairo_stroke(cr);
  for (size_t c = 0; c < curves.size(); ++c) {
    const double* rgb = kPalette[c % std::size(kPalette)];
    double y = by + 4 + row * (c + 0.5);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, bx + 6, y);
    cairo_line_to(cr, bx + 6 + swatch, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, bx + 12 + swatch, y + tick_size * 0.35);
    cairo_show_text(cr, curves[c].name.c_str());
  }
  if (empty) {
    cairo_set_source_rgb(cr, 0.6, 0.1, 0.1);
    set_font(cr, label_size, true);
    cairo_move_to(cr, left + pw / 2 - text_width(cr, "no data") / 2, top + ph / 2);
    cairo_show_text(cr, "no data");
  }

  cairo_surface_flush(surface.get());
  auto st = cairo_surface_write_to_png(surface.get(), png.c_str());
  if (st != CAIRO_STATUS_SUCCESS)
    throw IoError(fmt::format("cannot write PNG {}: {}", png.string(), cairo_status_to_string(st)));
}

void plot_metrics_csv(const std::filesystem::path& csv, const std::filesystem::path& png,
                      const std::vector<std::string>& columns, const std::string& title, bool log_y) {
  const auto table = read_metrics_csv(csv);
  const auto steps = table.column("step");
  std::vector<Curve> curves;
  for (const auto& col : columns) {
    if (std::find(table.columns.begin() + 1, table.columns.end(), col) == table.columns.end())
      throw Error(fmt::format("{}: no column '{}' (columns: {})", csv.string(), col, fmt::join(table.columns, ",")));
    curves.push_back({col, steps, table.column(col)});
  }
  plot_curves(png, title, "step", columns.size() == 1 ? columns[0] : "value", curves, log_y);
}

}  // namespace retort
