#include "retort/plot/scatter.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "retort/core/error.h"
#include "retort/plot/cairo_util.h"

namespace retort {
namespace {

// Log density shown over this many nats below the peak; lower is background.
constexpr double kLogRange = 10.0;


Surface image_surface(int w, int h) {
  Surface s(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h));
  if (cairo_surface_status(s.get()) != CAIRO_STATUS_SUCCESS)
    throw Error(fmt::format("plot: cannot create a {}x{} image: {}", w, h,
                            cairo_status_to_string(cairo_surface_status(s.get()))));
  return s;
}

void write_png(cairo_surface_t* s, const std::string& path) {
  cairo_surface_flush(s);
  auto st = cairo_surface_write_to_png(s, path.c_str());
  if (st != CAIRO_STATUS_SUCCESS)
    throw IoError(fmt::format("cannot write PNG {}: {}", path, cairo_status_to_string(st)));
}

// Everything a panel needs about the target, computed once per figure.
struct PlotTarget {
  GaussianMixture mix2;     // the clean target in plot coordinates
  torch::Tensor P;          // [D, 2] float64
  bool projected = false;   // D > 2
  double cx = 0, cy = 0, half = 1;
};

PlotTarget plot_target(const GaussianMixture& target) {
  auto g = target.to(torch::kCPU);
  auto P = plot_projection(g);
  PlotTarget t{g.project(P), P, g.dim() > 2};
  // Each mode's +-3.5 sd box along its widest axis, then a square around all of them with margin.
  auto m = t.mix2.means().to(torch::kFloat64);
  auto r = 3.5 * std::get<0>(t.mix2.eigvals().to(torch::kFloat64).max(1)).sqrt().unsqueeze(1);  // [K, 1]
  auto lo = std::get<0>((m - r).min(0)), hi = std::get<0>((m + r).max(0));
  t.cx = 0.5 * (lo[0] + hi[0]).item<double>();
  t.cy = 0.5 * (lo[1] + hi[1]).item<double>();
  t.half = std::max(1e-9, 0.5 * 1.05 * (hi - lo).max().item<double>());
  return t;
}

struct Fonts {
  double title, sub, tick;
};

Fonts fonts_for(int w, int h) {
  double s = std::min(w, h);
  double title = std::clamp(s * 0.042, 9.0, 18.0);
  return {title, title * 0.8, std::clamp(s * 0.03, 7.0, 12.0)};
}

PanelFrame layout(const PlotTarget& t, int w, int h) {
  auto f = fonts_for(w, h);
  double pad = std::max(3.0, 0.02 * std::min(w, h));
  int top = int(std::ceil(pad + 1.35 * f.title + 1.35 * f.sub + pad));
  int left = int(std::ceil(f.tick * 3.6 + pad));
  int bottom = int(std::ceil(f.tick * 2.0 + pad));
  int right = int(std::ceil(pad * 1.5));
  PanelFrame fr;
  fr.side = std::max(8, std::min(w - left - right, h - top - bottom));
  fr.x0 = left + std::max(0, (w - left - right - fr.side) / 2);
  fr.y0 = top;
  fr.cx = t.cx, fr.cy = t.cy, fr.half = t.half;
  return fr;
}

// Light sequential colours (white -> pale yellow -> pale green -> light teal) so dark dots stay visible.
std::array<double, 3> heat_colour(double v) {
  static const double stops[4][3] = {{1.0, 1.0, 1.0}, {0.95, 0.97, 0.80}, {0.74, 0.89, 0.72}, {0.50, 0.78, 0.80}};
  v = std::clamp(v, 0.0, 1.0) * 3.0;
  int i = std::min(2, int(v));
  double f = v - i;
  std::array<double, 3> c;
  for (int j = 0; j < 3; ++j) c[j] = stops[i][j] * (1 - f) + stops[i + 1][j] * f;
  return c;
}

// The clean log density on the plot area's pixel grid, coloured; one image reused by every panel.
Surface heat_map(const PlotTarget& t, int side) {
  auto idx = (torch::arange(side, torch::kFloat64) + 0.5) / side;
  auto u = (t.cx - t.half) + 2 * t.half * idx;  // columns, left to right
  auto v = (t.cy + t.half) - 2 * t.half * idx;  // rows, top to bottom
  auto grid = torch::stack({u.unsqueeze(0).expand({side, side}), v.unsqueeze(1).expand({side, side})}, 2)
                  .reshape({-1, 2})
                  .to(torch::kFloat32);
  const int64_t n = grid.size(0);
  auto lp = t.mix2.log_prob(grid, torch::ones({n}), torch::zeros({n})).to(torch::kFloat64);
  double peak = lp.max().item<double>();
  auto level = ((lp - (peak - kLogRange)) / kLogRange).clamp(0, 1).contiguous();
  const double* L = level.data_ptr<double>();

  auto s = image_surface(side, side);
  cairo_surface_flush(s.get());
  unsigned char* data = cairo_image_surface_get_data(s.get());
  const int stride = cairo_image_surface_get_stride(s.get());
  for (int i = 0; i < side; ++i) {
    auto* row = reinterpret_cast<uint32_t*>(data + i * stride);
    for (int j = 0; j < side; ++j) {
      auto c = heat_colour(L[i * side + j]);
      auto byte = [](double x) { return uint32_t(std::lround(x * 255)); };
      row[j] = 0xff000000u | byte(c[0]) << 16 | byte(c[1]) << 8 | byte(c[2]);
    }
  }
  cairo_surface_mark_dirty(s.get());
  return s;
}

// Shows text left-aligned at baseline (x, y), shrunk to fit max_width.
void show_text(cairo_t* cr, const std::string& text, double x, double y, double size, double max_width,
               bool bold = false) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  if (e.x_advance > max_width && e.x_advance > 0) cairo_set_font_size(cr, std::max(5.0, size * max_width / e.x_advance));
  cairo_move_to(cr, x, y);
  cairo_show_text(cr, text.c_str());
}


