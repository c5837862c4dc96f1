#include "retort/eval/image_metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "retort/core/error.h"
#include "retort/io/safetensors.h"

namespace retort {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Rows of a distance block: 1024 x 10k float64 is 80 MB.
constexpr int64_t kChunk = 1024;

torch::Tensor as_features(const torch::Tensor& x, const char* what) {
  if (!x.defined() || x.dim() != 2)
    throw Error(fmt::format("{}: expected a feature matrix [N, D]; got {}", what,
                            x.defined() ? c10::str(x.sizes()) : std::string("nothing")));
  return x.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

void check_pair(const torch::Tensor& a, const torch::Tensor& b, int64_t min_rows, const char* what) {
  if (a.size(1) != b.size(1))
    throw Error(fmt::format("{}: feature dimensions differ ({} vs {})", what, a.size(1), b.size(1)));
  if (a.size(0) < min_rows || b.size(0) < min_rows)
    throw Error(fmt::format("{}: needs at least {} rows in each set; got {} and {}", what, min_rows, a.size(0),
                            b.size(0)));
}

// Symmetric positive semi-definite square root through eigh (negative round-off clamped to 0).
torch::Tensor psd_sqrt(const torch::Tensor& s) {
  auto [vals, vecs] = torch::linalg_eigh(s, "L");
  return (vecs * vals.clamp_min(0).sqrt().unsqueeze(0)).matmul(vecs.transpose(0, 1));
}

// Squared distances [n, rows of b] from the rows [begin, begin + n) of a. One addmm and in-place ops:
// out-of-place broadcasts of 1024 x 10k blocks cost 3x the matrix product here (allocation).
torch::Tensor sq_dist_block(const torch::Tensor& a, const torch::Tensor& a_sq, int64_t begin, int64_t n,
                            const torch::Tensor& b, const torch::Tensor& b_sq) {
  auto d = torch::addmm(b_sq.unsqueeze(0).expand({n, b.size(0)}), a.narrow(0, begin, n), b.t(), 1, -2);
  d.add_(a_sq.narrow(0, begin, n).unsqueeze(1));
  return d.clamp_min_(0);
}

// Squared distance of each row of x to its k-th nearest other row.
torch::Tensor knn_radii_sq(const torch::Tensor& x, const torch::Tensor& x_sq, int64_t k) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += kChunk) {
    int64_t n = std::min(kChunk, x.size(0) - i);
    auto d = sq_dist_block(x, x_sq, i, n, x, x_sq);
    d.narrow(1, i, n).diagonal().fill_(-1);  // the row itself: smallest, then skipped
    parts.push_back(std::get<0>(d.topk(k + 1, 1, /*largest=*/false)).select(1, k));
  }
  return torch::cat(parts);
}

std::string percent(double v) { return std::isnan(v) ? "n/a" : fmt::format("{:.1f}%", 100 * v); }

}  // namespace

torch::Tensor classifier_features(Classifier& model, const torch::Tensor& images, int64_t batch) {
  if (batch < 1) throw Error(fmt::format("classifier_features: batch = {} must be >= 1", batch));
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  auto device = model->parameters().front().device();
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < images.size(0); i += batch) {
    auto x = images.narrow(0, i, std::min(batch, images.size(0) - i)).to(device, torch::kFloat32);
    parts.push_back(model->features(x).cpu());
  }
  model->train(was_training);
  if (parts.empty()) return torch::zeros({0, model->options().feature_dim});
  return torch::cat(parts);
}

double frechet_distance(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  auto a = as_features(a_in, "frechet_distance"), b = as_features(b_in, "frechet_distance");
  check_pair(a, b, 2, "frechet_distance");
  if (!a.isfinite().all().item<bool>() || !b.isfinite().all().item<bool>()) return kNaN;
  auto mu_a = a.mean(0), mu_b = b.mean(0);
  auto ca = a - mu_a, cb = b - mu_b;
  auto sa = ca.transpose(0, 1).matmul(ca) / double(a.size(0) - 1);
  auto sb = cb.transpose(0, 1).matmul(cb) / double(b.size(0) - 1);
  auto ra = psd_sqrt(sa);
  auto m = ra.matmul(sb).matmul(ra);
  m = 0.5 * (m + m.transpose(0, 1));  // symmetric up to round-off; eigh reads one triangle
  double tr_sqrt = torch::linalg_eigvalsh(m, "L").clamp_min(0).sqrt().sum().item<double>();
  double d = (mu_a - mu_b).pow(2).sum().item<double>() + sa.trace().item<double>() + sb.trace().item<double>() -
             2 * tr_sqrt;
  return std::max(0.0, d);
}

