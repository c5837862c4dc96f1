// PNG scatter plots of samples over the target's clean density (cairo). Targets with D > 2 are shown
// projected onto the plane of the top-2 principal directions of the mode means; the window is always
// fitted to the target, so a diverged generator cannot zoom the plot away from it.
#pragma once
#include <array>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/models/gaussian_mixture.h"

namespace retort {

struct ScatterPanel {
  std::string title;
  std::string subtitle;
  torch::Tensor samples;  // [N, D] on any device; undefined or empty draws the target alone
};

// One panel per PNG, size_px square. Throws IoError naming the path when it cannot be written,
// Error on samples whose dimension differs from the target's or a target with D < 2.
void plot_samples(const std::string& png_path, const GaussianMixture& target, const ScatterPanel& panel,
                  int size_px = 480);
// A grid of panels, `columns` wide, each panel_px square.
void plot_overview(const std::string& png_path, const GaussianMixture& target,
                   const std::vector<ScatterPanel>& panels, int columns, int panel_px = 320);

// The [D, 2] matrix whose columns span the plotted plane: the identity for D = 2, else the top-2
// principal directions of the mode means completed with coordinate axes when the means span < 2 dims.
torch::Tensor plot_projection(const GaussianMixture& target);

// Where a panel of width x height pixels puts its plot area and data window; tests and annotations
// use it to find a data point's pixel.
struct PanelFrame {
  int x0 = 0, y0 = 0, side = 0;           // plot area in pixels (square)
  double cx = 0, cy = 0, half = 1;        // data window centre and half-width (projected coordinates)
  std::array<double, 2> to_pixel(double u, double v) const;
};
PanelFrame panel_frame(const GaussianMixture& target, int width_px, int height_px);

}  // namespace retort