std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-6) v = 0;  // no "-0" or "1e-17"
  return fmt::format("{:g}", v);
}

void draw_ticks(cairo_t* cr, const PanelFrame& fr, double tick_size) {
  double step = nice_step(2 * fr.half, 6), len = std::max(2.0, fr.side / 100.0);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1.0);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, tick_size);
  const double eps = 1e-9 * fr.half;
  // x axis along the bottom
  for (double v = std::ceil((fr.cx - fr.half - eps) / step) * step; v <= fr.cx + fr.half + eps; v += step) {
    double px = fr.to_pixel(v, fr.cy)[0], py = fr.y0 + fr.side;
    cairo_move_to(cr, px, py);
    cairo_line_to(cr, px, py + len);
    cairo_stroke(cr);
    auto s = tick_label(v, step);
    cairo_move_to(cr, px - text_width(cr, s) / 2, py + len + tick_size * 1.05);
    cairo_show_text(cr, s.c_str());
  }
  // y axis along the left
  for (double v = std::ceil((fr.cy - fr.half - eps) / step) * step; v <= fr.cy + fr.half + eps; v += step) {
    double px = fr.x0, py = fr.to_pixel(fr.cx, v)[1];
    cairo_move_to(cr, px, py);
    cairo_line_to(cr, px - len, py);
    cairo_stroke(cr);
    auto s = tick_label(v, step);
    cairo_move_to(cr, px - len - 2 - text_width(cr, s), py + tick_size * 0.35);
    cairo_show_text(cr, s.c_str());
  }
}