PrecisionRecall precision_recall(const torch::Tensor& real_in, const torch::Tensor& fake_in, int64_t k) {
  if (k < 1) throw Error(fmt::format("precision_recall: k = {} must be >= 1", k));
  auto real = as_features(real_in, "precision_recall"), fake = as_features(fake_in, "precision_recall");
  check_pair(real, fake, k + 1, "precision_recall");
  auto real_sq = real.pow(2).sum(1), fake_sq = fake.pow(2).sum(1);
  auto real_r = knn_radii_sq(real, real_sq, k), fake_r = knn_radii_sq(fake, fake_sq, k);
  // One pass over fake x real blocks serves both: precision reads rows, recall columns.
  int64_t fake_inside = 0;
  auto real_covered = torch::zeros({real.size(0)}, torch::kBool);
  for (int64_t i = 0; i < fake.size(0); i += kChunk) {
    int64_t n = std::min(kChunk, fake.size(0) - i);
    auto d = sq_dist_block(fake, fake_sq, i, n, real, real_sq);
    fake_inside += d.le(real_r.unsqueeze(0)).any(1).sum().item<int64_t>();
    real_covered.logical_or_(d.le(fake_r.narrow(0, i, n).unsqueeze(1)).any(0));
  }
  return {double(fake_inside) / double(fake.size(0)),
          real_covered.to(torch::kFloat64).mean().item<double>()};
}

ImageEval evaluate_images(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                          const torch::Tensor& reference_features, int64_t k) {
  if (!images.defined() || images.dim() != 4)
    throw Error(fmt::format("evaluate_images: expected images [N, C, H, W]; got {}",
                            images.defined() ? c10::str(images.sizes()) : std::string("nothing")));
  const int64_t n = images.size(0);
  if (labels.defined() && (labels.dim() != 1 || labels.size(0) != n))
    throw Error(fmt::format("evaluate_images: labels must be [{}]; got {}", n, c10::str(labels.sizes())));
  ImageEval e;
  e.n = n;
  auto feats = classifier_features(model, images);
  e.fid = frechet_distance(reference_features, feats);
  auto pr = precision_recall(reference_features, feats, k);
  e.precision = pr.precision;
  e.recall = pr.recall;
  e.class_accuracy = kNaN;
  if (labels.defined()) {
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    auto device = model->parameters().front().device();
    auto pred = model->logits_from_features(feats.to(device)).argmax(1).cpu();
    model->train(was_training);
    e.class_accuracy = pred.eq(labels.to(torch::kCPU, torch::kLong)).to(torch::kFloat64).mean().item<double>();
  }
  return e;
}

std::string image_eval_markdown(const ImageEval& e) {
  return fmt::format(
      "| n | FID | precision | recall | class accuracy |\n"
      "|---|---|---|---|---|\n"
      "| {} | {:.3f} | {:.3f} | {:.3f} | {} |\n",
      e.n, e.fid, e.precision, e.recall, percent(e.class_accuracy));
}

void load_image_file(const std::filesystem::path& path, torch::Tensor* images, torch::Tensor* labels) {
  auto tensors = load_safetensors(path);
  auto it = tensors.find("images");
  if (it == tensors.end()) throw IoError(fmt::format("{}: no tensor named 'images'", path.string()));
  const auto& im = it->second;
  if (im.dim() != 4 || !im.is_floating_point() || im.size(0) < 1)
    throw IoError(fmt::format("{}: 'images' must be float [N, C, H, W] with N >= 1; got {} {}", path.string(),
                              c10::toString(im.scalar_type()), c10::str(im.sizes())));
  *images = im.to(torch::kFloat32);
  *labels = torch::Tensor();
  if (auto lt = tensors.find("labels"); lt != tensors.end()) {
    const auto& lb = lt->second;
    if (lb.dim() != 1 || lb.size(0) != im.size(0) || lb.scalar_type() != torch::kInt64)
      throw IoError(fmt::format("{}: 'labels' must be int64 [{}]; got {} {}", path.string(), im.size(0),
                                c10::toString(lb.scalar_type()), c10::str(lb.sizes())));
    *labels = lb;
  }
}

}  // namespace retort
