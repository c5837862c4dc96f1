#include "retort/eval/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "retort/core/error.h"

namespace retort {
namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();
// Entries per block of pairwise distances: 2 MB of float64 stays in cache and in the allocator's
// free lists (32 MB blocks were 3x slower, mostly page faults).
constexpr int64_t kPairEntries = int64_t{1} << 18;
// Rows per block through the mixture (its intermediates are [rows, K, D]).
constexpr int64_t kMixtureRows = 8192;

// Checks a sample matrix and returns it as contiguous CPU float64.
torch::Tensor as_samples(const torch::Tensor& x, const char* what) {
  if (!x.defined()) throw Error(fmt::format("{}: samples are undefined", what));
  if (x.dim() != 2)
    throw Error(fmt::format("{}: samples must be [N, D]; got {} dimensions", what, x.dim()));
  if (x.size(0) == 0 || x.size(1) == 0)
    throw Error(fmt::format("{}: samples are empty ([{}, {}])", what, x.size(0), x.size(1)));
  return x.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

void check_same_dim(const torch::Tensor& x, const torch::Tensor& y, const char* what) {
  if (x.size(1) != y.size(1))
    throw Error(fmt::format("{}: the two sample sets have dimension {} and {}", what, x.size(1), y.size(1)));
}

bool all_finite(const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

// Calls f(d2) with the squared Euclidean distances [rows, m] of row blocks of a to all of b.
template <typename F>
void for_sq_dist_blocks(const torch::Tensor& a, const torch::Tensor& b, F&& f) {
  const int64_t rows = std::max<int64_t>(1, kPairEntries / b.size(0));
  auto bb = (b * b).sum(1).unsqueeze(0), bt = b.t();
  for (int64_t i = 0; i < a.size(0); i += rows) {
    auto ab = a.slice(0, i, std::min(a.size(0), i + rows));
    // |a|^2 + |b|^2 - 2 a.b, clamped at 0 against cancellation.
    auto d2 = torch::addmm(bb, ab, bt, /*beta=*/1, /*alpha=*/-2);
    d2.add_((ab * ab).sum(1, true)).clamp_min_(0);
    f(d2);
  }
}

// Mean over all pairs of the RBF kernel sum.
double mean_kernel(const torch::Tensor& a, const torch::Tensor& b, const std::vector<double>& bw) {
  double total = 0;
  for_sq_dist_blocks(a, b, [&](const torch::Tensor& d2) {
    for (double h : bw) total += torch::mul(d2, -0.5 / (h * h)).exp_().sum().item<double>();
  });
  return total / (double(a.size(0)) * double(b.size(0)));
}

// Mean Euclidean distance over all pairs.
double mean_dist(const torch::Tensor& a, const torch::Tensor& b) {
  double total = 0;
  for_sq_dist_blocks(a, b, [&](const torch::Tensor& d2) { total += d2.sqrt_().sum().item<double>(); });
  return total / (double(a.size(0)) * double(b.size(0)));
}

// Sorted columns [n, P] read at L equal quantile levels (i + 0.5) / L by linear interpolation.
torch::Tensor quantiles(const torch::Tensor& sorted, int64_t levels) {
  const int64_t n = sorted.size(0);
  if (n == levels) return sorted;
  auto pos = ((torch::arange(levels, torch::kFloat64) + 0.5) * (double(n) / double(levels)) - 0.5)
                 .clamp(0, double(n - 1));
  auto lo = pos.floor().to(torch::kLong), hi = pos.ceil().to(torch::kLong);
  auto frac = (pos - lo.to(torch::kFloat64)).unsqueeze(1);
  return sorted.index_select(0, lo) * (1 - frac) + sorted.index_select(0, hi) * frac;
}

}  // namespace

ModeReport mode_report(const GaussianMixture& target, const torch::Tensor& x_in) {
  auto x = as_samples(x_in, "mode_report");
  if (x.size(1) != target.dim())
    throw Error(fmt::format("mode_report: samples have dimension {}; the target has {}", x.size(1), target.dim()));
  auto g = target.to(torch::kCPU);
  const int64_t K = g.num_components();
  // The mixture works in float32; values that overflow it are as lost as NaNs.
  auto xf = x.to(torch::kFloat32);
  auto finite = torch::isfinite(xf).all(1);
  xf = xf.masked_fill(~finite.unsqueeze(1), 0);  // zeroed rows are masked out below
  auto mass = torch::zeros({K}, torch::kFloat64);
  int64_t inside = 0, counted = 0;
  for (int64_t i = 0; i < xf.size(0); i += kMixtureRows) {
    auto xb = xf.slice(0, i, std::min(xf.size(0), i + kMixtureRows));
    const int64_t B = xb.size(0);
    torch::Tensor resp;
    g.eps(xb, torch::ones({B}), torch::zeros({B}), {}, &resp);
    // Far beyond float32 range every component density underflows and the softmax is NaN.
    auto ok = finite.slice(0, i, i + B) & torch::isfinite(resp).all(1);
    mass += resp.to(torch::kFloat64).masked_fill(~ok.unsqueeze(1), 0).sum(0);
    counted += ok.sum().item<int64_t>();
    auto near = std::get<0>(g.mahalanobis2(xb).min(1)) <= 9.0f;
    inside += (near & ok).sum().item<int64_t>();
  }
  mass /= double(x.size(0));

  ModeReport r;
  r.total = K;
  auto w = g.weights().to(torch::kFloat64);
  for (int64_t k = 0; k < K; ++k) {
    double m = mass[k].item<double>(), wk = w[k].item<double>();
    r.mass.push_back(m);
    if (m >= wk / 4) ++r.covered;
    r.mass_tv += 0.5 * std::abs(m - wk);
  }
  // Non-finite samples carry mass to "nowhere": count it as a bucket the target gives weight 0.
  r.mass_tv += 0.5 * double(x.size(0) - counted) / double(x.size(0));
  r.in_3sigma = double(inside) / double(x.size(0));
  return r;
}

double mmd_rbf(const torch::Tensor& x_in, const torch::Tensor& y_in, const std::vector<double>& bandwidths) {
  auto x = as_samples(x_in, "mmd_rbf"), y = as_samples(y_in, "mmd_rbf");
  check_same_dim(x, y, "mmd_rbf");
  if (bandwidths.empty()) throw Error("mmd_rbf: no bandwidths");
  for (double h : bandwidths)
    if (!(h > 0) || !std::isfinite(h)) throw Error(fmt::format("mmd_rbf: bandwidth {} must be positive", h));
  if (!all_finite(x) || !all_finite(y)) return kUndefined;
  double v = mean_kernel(x, x, bandwidths) + mean_kernel(y, y, bandwidths) - 2 * mean_kernel(x, y, bandwidths);
  return std::max(0.0, v);
}

std::vector<double> mmd_bandwidths(const torch::Tensor& reference) {
  auto r = as_samples(reference, "mmd_bandwidths");
  if (r.size(0) < 2) throw Error("mmd_bandwidths: the reference needs at least 2 samples");
  if (!all_finite(r)) throw Error("mmd_bandwidths: the reference has non-finite values");
  // A strided subsample is deterministic, so the kernel does not depend on any random stream.
  const int64_t n = std::min<int64_t>(r.size(0), 1000);
  auto idx = torch::linspace(0, double(r.size(0) - 1), n, torch::kFloat64).round().to(torch::kLong);
  auto s = r.index_select(0, idx);
  auto d = torch::cdist(s, s);
  auto iu = torch::triu_indices(n, n, 1);
  auto pairs = d.index({iu[0], iu[1]});
  // The lower median, as torch defines it; fine for ~500k pairs.
  double med = pairs.median().item<double>();
  if (!(med > 0)) throw Error("mmd_bandwidths: the reference samples are all identical");
  std::vector<double> out;
  for (double m : {0.1, 0.2, 0.5, 1.0, 2.0}) out.push_back(m * med);
  return out;
}

double sliced_w2(const torch::Tensor& x_in, const torch::Tensor& y_in, int64_t projections, Rng& rng) {
  auto x = as_samples(x_in, "sliced_w2"), y = as_samples(y_in, "sliced_w2");
  check_same_dim(x, y, "sliced_w2");
  if (projections < 1) throw Error(fmt::format("sliced_w2: projections = {} must be >= 1", projections));
  // Draw the directions before any early return, so the random stream advances the same either way.
  auto dirs = rng.randn({projections, x.size(1)}).to(torch::kFloat64);
  dirs = dirs / dirs.norm(2, 1, true).clamp_min(1e-12);
  if (!all_finite(x) || !all_finite(y)) return kUndefined;
  auto px = std::get<0>(x.matmul(dirs.t()).sort(0));  // [N, P]
  auto py = std::get<0>(y.matmul(dirs.t()).sort(0));  // [M, P]
  const int64_t levels = std::max(x.size(0), y.size(0));
  auto diff = quantiles(px, levels) - quantiles(py, levels);
  return std::sqrt((diff * diff).mean().item<double>());
}

double energy_distance(const torch::Tensor& x_in, const torch::Tensor& y_in) {
  auto x = as_samples(x_in, "energy_distance"), y = as_samples(y_in, "energy_distance");
  check_same_dim(x, y, "energy_distance");
  if (!all_finite(x) || !all_finite(y)) return kUndefined;
  double v = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y);
  return std::max(0.0, v);
}

SampleMetrics evaluate_samples(const GaussianMixture& target, const torch::Tensor& x, const torch::Tensor& reference,
                               Rng& rng) {
  auto xs = as_samples(x, "evaluate_samples"), ref = as_samples(reference, "evaluate_samples reference");
  check_same_dim(xs, ref, "evaluate_samples");
  auto modes = mode_report(target, xs);
  SampleMetrics m;
  m.modes_covered = modes.covered;
  m.modes_total = modes.total;
  m.mass_tv = modes.mass_tv;
  m.in_3sigma = modes.in_3sigma;
  m.mode_mass = modes.mass;
  m.mmd = mmd_rbf(xs, ref, mmd_bandwidths(ref));
  m.sw2 = sliced_w2(xs, ref, 256, rng);
  m.energy = energy_distance(xs, ref);
  return m;
}

}  // namespace retort