// Samples in plot coordinates [N, 2] float64 (empty when none).
torch::Tensor plot_points(const PlotTarget& t, const torch::Tensor& samples, const std::string& title) {
  if (!samples.defined() || samples.numel() == 0) return torch::zeros({0, 2}, torch::kFloat64);
  if (samples.dim() != 2 || samples.size(1) != t.P.size(0))
    throw Error(fmt::format("plot '{}': samples must be [N, {}]; got {}", title, t.P.size(0),
                            c10::str(samples.sizes())));
  return samples.detach().to(torch::kCPU, torch::kFloat64).matmul(t.P).contiguous();
}

void draw_samples(cairo_t* cr, const PanelFrame& fr, const torch::Tensor& pts, int64_t* outside) {
  const int64_t n = pts.size(0);
  *outside = 0;
  if (n == 0) return;
  // Fainter dots when there are many, so dense regions still show structure.
  double alpha = std::clamp(0.55 * std::sqrt(1500.0 / double(n)), 0.08, 0.6);
  double radius = std::max(1.0, fr.side / 320.0);
  cairo_set_source_rgba(cr, 0.05, 0.08, 0.25, alpha);
  const double* p = pts.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    double u = p[2 * i], v = p[2 * i + 1];
    if (!(std::abs(u - fr.cx) <= fr.half && std::abs(v - fr.cy) <= fr.half)) {  // NaN counts as outside
      ++*outside;
      continue;
    }
    auto px = fr.to_pixel(u, v);
    cairo_new_sub_path(cr);
    cairo_arc(cr, px[0], px[1], radius, 0, 2 * M_PI);
    cairo_fill(cr);
  }
}

void draw_modes(cairo_t* cr, const PanelFrame& fr, const GaussianMixture& mix2) {
  auto m = mix2.means().to(torch::kFloat64);
  double arm = std::max(3.0, fr.side / 70.0);
  cairo_set_source_rgb(cr, 0.8, 0.1, 0.1);
  cairo_set_line_width(cr, std::max(1.2, fr.side / 300.0));
  for (int64_t k = 0; k < m.size(0); ++k) {
    auto px = fr.to_pixel(m[k][0].item<double>(), m[k][1].item<double>());
    cairo_move_to(cr, px[0] - arm, px[1]);
    cairo_line_to(cr, px[0] + arm, px[1]);
    cairo_move_to(cr, px[0], px[1] - arm);
    cairo_line_to(cr, px[0], px[1] + arm);
  }
  cairo_stroke(cr);
}

// One panel into the w x h cell at (ox, oy).
void draw_panel(cairo_t* cr, int ox, int oy, int w, int h, const PlotTarget& t, cairo_surface_t* heat,
                const ScatterPanel& panel) {
  auto pts = plot_points(t, panel.samples, panel.title);
  auto f = fonts_for(w, h);
  auto fr = layout(t, w, h);
  cairo_save(cr);
  cairo_translate(cr, ox, oy);

  // Heat map and points, clipped to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, fr.x0, fr.y0, fr.side, fr.side);
  cairo_clip(cr);
  cairo_set_source_surface(cr, heat, fr.x0, fr.y0);
  cairo_paint(cr);
  int64_t outside = 0;
  draw_samples(cr, fr, pts, &outside);
  draw_modes(cr, fr, t.mix2);
  cairo_restore(cr);

  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, fr.x0 + 0.5, fr.y0 + 0.5, fr.side - 1, fr.side - 1);
  cairo_stroke(cr);
  draw_ticks(cr, fr, f.tick);

  // Title, subtitle, and the sample counts in the plot area's corners.
  double pad = std::max(3.0, 0.02 * std::min(w, h)), width = w - 2 * pad;
  cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
  show_text(cr, panel.title, pad, pad + f.title, f.title, width, true);
  std::string sub = panel.subtitle;
  if (t.projected) sub += (sub.empty() ? "" : "  ") + std::string("[2-D projection on mean PCs]");
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  show_text(cr, sub, pad, pad + 1.35 * f.title + f.sub, f.sub, width);
  double corner = fr.side * 0.4;
  if (pts.size(0) > 0) {
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    show_text(cr, fmt::format("n = {}", pts.size(0)), fr.x0 + 4, fr.y0 + fr.side - 4, f.tick, corner);
  }
  if (outside > 0) {
    cairo_set_source_rgb(cr, 0.75, 0.1, 0.1);
    cairo_set_font_size(cr, f.tick);
    auto s = fmt::format("{} outside", outside);
    double x = fr.x0 + fr.side - 4 - std::min(corner, text_width(cr, s));
    show_text(cr, s, x, fr.y0 + f.tick + 3, f.tick, corner, true);
  }
  cairo_restore(cr);
}

void check_size(int px, const char* what) {
  if (px < 64 || px > 8192) throw Error(fmt::format("plot: {} = {} must be in [64, 8192]", what, px));
}

}  // namespace

std::array<double, 2> PanelFrame::to_pixel(double u, double v) const {
  return {x0 + (u - (cx - half)) / (2 * half) * side, y0 + ((cy + half) - v) / (2 * half) * side};
}

torch::Tensor plot_projection(const GaussianMixture& target) {
  const int64_t D = target.dim();
  if (D < 2) throw Error(fmt::format("plot: the target has dimension {}; scatter plots need at least 2", D));
  if (D == 2) return torch::eye(2, torch::kFloat64);
  auto m = target.means().to(torch::kCPU, torch::kFloat64);
  std::vector<torch::Tensor> basis;
  if (m.size(0) >= 2) {
    auto c = m - m.mean(0, true);
    auto [U, S, Vh] = torch::linalg_svd(c, /*full_matrices=*/false, c10::nullopt);
    double tol = 1e-6 * std::max(1.0, S.max().item<double>());
    for (int64_t i = 0; i < std::min<int64_t>(2, S.size(0)); ++i) {
      if (S[i].item<double>() <= tol) break;
      auto v = Vh[i].clone();
      // A fixed sign (largest entry positive) so the same target always plots the same way round.
      if (v[v.abs().argmax()].item<double>() < 0) v = -v;
      basis.push_back(v);
    }
  }
  // Complete with coordinate axes (Gram-Schmidt) when the means span fewer than 2 dimensions.
  for (int64_t i = 0; i < D && basis.size() < 2; ++i) {
    auto e = torch::zeros({D}, torch::kFloat64);
    e[i] = 1.0;
    for (const auto& b : basis) e = e - (e * b).sum() * b;
    double norm = e.norm().item<double>();
    if (norm > 1e-6) basis.push_back(e / norm);
  }
  return torch::stack(basis, 1);
}

PanelFrame panel_frame(const GaussianMixture& target, int width_px, int height_px) {
  return layout(plot_target(target), width_px, height_px);
}

void plot_samples(const std::string& png_path, const GaussianMixture& target, const ScatterPanel& panel,
                  int size_px) {
  plot_overview(png_path, target, {panel}, 1, size_px);
}

void plot_overview(const std::string& png_path, const GaussianMixture& target,
                   const std::vector<ScatterPanel>& panels, int columns, int panel_px) {
  if (panels.empty()) throw Error(fmt::format("plot {}: no panels", png_path));
  if (columns < 1) throw Error(fmt::format("plot {}: columns = {} must be >= 1", png_path, columns));
  check_size(panel_px, "panel size");
  const int cols = std::min<int>(columns, panels.size());
  const int rows = (int(panels.size()) + cols - 1) / cols;
  auto t = plot_target(target);
  auto fr = layout(t, panel_px, panel_px);
  auto heat = heat_map(t, fr.side);
  auto surface = image_surface(cols * panel_px, rows * panel_px);
  Context cr(cairo_create(surface.get()));
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(cr.get(), int(i % cols) * panel_px, int(i / cols) * panel_px, panel_px, panel_px, t, heat.get(),
               panels[i]);
  write_png(surface.get(), png_path);
}

}  // namespace retort
